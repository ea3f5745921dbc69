"""The notebooks: clean sources whose default paths chain, and when the pipeline reruns one
(their run through the pipeline is make small's, in tests/test_readme.py)."""

import ast

import nbformat
import pytest

from helpers import parameters, pipeline
from helpers.pipeline import NOTEBOOKS, SOURCE_DIR


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


def test_the_notebooks_run_in_order_by_hand_chain_through_their_default_paths():
    """What a notebook reads by default is what a notebook before it writes by default, and
    everything they write by default lies in runs/ (the README's promise for papermill runs)."""
    written: set[str] = set()
    for name in NOTEBOOKS:
        declared = parameters.declared(name)
        paths = {p: ast.literal_eval(d["default"]) for p, d in declared.items() if p.endswith(("_path", "_dir"))}
        reads = {p: v for p, v in paths.items() if declared[p]["help"].startswith("read:")}
        writes = {p: v for p, v in paths.items() if declared[p]["help"].startswith("written:")}
        assert set(reads.values()) <= written, (name, reads)
        assert writes and all(v.startswith("runs/") for v in writes.values()), (name, writes)
        written |= set(writes.values())
    assert "runs/models" in written and "runs/results/weight_pruning.csv" in written


def test_an_executed_notebook_is_reused_only_while_its_record_holds(tmp_path):
    executed, record, out = tmp_path / "n.ipynb", tmp_path / "n.json", tmp_path / "out.csv"
    runs = []

    def execute_it():
        runs.append(1)
        executed.write_text(f"run {len(runs)}")
        out.write_text("x")
    params = {"results_path": "out.csv"}

    def current(key):  # what the progress line expects, before the notebook runs
        return pipeline.up_to_date(params, executed, record, key, tmp_path)
    assert not current("key")
    assert pipeline.executed_notebook(params, executed, record, "key", tmp_path, execute_it) is False
    assert current("key") and not current("other")
    assert pipeline.executed_notebook(params, executed, record, "key", tmp_path, execute_it) is True
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    record.write_text("{damaged")
    assert not current("other")
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    executed.write_text("edited by hand")
    assert not current("other")
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    out.unlink()
    assert not current("other")
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it, force=True) is False
    assert len(runs) == 6
