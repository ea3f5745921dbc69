"""Prune a trained model at every level with every method and measure the result."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from .data import Split
from .model import count_nonzero_weights
from .pruning import PRUNERS, check_k, global_weight_prune, layer_sparsity, sparsity
from .recovery import finetune, gradual_prune
from .training import dense_checkpoint, evaluate, load_checkpoint, save_checkpoint

STUDY_KS: tuple[float, ...] = (0, 25, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99)
"""The study's sparsity levels, in percent."""


def check_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """Validate method names against :data:`helpers.pruning.PRUNERS`."""
    methods = tuple(methods)
    unknown = [m for m in methods if m not in PRUNERS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {sorted(PRUNERS)}, got {list(methods)}")
    return methods


def check_ks(ks: Iterable[float]) -> tuple[float, ...]:
    """Validate a non-empty list of sparsity levels (each 0 <= k < 100), sorted, without repeats."""
    ks = tuple(sorted({check_k(k) for k in ks}))
    if not ks:
        raise ValueError("ks must hold at least one sparsity level in [0, 100)")
    return ks


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


def sweep_seeds(
    checkpoint_dir: str,
    seeds: Sequence[int],
    test_split: Split,
    ks: Sequence[float] = STUDY_KS,
    methods: Sequence[str] = ("weight", "unit"),
    *,
    prune_last: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`sweep` for the dense model of every seed in ``checkpoint_dir``; adds a ``seed`` column."""
    frames = []
    for seed in seeds:
        model, _ = load_checkpoint(dense_checkpoint(checkpoint_dir, seed))
        frame = sweep(model, test_split, ks, methods, prune_last=prune_last, progress=progress)
        frames.append(frame.assign(seed=seed))
    return pd.concat(frames, ignore_index=True)


STRATEGIES = ("oneshot", "finetune", "gradual")
"""How a pruned model is obtained: pruned once from the dense model; pruned once, then
retrained with the mask fixed; or pruned gradually during retraining (cubic schedule)."""


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


def recovered(
    strategy: str,
    dense: nn.Module,
    dense_key: str,
    train_split: Split,
    method: str,
    k: float,
    seed: int,
    budget: RecoveryBudget,
    cache_dir: str | os.PathLike,
    prune_last: bool,
) -> nn.Module:
    """The model that ``strategy`` (``"finetune"`` or ``"gradual"``) makes of ``dense`` at level ``k``
    with ``budget``, loaded from ``cache_dir`` when this configuration was trained before
    (``dense_key`` identifies the dense model in the cache key)."""
    if strategy not in STRATEGIES[1:]:
        raise ValueError(f"strategy must be one of {list(STRATEGIES[1:])}, got {strategy!r}")
    config = {"dense": dense_key, "strategy": strategy, "method": method, "k": k, "seed": seed,
              "prune_last": prune_last, "train_size": len(train_split), **asdict(budget)}
    key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{strategy}-{method}-k{k:g}-seed{seed}-{key}.pt"
    if path.is_file():
        return load_checkpoint(path)[0]
    common = dict(epochs=budget.epochs, lr=budget.lr, batch_size=budget.batch_size, seed=seed,
                  prune_last=prune_last)
    if strategy == "finetune":
        model, _ = finetune(PRUNERS[method](dense, k, prune_last=prune_last), train_split, {}, **common)
    else:
        model, _ = gradual_prune(dense, train_split, {}, k=k, method=method, **common)
    save_checkpoint(model, path, config=config)
    return model


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
    ks = check_ks(ks)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"strategies must be a non-empty subset of {list(STRATEGIES)}, got {list(strategies)}")
    jobs = [(seed, strategy, k) for seed in seeds for strategy in strategies for k in ks
            if strategy == "oneshot" or k > 0]
    rows, dense = [], {}
    for seed, strategy, k in tqdm(jobs, desc=f"{method} pruning", disable=not progress):
        if seed not in dense:
            dense[seed] = load_checkpoint(dense_checkpoint(checkpoint_dir, seed))
        model, ckpt = dense[seed]
        if strategy == "oneshot":
            pruned = PRUNERS[method](model, k, prune_last=prune_last)
        else:
            pruned = recovered(strategy, model, ckpt.get("config", ""), splits["train"], method, k, seed,
                                budget, cache_dir, prune_last)
        rows.append({"seed": seed, "method": method, "strategy": strategy, "ranking": "layer", "k": k,
                     "epochs": 0 if strategy == "oneshot" else budget.epochs,
                     **measure(pruned, splits["test"], prune_last)})
    return pd.DataFrame(rows)


def global_sweep(
    checkpoint_dir: str | os.PathLike,
    seeds: Sequence[int],
    test_split: Split,
    ks: Sequence[float] = STUDY_KS,
    *,
    prune_last: bool = False,
) -> pd.DataFrame:
    """One-shot weight pruning with a single ranking across all prunable layers
    (:func:`helpers.pruning.global_weight_prune`) for the dense model of every seed.

    Returns rows like :func:`strategy_sweep` with ``ranking="global"`` and ``strategy="oneshot"``.
    """
    rows = []
    for seed in seeds:
        model, _ = load_checkpoint(dense_checkpoint(checkpoint_dir, seed))
        for k in check_ks(ks):
            pruned = global_weight_prune(model, k, prune_last=prune_last)
            rows.append({"seed": seed, "method": "weight", "strategy": "oneshot", "ranking": "global", "k": k,
                         "epochs": 0, **measure(pruned, test_split, prune_last)})
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
    dense, ckpt = load_checkpoint(dense_checkpoint(checkpoint_dir, seed))
    return {
        "dense": dense,
        "one-shot": PRUNERS[method](dense, k, prune_last=prune_last),
        "fine-tuned": recovered("finetune", dense, ckpt.get("config", ""), splits["train"], method, check_k(k),
                                seed, budget, cache_dir, prune_last),
    }
