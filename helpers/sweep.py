"""Prune the dense models at every level with every strategy, and measure each pruned network.

Every strategy of :data:`helpers.strategies.STRATEGIES` runs at every level it is asked for.
Retrained networks are cached under their provenance record
(:class:`helpers.retraining.Retraining`), and so is every evaluation (:func:`cached_evaluation`),
so a rerun with the same parameters trains, prunes and evaluates nothing. The inputs here are
trusted: notebooks pass the values :func:`helpers.parameters.check_namespace` checked and
normalised.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from . import cache, io, progress as progress_report, provenance
from .checkpoints import data_expectation
from .cost import count_nonzero_weights, layer_sparsity, remaining_weights, sparsity
from .data import Split, load_dataset
from .pruning import check_levels_keep_every_layer, global_weight_prune, n_to_prune, prunable_layers, prune
from .pruning import method as method_of, units
from .recovery import PRUNE_EVERY, gradual_pruning_steps
from .retraining import DenseModels, RecoveryBudget, Retraining, retrained
from .sensitivity import layer_sensitivity
from .strategies import FINETUNE, GLOBAL, GRADUAL, LAYER, LOTTERY, ONESHOT, named, strategy as registered, sweep_rows
from .training import evaluate
from .tuning import choose, leaders, lr_for as tuned_lr, score, trial_record, tuning_data, tuning_model


def evaluate_pruned(model: nn.Module, split: Split, prune_last: bool = False) -> dict[str, float]:
    """Test ``accuracy`` and ``loss`` of a pruned network, its measured ``sparsity`` over the
    prunable layers, ``nonzero_weights`` over the whole network, ``remaining_weights`` (what a
    compact form must store: :func:`helpers.cost.remaining_weights`), ``macs`` (multiply-adds per
    image of that compact form: in a bias-free network, one per stored weight), and
    ``sparsity_<layer>`` for every layer."""
    row = evaluate(model, split)
    row["sparsity"] = sparsity(model, prune_last)
    row["nonzero_weights"] = count_nonzero_weights(model)
    row["remaining_weights"] = remaining_weights(model)
    row["macs"] = row["remaining_weights"]
    row.update({f"sparsity_{name}": s for name, s in layer_sparsity(model).items()})
    return row


ROW_SCHEMA = 3
"""Version of what :func:`evaluate_pruned` returns, part of every evaluation's cache key: a row
cached before a column was added is computed afresh, never reused without it."""


def cached_evaluation(cache_dir: str | os.PathLike, record: Mapping[str, Any],
                      compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The evaluation row of the pruned network that ``record`` determines (how it was made from
    which weights, the test data, package versions): read from ``cache_dir`` when computed
    before, else ``compute()`` and stored. A rerun with the same parameters therefore loads,
    prunes and evaluates nothing. The row comes back exactly (JSON keeps every float's digits)."""
    record = {**record, "row": ROW_SCHEMA}
    path = cache.entry(cache_dir, "evaluation", record, ".json")

    def load(stored: Path) -> dict[str, Any]:  # a damaged entry, or another record's, is recomputed
        entry = io.read_json(stored)
        if provenance.digest(entry["record"]) != provenance.digest(record):
            raise ValueError(f"{stored} holds the evaluation of another record")
        return entry["row"]

    def computed() -> dict[str, Any]:
        row = compute()
        io.write_json({"record": dict(record), "row": row}, path)
        return row
    return cache.reuse(path, load, computed)

