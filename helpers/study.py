"""One pruning notebook's study: the inputs its workers load, its training as jobs, and the results it writes.

:func:`run_method_study` is what notebooks 03 and 04 call. It runs every training of the study
as a job (:mod:`helpers.jobs`): the controls and the tuning model first (no choice waits for
them), then the learning-rate trials, the sweep and the longer budgets, each list of jobs once
the choices it needs were made on validation. A worker loads the data and the dense models once
(:func:`loaded`), makes and evaluates one network per job and writes both to the cache; the
sweeps of :mod:`helpers.sweep` then read every row from there, in their order.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from torch import nn

from . import io, provenance
from .checkpoints import data_expectation
from .comparison import with_training_compute
from .data import Split, held_out
from .jobs import Job, Workers, torch_threads
from .pruning import check_levels_keep_every_layer, n_to_prune, prunable_layers, prune
from .pruning import method as method_of, units
from .recovery import MIN_PRUNING_STEPS, gradual_pruning_steps
from .retraining import DenseModels, Budget, Retraining, retrained
from .sensitivity import layer_sensitivity
from .strategies import FINETUNE, GRADUAL, LAYER, ONESHOT, named, strategy as registered, sweep_rows
from .sweep import (Validation, cached_evaluation, evaluation_path, grid, retrained_evaluation,
                    retrained_record, retrainings, strategy_sweep)
from .tuning import choose, leaders, lr_for as tuned_lr


@dataclass(frozen=True)
class Inputs:
    """What a worker loads to run a pruning study's jobs, once per process (:func:`loaded`):
    the data as the notebook loaded it, the dense model of every seed, the cache, and the size
    of the validation split (:class:`Validation`). Small and picklable: it is sent with every job."""

    dataset: str
    data_dir: str
    archive: str | None
    train_size: int | None
    test_size: int | None
    checkpoint_dir: str
    seeds: tuple[int, ...]
    cache_dir: str
    validation_size: int

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Inputs:
        """The inputs a pruning notebook's checked ``params`` name."""
        return cls(params["dataset"], str(params["data_dir"]), params["archive"], params["train_size"],
                   params["test_size"], str(params["checkpoint_dir"]), tuple(params["seeds"]), str(params["cache_dir"]),
                   params["validation_size"])


def loaded(inputs: Inputs) -> tuple[dict[str, Split], DenseModels]:
    """The data of ``inputs`` (``"train"``, the ``"validation"`` images held out from it, and
    ``"test"``) and the dense models, loaded once per process whatever the cache folder."""
    return _loaded(replace(inputs, cache_dir=""))


@functools.lru_cache(maxsize=2)
def _loaded(inputs: Inputs) -> tuple[dict[str, Split], DenseModels]:
    data = held_out(inputs.dataset, inputs.data_dir, inputs.archive, inputs.train_size, inputs.test_size,
                    inputs.validation_size)
    return data, DenseModels.load(inputs.checkpoint_dir, inputs.seeds, data)


@functools.lru_cache(maxsize=2)
def _validation(inputs: Inputs) -> Validation:
    data, dense = loaded(inputs)
    return Validation(dense, data, inputs.cache_dir)


def _evaluate_retrained(inputs: Inputs, job: Retraining) -> None:  # a job, in a worker
    data, dense = loaded(inputs)
    retrained_evaluation(job, dense, data, inputs.cache_dir)


def _cost(job: Retraining, images: int) -> float:
    return float(job.budget.epochs * images * (1 if registered(job.strategy).fixed_mask else 2))


def retraining_jobs(retrainings: Sequence[Retraining], dense: DenseModels, data: Mapping[str, Split],
                    inputs: Inputs) -> list[Job]:
    """The jobs that make and evaluate every network of ``retrainings`` (:func:`retrained_evaluation`),
    each a round of an iterative strategy waiting for the round before."""
    done = {job: str(evaluation_path(inputs.cache_dir, retrained_record(job, dense, data))) for job in retrainings}
    return [Job(path, f"{job.strategy} {job.method} k={job.k:g} seed {job.seed} ({job.budget.epochs} ep.)",
                _evaluate_retrained, (inputs, job), after=(done[job.previous()],) if job.previous() in done else (),
                cost=_cost(job, len(data["train"])), about=_about(inputs, job, "retraining"))
            for job, path in done.items()]


