"""Same seed, same machine, same versions: the same numbers, byte for byte; an interrupted run
leaves nothing half-written and a rerun gives what an uninterrupted run gives."""

import os
import subprocess
import sys
import textwrap

import nbformat
import pytest

from helpers import analysis, checkpoints, data, io, pipeline, provenance, sensitivity, strategies, sweep, training
from helpers.retraining import DenseModels, Budget
from helpers.training import TrainConfig

from .conftest import DATA_DIR, ROOT

CONFIG = TrainConfig(hidden=(64, 32), epochs=3, batch_size=64, train_size=2_000, validation_size=200)


@pytest.fixture(scope="module")
def splits():
    return data.hold_out(data.load_dataset("mnist", DATA_DIR, train_size=2_000, test_size=500), 200)


def run_small_study(root, splits):
    """Dense training of two seeds, then every strategy at three levels: the report's chain, small."""
    histories = []
    for seed in (0, 1):
        config = TrainConfig(**{**CONFIG.__dict__, "seed": seed})
        model, history, cached = training.train_dense(config, splits, root / "cache", progress=False)
        io.copy_file(cached, checkpoints.dense_checkpoint(root / "models", seed))
        histories.append(history.assign(seed=seed))
    import pandas as pd

    io.write_csv(pd.concat(histories).drop(columns="seconds"), root / "training.csv")
    dense = DenseModels.load(root / "models", [0, 1], splits)
    frames = [sweep.strategy_sweep(dense, splits, method, [0.0, 50.0, 90.0], list(strategies.STRATEGIES),
                                   Budget(1, 8e-3, 64), cache_dir=root / "cache") for method in ("weight", "unit")]
    frames.append(sweep.strategy_sweep(dense, splits, "weight", [0.0, 50.0, 90.0], ["oneshot"], Budget(1, 8e-3, 64),
                                       cache_dir=root / "cache", ranking="global"))
    results = pd.concat(frames, ignore_index=True).assign(dataset="mnist")
    io.write_csv(results, root / "pruning.csv")
    validation = sweep.Validation(dense, splits, root / "cache")
    tuning = pd.concat([validation.oneshot("weight", [50.0]),
                        validation.trials("weight", sweep.grid(["finetune", "gradual"], [50.0], [1e-3, 8e-3]),
                                          Budget(1, 8e-3, 64))], ignore_index=True)
    io.write_csv(tuning, root / "tuning.csv")
    # what the comparison notebook computes from them, and the per-layer sensitivity
    io.write_csv(analysis.findings(results), root / "findings.csv")
    io.write_csv(analysis.targets(results), root / "targets.csv")
    io.write_csv(sensitivity.layer_sensitivity(dense.models[0], splits["test"], [0.0, 50.0, 90.0], ["weight", "unit"]),
                 root / "sensitivity.csv")
    return root


