"""One-shot magnitude pruning of ``nn.Linear`` layers: single weights or whole neurons.

Both methods rank within each prunable layer separately and remove
``round(k / 100 * n)`` of its n weights (or n output neurons), the count
``torch.nn.utils.prune`` uses. They return a pruned deep copy and never change the
model they are given. Pruned weights are stored as exact zeros in the copy's
weight tensors; the mask of a pruned model is therefore ``weight != 0``.

"Prunable" layers are every ``nn.Linear`` in module order except the last one
(the logits layer), unless ``prune_last=True``. Layers must be bias-free, as in the
study's network: a bias would keep a "removed" neuron alive (its output stays
``relu(bias)``), so a model with biases is refused rather than pruned half-way.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .checks import in_range
from .compact import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_DENSITY, SparseMLP, compact_units, to_sparse
from .model import MLP, linear_layers

Masks = dict[str, torch.Tensor]
"""Layer name -> boolean tensor of the weight's shape, True where the weight is kept."""


STUDY_KS: tuple[float, ...] = (0, 25, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99)
"""The study's sparsity levels, in percent."""


def check_k(k: float) -> float:
    """Validate a sparsity level given in percent; accepted range 0 <= k < 100 (``TypeError``
    for what is not a number)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"k must be a number of percent in [0, 100), got {k!r}")
    return in_range("k", k, 0, 100, high_open=True, accepted="a percentage in [0, 100)")


def n_to_prune(k: float, n: int) -> int:
    """How many of ``n`` elements a level of ``k`` percent removes: ``round(k / 100 * n)``
    (``k`` trusted: checked where it entered, by :func:`check_k`)."""
    return round(k / 100.0 * n)


def prunable_layers(model: nn.Module, prune_last: bool = False) -> list[tuple[str, nn.Linear]]:
    """The ``nn.Linear`` layers pruning acts on: all but the last one unless ``prune_last``.

    Raises ``TypeError`` for anything but an ``nn.Module``, and ``ValueError`` for a model with
    no ``nn.Linear``, with a biased ``nn.Linear``, or whose only layer is the logits layer
    while ``prune_last`` is False.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module to prune, got {type(model).__name__}")
    layers = linear_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to prune")
    biased = [name for name, layer in layers if layer.bias is not None]
    if biased:
        raise ValueError(f"{type(model).__name__} has nn.Linear layers with a bias ({', '.join(biased)}); "
                         "pruning here handles bias-free layers only, as in the study's network "
                         "(build them with bias=False)")
    chosen = layers if prune_last else layers[:-1]
    if not chosen:
        raise ValueError(f"{type(model).__name__}'s only nn.Linear ({layers[0][0]}) is the logits layer, "
                         "left dense unless prune_last=True")
    return chosen


def weight_scores(weight: torch.Tensor) -> torch.Tensor:
    """What weight pruning ranks: |w| of every entry of ``weight``, flattened (1-D)."""
    return weight.detach().abs().reshape(-1)


def unit_scores(weight: torch.Tensor) -> torch.Tensor:
    """What unit pruning ranks: the L2 norm of every output neuron's weights, the rows of a
    PyTorch ``nn.Linear``'s (out, in) weight (dimension 0), one score per neuron (1-D)."""
    if weight.dim() != 2:
        raise ValueError(f"unit pruning needs a 2-D (out, in) weight, got shape {tuple(weight.shape)}")
    return torch.linalg.vector_norm(weight.detach(), ord=2, dim=1)


