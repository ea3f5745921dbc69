"""The notebooks: clean sources, and a smoke run of all five through papermill."""

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers import pipeline
from helpers.pipeline import NOTEBOOKS, SMOKE, SOURCE_DIR, Layout

from .conftest import DATA_DIR


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_notebook_is_clean_and_thin(name):
    book = nbformat.read(SOURCE_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert set(book.metadata) <= {"kernelspec", "language_info"}, "no volatile notebook metadata"
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "sources hold no outputs"
            assert set(cell.metadata) <= {"tags"}
            for line in cell.source.splitlines():
                assert not line.lstrip().startswith(("def ", "class ", "lambda")), "functions live in helpers"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    layout = Layout(root / "reports", root / "results", root / "figures", root / "artefacts", DATA_DIR)
    pages = pipeline.run(layout, SMOKE)
    return layout, pages


def test_smoke_run_writes_every_report_page(smoke_run):
    layout, pages = smoke_run
    assert [p.name for p in pages] == [f"{n}.html" for n in NOTEBOOKS]
    for name in NOTEBOOKS:
        book = nbformat.read(layout.reports / f"{name}.ipynb", as_version=4)
        errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
        page = (layout.reports / f"{name}.html").read_text()
        assert "from helpers import" not in page, "HTML is rendered without code"
    index = (layout.reports / "index.html").read_text()
    assert all(f'href="{n}.html"' in index for n in NOTEBOOKS)
    assert "Conclusions" in index and "Weight pruning" in index


def test_smoke_run_writes_the_results_contract(smoke_run):
    layout, _ = smoke_run
    results = pd.read_csv(layout.results / "pruning.csv")
    assert {"method", "k", "accuracy", "loss", "sparsity", "nonzero_weights", "seed", "dataset"} <= set(results)
    assert sorted(map(tuple, results[["method", "k"]].values.tolist())) == sorted(
        (m, float(k)) for m in ("weight", "unit") for k in SMOKE["03_weight_pruning"]["ks"])
    assert results.accuracy.between(0, 1).all()
    dense = results[results.k == 0]
    assert dense.sparsity.eq(0).all() and dense.nonzero_weights.eq(2_386_000).all()
    at90 = results[results.k == 90].set_index("method")
    assert at90.loc["weight", "sparsity"] == pytest.approx(0.9, abs=1e-6)
    assert at90.loc["unit", "sparsity"] == pytest.approx(0.9, abs=1e-6)
    assert (at90.sparsity_fc5 == 0).all()

    history = pd.read_csv(layout.results / "training.csv")
    assert list(history.epoch) == [1] and {"train_loss", "test_accuracy"} <= set(history)
    findings = pd.read_csv(layout.results / "findings.csv")
    assert set(findings.method) == {"weight", "unit"}
    summary = json.loads((layout.results / "data_summary.json").read_text())
    assert summary["splits"]["train"]["images"] == 60_000
    for figure in ("class_balance", "samples", "pixel_histogram", "learning_curves", "weight_accuracy",
                   "unit_accuracy", "weight_magnitudes", "unit_norms", "comparison"):
        assert (layout.figures / f"{figure}.png").stat().st_size > 1000, figure
