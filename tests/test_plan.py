"""The plan of a run: its jobs counted from the parameters and priced from the last run's job log."""

import json
import math

import pandas as pd

from helpers import plan
from helpers.pipeline import SMOKE, Layout


def _smoke_plan(tmp_path):
    layout = Layout(artefacts=tmp_path / "artefacts")
    given = {"mnist": {n: {**p, **SMOKE.get(n, {})} for n, p in layout.parameters("mnist").items()}}
    return plan.planned_jobs(given, {"mnist": plan.TRAIN_IMAGES})


def test_the_plan_counts_the_jobs_a_smoke_run_trains(tmp_path):
    jobs = _smoke_plan(tmp_path).set_index(["kind", "method", "strategy", "epochs"]).jobs
    assert jobs["dense", "", "", 1] == 2  # two seeds
    assert jobs["retraining", "weight", "finetune", 1] == 3 * 2  # levels 50, 90, 99, two seeds
    assert jobs["retraining", "weight", "finetune", 2] == 1 * 2  # target_ks [99]
    assert jobs["retraining", "weight", "ticket", 1] == 5 * 2  # rounds of 40 % to 90 %: 40, 64, 78.4, 87.04, 90
    assert jobs["retraining", "weight", "reinit", 1] == 1 * 2  # at the round that reaches 90 %
    assert jobs["retraining", "weight", "scratch_b", 2] == 1 * 2  # twice the dense recipe's epoch
    assert jobs["retraining", "weight", "scratch", 1] == 1 * 2  # control_ks [90], the dense recipe (1 epoch)
    assert jobs["trial", "weight", "gradual", 1] == 2 * 2  # tune_ks x tune_lrs
    assert jobs["trial", "unit", plan.LEADER, 3] == 1 * 2


def test_the_plan_is_priced_from_the_jobs_the_last_run_measured(tmp_path):
    log = tmp_path / "jobs.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"dataset": "mnist", "kind": "dense", "epochs": 1, "entry": "a.pt", "cpu_seconds": 3.5, "seconds": 3.6},
        {"dataset": "mnist", "kind": "dense", "epochs": 1, "entry": "b.pt", "cpu_seconds": 5.0, "seconds": 5.2},
        # a.pt trained again (its entry deleted in a later start): its last training counts, once
        {"dataset": "mnist", "kind": "dense", "epochs": 1, "entry": "a.pt", "cpu_seconds": 3.0, "seconds": 3.1},
        {"dataset": "mnist", "kind": "retraining", "method": "weight", "strategy": "finetune", "k": 50.0, "epochs": 1,
         "cpu_seconds": 2.0, "seconds": 2.0}]) + "\n")
    measured = plan.jobs_cost(log)
    dense = measured[measured.kind == "dense"].iloc[0]
    assert (dense.jobs, dense.cpu_seconds) == (2, 8.0)
    measured.to_csv(tmp_path / "cost_jobs.csv", index=False)
    priced = plan.estimate(_smoke_plan(tmp_path), tmp_path / "cost_jobs.csv").set_index(
        ["kind", "method", "strategy", "epochs"])
    assert priced.loc[("dense", "", "", 1), "cpu_seconds"] == 8.0
    assert priced.loc[("dense", "", "", 1), "basis"] == "same jobs"
    assert priced.loc[("retraining", "weight", "finetune", 2), "basis"] == "same strategy"
    assert priced.loc[("retraining", "weight", "finetune", 2), "cpu_seconds"] == 2.0 * 2 * 2
    assert priced.loc[("retraining", "unit", "gradual", 1), "basis"] == "dense"  # 4 s per dense epoch
    assert priced.loc[("retraining", "unit", "gradual", 1), "cpu_seconds"] == 4.0 * 6
    assert "CPU minutes" in plan.summary(priced.reset_index(), 2.0)
    assert "no run measured" in plan.summary(plan.estimate(_smoke_plan(tmp_path), None), 2.0)
    assert isinstance(priced, pd.DataFrame)


def test_every_study_passes_the_notebooks_checks_and_the_report_trains_fewer_jobs_than_the_extended(tmp_path):
    from helpers import parameters
    from helpers.pipeline import STUDIES, studied
    layout = Layout(artefacts=tmp_path / "artefacts")
    jobs = {}
    for study in STUDIES:
        given = studied(layout, ["mnist", "fashion_mnist"], study)
        for by_notebook in given.values():
            for name, params in by_notebook.items():
                parameters.check(params, name)
        jobs[study] = plan.planned_jobs(given, {d: plan.TRAIN_IMAGES for d in given}).jobs.sum()
    assert jobs["report"] < jobs["extended"] / 2
    fashion = studied(layout, ["fashion_mnist"])["fashion_mnist"]
    assert fashion["02_training"]["seeds"] == [0, 1, 2] and fashion["03_weight_pruning"]["rankings"] == []


