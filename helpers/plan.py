"""The cost of a run: its training counted before anything trains (jobs per dataset, kind, strategy and budget, each with estimated CPU seconds), and what it measured after.

:func:`planned_jobs` counts, from the notebooks' parameters alone, the jobs
:func:`helpers.training.train_dense_models` and :func:`helpers.study.run_method_study` will
run; the strategy given the longest budget is chosen on validation during the run, so its jobs
are counted under ``"leader"``. :func:`estimate` prices every row from the CPU seconds the
last run measured per job of the same kind, method, strategy and budget
(``results/cost_jobs.csv``), else per epoch of the same strategy, else per epoch of a dense
model; ``basis`` says which.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import io
from .retraining import Budget
from .strategies import FINETUNE, named, strategy as registered

LEADER = "leader"
"""The strategy column of the longest budget's jobs: whichever validation ranks first."""


def _with_defaults(notebook: str, given: Mapping[str, Any]) -> dict[str, Any]:
    from .parameters import check, declared  # the notebooks' parameters, checked as a run checks them

    values = {name: ast.literal_eval(p["default"]) for name, p in declared(notebook).items()}
    return check({**values, **given}, notebook)


def _rows(dataset: str, notebook: str, p: Mapping[str, Any], train_images: int, seeds: int,
          recipe: Budget) -> list[dict]:
    method = notebook.split("_")[1]
    rows = []

    def add(kind: str, strategy: str, epochs: int, jobs: int, images: int = train_images) -> None:
        if jobs:
            rows.append({"dataset": dataset, "kind": kind, "method": method, "strategy": strategy, "epochs": epochs,
                         "jobs": jobs, "images": images})
    strategies = p["strategies"]

    def first(n: int | None) -> int:
        return seeds if n is None else min(n, seeds)
    for control in named(strategies, control=True) if p["control_ks"] else []:
        schedule = registered(control).plan(p, recipe)
        add("retraining", control, schedule.budget.epochs, len(schedule.levels) * first(schedule.seeds))
        if registered(control).tuned:
            add("trial", control, schedule.budget.epochs, len(p["control_lrs"]))
    tuned = named(strategies, tuned=True, control=False)
    for s in tuned:
        add("trial", s, p["recovery_epochs"], len(p["tune_ks"]) * len(p["tune_lrs"]))
    levels = [k for k in p["ks"] if k > 0]
    for s in named(strategies, control=False):
        if registered(s).trains:
            add("retraining", s, p["recovery_epochs"], len(levels) * first(p["sweep_seeds"]))
            if p["target_ks"]:
                add("retraining", s, p["target_epochs"], len(p["target_ks"]) * seeds)
    if p["target_ks"] and tuned and p["longest_epochs"] > p["target_epochs"]:
        add("trial", LEADER, p["longest_epochs"], len(p["target_ks"]) * len(p["tune_lrs"]))
        add("retraining", LEADER, p["longest_epochs"], len(p["target_ks"]) * seeds)
    if FINETUNE.name in strategies:
        for ranking in p.get("rankings", []):
            add("retraining", f"{FINETUNE.name}, {ranking}", p["recovery_epochs"],
                len(p["ranking_ks"]) * first(p["sweep_seeds"]))
    return rows


def planned_jobs(parameters: Mapping[str, Mapping[str, Mapping[str, Any]]],
                 train_images: Mapping[str, int]) -> pd.DataFrame:
    """The jobs of a run, from ``parameters`` (dataset -> notebook -> the parameters it is given,
    defaults filled in and checked) and each dataset's number of training images: one row per
    dataset, kind (``dense``, ``trial``, ``retraining``), method, strategy and
    ``epochs``, with the number of ``jobs`` and the ``images`` each trains on."""
    rows = []
    for dataset, by_notebook in parameters.items():
        training = _with_defaults("02_training", by_notebook["02_training"])
        images = (training["train_size"] or train_images[dataset]) - training["validation_size"]
        rows.append({"dataset": dataset, "kind": "dense", "method": "", "strategy": "", "epochs": training["epochs"],
                     "jobs": len(training["seeds"]), "images": images})
        for notebook in ("03_weight_pruning", "04_unit_pruning"):
            given = {k: v for k, v in by_notebook[notebook].items()}
            p = _with_defaults(notebook, {**given, "train_size": training["train_size"], "dataset": dataset,
                                          "seeds": training["seeds"]})
            recipe = Budget(training["epochs"], training["lr"], training["batch_size"])
            rows += _rows(dataset, notebook, p, images, len(training["seeds"]), recipe)
    return pd.DataFrame(rows)


