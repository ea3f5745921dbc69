"""Prune a trained model at every level with every method and measure the result."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from . import provenance
from .data import Split
from .model import count_nonzero_weights
from .pruning import PRUNERS, check_k, global_weight_prune, layer_sparsity, sparsity
from .recovery import finetune, gradual_prune
from .training import (cache_path, data_expectation, dense_checkpoint, evaluate, load_cached, load_checkpoint,
                       save_checkpoint)

STRATEGIES = ("oneshot", "finetune", "gradual")
"""How a pruned model is obtained: pruned once from the dense model; pruned once, then
retrained with the mask fixed; or pruned gradually during retraining (cubic schedule)."""

RANKINGS = ("layer", "global")
"""How weights are ranked for pruning: within each layer, or across all prunable layers."""

STUDY_KS: tuple[float, ...] = (0, 25, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99)
"""The study's sparsity levels, in percent."""


def check_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """Validate method names against :data:`helpers.pruning.PRUNERS`."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in PRUNERS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {sorted(PRUNERS)}, got {list(methods)}")
    return methods


def check_ks(ks: Iterable[float]) -> tuple[float, ...]:
    """Validate a non-empty collection of sparsity levels (each 0 <= k < 100, in percent).

    Levels are normalised, not refused, when unsorted or repeated: the result is sorted in
    increasing order without repeats, so ``[90, 50, 90]`` gives ``(50.0, 90.0)``.
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise TypeError(f"ks must be a list of percentages in [0, 100), got {ks!r}")
    ks = tuple(sorted({check_k(k) for k in ks}))
    if not ks:
        raise ValueError("ks must hold at least one sparsity level in [0, 100), got none")
    return ks