def keep_mask(scores: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Boolean mask over the 1-D ``scores``: False at the ``n_prune`` smallest, True elsewhere.

    Ties are broken as ``torch.topk`` breaks them, as ``torch.nn.utils.prune`` does.
    """
    if not n_prune:
        return torch.ones_like(scores, dtype=torch.bool)
    # the n_prune-th smallest score by selection is about 10x faster than torch.topk's partial sort
    # of a million weights; when exactly n_prune scores are at most it, no tie straddles the cut
    # and they are the very entries topk would pick; otherwise topk breaks the tie
    cut = torch.kthvalue(scores, n_prune).values
    kept = scores > cut
    if scores.numel() - int(kept.sum()) == n_prune:
        return kept
    mask = torch.ones_like(scores, dtype=torch.bool)
    mask[torch.topk(scores, n_prune, largest=False).indices] = False
    return mask


def weight_mask(weight: torch.Tensor, k: float) -> torch.Tensor:
    """Boolean mask keeping all but the ``round(k / 100 * n)`` smallest-|w| entries of ``weight``
    (:func:`weight_scores`, :func:`keep_mask`), in the weight's shape.

    Ties are broken as ``torch.nn.utils.prune.l1_unstructured`` breaks them (``torch.topk``).
    """
    return keep_mask(weight_scores(weight), n_to_prune(k, weight.numel())).reshape(weight.shape)


def unit_mask(weight: torch.Tensor, k: float) -> torch.Tensor:
    """Boolean mask zeroing the ``round(k / 100 * out)`` output neurons of smallest L2 norm
    (:func:`unit_scores`, :func:`keep_mask`).

    A neuron of a PyTorch ``nn.Linear`` is a *row* of its (out, in) weight (dimension 0),
    as in ``torch.nn.utils.prune.ln_structured(module, "weight", amount, n=2, dim=0)``.
    The mask has the weight's shape, with whole rows True or False.
    """
    keep_rows = keep_mask(unit_scores(weight), n_to_prune(k, weight.shape[0]))
    return keep_rows[:, None].expand_as(weight).clone()


def apply_masks(model: nn.Module, masks: Masks) -> nn.Module:
    """Zero, in place, the weights of ``model`` where ``masks`` is False; returns ``model``."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, mask in masks.items():
            modules[name].weight.mul_(mask.to(modules[name].weight.dtype))
    return model


def _prune(model: nn.Module, k: float, prune_last: bool, mask_fn) -> nn.Module:
    check_k(k)
    pruned = copy.deepcopy(model)
    return prune_in_place(pruned, k, mask_fn, prune_last)[0]


def prune_in_place(model: nn.Module, k: float, mask_fn: Callable[[torch.Tensor, float], torch.Tensor],
                   prune_last: bool = False) -> tuple[nn.Module, Masks]:
    """Prune every prunable layer of ``model`` in place to level ``k`` with ``mask_fn`` (a
    method's :attr:`Method.mask`); returns ``(model, masks)``."""
    masks = {name: mask_fn(layer.weight, k) for name, layer in prunable_layers(model, prune_last)}
    return apply_masks(model, masks), masks


def weight_prune(model: nn.Module, k: float, *, prune_last: bool = False) -> nn.Module:
    """Weight (unstructured) pruning: in each prunable layer, zero the ``round(k / 100 * n)``
    weights of smallest magnitude |w|, n being the layer's number of weights.

    Args:
        model: any module whose layers to prune are ``nn.Linear``; it is not modified.
        k: percentage of each layer's weights to remove, 0 <= k < 100.
        prune_last: also prune the last ``nn.Linear`` (the logits layer).

    Returns:
        A deep copy of ``model`` with the pruned weights set to zero.
    """
    return _prune(model, k, prune_last, weight_mask)


def unit_prune(model: nn.Module, k: float, *, prune_last: bool = False) -> nn.Module:
    """Unit (structured) pruning: in each prunable layer, zero the ``round(k / 100 * out)``
    output neurons whose weight rows (dimension 0 of the (out, in) weight) have the
    smallest L2 norm.

    Args:
        model: any module whose layers to prune are ``nn.Linear``; it is not modified.
        k: percentage of each layer's output neurons to remove, 0 <= k < 100.
        prune_last: also prune the last ``nn.Linear`` (its outputs are the logits).

    Returns:
        A deep copy of ``model`` with the pruned neurons' weight rows set to zero.
    """
    return _prune(model, k, prune_last, unit_mask)


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """The LAMP score of every weight (Lee et al. 2021), in the weight's shape: ``w**2`` divided
    by the sum of ``w**2`` over the weights of the same layer at least as large (itself
    included; among equal weights, those sorted after it). Ranked across layers, it prunes
    each layer in proportion to what its weights are worth within it, and never empties one:
    every layer's largest weight scores 1."""
    squared = weight.detach().reshape(-1).double() ** 2
    order = torch.argsort(squared, stable=True)
    ascending = squared[order]
    at_least = torch.flip(torch.cumsum(torch.flip(ascending, [0]), 0), [0])
    scores = torch.empty_like(squared)
    scores[order] = ascending / at_least
    return scores.reshape(weight.shape)


def global_weight_prune(model: nn.Module, k: float, *, prune_last: bool = False,
                        scores: Callable[[torch.Tensor], torch.Tensor] = weight_scores) -> nn.Module:
    """Weight pruning with one ranking over all prunable layers together: zero the
    ``round(k / 100 * N)`` weights of smallest ``scores`` (|w| by default, as
    ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``; :func:`lamp_scores`
    for LAMP), N being the prunable layers' total number of weights, wherever they are. Layers
    then end up with different sparsities.

    Returns a pruned deep copy; ``model`` is not modified.
    """
    check_k(k)
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned, prune_last)
    flat = torch.cat([scores(layer.weight).reshape(-1) for _, layer in layers])
    keep = keep_mask(flat, n_to_prune(k, flat.numel()))
    masks, start = {}, 0
    for name, layer in layers:
        n = layer.weight.numel()
        masks[name] = keep[start : start + n].reshape(layer.weight.shape)
        start += n
    return apply_masks(pruned, masks)


