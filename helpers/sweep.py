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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from . import cache, io, progress as progress_report, provenance
from .cost import count_nonzero_weights, layer_sparsity, remaining_weights, sparsity
from .data import Split
from .pruning import prune
from .retraining import DenseModels, Budget, Retraining, retrained
from .strategies import LAYER, ONESHOT, RANKINGS, strategy as registered
from .training import evaluate
from .tuning import lr_for as tuned_lr, score, trial_record


RunFirst = Callable[[Sequence[Retraining], str], None]
"""What makes a list of retrained networks before a sweep reads them from the cache:
``run_first(retrainings, label)`` (:mod:`helpers.study` runs them as jobs on workers)."""


def evaluate_pruned(model: nn.Module, split: Split, prune_last: bool = False,
                    validation: Split | None = None) -> dict[str, float]:
    """Test ``accuracy`` and ``loss`` of a pruned network (and its ``val_accuracy`` and
    ``val_loss`` on ``validation``, where every choice is made), its measured ``sparsity`` over the
    prunable layers, ``nonzero_weights`` over the whole network, ``remaining_weights`` (what a
    compact form must store: :func:`helpers.cost.remaining_weights`), ``macs`` (multiply-adds per
    image of that compact form: in a bias-free network, one per stored weight), and
    ``sparsity_<layer>`` for every layer."""
    row = evaluate(model, split)
    if validation is not None:
        row.update(score(model, validation))
    row["sparsity"] = sparsity(model, prune_last)
    row["nonzero_weights"] = count_nonzero_weights(model)
    row["remaining_weights"] = remaining_weights(model)
    row["macs"] = row["remaining_weights"]
    row.update({f"sparsity_{name}": s for name, s in layer_sparsity(model).items()})
    return row


ROW_SCHEMA = 4
"""Version of what :func:`evaluate_pruned` returns, part of every evaluation's cache key: a row
cached before a column was added is computed afresh, never reused without it."""