def check_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    """Validate a non-empty list of distinct non-negative integer seeds; their order is kept."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a list of non-negative integers, got {seeds!r}")
    seeds = tuple(seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0]
    if bad or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {list(seeds)!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat (a repeat would count one model twice), got {list(seeds)}")
    return tuple(int(s) for s in seeds)


def check_strategies(strategies: Iterable[str]) -> tuple[str, ...]:
    """Validate strategy names against :data:`STRATEGIES`; their order is kept."""
    if isinstance(strategies, str):
        strategies = [strategies]
    strategies = tuple(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown strategy {unknown or strategies!r}: strategies must be a non-empty "
                         f"subset of {list(STRATEGIES)}")
    return strategies


def measure(model: nn.Module, split: Split, prune_last: bool = False) -> dict[str, float]:
    """Test ``accuracy`` and ``loss``, measured ``sparsity`` over the prunable layers,
    ``nonzero_weights`` over the whole network, and ``sparsity_<layer>`` for every layer."""
    row = evaluate(model, split)
    row["sparsity"] = sparsity(model, prune_last)
    row["nonzero_weights"] = count_nonzero_weights(model)
    row.update({f"sparsity_{name}": s for name, s in layer_sparsity(model).items()})
    return row


def sweep(
    model: nn.Module,
    test_split: Split,
    ks: Sequence[float] = STUDY_KS,
    methods: Sequence[str] = ("weight", "unit"),
    *,
    prune_last: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """One-shot pruning of ``model`` by every method at every level ``k``, each from the
    same trained weights (``model`` is not modified).

    Returns one row per (method, k): ``method``, ``k`` and the columns of :func:`measure`.
    """
    methods, ks = check_methods(methods), check_ks(ks)
    rows = []
    for method, k in tqdm([(m, k) for m in methods for k in ks], desc="pruning", disable=not progress):
        pruned = PRUNERS[method](model, k, prune_last=prune_last)
        rows.append({"method": method, "k": k, **measure(pruned, test_split, prune_last)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class RecoveryBudget:
    """Training after the dense model, the same for fine-tuning and gradual pruning."""

    epochs: int = 1
    lr: float = 8e-3
    batch_size: int = 256

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs <= 10:
            raise ValueError(f"recovery epochs must be an integer in [1, 10], got {self.epochs!r}")
        if not 0 < self.lr <= 1:
            raise ValueError(f"recovery lr must be in (0, 1], got {self.lr!r}")


def recovery_provenance(strategy: str, dense_weights: str, train_split: Split, method: str, k: float, seed: int,
                        budget: RecoveryBudget, prune_last: bool) -> dict:
    """The provenance record of a model that ``strategy`` makes of the dense model whose weights
    have fingerprint ``dense_weights``: everything that determines its weights."""
    return {"kind": strategy, "dense_weights": dense_weights, "method": method, "k": check_k(k), "seed": seed,
            "prune_last": prune_last, "train_data": train_split.fingerprint, "budget": asdict(budget),
            "versions": provenance.versions()}


def recovered(
    strategy: str,
    dense: nn.Module,
    dense_weights: str,
    train_split: Split,
    method: str,
    k: float,
    seed: int,
    budget: RecoveryBudget,
    cache_dir: str | os.PathLike,
    prune_last: bool,
) -> nn.Module:
    """The model that ``strategy`` (``"finetune"`` or ``"gradual"``) makes of ``dense`` at level ``k``
    with ``budget``, loaded from ``cache_dir`` when the same configuration, data and package
    versions were trained before (``dense_weights``: the fingerprint of ``dense``'s weights,
    saved in its checkpoint)."""
    if strategy not in STRATEGIES[1:]:
        raise ValueError(f"strategy must be one of {list(STRATEGIES[1:])}, got {strategy!r}")
    check_methods([method])
    record = recovery_provenance(strategy, dense_weights, train_split, method, k, seed, budget, prune_last)
    path = cache_path(cache_dir, f"{strategy}-{method}-k{k:g}-seed{seed}", record)
    cached = load_cached(path, record)
    if cached is not None:
        return cached[0]
    common = dict(epochs=budget.epochs, lr=budget.lr, batch_size=budget.batch_size, seed=seed,
                  prune_last=prune_last)
    if strategy == "finetune":
        model, _ = finetune(PRUNERS[method](dense, k, prune_last=prune_last), train_split, {}, **common)
    else:
        model, _ = gradual_prune(dense, train_split, {}, k=k, method=method, **common)
    save_checkpoint(model, path, record)
    return model


def load_dense(checkpoint_dir: str | os.PathLike, seed: int, splits: dict[str, Split]) -> tuple[nn.Module, dict]:
    """The dense model of ``seed`` left in ``checkpoint_dir`` by the training notebook, refused
    (:class:`helpers.training.CheckpointError`) unless it was trained and evaluated on ``splits``."""
    return load_checkpoint(dense_checkpoint(checkpoint_dir, seed), expect=data_expectation(splits))


def strategy_sweep(
    checkpoint_dir: str | os.PathLike,
    seeds: Sequence[int],
    splits: dict[str, Split],
    method: str,
    ks: Sequence[float] = STUDY_KS,
    strategies: Sequence[str] = STRATEGIES,
    budget: RecoveryBudget = RecoveryBudget(),
    *,
    cache_dir: str | os.PathLike = "artefacts/cache",
    prune_last: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Every strategy of :data:`STRATEGIES` for ``method`` at every level, for the dense model
    of every seed, measured on ``splits["test"]``; fine-tuning and gradual pruning train on
    ``splits["train"]`` with ``budget`` and are cached in ``cache_dir`` by configuration.

    At k = 0 nothing is pruned, so only the one-shot row (the dense model) is measured.
    Returns one row per seed, strategy and k: ``seed``, ``method``, ``strategy``, ``ranking``
    (``"layer"``), ``k``, ``epochs`` (training after the dense model: 0 for one-shot) and the
    columns of :func:`measure`.
    """
    check_methods([method])
    ks, seeds, strategies = check_ks(ks), check_seeds(seeds), check_strategies(strategies)
    jobs = [(seed, strategy, k) for seed in seeds for strategy in strategies for k in ks
            if strategy == "oneshot" or k > 0]
    rows, dense = [], {}
    for seed, strategy, k in tqdm(jobs, desc=f"{method} pruning", disable=not progress):
        if seed not in dense:
            dense[seed] = load_dense(checkpoint_dir, seed, splits)
        model, ckpt = dense[seed]
        if strategy == "oneshot":
            pruned = PRUNERS[method](model, k, prune_last=prune_last)
        else:
            pruned = recovered(strategy, model, ckpt["weights"], splits["train"], method, k, seed,
                                budget, cache_dir, prune_last)
        rows.append({"seed": seed, "method": method, "strategy": strategy, "ranking": "layer", "k": k,
                     "epochs": 0 if strategy == "oneshot" else budget.epochs,
                     **measure(pruned, splits["test"], prune_last)})
    return pd.DataFrame(rows)