def test_the_last_run_says_how_busy_it_kept_the_cores_outside_the_benchmark(tmp_path):
    cost = pd.DataFrame({"dataset": "mnist", "notebook": ["02_training", "03_weight_pruning", plan.BENCHMARK_NOTEBOOK],
                         "seconds": [100.0, 300.0, 200.0], "cpu_seconds": [190.0, 570.0, 200.0], "cached": False})
    assert plan.busy_cores(cost) == 1.9
    cost.to_csv(tmp_path / plan.COST_FILE, index=False)
    assert plan.last_run(tmp_path / plan.COST_FILE) == (
        "the last run: 10.0 minutes of notebooks, 16.0 CPU minutes; 1.90 cores busy on average in the notebooks that "
        "trained (outside 05_comparison, whose benchmark runs alone)")
    # a rerun that found everything cached measured no training
    rerun = cost.assign(cached=True, seconds=10.0, cpu_seconds=9.0)
    assert math.isnan(plan.busy_cores(rerun))
    rerun.to_csv(tmp_path / plan.COST_FILE, index=False)
    assert plan.last_run(tmp_path / plan.COST_FILE).endswith("it found everything cached and trained nothing")
    assert "no run measured yet" in plan.last_run(tmp_path / "none.csv")
    assert "training with 1.90 cores busy" in plan.summary(pd.DataFrame(
        {"kind": "dense", "method": "", "strategy": "", "epochs": [10], "jobs": [2], "cpu_seconds": [1140.0]}), 1.9)


def test_a_notebook_is_expected_to_take_its_planned_jobs_only_when_its_inputs_changed(tmp_path):
    estimated = pd.DataFrame([
        {"dataset": "mnist", "kind": "dense", "method": "", "strategy": "", "epochs": 10, "jobs": 5, "cpu_seconds": 1000.0},
        {"dataset": "mnist", "kind": "trial", "method": "weight", "strategy": "finetune", "epochs": 1, "jobs": 4,
         "cpu_seconds": 300.0},
        {"dataset": "mnist", "kind": "retraining", "method": "weight", "strategy": "ticket", "epochs": 10, "jobs": 36,
         "cpu_seconds": 3700.0},
        {"dataset": "mnist", "kind": "retraining", "method": "unit", "strategy": "finetune", "epochs": 1, "jobs": 9,
         "cpu_seconds": math.nan}])
    training = plan.training_seconds(estimated, busy=2.0)
    assert training[("mnist", "02_training")] == 500.0 and training[("mnist", "03_weight_pruning")] == 2000.0
    assert math.isnan(training[("mnist", "04_unit_pruning")]), "no estimate: none made up"
    # the last run: 01 and 03 found everything cached, 02 trained, 05 benchmarked
    previous = {("mnist", n): {"dataset": "mnist", "notebook": n, "seconds": s, "cached": c} for n, s, c in [
        ("01_data_exploration", 16.0, True), ("02_training", 500.0, False), ("03_weight_pruning", 20.0, True),
        ("04_unit_pruning", 900.0, False), ("05_comparison", 560.0, True)]}
    expected = {state: {n: plan.expected_seconds("mnist", n, state, previous, training) for _, n in previous}
                for state in ("up to date", "forced", "changed")}
    assert set(expected["up to date"].values()) == {(0.0, 0.0)}, "not run at all"
    # run again on the same inputs, nothing trains or measures: a cached notebook's own seconds, else their median
    assert expected["forced"] == {"01_data_exploration": (16.0, 0.0), "02_training": (18.0, 0.0),
                                  "03_weight_pruning": (20.0, 0.0), "04_unit_pruning": (18.0, 0.0),
                                  "05_comparison": (18.0, 0.0)}
    # new inputs: what it does when cached, and its planned jobs; the last run's seconds where nothing is planned
    assert expected["changed"] == {"01_data_exploration": (16.0, 0.0), "02_training": (18.0, 500.0),
                                   "03_weight_pruning": (20.0, 2000.0), "04_unit_pruning": (900.0, 0.0),
                                   "05_comparison": (560.0, 0.0)}
    assert math.isnan(plan.expected_seconds("mnist", "02_training", "forced", {}, training)[0]), "no last run"


def test_the_planned_training_is_taken_at_the_pace_this_run_has_trained():
    assert plan.training_pace(taken=30.0, own=34.0, training=0.0) == 1.0, "no training expected yet: as planned"
    assert plan.training_pace(taken=30.0, own=34.0, training=524.0) == 0.0, "changed inputs, every job cached"
    assert plan.training_pace(taken=634.0, own=34.0, training=500.0) == 1.2, "a slower machine"
