"""Results carry what produced them; stale, mismatched or hand-edited results are refused."""

import json
import platform
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
import torch

from helpers import analysis, io, pipeline, provenance


def frame():
    return pd.DataFrame({"dataset": ["mnist"] * 2, "seed": [0, 0], "method": ["weight", "unit"],
                         "strategy": ["oneshot"] * 2, "ranking": ["layer"] * 2, "k": [0.0, 0.0],
                         "epochs": [0, 0], "accuracy": [0.98, 0.97], "loss": [0.1, 0.2], "sparsity": [0.5, 0.5]})


RECORD = {"notebook": "03_weight_pruning", "data": {"train_data": "a" * 16}, "versions": {"torch": "x"}}


def test_results_are_written_with_their_record_and_read_back(tmp_path):
    path = tmp_path / "results.csv"
    io.write_csv(frame(), path, RECORD)
    sidecar = json.loads((tmp_path / "results.provenance.json").read_text())
    assert sidecar["file"] == "results.csv" and sidecar["data"] == RECORD["data"] and len(sidecar["sha256"]) == 64
    read, record = io.read_results(path)
    pd.testing.assert_frame_equal(read, frame())
    assert record["notebook"] == "03_weight_pruning"


def test_changed_results_or_a_missing_record_are_refused(tmp_path):
    path = tmp_path / "results.csv"
    io.write_csv(frame(), path, RECORD)
    path.write_text(path.read_text().replace("0.98", "0.99"))
    with pytest.raises(io.StaleResultsError, match="not the file its provenance record results.provenance.json describes"):
        io.read_results(path)
    io.write_csv(frame().assign(loss=[0.3, 0.4]), path)  # without a record: the old one describes other bytes
    with pytest.raises(io.StaleResultsError):
        io.read_results(path)
    (tmp_path / "results.provenance.json").unlink()
    with pytest.raises(io.StaleResultsError, match="has no provenance record"):
        io.read_results(path)


def test_an_interrupted_write_leaves_the_old_file_whole_and_is_detected(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    io.write_csv(frame(), path, RECORD)
    before = path.read_bytes()
    real = io.atomic_write

    def interrupted(target, write):
        if target == path:  # the record is written, then the run dies while writing the CSV
            real(target, lambda tmp: (tmp.write_text("dataset,se"), (_ for _ in ()).throw(KeyboardInterrupt()))[0])
        return real(target, write)

    monkeypatch.setattr(io, "atomic_write", interrupted)
    changed = frame().assign(accuracy=[0.5, 0.4])
    with pytest.raises(KeyboardInterrupt):
        io.write_csv(changed, path, {**RECORD, "notebook": "other"})
    assert path.read_bytes() == before, "the old results are intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.provenance.json"], "no temporary left"
    with pytest.raises(io.StaleResultsError):
        io.read_results(path)


def test_results_of_different_runs_are_not_compared():
    a = {**RECORD, "dense_fingerprints": {"0": "1" * 16}}
    b = {**RECORD, "dense_fingerprints": {"0": "2" * 16}}
    provenance.require_same({"weight": a, "unit": a}, ("data", "dense_fingerprints"))
    with pytest.raises(ValueError, match="differ in dense_fingerprints .*weight: \\{'0': '1111"):
        provenance.require_same({"weight": a, "unit": b}, ("data", "dense_fingerprints"))


def test_differences_name_every_field():
    stored = {"dataset": "mnist", "config": {"epochs": 10, "hidden": (1000, 500)}}
    assert provenance.differences(stored, {"dataset": "mnist", "config": {"hidden": [1000, 500]}}) == []
    assert provenance.differences(stored, {"dataset": "fashion_mnist", "config": {"epochs": 3}, "extra": 1}) == [
        "dataset: stored 'mnist', asked for 'fashion_mnist'", "config.epochs: stored 10, asked for 3",
        "extra: stored '(absent)', asked for 1"]


def test_state_fingerprint_sees_one_changed_weight():
    state = {"fc1.weight": torch.zeros(3, 2)}
    before = provenance.state_fingerprint(state)
    state["fc1.weight"][1, 1] = 1e-30
    assert provenance.state_fingerprint(state) != before
    assert provenance.versions()["torch"] == torch.__version__


