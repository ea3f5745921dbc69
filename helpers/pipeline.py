"""Run the report's notebooks in order with papermill and render them to HTML.

    python -m helpers.pipeline [--reports reports] [--results results] [--figures figures]
        [--artefacts artefacts] [--data-dir data] [--smoke]

Every notebook gets the file paths it reads and writes as parameters, so the same
notebooks serve the full report and the small smoke run of the tests.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbconvert import HTMLExporter

from . import io, report

NOTEBOOKS = (
    "01_data_exploration",
    "02_training",
    "03_weight_pruning",
    "04_unit_pruning",
    "05_comparison",
)
SOURCE_DIR = Path(__file__).resolve().parents[1] / "notebooks"

SMOKE: dict[str, dict[str, Any]] = {
    "02_training": {"epochs": 1, "train_size": 2_000, "test_size": 1_000},
    "03_weight_pruning": {"test_size": 1_000, "ks": [0, 50, 90, 99]},
    "04_unit_pruning": {"test_size": 1_000, "ks": [0, 50, 90, 99]},
}
"""Parameters that shrink the run to a smoke test: a data subset, one epoch, four levels."""


@dataclass(frozen=True)
class Layout:
    """Where a run reads and writes: executed notebooks and HTML, results, figures, cache, data."""

    reports: Path = Path("reports")
    results: Path = Path("results")
    figures: Path = Path("figures")
    artefacts: Path = Path("artefacts")
    data_dir: Path = Path("data")
    dataset: str = "mnist"

    def parameters(self) -> dict[str, dict[str, Any]]:
        """Each notebook's file-path parameters under this layout."""
        data = {"dataset": self.dataset, "data_dir": str(self.data_dir)}
        models = str(self.artefacts / self.dataset)
        figures = str(self.figures)
        return {
            "01_data_exploration": {**data, "figures_dir": figures,
                                    "summary_path": str(self.results / "data_summary.json")},
            "02_training": {**data, "cache_dir": str(self.artefacts / "cache"), "checkpoint_dir": models,
                            "history_path": str(self.results / "training.csv"), "figures_dir": figures},
            "03_weight_pruning": {**data, "checkpoint_dir": models, "figures_dir": figures,
                                  "results_path": str(self.results / "weight_pruning.csv")},
            "04_unit_pruning": {**data, "checkpoint_dir": models, "figures_dir": figures,
                                "results_path": str(self.results / "unit_pruning.csv")},
            "05_comparison": {"weight_results_path": str(self.results / "weight_pruning.csv"),
                              "unit_results_path": str(self.results / "unit_pruning.csv"),
                              "pruning_results_path": str(self.results / "pruning.csv"),
                              "findings_path": str(self.results / "findings.csv"),
                              "figures_dir": figures},
        }


def render_html(notebook: Path) -> Path:
    """Write ``notebook`` as HTML beside it without code cells' input (what ``--no-input`` does)."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return io.atomic_write(notebook.with_suffix(".html"), lambda tmp: tmp.write_text(body))


def run(layout: Layout, overrides: dict[str, dict[str, Any]] | None = None, cwd: Path | None = None) -> list[Path]:
    """Execute every notebook into ``layout.reports``, render each to HTML, write the index.

    ``overrides`` adds or replaces parameters per notebook name. Returns the HTML pages.
    A notebook that fails stops the run (papermill raises), leaving the earlier outputs.
    """
    overrides = overrides or {}
    unknown = set(overrides) - set(NOTEBOOKS)
    if unknown:
        raise ValueError(f"overrides for unknown notebooks {sorted(unknown)}; accepted: {list(NOTEBOOKS)}")
    layout.reports.mkdir(parents=True, exist_ok=True)
    pages = []
    for name, params in layout.parameters().items():
        executed = layout.reports / f"{name}.ipynb"
        papermill.execute_notebook(
            SOURCE_DIR / f"{name}.ipynb",
            executed,
            parameters={**params, **overrides.get(name, {})},
            cwd=str(cwd or Path.cwd()),
            progress_bar=False,
        )
        pages.append(render_html(executed))
    report.write_index(layout.reports, layout.results / "findings.csv")
    return pages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run and render the report's notebooks.")
    for field in ("reports", "results", "figures", "artefacts"):
        parser.add_argument(f"--{field}", type=Path, default=Path(field))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument("--smoke", action="store_true", help="tiny run: data subset, one epoch, four levels")
    args = parser.parse_args(argv)
    layout = Layout(args.reports, args.results, args.figures, args.artefacts, args.data_dir)
    for page in run(layout, SMOKE if args.smoke else None):
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