def estimate(planned: pd.DataFrame, measured: Path | None) -> pd.DataFrame:
    """``planned`` with ``cpu_seconds`` (estimated for all its jobs) and ``basis``: the last
    run's CPU seconds per job of the same dataset, kind, method, strategy and epochs
    (``measured``, :data:`JOBS_COST_FILE`), else per epoch and image of the same
    kind, method and strategy, else of a dense model's epoch ("dense"); ``none`` when nothing
    was measured."""
    keys = ["dataset", "kind", "method", "strategy", "epochs"]
    past = io.read_csv(measured).fillna("") if measured is not None and Path(measured).is_file() else None
    out = planned.copy()
    out["cpu_seconds"], out["basis"] = float("nan"), "none"
    if past is None or past.empty:
        return out
    past = past.astype({"epochs": int})
    per_job = {tuple(r[k] for k in keys): r["cpu_seconds"] / r["jobs"] for _, r in past.iterrows()}
    per_epoch = past.assign(per=past.cpu_seconds / (past.jobs * past.epochs)).groupby(
        ["kind", "method", "strategy"]).per.median().to_dict()
    dense = past[past.kind == "dense"]
    dense_epoch = float((dense.cpu_seconds / (dense.jobs * dense.epochs)).median()) if len(dense) else float("nan")
    for i, row in out.iterrows():
        key = tuple(row[k] for k in keys)
        if key in per_job:
            out.loc[i, ["cpu_seconds", "basis"]] = per_job[key] * row["jobs"], "same jobs"
        elif (row["kind"], row["method"], row["strategy"]) in per_epoch:
            per = per_epoch[row["kind"], row["method"], row["strategy"]]
            out.loc[i, ["cpu_seconds", "basis"]] = per * row["epochs"] * row["jobs"], "same strategy"
        elif dense_epoch == dense_epoch:
            out.loc[i, ["cpu_seconds", "basis"]] = dense_epoch * row["epochs"] * row["jobs"], "dense"
    return out.round({"cpu_seconds": 0})


TRAIN_IMAGES = 60_000
"""Training images of each dataset's IDX files (MNIST and Fashion-MNIST alike)."""


def summary(estimated: pd.DataFrame, busy: float) -> str:
    """The plan for a reader: jobs and estimated CPU minutes per kind, strategy and budget, the
    total, and the wall time it makes with ``busy`` cores busy on average (:func:`busy_cores`)."""
    table = estimated.groupby(["kind", "method", "strategy", "epochs"], sort=False).agg(
        jobs=("jobs", "sum"), cpu_minutes=("cpu_seconds", lambda s: s.sum(min_count=1) / 60)).reset_index()
    total = estimated.cpu_seconds.sum(min_count=1)
    text = table.to_string(index=False, float_format=lambda x: f"{x:.1f}")
    if total == total:
        text += (f"\n\n{int(estimated.jobs.sum()):,} jobs, about {total / 60:.0f} CPU minutes: about "
                 f"{total / 60 / busy:.0f} minutes of training with {busy:.2f} cores busy")
    else:
        text += f"\n\n{int(estimated.jobs.sum()):,} jobs; no run measured yet, so no estimate of their cost"
    return text


COST_FILE = "cost.csv"
"""Wall time of every notebook of the last run, per dataset, its CPU time (its kernel's and its
workers'), and whether it found everything it needed cached (it wrote nothing new to the
artefacts cache): ``dataset``, ``notebook``, ``seconds``, ``cpu_seconds``, ``cached``. A
notebook that was up to date, and so not run, keeps the row of the run that executed it."""

BENCHMARK_NOTEBOOK = "05_comparison"
"""The notebook whose speed benchmark runs alone, on one thread: left out of how busy the cores were."""


def busy_cores(cost: pd.DataFrame) -> float:
    """How many cores the run of ``cost`` (:data:`COST_FILE`) kept busy on average while it
    trained: CPU seconds over wall seconds of its notebooks that wrote to the cache, outside
    :data:`BENCHMARK_NOTEBOOK`; NaN when it trained nothing (a rerun that found everything cached
    says nothing of how a training run keeps the cores busy)."""
    training = cost[(cost["notebook"] != BENCHMARK_NOTEBOOK) & ~cost["cached"].astype(bool)]
    return float(training["cpu_seconds"].sum() / training["seconds"].sum()) if len(training) else float("nan")


def last_run(path: Path) -> str:
    """The run that wrote ``path`` (:data:`COST_FILE`) for a reader: its minutes of notebooks,
    its CPU minutes and how busy it kept the cores (:func:`busy_cores`)."""
    if not path.is_file():
        return f"no run measured yet ({path} is written by make report)"
    cost = io.read_csv(path)
    if "cpu_seconds" not in cost:
        return f"the last run: {cost['seconds'].sum() / 60:.1f} minutes of notebooks (its CPU time was not recorded)"
    busy = busy_cores(cost)
    return (f"the last run: {cost['seconds'].sum() / 60:.1f} minutes of notebooks, {cost['cpu_seconds'].sum() / 60:.1f} "
            f"CPU minutes; " + (f"{busy:.2f} cores busy on average in the notebooks that trained (outside "
                                f"{BENCHMARK_NOTEBOOK}, whose benchmark runs alone)" if busy == busy
                                else "it found everything cached and trained nothing"))