def global_sweep(
    checkpoint_dir: str | os.PathLike,
    seeds: Sequence[int],
    splits: dict[str, Split],
    ks: Sequence[float] = STUDY_KS,
    *,
    prune_last: bool = False,
) -> pd.DataFrame:
    """One-shot weight pruning with a single ranking across all prunable layers
    (:func:`helpers.pruning.global_weight_prune`) for the dense model of every seed, measured
    on ``splits["test"]``.

    Returns rows like :func:`strategy_sweep` with ``ranking="global"`` and ``strategy="oneshot"``.
    """
    rows, ks = [], check_ks(ks)
    for seed in check_seeds(seeds):
        model, _ = load_dense(checkpoint_dir, seed, splits)
        for k in ks:
            pruned = global_weight_prune(model, k, prune_last=prune_last)
            rows.append({"seed": seed, "method": "weight", "strategy": "oneshot", "ranking": "global", "k": k,
                         "epochs": 0, **measure(pruned, splits["test"], prune_last)})
    return pd.DataFrame(rows)


def mean_std_table(results: pd.DataFrame, value: str, columns: str | list[str], percent: bool = True) -> pd.DataFrame:
    """``value`` by k (rows) and ``columns`` as "mean ± std" over seeds (std omitted for one seed)."""
    stats = results.groupby(["k", *([columns] if isinstance(columns, str) else columns)])[value].agg(["mean", "std"])
    scale, unit = (100, " %") if percent else (1, "")

    def cell(row: pd.Series) -> str:
        if pd.isna(row["std"]):
            return f"{row['mean'] * scale:.2f}{unit}"
        return f"{row['mean'] * scale:.2f} ± {row['std'] * scale:.2f}{unit}"

    table = stats.apply(cell, axis=1).unstack(list(range(1, stats.index.nlevels)))
    # methods and strategies in the study's order rather than alphabetical
    order = {name: i for i, name in enumerate((*PRUNERS, *STRATEGIES, "layer", "global"))}
    table = table[sorted(table.columns, key=lambda c: [order.get(x, len(order)) for x in (c if isinstance(c, tuple) else (c,))])]
    return table.fillna("")


def stages(
    checkpoint_dir: str | os.PathLike,
    seed: int,
    splits: dict[str, Split],
    method: str,
    k: float,
    budget: RecoveryBudget = RecoveryBudget(),
    *,
    cache_dir: str | os.PathLike = "artefacts/cache",
    prune_last: bool = False,
) -> dict[str, nn.Module]:
    """The dense model of ``seed``, its one-shot pruning by ``method`` at ``k``, and that pruned
    model fine-tuned with ``budget`` (from the cache of :func:`strategy_sweep` when present)."""
    dense, ckpt = load_dense(checkpoint_dir, seed, splits)
    return {
        "dense": dense,
        "one-shot": PRUNERS[method](dense, k, prune_last=prune_last),
        "fine-tuned": recovered("finetune", dense, ckpt["weights"], splits["train"], method, check_k(k),
                                seed, budget, cache_dir, prune_last),
    }


def dense_weights(checkpoint_dir: str | os.PathLike, seeds: Sequence[int], splits: dict[str, Split]) -> dict[str, str]:
    """Seed -> fingerprint of the weights of the dense model that results for ``splits`` start
    from, for their provenance record (each checkpoint checked as :func:`load_dense` does)."""
    return {str(seed): load_dense(checkpoint_dir, seed, splits)[1]["weights"] for seed in check_seeds(seeds)}
