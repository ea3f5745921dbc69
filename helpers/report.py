"""The report's landing page, ``reports/index.html``: the answer, a figure and a table per dataset, then the chapters."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import jinja2
import mistune
import pandas as pd

from . import io
from .comparison import FRONTIER_TARGETS, answer_markdown, budget_table, frontier_targets, frontier_targets_markdown
from .strategies import LAYER, RANKINGS, strategy as registered

DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def notebook_title(path: Path) -> str:
    """The first Markdown heading of the notebook at ``path`` (its file name if none)."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def _chapters(reports_dir: Path, dataset: str) -> list[dict[str, str]]:
    chapters = []
    for nb in sorted((reports_dir / dataset).glob("[0-9][0-9]_*.ipynb")):
        page = nb.with_suffix(".html")
        if not page.is_file():
            raise FileNotFoundError(f"{page} is missing: render the notebooks to HTML first")
        chapters.append({"href": f"{dataset}/{page.name}", "notebook": f"{dataset}/{nb.name}",
                         "title": notebook_title(nb)})
    if not chapters:
        raise FileNotFoundError(f"no executed notebooks (NN_*.ipynb) in {reports_dir / dataset}")
    return chapters


def _cost(cost: pd.DataFrame, dataset: str) -> str:
    rows = cost[cost["dataset"] == dataset]
    if rows.empty:
        return ""
    cached = int(rows["cached"].sum())
    return (f"These pages took {rows['seconds'].sum() / 60:.1f} minutes to compute in the last run "
            f"({len(rows)} notebooks, {cached} of them found everything cached).")


def _study(results: pd.DataFrame) -> str:
    """What ran on one dataset, from its results: per method, the strategies (with how many
    seeds each network ran on, fewest to most) and the rankings beside the per-layer one."""
    parts = []
    for method, of in results.groupby("method", sort=False):
        per_cell = of[(of["ranking"] == LAYER.name) & (of["k"] > 0)].groupby(
            ["strategy", "epochs", "k"], sort=False)["seed"].nunique().groupby("strategy", sort=False)
        strategies = "; ".join(f"{registered(s).label} ({lo if lo == hi else f'{lo} to {hi}'} seeds)"
                               for s, lo, hi in zip(per_cell.min().index, per_cell.min(), per_cell.max()))
        others = [RANKINGS[r].label for r in of["ranking"].unique() if r != LAYER.name]
        parts.append(f"{method.capitalize()} pruning: {strategies}."
                     + (f" Rankings beside the per-layer one: {'; '.join(others)}." if others else ""))
    return "What ran here. " + " ".join(parts)


def _table_html(table: pd.DataFrame, name: str) -> str:
    # a fixed id instead of pandas' random one, so that the same results give the same page
    return (table.style.format(lambda v: "–" if pd.isna(v) else f"{v:.2%}").set_uuid(name)
            .set_table_attributes('class="budgets"').to_html())


def _machine(path: Path) -> str:
    if not path.is_file():
        return ""
    m = io.read_json(path)["machine"]
    return (f"Computed on {m['cpu']} ({m['logical_cores']} logical cores, flags {', '.join(m['cpu_flags']) or 'none'}), "
            f"Python {m['python']}, torch {m['torch_version']}, on CPU.")


def index_html(reports_dir: Path, results_dir: Path, figures_dir: Path, datasets: Sequence[str]) -> str:
    """The landing page, from the merged ``results_dir/pruning.csv``, ``efficiency.csv`` and
    ``cost.csv``, each dataset's ``frontier.png`` in ``figures_dir`` and the rendered chapters
    in ``reports_dir``."""
    results = io.read_csv(results_dir / "pruning.csv")
    efficiency = io.read_csv(results_dir / "efficiency.csv")
    cost_path = results_dir / "cost.csv"
    cost = io.read_csv(cost_path) if cost_path.is_file() else pd.DataFrame(columns=["dataset", "seconds", "cached"])
    pages = []
    for dataset in datasets:
        of, eff = results[results["dataset"] == dataset], efficiency[efficiency["dataset"] == dataset]
        figure = Path(figures_dir) / dataset / "frontier.png"
        pages.append({
            "name": dataset, "title": DATASET_TITLES.get(dataset, dataset),
            "answer": mistune.html(answer_markdown(of, eff)),
            "figure": base64.b64encode(figure.read_bytes()).decode(),
            "figure_alt": "Step chart per method: test accuracy of the validation-chosen network against the most "
                          "weights allowed, log axis, with 95 % interval bands and the published points as crosses",
            "figure_caption": "At each budget, the network validation ranks first, with its 95 % interval on test; "
                              + ("the crosses are published points at the same numbers of weights; "
                                 if any(a > 0 for _, a, _ in FRONTIER_TARGETS.get(dataset, ())) else "")
                              + "grey lines mark the dense accuracy and one point below it.",
            "study": _study(of),
            "frontier": mistune.html(frontier_targets_markdown(frontier_targets(of, dataset))),
            "seeds": of["seed"].nunique(),
            "table": _table_html(budget_table(of, eff), f"budgets-{dataset}"),
            "chapters": _chapters(Path(reports_dir), dataset),
            "cost": _cost(cost, dataset),
        })
    environment = jinja2.Environment(loader=jinja2.PackageLoader("helpers", "templates"), autoescape=True,
                                     keep_trailing_newline=True)
    machine = _machine(Path(results_dir) / datasets[0] / "efficiency_machine.json")
    return environment.get_template("index.html.j2").render(datasets=pages, machine=machine)


def write_index(reports_dir: Path, results_dir: Path, figures_dir: Path, datasets: Sequence[str]) -> Path:
    """Write ``reports_dir/index.html`` (:func:`index_html`), atomically."""
    page = index_html(Path(reports_dir), Path(results_dir), Path(figures_dir), datasets)
    return io.atomic_write(Path(reports_dir) / "index.html", lambda tmp: tmp.write_text(page))
