"""Prune a trained model at every level with every method and measure the result."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from .data import Split
from .model import count_nonzero_weights
from .pruning import PRUNERS, check_k, layer_sparsity, sparsity
from .training import dense_checkpoint, evaluate, load_checkpoint

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