def random_weight_prune(model: nn.Module, k: float, *, seed: int, prune_last: bool = False) -> nn.Module:
    """Random pruning, the floor of Blalock et al. (2020): in each prunable layer, zero as many
    weights as magnitude pruning does (``round(k / 100 * n)``), chosen uniformly at random by a
    generator seeded with ``seed``. Returns a pruned deep copy; ``model`` is not modified."""
    check_k(k)
    pruned = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    masks = {}
    for name, layer in prunable_layers(pruned, prune_last):
        n = layer.weight.numel()
        keep = torch.ones(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=generator)[: n_to_prune(k, n)]] = False
        masks[name] = keep.reshape(layer.weight.shape)
    return apply_masks(pruned, masks)


def emptied_layers(model: nn.Module, k: float, method_name: str, prune_last: bool = False) -> list[str]:
    """The prunable layers of ``model`` that the method called ``method_name`` would empty at
    level ``k``: ``round(k / 100 * n)`` equals their n weights (or n neurons)."""
    return [name for name, layer in prunable_layers(model, prune_last)
            if n_to_prune(k, n := units(layer, method_name)) == n]


def units(layer: nn.Linear, method_name: str) -> int:
    """How many units (weights or neurons) of ``layer`` the method called ``method_name`` ranks."""
    return layer.weight.shape[0] if method(method_name).unit == "neuron" else layer.weight.numel()


def check_levels_keep_every_layer(model: nn.Module, ks, method_name: str, prune_last: bool = False) -> None:
    """Refuse levels at which the method called ``method_name`` would remove every weight (or
    neuron) of a prunable layer of ``model``: the network would then output constant logits,
    and its accuracy would say nothing about pruning. The error names the level, the layer and
    how much it holds."""
    unit = method(method_name).unit
    for k in ks:
        emptied = emptied_layers(model, k, method_name, prune_last)
        if emptied:
            layers = dict(prunable_layers(model, prune_last))
            sizes = ", ".join(f"{name} has {units(layers[name], method_name)} {unit}s" for name in emptied)
            raise ValueError(f"k = {k:g} % would remove every {unit} of {', '.join(emptied)} ({sizes}; "
                             f"round({k:g} / 100 * n) = n): choose levels that leave each layer at least one {unit}")