@pytest.mark.parametrize("change, match", [
    (lambda f: f.assign(method=["weight", "neuron"]), r"unknown method \['neuron'\]; accepted: \['weight', 'unit'\]"),
    (lambda f: f.assign(strategy=["oneshot", "retrain"]), r"unknown strategy \['retrain'\]"),
    (lambda f: f.assign(ranking=["layer", "snip"]),
     r"unknown ranking \['snip'\]; accepted: \['layer', 'global', 'lamp', 'random'\]"),
    (lambda f: f.assign(dataset=["mnist", "cifar10"]), r"unknown dataset \['cifar10'\]"),
    (lambda f: f.assign(k=[50.0, 100.0]), r"k 100.0 is outside \[0, 100\)"),
    (lambda f: f.assign(k=[50.0, float("nan")]), r"k nan is outside"),
    (lambda f: f.assign(accuracy=[0.98, 98.0]), r"accuracy 98.0 is outside \[0, 1\]"),
    (lambda f: f.assign(method=["weight", "weight"]), "2 rows repeat a configuration"),
    (lambda f: f.drop(columns="ranking"), r"lacks the column\(s\) \['ranking'\]"),
    (lambda f: f.assign(k=[0.0, 50.0]), r"the unit results lack the dense level k = 0"),
])
def test_results_no_notebook_could_write_are_refused(change, match):
    analysis.check_results(frame())
    with pytest.raises(ValueError, match=match):
        analysis.check_results(change(frame()), "pruning results")


def test_executed_notebooks_lose_timestamps_and_keep_parameters():
    book = nbformat.v4.new_notebook()
    book.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "duration": 3.2,
                                  "input_path": "/tmp/x", "parameters": {"ks": [0, 50]}}
    cell = nbformat.v4.new_code_cell("1")
    cell.metadata.update({"papermill": {"duration": 1.0}, "execution": {"iopub.status.busy": "2026"},
                          "tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell("ks = [0, 50]")
    injected.metadata["tags"] = ["injected-parameters"]
    book.cells += [cell, injected]
    pipeline.strip_volatile(book)
    assert book.metadata["papermill"] == {"parameters": {"ks": [0, 50]}}
    assert cell.metadata == {"tags": ["parameters"]}
    assert injected.id == "injected-parameters", "papermill's random id would change on every run"


def test_executed_notebooks_lose_random_table_ids_and_addresses():
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("table")
    cell.id = "03-07"
    cell.outputs = [nbformat.v4.new_output("execute_result", data={
        "text/html": '<style>#T_bc2f4 th {}</style><table id="T_bc2f4"><th id="T_bc2f4_level0_col0">',
        "text/plain": "<pandas.io.formats.style.Styler at 0x7f6bf2de4c50>"}, execution_count=1)]
    book.cells.append(cell)
    pipeline.strip_volatile(book)
    data = cell.outputs[0]["data"]
    assert data["text/html"] == '<style>#T_03-07-1 th {}</style><table id="T_03-07-1"><th id="T_03-07-1_level0_col0">'
    assert data["text/plain"] == "<pandas.io.formats.style.Styler>"


def test_the_report_states_seeds_data_versions_and_machine():
    record = provenance.run_record("05_comparison", {"tolerance": 0.01}, data={"train_data": "f" * 16},
                                   dense_fingerprints={"0": "a" * 16, "1": "b" * 16})
    text = analysis.provenance_markdown(record)
    assert "seeds 0 (dense weights `aaaa" in text and "1 (dense weights `bbbb" in text
    assert "data train `ffff" in text and f"torch {torch.__version__}" in text and record["machine"]["cpu"] in text


def test_a_record_names_the_threads_its_jobs_computed_with_not_the_kernels():
    """A notebook whose jobs train with ``threads`` threads records that count, in its versions
    and its machine, though it writes the record after its jobs, with the kernel's own count."""
    kernel = torch.get_num_threads()
    trained = provenance.run_record("02_training", {"threads": kernel + 1, "jobs": 2})
    assert trained["versions"]["torch_threads"] == trained["machine"]["torch_threads"] == kernel + 1
    assert "jobs" not in trained["parameters"] and trained["parameters"]["threads"] == kernel + 1
    compared = provenance.run_record("05_comparison", {"tolerance": 0.01})  # trains nothing: the kernel's count
    assert compared["versions"]["torch_threads"] == compared["machine"]["torch_threads"] == kernel


def test_versions_are_the_packages_own_and_need_no_torchvision_import():
    """torchvision's version comes from its generated version.py, so that recording provenance
    does not import it (and torch._dynamo with it); it equals what the import reports."""
    code = ("import json, sys; from helpers import provenance; v = provenance.versions(); "
            "assert 'torchvision' not in sys.modules; print(json.dumps(v))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    import numpy, torchvision  # noqa: E401 (imported here, where the import costs nothing to check)
    assert json.loads(result.stdout) == {"python": platform.python_version(), "torch": torch.__version__,
                                         "torchvision": torchvision.__version__, "numpy": numpy.__version__,
                                         "pandas": pd.__version__, "torch_threads": torch.get_num_threads()}