def evaluation_path(cache_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Where :func:`cached_evaluation` keeps the row of ``record``."""
    return cache.entry(cache_dir, "evaluation", {**record, "row": ROW_SCHEMA}, ".json")


def cached_evaluation(cache_dir: str | os.PathLike, record: Mapping[str, Any],
                      compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The evaluation row of the pruned network that ``record`` determines (how it was made from
    which weights, the test data, package versions): read from ``cache_dir`` when computed
    before, else ``compute()`` and stored. A rerun with the same parameters therefore loads,
    prunes and evaluates nothing. The row comes back exactly (JSON keeps every float's digits)."""
    record = {**record, "row": ROW_SCHEMA}
    path = evaluation_path(cache_dir, record)

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

def retrained_record(job: Retraining, dense: DenseModels, data: Mapping[str, Split]) -> dict[str, Any]:
    """What determines the row of the network ``job`` makes: its own record, the test and the
    validation data."""
    return {"evaluated": job.record(dense.fingerprints[job.seed], data["train"]), "test_data": data["test"].fingerprint,
            "validation_data": data["validation"].fingerprint}


def retrained_evaluation(job: Retraining, dense: DenseModels, data: Mapping[str, Split],
                         cache_dir: str | os.PathLike) -> dict[str, Any]:
    """The test row of the network ``job`` makes (:func:`helpers.retraining.retrained`), cached."""
    return cached_evaluation(cache_dir, retrained_record(job, dense, data), lambda: evaluate_pruned(
        retrained(job, dense, data["train"], cache_dir), data["test"], job.prune_last, data["validation"]))


def retrainings(dense: DenseModels, method: str, ks: Sequence[float], strategies: Sequence[str],
                budget: Budget, lrs: Mapping[str, Mapping[float, float]] | None = None,
                prune_last: bool = False, csr_from_k: float | None = None,
                path: Sequence[float] | None = None, ranking: str = LAYER.name,
                seeds: Sequence[int] | None = None) -> list[Retraining]:
    """The retrained networks :func:`strategy_sweep` makes, in its order (seed, strategy, level):
    every strategy of ``strategies`` that trains, at every level of ``ks`` above 0, pruned by
    ``ranking``, with ``budget`` at the learning rate ``lrs`` chose for it (else ``budget.lr``);
    a strategy in rounds starts each level from the level of ``path`` (default ``ks``) below it;
    for the dense models of ``seeds`` (default: every one)."""
    made = []
    for seed in dense.models if seeds is None else seeds:
        for strategy in strategies:
            for k in ks if registered(strategy).trains else ():
                if k > 0:
                    lr = tuned_lr(lrs, strategy, k) if lrs and strategy in lrs else budget.lr
                    before = tuple(kk for kk in (ks if path is None else path) if 0 < kk < k)
                    made.append(Retraining(strategy, method, k, seed, replace(budget, lr=lr), prune_last,
                                           before if registered(strategy).rounds else (), csr_from_k, ranking))
    return made


def strategy_sweep(
    dense: DenseModels,
    data: Mapping[str, Split],
    method: str,
    ks: Sequence[float],
    strategies: Sequence[str],
    budget: Budget,
    *,
    cache_dir: str | os.PathLike,
    lrs: Mapping[str, Mapping[float, float]] | None = None,
    prune_last: bool = False,
    csr_from_k: float | None = None,
    progress: bool = False,
    run_first: RunFirst | None = None,
    path: Sequence[float] | None = None,
    ranking: str = LAYER.name,
    seeds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Every strategy of ``strategies`` for ``method`` at every level of ``ks``, for the dense
    model of every seed (of ``seeds``, when given), measured on ``data["test"]``; the retraining strategies train on
    ``data["train"]`` with ``budget`` and are cached in ``cache_dir``. With ``lrs`` (strategy ->
    tuned level -> learning rate, :func:`helpers.tuning.choose`), a strategy found there trains
    at the learning rate chosen for the nearest tuned level instead of ``budget.lr``.

    A strategy in rounds runs them along ``path`` (default ``ks``): each level starts from the
    round before it, each round trains with ``budget``.

    With ``run_first``, every retrained network is first made and evaluated by
    ``run_first(retrainings, label)`` (on workers: :func:`helpers.study.retraining_jobs`), and
    the rows are then read from the cache.

    Weights are chosen by ``ranking`` (:data:`helpers.strategies.RANKINGS`; per layer by default).
    At k = 0 nothing is pruned, so only the one-shot row (the dense model) is measured.
    Returns one row per seed, strategy and k: ``seed``, ``method``, ``strategy``, ``ranking``,
    ``k``, ``epochs`` (training after the dense model, earlier rounds included:
    0 for one-shot), ``lr`` and the columns of :func:`evaluate_pruned`.
    """
    seeds = list(dense.models if seeds is None else seeds)
    cells = [(seed, strategy, k) for seed in seeds for strategy in strategies for k in ks
             if not registered(strategy).trains or k > 0]
    made = iter(retrainings(dense, method, ks, strategies, budget, lrs, prune_last, csr_from_k, path, ranking, seeds))
    retraining = {cell: next(made) for cell in cells if registered(cell[1]).trains}
    label = f"{method} pruning, {'/'.join(strategies)}"
    if run_first:
        run_first(list(retraining.values()), label)
    test = data["test"]
    rows = []
    for seed, strategy, k in progress_report.track(cells, label, show=progress):
        if not registered(strategy).trains:
            record = {**oneshot_record(dense.fingerprints[seed], method, ranking, k, prune_last, test),
                      "validation_data": data["validation"].fingerprint}
            row = cached_evaluation(cache_dir, record, lambda seed=seed, k=k: evaluate_pruned(
                RANKINGS[ranking].prune(dense.models[seed], k, method, prune_last, seed), test, prune_last,
                data["validation"]))
            rows.append({"seed": seed, "method": method, "strategy": strategy, "ranking": ranking, "k": k,
                         "epochs": 0, "lr": 0.0, **row})
        else:
            job = retraining[seed, strategy, k]
            rows.append({"seed": seed, "method": method, "strategy": strategy, "ranking": ranking, "k": k,
                         "epochs": job.epochs, "lr": job.budget.lr,
                         **retrained_evaluation(job, dense, data, cache_dir)})
    return pd.DataFrame(rows)


def grid(strategies: Sequence[str], ks: Sequence[float], lrs: Sequence[float]) -> list[tuple[str, float, float]]:
    """Every ``(strategy, k, lr)`` of ``strategies`` x ``ks`` x ``lrs``, strategy first, rate last."""
    return [(strategy, k, lr) for strategy in strategies for k in ks for lr in lrs]


@dataclass(frozen=True)
class Validation:
    """Where retraining learning rates are chosen: the dense model of the first seed (trained,
    like every model of the study, without the validation images), retrained on
    ``data["train"]`` and scored on ``data["validation"]``; the test set plays no part. A trial
    retrains the same network the sweep does for that seed at that rate, so the sweep reuses
    its model; every score is cached in ``cache_dir``."""

    dense: DenseModels
    data: Mapping[str, Split]
    cache_dir: str | os.PathLike

    @property
    def seed(self) -> int:
        return next(iter(self.dense.models))

    @property
    def fingerprint(self) -> str:
        return self.dense.fingerprints[self.seed]

    def oneshot(self, method: str, ks: Sequence[float], *, prune_last: bool = False) -> pd.DataFrame:
        """Validation scores of the dense model pruned by ``method`` at each level of ``ks``,
        without retraining: one ``oneshot`` row per level (epochs 0, lr 0)."""
        rows = []
        for k in ks:
            record = {"tuning_oneshot": oneshot_record(self.fingerprint, method, LAYER.name, k, prune_last,
                                                       self.data["validation"]),
                      **trial_record(self.fingerprint, self.data["validation"])}
            row = cached_evaluation(self.cache_dir, record, lambda k=k: score(
                prune(self.dense.models[self.seed], k, method, prune_last=prune_last), self.data["validation"]))
            rows.append({"method": method, "strategy": ONESHOT.name, "k": k, "epochs": 0, "lr": 0.0, **row})
        return pd.DataFrame(rows)

    def trials(self, method: str, cells: Sequence[tuple[str, float, float]], budget: Budget, *,
               prune_last: bool = False, csr_from_k: float | None = None, progress: bool = False,
               run_first: RunFirst | None = None) -> pd.DataFrame:
        """Validation scores of ``method`` retrained from the dense model of :attr:`seed` at each
        ``(strategy, k, lr)`` of ``cells`` whose strategy is tuned (``budget`` otherwise): one row
        per cell, in their order (``method``, ``strategy``, ``k``, ``epochs``, ``lr``,
        ``val_accuracy``, ``val_loss``); empty when none is tuned. With ``run_first``,
        ``run_first(trials, label)`` scores them all first, at once (on workers:
        :func:`helpers.study.trial_jobs`)."""
        trials = self.retrainings(method, cells, budget, prune_last, csr_from_k)
        label = f"{method} pruning, learning rates"
        if run_first:
            run_first(trials, label)
        return pd.DataFrame([{"method": method, "strategy": job.strategy, "k": job.k, "epochs": budget.epochs,
                              "lr": job.budget.lr, **self.trial(job)}
                             for job in progress_report.track(trials, label, show=progress)])

    def retrainings(self, method: str, cells: Sequence[tuple[str, float, float]], budget: Budget,
                    prune_last: bool = False, csr_from_k: float | None = None) -> list[Retraining]:
        """The networks :meth:`trials` scores, in its order."""
        return [Retraining(strategy, method, k, self.seed, replace(budget, lr=lr), prune_last, csr_from_k=csr_from_k)
                for strategy, k, lr in cells if registered(strategy).tuned]

    def _trial_record(self, job: Retraining) -> dict[str, Any]:
        return {"evaluated": job.record(self.fingerprint, self.data["train"]),
                **trial_record(self.fingerprint, self.data["validation"])}

    def trial_path(self, job: Retraining) -> Path:
        """Where the validation score of ``job`` is cached."""
        return evaluation_path(self.cache_dir, self._trial_record(job))

    def trial(self, job: Retraining) -> dict[str, float]:
        """The validation score of the network ``job`` makes (the model cached like the sweep's)."""
        return cached_evaluation(self.cache_dir, self._trial_record(job), lambda: score(
            retrained(job, self.dense, self.data["train"], self.cache_dir), self.data["validation"]))


def oneshot_record(dense_fingerprint: str, method: str, ranking: str, k: float, prune_last: bool,
                   test_split: Split) -> dict[str, Any]:
    """What determines the evaluation of a one-shot pruned network: the dense weights, how and
    how much they were pruned, the test data and package versions."""
    return {"kind": ONESHOT.name, "dense_fingerprint": dense_fingerprint, "method": method, "ranking": ranking,
            "k": k, "prune_last": prune_last, "test_data": test_split.fingerprint,
            "versions": provenance.versions()}