def _about(inputs: Inputs, job: Retraining, kind: str) -> tuple[tuple[str, Any], ...]:
    """What the job log records of a job: dataset, kind, method, strategy, level and epochs; the
    strategy of a ranking other than per layer is named with it (``"finetune, global"``), as
    :func:`helpers.plan.planned_jobs` counts it."""
    strategy = job.strategy if job.ranking == LAYER.name else f"{job.strategy}, {job.ranking}"
    return (("dataset", inputs.dataset), ("kind", kind), ("method", job.method), ("strategy", strategy),
            ("k", job.k), ("epochs", job.budget.epochs))




def trial_jobs(trials: Sequence[Retraining], validation: Validation, inputs: Inputs) -> list[Job]:
    """The jobs that retrain the tuning model as every job of ``trials`` says and score it on
    the validation split (:meth:`helpers.sweep.Validation.trial`)."""
    return [Job(str(validation.trial_path(job)), f"trial {job.strategy} {job.method} k={job.k:g} lr={job.budget.lr:g}",
                _evaluate_trial, (inputs, job), cost=_cost(job, len(validation.data["train"])),
                about=_about(inputs, job, "trial")) for job in trials]


def _evaluate_trial(inputs: Inputs, job: Retraining) -> None:  # a job, in a worker
    _validation(inputs).trial(job)


@dataclass(frozen=True)
class MethodStudy:
    """What a pruning notebook computed for one method: the data, the dense models, the
    retraining budgets and learning rates, every result row and the provenance record
    written beside them."""

    method: str
    data: Mapping[str, Split]
    dense: DenseModels
    budget: Budget
    long_budget: Budget
    strategies: Sequence[str]
    tuning: pd.DataFrame
    lrs: Mapping[str, Mapping[float, float]]
    longest_lrs: Mapping[str, Mapping[float, float]]
    results: pd.DataFrame
    record: dict[str, Any]
    cache_dir: str
    prune_last: bool
    csr_from_k: float | None

    def stages(self, seed: int, k: float) -> dict[str, nn.Module]:
        """The dense model of ``seed``, its one-shot pruning at ``k``, and, when the study
        fine-tunes, that pruned model fine-tuned with :attr:`budget` at its chosen learning
        rate (from the cache of the sweep when it ran there)."""
        dense = self.dense.models[seed]
        stages = {"dense": dense, "one-shot": prune(dense, k, self.method, prune_last=self.prune_last)}
        if FINETUNE.name in self.strategies:
            budget = replace(self.budget, lr=tuned_lr(self.lrs, FINETUNE.name, k))
            job = Retraining(FINETUNE.name, self.method, k, seed, budget, self.prune_last, csr_from_k=self.csr_from_k)
            stages["fine-tuned"] = retrained(job, self.dense, self.data["train"], self.cache_dir)
        return stages

    def layer_sensitivity(self, seed: int, ks: Sequence[float]) -> pd.DataFrame:
        """:func:`helpers.sensitivity.layer_sensitivity` of the dense model of ``seed`` for this
        method at ``ks`` on the test data (cached like every evaluation)."""
        record = {"kind": "sensitivity", "dense_fingerprint": self.dense.fingerprints[seed], "method": self.method,
                  "ks": list(ks), "test_data": self.data["test"].fingerprint, "versions": provenance.versions()}

        def compute() -> dict[str, Any]:
            frame = layer_sensitivity(self.dense.models[seed], self.data["test"], ks, self.method)
            return {"columns": list(frame.columns), "rows": frame.to_dict("records")}
        table = cached_evaluation(self.cache_dir, record, compute)
        return pd.DataFrame(table["rows"], columns=table["columns"])

    def level_sweep(self) -> pd.DataFrame:
        """The per-layer rows of every strategy at its shortest budget (:func:`sweep_rows`)."""
        return sweep_rows(self.results[self.results.ranking == LAYER.name])


class DegenerateScheduleWarning(UserWarning):
    """A schedule that makes a strategy another one, or runs less of it than was asked."""


