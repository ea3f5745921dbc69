"""The notebooks run one by one with papermill, as a reader reruns them: they chain by
themselves through their default paths, never touch the committed report, and refuse bad
input before writing anything."""

import ast
import hashlib
import os
import stat

import papermill
import pytest

from helpers import checkpoints, io, parameters
from helpers.pipeline import NOTEBOOKS, SOURCE_DIR

from .conftest import DATA_DIR, ROOT

pytestmark = pytest.mark.xdist_group("papermill")  # the chain runs once, in one worker

SMALL_TUNING = {"validation_size": 100, "tune_ks": [90], "tune_lrs": [1e-3]}

TINY = {
    "02_training": {"seeds": [0], "train_size": 500, "test_size": 300, "epochs": 1},
    # unsorted, with a repeat: normalised to [0, 50, 90], in the sweeps and the sensitivity table alike
    "03_weight_pruning": {"ks": [90, 0, 50, 90], "strategies": ["oneshot", "finetune"], "target_ks": [],
                          "cutoff_ks": [90], "shift_k": 90, **SMALL_TUNING},
    "04_unit_pruning": {"ks": [90, 0, 50, 90], "strategies": ["oneshot", "finetune"], "target_ks": [],
                        "cutoff_ks": [90], "shift_k": 90, **SMALL_TUNING},
    "05_comparison": {"quick_benchmark": True, "check_targets": False},
}
"""Only what makes the run small: every path is the notebooks' default, relative to the run's folder."""


def checksums(*folders):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((ROOT / folder).rglob("*")) if p.is_file()}


def run(name, cwd, **params):
    if "data_dir" in parameters.declared(name):
        params = {"data_dir": str(DATA_DIR), **params}
    return papermill.execute_notebook(SOURCE_DIR / f"{name}.ipynb", cwd / f"{name}.ipynb", cwd=str(cwd),
                                      parameters=params, progress_bar=False)


# session scope: a worker that runs another module's tests between two of these would
# otherwise tear the run down and make it again (module fixtures end with their module's run)
@pytest.fixture(scope="session")
def chain(tmp_path_factory):
    """The five notebooks run in order, each with its defaults but for TINY, in a scratch folder."""
    committed = checksums("reports", "results", "figures")
    cwd = tmp_path_factory.mktemp("chain")
    for name in NOTEBOOKS:
        run(name, cwd, **TINY.get(name, {}))
    return cwd, committed


def test_the_notebooks_chain_through_their_defaults_and_leave_the_committed_report_alone(chain):
    cwd, committed = chain
    written = sorted(str(p.relative_to(cwd / "runs")) for p in (cwd / "runs").rglob("*") if p.is_file())
    assert "models/dense_models.json" in written and "results/pruning.csv" in written
    assert "results/efficiency.csv" in written and "figures/comparison.png" in written
    assert checksums("reports", "results", "figures") == committed, "the committed report is untouched"
    results = io.read_csv(cwd / "runs" / "results" / "pruning.csv")
    assert sorted(set(results.k)) == [0.0, 50.0, 90.0] and set(results.seed) == {0}
    assert set(results.strategy) == {"oneshot", "finetune"}, "nothing retrains that was not asked for"
    sensitivity = io.read_csv(cwd / "runs" / "results" / "unit_sensitivity.csv")
    assert len(sensitivity) == 5 * 3 and sorted(set(sensitivity.k)) == [0.0, 50.0, 90.0]


def test_files_get_the_permissions_of_the_umask(chain, tmp_path):
    cwd, _ = chain
    for path in (cwd / "runs" / "results" / "pruning.csv", cwd / "runs" / "models" / "dense-seed0.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~io.current_umask(), path
    previous = os.umask(0o077)
    try:
        io.write_json({"a": 1}, tmp_path / "private.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    previous = os.umask(0o022)
    try:
        io.write_json({"a": 1}, tmp_path / "shared.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644


def test_a_refused_comparison_writes_nothing(chain, tmp_path):
    """Results of another run (here: a unit table whose record names other dense weights) stop
    notebook 05 in its first cell, before any file is written."""
    cwd, _ = chain
    results = cwd / "runs" / "results"
    frame, record = io.read_results(results / "unit_pruning.csv")
    io.write_csv(frame, tmp_path / "unit_pruning.csv", {**record, "dense_fingerprints": {"0": "f" * 16}})
    out = tmp_path / "out"
    with pytest.raises(papermill.PapermillExecutionError, match="results from different runs"):
        run("05_comparison", cwd, weight_results_path=str(results / "weight_pruning.csv"),
            unit_results_path=str(tmp_path / "unit_pruning.csv"), quick_benchmark=True,
            **{key: str(out / f"{key}.x") for key in ("pruning_results_path", "findings_path", "targets_path",
                                                       "efficiency_path", "machine_path")},
            figures_dir=str(out / "figures"))
    assert not out.exists()


def test_a_pruning_notebook_names_the_fields_that_differ_from_the_dense_models(chain, tmp_path):
    cwd, _ = chain
    with pytest.raises(papermill.PapermillExecutionError,
                       match=r"train_size: checkpoints 500, asked 3000; seeds: checkpoints \[0\], asked \[0, 1\]"):
        run("03_weight_pruning", cwd, train_size=3000, seeds=[0, 1], results_path=str(tmp_path / "w.csv"))
    assert not (tmp_path / "w.csv").exists()


def test_recorded_data_fill_what_is_not_given(tmp_path):
    checkpoints.write_dense_record(tmp_path, "fashion_mnist", 2000, None, {"0": "a" * 16, "2": "b" * 16})
    params = {"checkpoint_dir": str(tmp_path), "dataset": None, "train_size": None, "test_size": None,
              "seeds": None, "ks": [0.0]}
    assert checkpoints.with_recorded_data(params, "04_unit_pruning") == {
        **params, "dataset": "fashion_mnist", "train_size": 2000, "seeds": [0, 2]}
    with pytest.raises(ValueError, match=r"dataset: checkpoints 'fashion_mnist', asked 'mnist'; test_size: "
                                         r"checkpoints None, asked 300"):
        checkpoints.with_recorded_data({**params, "dataset": "mnist", "test_size": 300}, "x")
    with pytest.raises(FileNotFoundError, match="run 02_training with checkpoint_dir"):
        checkpoints.with_recorded_data({**params, "checkpoint_dir": str(tmp_path / "none")}, "x")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_papermill_sees_every_parameter_with_its_type(name):
    seen = papermill.inspect_notebook(SOURCE_DIR / f"{name}.ipynb")
    declared = parameters.declared(name)
    assert set(seen) == set(declared)
    for param, info in seen.items():
        assert info["inferred_type_name"] == declared[param]["annotation"], param
        assert ast.literal_eval(info["default"]) == ast.literal_eval(declared[param]["default"]), param


def test_a_level_that_empties_a_layer_is_refused_before_anything_is_written(chain, tmp_path):
    from helpers import sweep

    cwd, _ = chain
    params = {n: ast.literal_eval(p["default"]) for n, p in parameters.declared("04_unit_pruning").items()}
    params.update(data_dir=str(DATA_DIR), checkpoint_dir=str(cwd / "runs" / "models"), ks=[0, 99.9],
                  cache_dir=str(tmp_path / "cache"), results_path=str(tmp_path / "unit.csv"))
    params = checkpoints.with_recorded_data(parameters.check(params, "04_unit_pruning"), "04_unit_pruning")
    with pytest.raises(ValueError, match="k = 99.9 % would remove every neuron of fc3, fc4"):
        sweep.run_method_study("04_unit_pruning", "unit", params)
    assert not any(tmp_path.iterdir())
