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
from .data import Split, load_dataset
from .jobs import Job, Workers, torch_threads
from .pruning import check_levels_keep_every_layer, n_to_prune, prunable_layers, prune
from .pruning import method as method_of, units
from .recovery import PRUNE_EVERY, gradual_pruning_steps
from .retraining import DenseModels, Budget, Retraining, retrained
from .sensitivity import layer_sensitivity
from .strategies import FINETUNE, GRADUAL, LAYER, LOTTERY, named, strategy as registered, sweep_rows
from .sweep import (Validation, cached_evaluation, evaluation_path, global_sweep, retrained_evaluation,
                    retrained_record, retrainings, strategy_sweep)
from .tuning import choose, leaders, lr_for as tuned_lr, tuning_data, tuning_model_path


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


@functools.lru_cache(maxsize=2)
def loaded(inputs: Inputs) -> tuple[dict[str, Split], DenseModels]:
    """The data and dense models of ``inputs``, loaded once per process."""
    data = load_dataset(inputs.dataset, inputs.data_dir, inputs.archive, train_size=inputs.train_size,
                        test_size=inputs.test_size)
    return data, DenseModels.load(inputs.checkpoint_dir, inputs.seeds, data)


@functools.lru_cache(maxsize=2)
def _validation(inputs: Inputs) -> Validation:
    data, dense = loaded(inputs)
    return Validation.prepare(dense, data["train"], inputs.validation_size, inputs.cache_dir)


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
    """What the job log records of a job: dataset, kind, method, strategy, level and epochs."""
    return (("dataset", inputs.dataset), ("kind", kind), ("method", job.method), ("strategy", job.strategy),
            ("k", job.k), ("epochs", job.budget.epochs))