JOBS_COST_FILE = "cost_jobs.csv"
"""The jobs that trained the cache's entries, over every run since the cache was empty (a
restarted run counts the jobs of its earlier starts), summed per dataset, kind (dense model, tuning model,
learning-rate trial, retraining), method, strategy and budget: ``jobs``, ``cpu_seconds`` and
``seconds`` (wall, in their workers)."""


def jobs_cost(log: Path) -> pd.DataFrame:
    """The job log at ``log`` (:data:`helpers.jobs.LOG_ENVIRONMENT`) summed as :data:`JOBS_COST_FILE`
    says; a cache entry trained twice (its entry deleted in between) counts its last training."""
    rows = pd.read_json(log, lines=True)
    if "entry" in rows:
        rows = rows.drop_duplicates("entry", keep="last")
    keys = [c for c in ("dataset", "kind", "method", "strategy", "epochs") if c in rows]
    rows[keys] = rows[keys].fillna("")
    summed = rows.groupby(keys, sort=False).agg(jobs=("cpu_seconds", "size"), cpu_seconds=("cpu_seconds", "sum"),
                                                 seconds=("seconds", "sum")).reset_index()
    return summed.round({"cpu_seconds": 1, "seconds": 1})


def previous_cost(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, notebook) -> its row of :data:`COST_FILE` in the run that wrote ``path`` (empty
    if none): the row a notebook not run again keeps, and the seconds the progress bar's
    estimate of the time left is made of."""
    if not path.is_file():
        return {}
    return {(r["dataset"], r["notebook"]): r for r in io.read_csv(path).to_dict("records")}


TRAINS = {"dense": "02_training", "weight": "03_weight_pruning", "unit": "04_unit_pruning"}
"""The notebook that runs each row of :func:`planned_jobs`: by its kind (dense models), else by its method."""


def training_seconds(estimated: pd.DataFrame, busy: float) -> dict[tuple[str, str], float]:
    """(dataset, notebook) -> the wall seconds its planned jobs take with ``busy`` cores busy:
    the estimated CPU seconds of :func:`estimate` over ``busy``; NaN for a notebook whose jobs
    have no estimate."""
    notebook = estimated["kind"].map(TRAINS).fillna(estimated["method"].map(TRAINS))
    summed = estimated.assign(notebook=notebook).groupby(["dataset", "notebook"]).cpu_seconds.sum(min_count=1)
    return {key: float(seconds) / busy for key, seconds in summed.items()}


def cached_seconds(previous: Mapping[tuple[str, str], Mapping[str, Any]], dataset: str, notebook: str) -> float:
    """What ``notebook`` of ``dataset`` takes when it trains and measures nothing: its seconds in
    the last run (``previous``, :func:`previous_cost`) if it found everything cached there and is
    not the benchmark's notebook, else the median of the last run's notebooks that did (NaN: none did)."""
    def idle(row: Mapping[str, Any]) -> bool:
        return bool(row.get("cached", False)) and row["notebook"] != BENCHMARK_NOTEBOOK
    own = previous.get((dataset, notebook))
    if own is not None and idle(own):
        return float(own["seconds"])
    others = [float(row["seconds"]) for row in previous.values() if idle(row)]
    return float(pd.Series(others).median()) if others else math.nan


def expected_seconds(dataset: str, notebook: str, state: str, previous: Mapping[tuple[str, str], Mapping[str, Any]],
                     training: Mapping[tuple[str, str], float]) -> tuple[float, float]:
    """Seconds a run will spend on ``notebook`` of ``dataset``, before it starts, as ``(own,
    training)``: its own work, and its planned jobs'. By its ``state``: ``"up to date"`` (its
    inputs are those of its last run and it will not run: none); ``"forced"`` (the same inputs,
    run again: it finds its jobs and measurements cached, :func:`cached_seconds`, and trains
    nothing); ``"changed"`` (new inputs, or never run: :func:`cached_seconds` and its planned
    jobs' ``training`` seconds, :func:`training_seconds`; the last run's seconds, as its own,
    for a notebook without planned jobs or when they have no estimate)."""
    if state == "up to date":
        return 0.0, 0.0
    if state == "forced":
        return cached_seconds(previous, dataset, notebook), 0.0
    if state != "changed":
        raise ValueError(f"state must be 'up to date', 'forced' or 'changed', got {state!r}")
    trains = training.get((dataset, notebook), math.nan)
    if trains == trains:
        return cached_seconds(previous, dataset, notebook), trains
    return float(previous.get((dataset, notebook), {}).get("seconds", math.nan)), 0.0


def training_pace(taken: float, own: float, training: float) -> float:
    """How much of its planned training a run has done: the ``taken`` seconds of its notebooks
    so far beyond their ``own`` expected work, over their expected ``training`` seconds (1 while
    none was expected). A run whose changed inputs find its jobs cached goes near 0; a machine
    slower than the last run's above 1."""
    return max(taken - own, 0.0) / training if training > 0 else 1.0
