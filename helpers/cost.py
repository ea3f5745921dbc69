"""What a network costs: its weights, non-zero weights, sparsity, multiply-adds and bytes.

Every counter of the report lives here, for the study's :class:`~helpers.model.MLP` (dense
or pruned, zeros stored) and for its compact forms (:mod:`helpers.compact`): a shrunk
``MLP`` or a :class:`~helpers.compact.SparseMLP` with CSR layers.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .checks import positive_int
from .compact import SparseMLP, layer_weights, save_compact
from .model import MLP, linear_layers
from .pruning import prunable_layers


def count_weights(model: nn.Module) -> int:
    """Number of weights (elements of every ``nn.Linear`` weight) in ``model``."""
    return sum(m.weight.numel() for _, m in linear_layers(model))


def count_nonzero_weights(model: nn.Module) -> int:
    """Number of non-zero weights over every ``nn.Linear`` of ``model``."""
    return sum(int(torch.count_nonzero(m.weight)) for _, m in linear_layers(model))


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights in every ``nn.Linear`` of ``model``, by layer name."""
    return {
        name: 1.0 - int(torch.count_nonzero(layer.weight)) / layer.weight.numel()
        for name, layer in linear_layers(model)
    }


def sparsity(model: nn.Module, prune_last: bool = False) -> float:
    """Fraction of zero weights over the prunable layers of ``model`` taken together
    (:func:`helpers.pruning.prunable_layers`)."""
    layers = prunable_layers(model, prune_last)
    zeros = sum(layer.weight.numel() - int(torch.count_nonzero(layer.weight)) for _, layer in layers)
    return zeros / sum(layer.weight.numel() for _, layer in layers)


def live_neurons(model: nn.Module) -> list[torch.Tensor]:
    """Per hidden layer of a bias-free ReLU network (its ``nn.Linear`` layers in order), the
    boolean mask of the neurons that can affect the logits.

    A neuron with no non-zero weight from a live input outputs relu(0) = 0; one with no non-zero
    weight to a live neuron of the next layer (or to a logit) is read by nothing. Either kind is
    dead, and its death can kill others, so both rules are applied until nothing changes. The
    network's inputs and logits are always live.
    """
    nonzero = [m.weight.detach() != 0 for _, m in linear_layers(model)]
    live = [torch.ones(w.shape[0], dtype=torch.bool, device=w.device) for w in nonzero[:-1]]
    changed = True
    while changed:
        changed = False
        for i in range(len(live)):
            incoming = nonzero[i] if i == 0 else nonzero[i][:, live[i - 1]]
            outgoing = nonzero[i + 1] if i + 1 == len(live) else nonzero[i + 1][live[i + 1]]
            now = live[i] & incoming.any(dim=1) & outgoing.any(dim=0)
            if not torch.equal(now, live[i]):
                live[i], changed = now, True
    return live


def remaining_weights(model: nn.Module) -> int:
    """Weights a compact form of ``model`` must store: the non-zero weights between live
    neurons (:func:`live_neurons`). A dead neuron takes with it its row in its own layer and its
    column in the next, whatever pruned it: for a unit-pruned network these are the removed
    neurons; for a weight-pruned one, neurons left with no incoming or no outgoing weight."""
    nonzero = [m.weight.detach() != 0 for _, m in linear_layers(model)]
    live = live_neurons(model)
    total = 0
    for w, rows, cols in zip(nonzero, [*live, None], [None, *live]):
        if rows is not None:
            w = w[rows]
        if cols is not None:
            w = w[:, cols]
        total += int(w.sum())
    return total


def _nnz(w: torch.Tensor) -> int:
    if w.layout == torch.sparse_csr:
        return int(torch.count_nonzero(w.values()))
    return int(torch.count_nonzero(w))


def nonzero_params(model: MLP | SparseMLP) -> int:
    """Number of non-zero weights of ``model`` (stored zeros of a CSR layer not counted)."""
    return sum(_nnz(w) for w in layer_weights(model))


def dense_params(model: MLP | SparseMLP) -> int:
    """Number of weights ``model`` would have as a dense network of its own widths."""
    return sum(math.prod(w.shape) for w in layer_weights(model))


def macs_per_image(model: MLP | SparseMLP, *, executed: bool = False) -> int:
    r"""Multiply-adds one image costs ``model``.

    By default the theoretical count: one multiply-add per non-zero weight (so
    :math:`\sum_i \text{in}_i \cdot \text{out}_i` for a dense network, the number of
    non-zeros for a sparse one, the shrunk :math:`\sum_i \text{in}_i \cdot \text{out}_i` for a
    compacted one). With ``executed=True``, what the stored formats actually compute:
    every weight of a dense-stored layer, the stored entries of a CSR layer.
    """
    if not executed:
        return nonzero_params(model)
    return sum(
        w.values().numel() if w.layout == torch.sparse_csr else w.numel() for w in layer_weights(model)
    )


def compression_ratio(dense: MLP | SparseMLP, compact: MLP | SparseMLP) -> float:
    """Weights of the dense network over non-zero weights of ``compact`` (inf if none)."""
    nnz = nonzero_params(compact)
    return dense_params(dense) / nnz if nnz else math.inf


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor's elements occupy: for CSR, values + column + row-pointer indices,
    each at its own dtype's size."""
    if t.layout == torch.sparse_csr:
        return sum(
            p.numel() * p.element_size() for p in (t.values(), t.col_indices(), t.crow_indices())
        )
    return t.numel() * t.element_size()


def memory_bytes(model: MLP | SparseMLP) -> int:
    """Bytes the weights of ``model`` occupy in memory (see :func:`tensor_bytes`).

    A dense or compacted :class:`MLP` costs 4 bytes per float32 weight; a CSR layer with
    ``nnz`` stored entries, ``out`` rows and int32 indices costs ``4 nnz + 4 nnz + 4 (out + 1)``.
    """
    return sum(tensor_bytes(w) for w in layer_weights(model))


def disk_bytes(model: MLP | SparseMLP) -> int:
    """Size in bytes of the file :func:`helpers.compact.save_compact` writes for ``model``,
    measured by writing it to a temporary folder and reading its size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_compact(model, Path(tmp) / "model.pt")
        return path.stat().st_size


def training_macs_per_image(widths: Sequence[int]) -> int:
    r"""Multiply-adds one training image costs a bias-free MLP of ``widths``.

    Per layer of ``in`` x ``out`` weights: the forward product, the weight gradient, and the
    input gradient, each :math:`\text{in} \cdot \text{out}`, except the first layer's input
    gradient, which autograd skips because the images do not require a gradient:
    :math:`3 \sum_i \text{in}_i \text{out}_i - \text{in}_1 \text{out}_1`. Element-wise work
    (ReLU, loss, optimiser) is not counted.
    """
    widths = [positive_int("width", w) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths must hold at least an input and an output width, got {widths}")
    per_layer = [a * b for a, b in zip(widths[:-1], widths[1:])]
    return 3 * sum(per_layer) - per_layer[0]