def degenerate_schedules(params: Mapping[str, Any], train_images: int, model: nn.Module, method: str,
                         recipe: Budget) -> list[str]:
    """What in a pruning notebook's checked ``params`` (``train_images`` training images, the
    dense ``model`` trained by ``recipe``, pruned by ``method``) would quietly turn a strategy
    into another one or run fewer rounds than asked, each named with its numbers: gradual
    pruning whose ramp holds a single pruning step (it is then fine-tuning), rounds of an
    iterative strategy (its plan's path) that remove nothing more than the round before, and
    longer budgets that are not longer."""
    found = []
    strategies = params["strategies"]
    if GRADUAL.name in strategies:
        for images, epochs, where in ((train_images, params["recovery_epochs"], "the sweep and its trials"),):
            steps, pruning_steps = gradual_pruning_steps(images, epochs, params["recovery_batch_size"])
            if pruning_steps < MIN_PRUNING_STEPS:
                found.append(f"gradual pruning in {where}: {epochs} epoch(s) on {images:,} images in batches of "
                             f"{params['recovery_batch_size']} is {steps} optimiser steps, too few for "
                             f"{MIN_PRUNING_STEPS} pruning steps in the first half of the run (it takes "
                             f"{pruning_steps}): not the gradual pruning of Zhu & Gupta; give more images or epochs")
    for name in named(strategies, rounds=True) if params["control_ks"] else []:
        path = list(registered(name).plan(params, recipe).path)  # the levels its rounds run at
        layers = prunable_layers(model, params["prune_last"])
        removed = [tuple(n_to_prune(k, units(layer, method)) for _, layer in layers) for k in path]
        empty = [k for k, now, before in zip(path, removed, [(0,) * len(layers), *removed]) if now == before]
        if empty:
            found.append(f"the path of {registered(name).label} {path} ({params['imp_rate'] * 100:g} % of the "
                         f"survivors per round to {max(params['control_ks']):g} %) has {len(empty)} round(s) that remove no "
                         f"{method_of(method).unit} more than the round before (at {empty}): it runs "
                         f"{len(path) - len(empty)} rounds of pruning, not {len(path)}")
    if params["target_ks"] and params["target_epochs"] <= params["recovery_epochs"]:
        found.append(f"target_epochs = {params['target_epochs']} is no longer than recovery_epochs = "
                     f"{params['recovery_epochs']}: the longer budget at target_ks repeats the sweep's")
    if params["target_ks"] and params["longest_epochs"] < params["target_epochs"]:  # equal: no longest budget, as asked
        found.append(f"longest_epochs = {params['longest_epochs']} is shorter than target_epochs = "
                     f"{params['target_epochs']}: no strategy gets the longest budget")
    return found


GRID_STEP = 2.5
"""Factor between a learning-rate grid's edge and the rate tried beyond it."""

GRID_BOUNDS = (1e-5, 0.1)
"""The rates beyond which a grid is not extended: a choice still at an edge there is stated as a bound."""


def trials_inside_the_grid(validation: Validation, method: str, strategies: Sequence[str], ks: Sequence[float],
                           lrs: Sequence[float], budget: Budget, **trials: Any) -> pd.DataFrame:
    """:meth:`helpers.sweep.Validation.trials` at the rates ``lrs``, extended where validation
    chooses a grid's edge: the next rate beyond it (:data:`GRID_STEP` times larger, or smaller)
    is tried for that strategy and level, again until the choice lies inside the rates tried
    or the next rate would leave :data:`GRID_BOUNDS` (the table then shows the edge chosen)."""
    frames = [validation.trials(method, grid(strategies, ks, lrs), budget, **trials)]
    while True:
        tried = pd.concat(frames, ignore_index=True)
        if tried.empty:
            return tried
        beyond = []
        for strategy, by_level in choose(tried).items():
            for k, lr in by_level.items():
                rates = tried[(tried.strategy == strategy) & (tried.k == k)].lr
                step = GRID_STEP if lr == rates.max() else 1 / GRID_STEP if lr == rates.min() else None
                if step and GRID_BOUNDS[0] <= lr * step <= GRID_BOUNDS[1]:
                    beyond.append((strategy, k, float(f"{lr * step:.3g}")))
        if not beyond:
            return tried
        frames.append(validation.trials(method, beyond, budget, **trials))  # side by side on the workers