def test_two_independent_runs_give_identical_results_byte_for_byte(tmp_path, splits):
    """Every number the report computes, from training to conclusions, the same twice over with
    nothing shared (the notebooks add no numbers of their own; that their rendered outputs are
    stable is checked by the pipeline's cached rerun of the small run in test_readme)."""
    first = run_small_study(tmp_path / "first", splits)
    second = run_small_study(tmp_path / "second", splits)
    for name in ("training.csv", "pruning.csv", "tuning.csv", "findings.csv", "targets.csv", "sensitivity.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert sorted(p.name for p in (first / "cache").iterdir()) == sorted(p.name for p in (second / "cache").iterdir())


def test_a_cached_rerun_trains_prunes_and_evaluates_nothing(tmp_path, splits, monkeypatch):
    root = run_small_study(tmp_path / "first", splits)
    before = (root / "pruning.csv").read_bytes()
    calls = []
    for module, name in ((sweep, "evaluate_pruned"), (sweep, "retrained"), (strategies, "prune"), (training, "train")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _name=name, _f=original, **k: (calls.append(_name), _f(*a, **k))[1])
    run_small_study(root, splits)
    assert calls == [], "a cache hit computes nothing"
    assert (root / "pruning.csv").read_bytes() == before
    # another test set is another evaluation: the cache misses and evaluates again
    other = {**splits, "test": data.Split(splits["test"].images[:100], splits["test"].labels[:100])}
    sweep.strategy_sweep(DenseModels.load(root / "models", [0], splits), other, "weight", [50.0], ["oneshot"],
                         Budget(1, 8e-3, 64), cache_dir=root / "cache")
    assert calls == ["prune", "evaluate_pruned"]


CHILD = textwrap.dedent("""
    import os, signal, sys
    import torch
    from helpers import data, training
    from helpers.training import TrainConfig

    cache_dir, where = sys.argv[1], sys.argv[2]
    splits = data.load_dataset("mnist", os.environ["DATA_DIR"], train_size=2_000, test_size=500)
    config = TrainConfig(hidden=(64, 32), epochs=3, batch_size=64, train_size=2_000)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # as a power cut would: no clean-up runs
    if where == "training":  # killed after the second of three epochs
        evaluate, calls = training.evaluate, []
        training.evaluate = lambda *a, **k: (calls.append(1), die() if len(calls) == 2 else None, evaluate(*a, **k))[2]
    else:  # killed half-way through writing the checkpoint
        save = torch.save
        def half_save(obj, f, *a, **k):
            save(obj, f, *a, **k)
            os.truncate(f, os.path.getsize(f) // 2)
            die()
        torch.save = half_save
    training.train_dense(config, splits, cache_dir, progress=False)
""")


@pytest.fixture(scope="module")
def uninterrupted(splits, tmp_path_factory):
    """The model and history of a run nobody interrupted, trained once for every case below."""
    model, history, _ = training.train_dense(CONFIG, splits, tmp_path_factory.mktemp("fresh"), progress=False)
    return provenance.state_fingerprint(model.state_dict()), history


@pytest.mark.parametrize("where", ["training", "writing"])
def test_a_run_killed_mid_way_restarts_cleanly_with_the_same_result(tmp_path, splits, uninterrupted, where):
    cache = tmp_path / "cache"
    child = subprocess.run([sys.executable, "-c", CHILD, str(cache), where], cwd=ROOT, capture_output=True,
                           text=True, env={**os.environ, "DATA_DIR": str(DATA_DIR)}, timeout=300)
    assert child.returncode == -9, child.stderr
    assert not list(cache.glob("*.pt")), "no checkpoint, whole or half, under a name a later step reads"

    resumed, history, path = training.train_dense(CONFIG, splits, cache, progress=False)
    fingerprint, history_ref = uninterrupted
    assert provenance.state_fingerprint(resumed.state_dict()) == fingerprint
    assert history.drop(columns="seconds").equals(history_ref.drop(columns="seconds"))
    assert checkpoints.load_checkpoint(path)[1]["fingerprint"] == fingerprint


def test_a_failed_notebook_leaves_the_previous_report_in_place(tmp_path):
    out, failed = tmp_path / "reports", tmp_path / "failed"
    out.mkdir()
    previous = out / "01_data_exploration.ipynb"
    previous.write_text("the previous, complete report")
    empty = tmp_path / "empty"
    empty.mkdir()
    params = {"dataset": "mnist", "data_dir": str(tmp_path / "nodata"), "archive": str(empty),
              "figures_dir": str(tmp_path / "figures"), "summary_path": str(tmp_path / "summary.json")}
    with pytest.raises(Exception, match="lacks train-images-idx3-ubyte.gz"):
        pipeline.execute("01_data_exploration", params, out, failed)
    assert previous.read_text() == "the previous, complete report"
    assert sorted(p.name for p in out.iterdir()) == ["01_data_exploration.ipynb"], "no partial notebook left"
    book = nbformat.read(failed / "01_data_exploration.ipynb", as_version=4)
    assert any(o.get("ename") == "DataUnavailableError" for c in book.cells for o in c.get("outputs", []))
    assert not (tmp_path / "summary.json").exists()
