"""Write ``reports/index.html``: the entry page linking the rendered notebooks."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import mistune
import pandas as pd

from . import io
from .analysis import conclusions_markdown


def notebook_title(path: Path) -> str:
    """The first Markdown heading of the notebook at ``path`` (its file name if none)."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def index_html(reports_dir: Path, datasets: Sequence[str], findings: pd.DataFrame | None) -> str:
    """The index page: per dataset, one link per rendered notebook (HTML and .ipynb) and the
    conclusions computed for it."""
    body = [
        "<h1>How much of a trained MNIST classifier can be pruned?</h1>",
        "<p>Weight pruning (single connections) against unit pruning (whole neurons) of a "
        "784-1000-1000-500-200-10 ReLU network. Each page below is an executed notebook "
        "rendered without its code; the notebooks themselves are beside them.</p>",
    ]
    for dataset in datasets:
        items = []
        for nb in sorted((reports_dir / dataset).glob("[0-9][0-9]_*.ipynb")):
            page = nb.with_suffix(".html")
            if not page.is_file():
                raise FileNotFoundError(f"{page} is missing: render the notebooks to HTML first")
            href = f"{dataset}/{page.name}"
            items.append(f'<li><a href="{html.escape(href)}">{html.escape(notebook_title(nb))}</a> '
                         f'(<a href="{html.escape(dataset)}/{html.escape(nb.name)}">notebook</a>)</li>')
        if not items:
            raise FileNotFoundError(f"no executed notebooks (NN_*.ipynb) in {reports_dir / dataset}")
        body += [f"<h2>{html.escape(DATASET_TITLES.get(dataset, dataset))}</h2>", "<ol>", *items, "</ol>"]
        if findings is not None and "dataset" in findings and (findings["dataset"] == dataset).any():
            body += ["<h3>Conclusions</h3>",
                     mistune.html(conclusions_markdown(findings[findings["dataset"] == dataset]))]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>MNIST pruning report</title>"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.5}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_index(reports_dir: Path, datasets: Sequence[str], findings_path: Path | None = None) -> Path:
    """Write ``reports_dir/index.html`` (with the conclusions when ``findings_path`` exists)."""
    findings = pd.read_csv(findings_path) if findings_path and Path(findings_path).is_file() else None
    return io.atomic_write(Path(reports_dir) / "index.html",
                           lambda tmp: tmp.write_text(index_html(Path(reports_dir), datasets, findings)))