def run_method_study(notebook: str, method: str, params: Mapping[str, Any]) -> MethodStudy:
    """The shared work of the weight- and unit-pruning notebooks, from their checked parameters
    ``params`` (:func:`helpers.parameters.check_namespace` of ``notebook``).

    Loads the data and the dense model of every seed once, refuses levels that would empty a
    pruned layer (:func:`helpers.pruning.check_levels_keep_every_layer`), chooses the learning
    rate of every retraining strategy among ``tune_lrs`` at the levels ``tune_ks`` on a
    validation split of ``validation_size`` training images (:class:`Validation`),
    prunes by ``method`` at every level ``ks`` with every strategy of ``strategies``
    (retraining for ``recovery_epochs`` epochs; the dense models of the first ``sweep_seeds``
    seeds), retrains again for ``target_epochs`` at the
    levels ``target_ks``, and there also for ``longest_epochs`` (when longer) with the strategy
    validation ranks first (:func:`helpers.tuning.leaders`) at a learning rate chosen on
    validation at that length, runs the controls (when ``strategies`` holds them) as their
    plans say (:attr:`helpers.strategies.Strategy.plan`: Scratch-E and Scratch-B at
    ``control_ks``, the iterative strategies in rounds of ``imp_rate`` up to the highest of them),
    sets the other rankings of ``rankings`` (weight pruning: global, LAMP, random) beside the
    per-layer one at ``ranking_ks``, one-shot and fine-tuned, and writes
    the rows to ``results_path`` and the validation scores to ``tuning_path``, each with
    their provenance record.

    Every training runs as a job (:mod:`helpers.jobs`) on ``jobs`` local worker processes (None:
    one per core) or on the Dask cluster at ``scheduler``, and so does every evaluation of a
    retrained network; this process then reads them from the cache. Everything runs with
    ``threads`` torch threads, here as in the workers, so the results do not depend on how many
    workers there are.
    """
    with torch_threads(params["threads"]), Workers(params["jobs"], params["scheduler"], params["threads"]) as pool:
        pool.check_shared(params["cache_dir"])
        return _method_study(notebook, method, params, pool)