def trial_jobs(trials: Sequence[Retraining], validation: Validation, inputs: Inputs) -> list[Job]:
    """The jobs that retrain the tuning model as every job of ``trials`` says and score it on
    the validation split (:meth:`helpers.sweep.Validation.trial`)."""
    return [Job(str(validation.trial_path(job)), f"trial {job.strategy} {job.method} k={job.k:g} lr={job.budget.lr:g}",
                _evaluate_trial, (inputs, job), cost=_cost(job, len(validation.split["train"])),
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
    pruning whose ramp holds a single pruning step (it is then fine-tuning), lottery rounds (its
    plan's levels) that remove nothing more than the round before, and longer budgets that are
    not longer."""
    found = []
    strategies = params["strategies"]
    if GRADUAL.name in strategies:
        tuning_images = train_images - params["validation_size"]
        for images, epochs, where in ((train_images, params["recovery_epochs"], "the sweep"),
                                      (tuning_images, params["recovery_epochs"], "the learning-rate trials")):
            steps, pruning_steps = gradual_pruning_steps(images, epochs, params["recovery_batch_size"])
            if pruning_steps < 2:
                found.append(f"gradual pruning in {where}: {epochs} epoch(s) on {images:,} images in batches of "
                             f"{params['recovery_batch_size']} is {steps} optimiser steps, fewer than one pruning "
                             f"interval ({PRUNE_EVERY} steps) in the first half of the run: it prunes once, at the "
                             f"first step, and is fine-tuning under another name; give more images or epochs")
    if LOTTERY.name in strategies and params["control_ks"]:
        path = LOTTERY.plan(params, recipe)[0]  # the levels the control's rounds run at
        layers = prunable_layers(model, params["prune_last"])
        removed = [tuple(n_to_prune(k, units(layer, method)) for _, layer in layers) for k in path]
        empty = [k for k, now, before in zip(path, removed, [(0,) * len(layers), *removed]) if now == before]
        if empty:
            found.append(f"the lottery control's path {path} ({params['lottery_rounds']} rounds to "
                         f"{max(params['control_ks']):g} %) has {len(empty)} round(s) that remove no "
                         f"{method_of(method).unit} more than the round before (at {empty}): it runs "
                         f"{len(path) - len(empty)} rounds of pruning, not {len(path)}")
    if params["target_ks"] and params["target_epochs"] <= params["recovery_epochs"]:
        found.append(f"target_epochs = {params['target_epochs']} is no longer than recovery_epochs = "
                     f"{params['recovery_epochs']}: the longer budget at target_ks repeats the sweep's")
    if params["target_ks"] and params["longest_epochs"] <= params["target_epochs"]:
        found.append(f"longest_epochs = {params['longest_epochs']} is no longer than target_epochs = "
                     f"{params['target_epochs']}: no strategy gets the longest budget")
    return found


def run_method_study(notebook: str, method: str, params: Mapping[str, Any], *,
                     global_ranking: bool = False) -> MethodStudy:
    """The shared work of the weight- and unit-pruning notebooks, from their checked parameters
    ``params`` (:func:`helpers.parameters.check_namespace` of ``notebook``).

    Loads the data and the dense model of every seed once, refuses levels that would empty a
    pruned layer (:func:`helpers.pruning.check_levels_keep_every_layer`), chooses the learning
    rate of every retraining strategy among ``tune_lrs`` at the levels ``tune_ks`` on a
    validation split of ``validation_size`` training images (:class:`Validation`),
    prunes by ``method`` at every level ``ks`` with every strategy of ``strategies``
    (retraining for ``recovery_epochs`` epochs), retrains again for ``target_epochs`` at the
    levels ``target_ks``, and there also for ``longest_epochs`` (when longer) with the strategy
    validation ranks first (:func:`helpers.tuning.leaders`) at a learning rate chosen on
    validation at that length, trains the scratch control with the dense recipe at ``control_ks``
    and the lottery control in ``lottery_rounds`` rounds of ``lottery_epochs`` up to the highest
    of them (when ``strategies`` holds them), adds the global ranking when ``global_ranking``, and writes
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
        return _method_study(notebook, method, params, pool, global_ranking)


def _method_study(notebook: str, method: str, params: Mapping[str, Any], pool: Workers,
                  global_ranking: bool) -> MethodStudy:
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
    controls = [(control, *registered(control).plan(params, dense.recipe_budget()))
                for control in (named(strategies, control=True) if params["control_ks"] else [])]
    # first the longest jobs, which need no choice made on validation: the controls, and the
    # tuning model the trials start from
    first = [job for control, levels, control_budget in controls for job in retraining_jobs(
        retrainings(dense, method, levels, [control], control_budget, None, params["prune_last"],
                    from_params["csr_from_k"]), dense, data, inputs)]
    tuning = tuning_model_path(dense.recipe, tuning_data(data["train"], params["validation_size"]),
                               params["cache_dir"])
    first.append(Job(str(tuning), "tuning model", _validation, (inputs,), cost=float(
        dense.recipe.epochs * (len(data["train"]) - params["validation_size"]) * 2),
        about=(("dataset", inputs.dataset), ("kind", "tuning model"), ("epochs", dense.recipe.epochs))))
    pool.run(first, f"{method} pruning, controls and tuning model", show=params["progress"])
    validation = Validation.prepare(dense, data["train"], params["validation_size"], params["cache_dir"],
                                    params["progress"])

    def run_trials(trials: Sequence[Retraining], label: str) -> None:
        pool.run(trial_jobs(trials, validation, inputs), label, show=params["progress"])

    def run_retrainings(made: Sequence[Retraining], label: str) -> None:
        pool.run(retraining_jobs(made, dense, data, inputs), label, show=params["progress"])
    common = dict(cache_dir=params["cache_dir"], run_first=run_retrainings, **from_params)
    trials = validation.trials(method, strategies, params["tune_ks"], params["tune_lrs"], budget,
                               run_first=run_trials, **from_params)
    tuning_frames = [validation.oneshot(method, params["tune_ks"], prune_last=params["prune_last"]), trials]
    lrs = choose(trials) if len(trials) else {}
    swept = [s for s in strategies if not registered(s).control]
    frames = [strategy_sweep(dense, data, method, params["ks"], swept, budget, lrs=lrs, **common)]
    retraining = [s for s in swept if registered(s).trains]
    if params["target_ks"] and retraining:
        frames.append(strategy_sweep(dense, data, method, params["target_ks"], retraining, long_budget, lrs=lrs,
                                     **common))
    longest_lrs: dict[str, dict[float, float]] = {}
    if params["target_ks"] and lrs and params["longest_epochs"] > params["target_epochs"]:
        longest = replace(budget, epochs=params["longest_epochs"])
        for strategy, ks in leaders(trials, params["target_ks"]).items():
            longer = validation.trials(method, [strategy], ks, params["tune_lrs"], longest, run_first=run_trials,
                                       **from_params)
            longest_lrs.update(choose(longer))
            tuning_frames.append(longer)
            frames.append(strategy_sweep(dense, data, method, ks, [strategy], longest, lrs=longest_lrs, **common))
    for control, levels, control_budget in controls:
        frames.append(strategy_sweep(dense, data, method, levels, [control], control_budget, **common))
    if global_ranking:
        frames.append(global_sweep(dense, data["test"], params["ks"], cache_dir=params["cache_dir"],
                                   prune_last=params["prune_last"]))
    results = pd.concat(frames, ignore_index=True)
    results.insert(0, "dataset", params["dataset"])
    tuning = pd.concat(tuning_frames, ignore_index=True)
    record = provenance.run_record(notebook, params, data=data_expectation(data), dense_fingerprints=dense.record())
    io.write_csv(results, params["results_path"], record)
    io.write_csv(tuning.assign(dataset=params["dataset"]), params["tuning_path"], record)
    return MethodStudy(method, data, dense, budget, long_budget, strategies, tuning, lrs, longest_lrs, results, record,
                       params["cache_dir"], params["prune_last"], from_params["csr_from_k"])
