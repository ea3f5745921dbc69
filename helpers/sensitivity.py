"""The sensitivity of each layer to pruning: one layer pruned at a time, the others left dense."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from .checks import positive_int
from .data import Split
from .model import linear_layers
from .pruning import METHODS, apply_masks, check_k, method as pruning_method
from .training import evaluate


def layer_sensitivity(
    model: nn.Module,
    test_split: Split,
    ks: Sequence[float],
    method: str | Sequence[str] = "weight",
    *,
    layers: Sequence[str] | None = None,
    batch_size: int = 10_000,
) -> pd.DataFrame:
    """Accuracy and loss when a single layer is pruned, the others left dense.

    For every layer in ``layers`` (default: every ``nn.Linear``, the logits layer included,
    each as its own row), every method in ``method`` (``"weight"``, ``"unit"`` or a list of
    them) and every level in ``ks``, only that layer is pruned, by the method's mask
    (:func:`helpers.pruning.weight_mask` or :func:`~helpers.pruning.unit_mask`), and the
    model is evaluated on ``test_split``. ``model`` is unchanged.

    Returns one row per layer x method x k with columns ``layer``, ``method``, ``k``,
    ``n_pruned`` (weights or neurons removed), ``layer_sparsity`` (fraction of the layer's
    weights removed), ``emptied`` (whether the level removed the whole layer: the logits are
    then constant, e.g. unit pruning of the 10-neuron logits layer at k >= 95, where
    round(9.5) = 10), ``accuracy`` and ``loss``.
    """
    methods = [method] if isinstance(method, str) else list(method)
    if not methods:
        raise ValueError(f"method must name at least one of {sorted(METHODS)}, got {method!r}")
    methods = [pruning_method(m) for m in methods]
    ks = [check_k(k) for k in ks]
    if not ks:
        raise ValueError("ks must hold at least one level in [0, 100), got none")
    names = [name for name, _ in linear_layers(model)]
    chosen = names if layers is None else list(layers)
    unknown = [name for name in chosen if name not in names]
    if unknown or not chosen:
        raise ValueError(f"unknown layer(s) {unknown or chosen!r}; accepted: {names}")
    positive_int("batch_size", batch_size)

    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    rows = []
    for name in chosen:
        weight = modules[name].weight
        original = weight.detach().clone()
        for m in methods:
            for k in ks:
                mask = m.mask(original, k)
                with torch.no_grad():
                    weight.copy_(original)
                apply_masks(work, {name: mask})
                rows.append({
                    "layer": name, "method": m.name, "k": k, "n_pruned": m.removed(mask),
                    "layer_sparsity": int((~mask).sum()) / mask.numel(), "emptied": not bool(mask.any()),
                    **{metric: value for metric, value in evaluate(work, test_split, batch_size).items()},
                })
        with torch.no_grad():
            weight.copy_(original)
    return pd.DataFrame(rows, columns=["layer", "method", "k", "n_pruned", "layer_sparsity", "emptied",
                                       "accuracy", "loss"])
