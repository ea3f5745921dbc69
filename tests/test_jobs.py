"""Jobs on workers: dependencies, failures, dead workers, and results that do not depend on the workers."""

import ast
import dataclasses
import os
import time
from pathlib import Path

import pytest

from helpers import checkpoints, io, jobs, parameters, provenance
from helpers.study import run_method_study
from helpers.training import TrainConfig, train_dense

from .conftest import DATA_DIR


# --- toy jobs: module-level, so that the workers can import them ----------------------------------

def _write(path: str, text: str = "done") -> None:
    io.atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _write_after(path: str, before: str) -> None:
    assert Path(before).is_file(), "ran before its input existed"
    _write(path, Path(before).read_text() + "+")


def _slow_write(path: str) -> None:
    time.sleep(0.5)
    _write(path, "slow")


def _fail(path: str) -> None:
    raise ValueError("bad level 101")


def _die_once(path: str, marker: str) -> None:
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)  # as a worker killed by the OOM killer would
    _write(path)


def test_a_job_waits_for_the_entry_it_reads(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    listed = [jobs.Job(c, "c", _write_after, (c, b), after=(b,)), jobs.Job(b, "b", _write_after, (b, a), after=(a,)),
              jobs.Job(a, "a", _slow_write, (a,))]
    with jobs.Workers(2) as pool:
        pool.run(listed)
    assert Path(c).read_text() == "slow++"


def test_a_failed_job_names_itself_and_leaves_no_entry(tmp_path):
    bad = str(tmp_path / "bad")
    with jobs.Workers(1) as pool, pytest.raises(jobs.JobFailed, match=r"weight k=101 failed .*ValueError: bad level 101"):
        pool.run([jobs.Job(bad, "weight k=101", _fail, (bad,))])
    assert not Path(bad).exists()


def test_a_job_reading_what_no_job_makes_is_refused_before_any_runs(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with jobs.Workers(1) as pool, pytest.raises(jobs.JobFailed, match="no job of this run makes"):
        pool.run([jobs.Job(a, "a", _write, (a,)), jobs.Job(b, "b", _write_after, (b, "x"), after=("x",))])
    assert not Path(a).exists()


def test_the_job_of_a_worker_that_died_runs_again(tmp_path):
    done, marker, other = str(tmp_path / "done"), str(tmp_path / "marker"), str(tmp_path / "other")
    with jobs.Workers(2) as pool:
        pool.run([jobs.Job(done, "dies once", _die_once, (done, marker)), jobs.Job(other, "other", _write, (other,))])
    assert Path(done).read_text() == "done" and Path(other).is_file()


def test_jobs_and_threads_are_checked_and_the_cores_are_shared_by_threads():
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        jobs.Workers(0)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        jobs.Workers(1, threads=0)
    assert jobs.Workers(threads=1).workers == jobs.cores()
    assert jobs.Workers(threads=jobs.cores() + 1).workers == 1


def test_the_thread_count_is_part_of_every_record():
    with jobs.torch_threads(1):
        one = provenance.versions()
    with jobs.torch_threads(2):
        two = provenance.versions()
    assert one["torch_threads"] == 1 and two["torch_threads"] == 2
    assert provenance.digest(one) != provenance.digest(two)


# --- the same results whatever runs them -------------------------------------------------------

@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """Two dense models on 1,000 MNIST images, as 02_training leaves them, and the parameters of
    a small weight-pruning study of them: trials, fine-tuning, lottery ticket rounds that wait for
    the round before, and the ticket's re-initialised control that waits for the ticket (the small run, make small, runs every strategy on the workers)."""
    root = tmp_path_factory.mktemp("study")
    from helpers.data import hold_out, load_dataset

    splits = hold_out(load_dataset("mnist", DATA_DIR, None, train_size=1000, test_size=500), 200)
    fingerprints = {}
    for seed in (0, 1):
        config = TrainConfig(dataset="mnist", epochs=1, seed=seed, train_size=1000, validation_size=200)
        model, _, cached = train_dense(config, splits, root / "dense-cache", progress=False)
        io.copy_file(cached, checkpoints.dense_checkpoint(root / "models", seed))
        fingerprints[str(seed)] = provenance.state_fingerprint(model.state_dict())
    checkpoints.write_dense_record(root / "models", "mnist", 1000, 500, fingerprints,
                                   train_images=len(splits["train"]), validation_size=200)
    params = {"data_dir": str(DATA_DIR), "checkpoint_dir": str(root / "models"), "ks": [0, 90], "target_ks": [],
              "tune_ks": [90], "tune_lrs": [0.008], "validation_size": 200, "recovery_batch_size": 32,
              "strategies": ["oneshot", "finetune", "ticket", "reinit"], "control_ks": [90],
              "rankings": []}  # the other rankings are jobs of the same kind as fine-tuning: half the time, nothing more tested
    return root, params


def _results(root: Path, params: dict, name: str, **where) -> dict[str, bytes]:
    out = root / name
    defaults = {n: ast.literal_eval(p["default"]) for n, p in parameters.declared("03_weight_pruning").items()}
    values = {**defaults, **params, **where, "cache_dir": str(out / "cache"), "results_path": str(out / "weight.csv"),
              "tuning_path": str(out / "tuning.csv"), "sensitivity_path": str(out / "s.csv"),
              "figures_dir": str(out / "figures")}
    checked = checkpoints.with_recorded_data(parameters.check(values, "03_weight_pruning"), "03_weight_pruning")
    run_method_study("03_weight_pruning", "weight", checked)
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def test_one_worker_two_workers_and_a_dask_cluster_give_the_same_bytes(small_study):
    root, params = small_study
    # one thread per job: a fixed count, whatever the workers (the thread count itself changes the bits)
    one = _results(root, params, "one", jobs=1, threads=1)
    assert set(one) == {"weight.csv", "tuning.csv"}
    assert _results(root, params, "two", jobs=2, threads=1) == one
    distributed = pytest.importorskip("distributed")
    import dask

    # the cluster's worker processes forked from this process's server (helpers.jobs.PRELOAD), as the
    # local pool's are: Dask's default, a fresh interpreter each, would import torch again (8 s of 13)
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                     processes=True) as cluster:
        assert _results(root, params, "dask", scheduler=cluster.scheduler_address, threads=1) == one
    # the provenance beside them says nothing of where the jobs ran
    for run in ("one", "two", "dask"):
        assert not {"jobs", "scheduler"} & set(io.read_json(root / run / "weight.provenance.json")["parameters"])


def test_the_scaling_benchmark_loads_the_data_the_dense_models_were_trained_on(small_study):
    from helpers import scaling, study

    root, _ = small_study
    inputs = scaling.inputs_of(root / "models", DATA_DIR)
    data, dense = study.loaded(inputs)  # refused if the held-out images differed
    assert len(data["validation"]) == 200 and list(dense.models) == [0]
    # the warm-up's cache folder and the timed run's are two: a worker loads its data once for both
    again = study.loaded(dataclasses.replace(inputs, cache_dir=str(root / "another")))
    assert again[0] is data and again[1] is dense


def test_the_ceiling_of_what_workers_buy_is_one_ratio_per_round():
    from helpers import scaling

    ratios = scaling.ceiling(2, rounds=2, count=3)
    assert len(ratios) == 2 and all(0 < r < 4 for r in ratios), ratios