def _method_study(notebook: str, method: str, params: Mapping[str, Any], pool: Workers) -> MethodStudy:
    inputs = Inputs.of(params)
    from_params = {name: params[name] for name in ("prune_last", "progress")}
    from_params["csr_from_k"] = params.get("csr_from_k")  # declared by the notebooks whose method can use it
    data, dense = loaded(inputs)
    check_levels_keep_every_layer(next(iter(dense.models.values())),
                                  [*params["ks"], *params["target_ks"], *params["tune_ks"], *params["control_ks"]],
                                  method, params["prune_last"])
    for message in degenerate_schedules(params, len(data["train"]), next(iter(dense.models.values())), method,
                                        dense.recipe_budget()):
        warnings.warn(message, DegenerateScheduleWarning, stacklevel=2)
    strategies = params["strategies"]
    budget = Budget(params["recovery_epochs"], max(params["tune_lrs"]), params["recovery_batch_size"])
    long_budget = replace(budget, epochs=params["target_epochs"])
    controls = [(control, registered(control).plan(params, dense.recipe_budget()))
                for control in (named(strategies, control=True) if params["control_ks"] else [])]
    validation = Validation(dense, data, params["cache_dir"])
    seeds = list(dense.models)

    def first_of(n: int | None) -> list[int]:
        return seeds if n is None else seeds[:n]
    swept_seeds = first_of(params["sweep_seeds"])
    swept = named(strategies, control=False)
    # the controls tuned on validation (Scratch-E and -B) are tried at their highest level
    tuned_controls = [(c, schedule) for c, schedule in controls if registered(c).tuned]

    def run_trials(trials: Sequence[Retraining], label: str) -> None:
        pool.run(trial_jobs(trials, validation, inputs), label, show=params["progress"])

    def run_retrainings(made: Sequence[Retraining], label: str) -> None:
        pool.run(retraining_jobs(made, dense, data, inputs), label, show=params["progress"])
    common = dict(cache_dir=params["cache_dir"], run_first=run_retrainings, **from_params)
    # 1. every trial at once: the sweep's strategies at tune_ks, the tuned controls
    run_trials([*validation.retrainings(method, grid(swept, params["tune_ks"], params["tune_lrs"]), budget,
                                        params["prune_last"], from_params["csr_from_k"]),
                *(job for c, schedule in tuned_controls for job in validation.retrainings(
                    method, grid([c], [max(schedule.levels)], params["control_lrs"]), schedule.budget,
                    params["prune_last"], from_params["csr_from_k"]))], f"{method} pruning, learning rates")
    trials = trials_inside_the_grid(validation, method, swept, params["tune_ks"], params["tune_lrs"], budget,
                                    run_first=run_trials, **from_params)
    tuning_frames = [validation.oneshot(method, params["tune_ks"], prune_last=params["prune_last"]), trials]
    lrs = choose(trials) if len(trials) else {}
    for c, schedule in tuned_controls:
        tried = trials_inside_the_grid(validation, method, [c], [max(schedule.levels)], params["control_lrs"],
                                       schedule.budget, run_first=run_trials, **from_params)
        tuning_frames.append(tried)
        lrs.update(choose(tried))
    # 2. every network those choices decide, in one list: the sweep, the longer budget, the
    # controls (the longest jobs, run first) and the other rankings
    retraining = [s for s in swept if registered(s).trains]
    ranked = [s for s in (ONESHOT.name, FINETUNE.name) if s in strategies or s == ONESHOT.name]
    sweeps = [dict(ks=params["ks"], strategies=swept, budget=budget, seeds=swept_seeds)]
    if params["target_ks"] and retraining:
        sweeps.append(dict(ks=params["target_ks"], strategies=retraining, budget=long_budget, seeds=None))
    sweeps += [dict(ks=schedule.levels, strategies=[c], budget=schedule.budget, seeds=first_of(schedule.seeds),
                    path=schedule.path) for c, schedule in controls]
    sweeps += [dict(ks=[0.0, *params["ranking_ks"]], strategies=ranked, budget=budget, seeds=swept_seeds,
                    ranking=ranking) for ranking in params.get("rankings", [])]  # the notebooks with rankings
    run_retrainings([job for sweep in sweeps for job in retrainings(
        dense, method, sweep["ks"], sweep["strategies"], sweep["budget"], lrs, params["prune_last"],
        from_params["csr_from_k"], sweep.get("path"), sweep.get("ranking", LAYER.name), sweep["seeds"])],
        f"{method} pruning, every level")
    frames = [strategy_sweep(dense, data, method, sweep["ks"], sweep["strategies"], sweep["budget"], lrs=lrs,
                             path=sweep.get("path"), ranking=sweep.get("ranking", LAYER.name), seeds=sweep["seeds"],
                             **common) for sweep in sweeps]
    # 3. the longest budget, for the strategy validation ranks first at each target level
    longest_lrs: dict[str, dict[float, float]] = {}
    if params["target_ks"] and lrs and params["longest_epochs"] > params["target_epochs"]:
        longest = replace(budget, epochs=params["longest_epochs"])
        for strategy, ks in leaders(trials, params["target_ks"]).items():
            longer = trials_inside_the_grid(validation, method, [strategy], ks, params["tune_lrs"], longest,
                                            run_first=run_trials, **from_params)
            longest_lrs.update(choose(longer))
            tuning_frames.append(longer)
            frames.append(strategy_sweep(dense, data, method, ks, [strategy], longest, lrs=longest_lrs, **common))
    results = with_training_compute(pd.concat(frames, ignore_index=True), dense.recipe.epochs, len(data["train"]))
    results.insert(0, "dataset", params["dataset"])
    tuning = pd.concat(tuning_frames, ignore_index=True)
    record = provenance.run_record(notebook, params, data=data_expectation(data), dense_fingerprints=dense.record())
    io.write_csv(results, params["results_path"], record)
    io.write_csv(tuning.assign(dataset=params["dataset"]), params["tuning_path"], record)
    return MethodStudy(method, data, dense, budget, long_budget, strategies, tuning, lrs, longest_lrs, results, record,
                       params["cache_dir"], params["prune_last"], from_params["csr_from_k"])