def masks_of(model: nn.Module, prune_last: bool = False) -> Masks:
    """The current masks (``weight != 0``) of the prunable layers of ``model``."""
    return {name: layer.weight.detach() != 0 for name, layer in prunable_layers(model, prune_last)}


def _sparse_form(model: MLP, *, max_density: float = DEFAULT_MAX_DENSITY,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> SparseMLP:
    return to_sparse(model, max_density=max_density, chunk_size=chunk_size)


def _shrunk_form(model: MLP, **_sparse_options) -> MLP:
    # the CSR options do not apply: a shrunk network is dense
    return compact_units(model)


@dataclass(frozen=True)
class Method:
    """Everything the report knows about one pruning method, in one place.

    Attributes:
        name: the method's name in parameters and results (``"weight"``, ``"unit"``).
        unit: what a level k counts: ``"weight"`` or ``"neuron"``.
        mask: ``(weight, k) -> bool mask`` (True = kept), the weight's shape.
        scores: ``weight -> 1-D tensor``, one score per unit ranked (the smallest go first).
        score_label: what :attr:`scores` measures, for axes.
        log_scale: whether the scores span decades (figures draw them on log axes).
        compact: ``(pruned MLP, **sparse options) -> model``, the form in which its savings
            are real (:mod:`helpers.compact`), computing the pruned network's logits.
        shrinks: whether its compact form is a smaller dense network (unit pruning), which has
            no zeros left to skip: its multiply-adds are all it stores rather than its non-zero
            weights (:func:`helpers.cost.macs_per_image`), and it never trains or runs in CSR.
    """

    name: str
    unit: str
    mask: Callable[[torch.Tensor, float], torch.Tensor]
    scores: Callable[[torch.Tensor], torch.Tensor]
    score_label: str
    log_scale: bool
    compact: Callable[..., nn.Module]
    shrinks: bool

    def removed(self, mask: torch.Tensor) -> int:
        """How many units (weights or neurons) a mask of this method removes from its layer."""
        removed = int((~mask).sum())
        return removed if self.unit == "weight" else removed // mask.shape[1]


METHODS: dict[str, Method] = {
    "weight": Method("weight", "weight", weight_mask, weight_scores, "|w|", True, _sparse_form, False),
    "unit": Method("unit", "neuron", unit_mask, unit_scores, "L2 norm of a neuron's weights", False,
                   _shrunk_form, True),
}
"""The pruning methods of the study, by name."""


def method(name: str) -> Method:
    """The :class:`Method` called ``name``; ``ValueError`` naming the accepted ones otherwise."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown pruning method {name!r}; accepted: {sorted(METHODS)}")
    return METHODS[name]


def prune(model: nn.Module, k: float, method_name: str, *, prune_last: bool = False) -> nn.Module:
    """Prune a deep copy of ``model`` by the method called ``method_name`` (:func:`weight_prune`
    or :func:`unit_prune`) at level ``k``; ``model`` is not modified."""
    return _prune(model, k, prune_last, method(method_name).mask)


def layer_scores(model: nn.Module, method_name: str, prune_last: bool = False) -> dict[str, torch.Tensor]:
    """Per prunable layer, the scores the method called ``method_name`` ranks (|w| of every
    weight, or the L2 norm of every neuron's weight row)."""
    scores = method(method_name).scores
    return {name: scores(layer.weight) for name, layer in prunable_layers(model, prune_last)}


def thresholds(model: nn.Module, k: float, method_name: str, prune_last: bool = False) -> dict[str, float]:
    """Per prunable layer, the largest score (|w|, or a neuron's row norm) that the method called
    ``method_name`` removes at level ``k``; NaN where nothing is removed."""
    out = {}
    for name, scores in layer_scores(model, method_name, prune_last).items():
        n_prune = n_to_prune(k, scores.numel())
        out[name] = float(torch.kthvalue(scores, n_prune).values) if n_prune else math.nan
    return out