def strategy_sweep(
    dense: DenseModels,
    data: Mapping[str, Split],
    method: str,
    ks: Sequence[float],
    strategies: Sequence[str],
    budget: RecoveryBudget,
    *,
    cache_dir: str | os.PathLike,
    lrs: Mapping[str, Mapping[float, float]] | None = None,
    prune_last: bool = False,
    csr_from_k: float | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Every strategy of ``strategies`` for ``method`` at every level of ``ks``, for the dense
    model of every seed, measured on ``data["test"]``; the retraining strategies train on
    ``data["train"]`` with ``budget`` and are cached in ``cache_dir``. With ``lrs`` (strategy ->
    tuned level -> learning rate, :func:`helpers.tuning.choose`), a strategy found there trains
    at the learning rate chosen for the nearest tuned level instead of ``budget.lr``.

    ``lottery`` runs its rounds along ``ks`` (each level starts from the one below it, each
    round trains with ``budget``).

    At k = 0 nothing is pruned, so only the one-shot row (the dense model) is measured.
    Returns one row per seed, strategy and k: ``seed``, ``method``, ``strategy``, ``ranking``
    (``"layer"``), ``k``, ``epochs`` (training after the dense model, earlier rounds included:
    0 for one-shot), ``lr`` and the columns of :func:`evaluate_pruned`.
    """
    jobs = [(seed, strategy, k) for seed in dense.models for strategy in strategies for k in ks
            if not registered(strategy).trains or k > 0]
    test = data["test"]
    rows = []
    label = f"{method} pruning, {'/'.join(strategies)}"
    for seed, strategy, k in progress_report.track(jobs, label, show=progress):
        if not registered(strategy).trains:
            record = oneshot_record(dense.fingerprints[seed], method, LAYER.name, k, prune_last, test)

            def compute(seed=seed, k=k):
                return evaluate_pruned(prune(dense.models[seed], k, method, prune_last=prune_last), test, prune_last)
        else:
            lr = tuned_lr(lrs, strategy, k) if lrs and strategy in lrs else budget.lr
            path = tuple(kk for kk in ks if 0 < kk < k) if registered(strategy).rounds else ()
            job = Retraining(strategy, method, k, seed, replace(budget, lr=lr), prune_last, path, csr_from_k)
            record = {"evaluated": job.record(dense.fingerprints[seed], data["train"]), "test_data": test.fingerprint}

            def compute(job=job):
                return evaluate_pruned(retrained(job, dense, data["train"], cache_dir), test, prune_last)
        trains = registered(strategy).trains
        rows.append({"seed": seed, "method": method, "strategy": strategy, "ranking": LAYER.name, "k": k,
                     "epochs": job.epochs if trains else 0, "lr": job.budget.lr if trains else 0.0,
                     **cached_evaluation(cache_dir, record, compute)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Validation:
    """Where retraining learning rates are chosen: the training images split into a part to
    train on and a held-out validation split (:func:`helpers.tuning.tuning_data`), and the
    tuning model (the dense recipe trained on that part) with its fingerprint. The test set
    plays no part; the model and every score are cached in ``cache_dir``."""

    split: dict[str, Split]
    model: nn.Module
    fingerprint: str
    cache_dir: str | os.PathLike

    @classmethod
    def prepare(cls, dense: DenseModels, train: Split, validation_size: int, cache_dir: str | os.PathLike,
                progress: bool = False) -> Validation:
        split = tuning_data(train, validation_size)
        model = tuning_model(dense.recipe, split, cache_dir, progress=progress)
        return cls(split, model, provenance.state_fingerprint(model.state_dict()), cache_dir)

    def oneshot(self, method: str, ks: Sequence[float], *, prune_last: bool = False) -> pd.DataFrame:
        """Validation scores of the tuning model pruned by ``method`` at each level of ``ks``,
        without retraining: one ``oneshot`` row per level (epochs 0, lr 0)."""
        rows = []
        for k in ks:
            record = {"tuning_oneshot": oneshot_record(self.fingerprint, method, LAYER.name, k, prune_last,
                                                       self.split["validation"]),
                      **trial_record(self.fingerprint, self.split["validation"])}
            row = cached_evaluation(self.cache_dir, record, lambda k=k: score(
                prune(self.model, k, method, prune_last=prune_last), self.split["validation"]))
            rows.append({"method": method, "strategy": ONESHOT.name, "k": k, "epochs": 0, "lr": 0.0, **row})
        return pd.DataFrame(rows)

    def trials(self, method: str, strategies: Sequence[str], ks: Sequence[float], lrs: Sequence[float],
               budget: RecoveryBudget, *, prune_last: bool = False, csr_from_k: float | None = None,
               progress: bool = False) -> pd.DataFrame:
        """Validation scores of every retraining strategy of ``strategies`` (those whose rate is
        :attr:`~helpers.strategies.Strategy.tuned`) for ``method`` at every level of ``ks`` and
        learning rate of ``lrs`` (``budget`` otherwise), starting from the tuning model: one row per strategy, level and
        learning rate (``method``, ``strategy``, ``k``, ``epochs``, ``lr``, ``val_accuracy``,
        ``val_loss``); empty when no strategy is tuned."""
        jobs = [(strategy, k, lr) for strategy in strategies if registered(strategy).tuned for k in ks for lr in lrs]
        rows = []
        for strategy, k, lr in progress_report.track(jobs, f"{method} pruning, learning rates", show=progress):
            job = Retraining(strategy, method, k, 0, replace(budget, lr=lr), prune_last, csr_from_k=csr_from_k)
            record = {"evaluated": job.record(self.fingerprint, self.split["train"]),
                      **trial_record(self.fingerprint, self.split["validation"])}
            row = cached_evaluation(self.cache_dir, record, lambda job=job: score(
                job.run(self.model, self.split["train"]), self.split["validation"]))
            rows.append({"method": method, "strategy": strategy, "k": k, "epochs": budget.epochs, "lr": lr, **row})
        return pd.DataFrame(rows)


def oneshot_record(dense_fingerprint: str, method: str, ranking: str, k: float, prune_last: bool,
                   test_split: Split) -> dict[str, Any]:
    """What determines the evaluation of a one-shot pruned network: the dense weights, how and
    how much they were pruned, the test data and package versions."""
    return {"kind": ONESHOT.name, "dense_fingerprint": dense_fingerprint, "method": method, "ranking": ranking,
            "k": k, "prune_last": prune_last, "test_data": test_split.fingerprint,
            "versions": provenance.versions()}


def global_sweep(dense: DenseModels, test_split: Split, ks: Sequence[float], *, cache_dir: str | os.PathLike,
                 prune_last: bool = False) -> pd.DataFrame:
    """One-shot weight pruning with a single ranking across all prunable layers
    (:func:`helpers.pruning.global_weight_prune`) for the dense model of every seed, measured
    on ``test_split`` (evaluations cached in ``cache_dir``).

    Returns rows like :func:`strategy_sweep` with ``ranking="global"`` and ``strategy="oneshot"``.
    """
    rows = []
    for seed, model in dense.models.items():
        for k in ks:
            record = oneshot_record(dense.fingerprints[seed], "weight", GLOBAL.name, k, prune_last, test_split)

            def compute(model=model, k=k):
                return evaluate_pruned(global_weight_prune(model, k, prune_last=prune_last), test_split, prune_last)
            rows.append({"seed": seed, "method": "weight", "strategy": ONESHOT.name, "ranking": GLOBAL.name, "k": k,
                         "epochs": 0, "lr": 0.0, **cached_evaluation(cache_dir, record, compute)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class MethodStudy:
    """What a pruning notebook computed for one method: the data, the dense models, the
    retraining budgets and learning rates, every result row and the provenance record
    written beside them."""

    method: str
    data: Mapping[str, Split]
    dense: DenseModels
    budget: RecoveryBudget
    long_budget: RecoveryBudget
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
                         recipe: RecoveryBudget) -> list[str]:
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
    """
    from_params = {name: params[name] for name in ("prune_last", "progress")}
    from_params["csr_from_k"] = params.get("csr_from_k")  # declared by the notebooks whose method can use it
    data = load_dataset(params["dataset"], params["data_dir"], params["archive"],
                        train_size=params["train_size"], test_size=params["test_size"])
    dense = DenseModels.load(params["checkpoint_dir"], params["seeds"], data)
    check_levels_keep_every_layer(next(iter(dense.models.values())),
                                  [*params["ks"], *params["target_ks"], *params["tune_ks"], *params["control_ks"]],
                                  method, params["prune_last"])
    for message in degenerate_schedules(params, len(data["train"]), next(iter(dense.models.values())), method,
                                        dense.recipe_budget()):
        warnings.warn(message, DegenerateScheduleWarning, stacklevel=2)
    strategies = params["strategies"]
    budget = RecoveryBudget(params["recovery_epochs"], max(params["tune_lrs"]), params["recovery_batch_size"])
    long_budget = replace(budget, epochs=params["target_epochs"])
    common = dict(cache_dir=params["cache_dir"], **from_params)
    validation = Validation.prepare(dense, data["train"], params["validation_size"], params["cache_dir"],
                                    params["progress"])
    trials = validation.trials(method, strategies, params["tune_ks"], params["tune_lrs"], budget, **from_params)
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
            longer = validation.trials(method, [strategy], ks, params["tune_lrs"], longest, **from_params)
            longest_lrs.update(choose(longer))
            tuning_frames.append(longer)
            frames.append(strategy_sweep(dense, data, method, ks, [strategy], longest, lrs=longest_lrs, **common))
    for control in named(strategies, control=True) if params["control_ks"] else []:
        levels, control_budget = registered(control).plan(params, dense.recipe_budget())
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
