"""Compact forms of pruned networks: physically smaller dense networks and CSR layers, and their files.

Zeroed weights in a dense tensor save neither time nor memory. This module turns a
pruned :class:`~helpers.model.MLP` into a form that does:

- :func:`compact_units` rebuilds a unit-pruned network as a smaller dense
  :class:`~helpers.model.MLP`: every hidden neuron whose weight row is zero (or whose
  outgoing weights are all zero) is dropped together with the matching input column
  of the next layer. The result computes the same logits (up to summation order).
- :func:`to_sparse` stores each sufficiently sparse layer of a weight-pruned network
  in compressed sparse row (CSR) format with 32-bit indices and runs it with
  ``torch.sparse.mm`` (:class:`SparseMLP`); denser layers stay dense.
- :func:`save_compact` writes either form to a file (what its size on disk means).

The sparse kernel was chosen by measurement (whole study network weight-pruned at
k = 99 %, torch 2.14.1 with MKL, AMD EPYC): ``torch.sparse.mm(W_csr, h)`` with the
activations transposed to ``(features, images)`` ran a batch of 256 in 1.2 ms with int32
indices and 1.4 ms with int64 ones, against 10 ms for COO and 24 ms for
``h @ W_csr.T`` (dense times sparse); one image took 0.05 ms (CSR int32), 0.09 ms (int64),
0.7 ms (COO). SciPy is not a dependency and was not installed. See
:data:`DEFAULT_MAX_DENSITY` and :data:`DEFAULT_CHUNK_SIZE` for the two other choices.
"""

from __future__ import annotations

import copy
import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from . import io
from .checks import positive_int
from .model import MLP, linear_layers

DEFAULT_MAX_DENSITY: float = 0.15
"""A layer is stored in CSR when at most this fraction of its weights is non-zero.

Measured with ``torch.sparse.mm`` against ``F.linear`` on this project's layer shapes
(one thread, batches 1 and 256): CSR breaks even near density 0.2 and wins at 0.15 on
every shape (1.0-2.0x), at 0.10 by 2-4x, at 0.01 by 4-20x.
"""

DEFAULT_CHUNK_SIZE: int = 256
"""Images a :class:`SparseMLP` pushes through the network at once.

A sparse-times-dense product reads, for every stored weight, a whole row of the
activations; with 10,000 images such a row is 40 kB and the activations no longer stay
in cache. Splitting the batch keeps them there (3-4x faster at 10,000 images).
"""

CSR_BETA_WARNING = "Sparse CSR tensor support is in beta state"


# --------------------------------------------------------------------------- validation


def _check_mlp(model: object) -> list[torch.Tensor]:
    """The weights of ``model`` (an :class:`MLP` without biases), detached, in layer order."""
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a helpers.model.MLP, got {type(model).__name__}")
    layers = [m for _, m in linear_layers(model)]
    for name, layer in linear_layers(model):
        if layer.bias is not None:
            raise ValueError(f"layer {name} has a bias; compact forms need bias-free layers")
    return [layer.weight.detach() for layer in layers]


# --------------------------------------------------------------------------- unit compaction


def _live_units(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per hidden layer, the boolean mask of neurons that can affect the logits.

    Neuron j of hidden layer i is dead when its weight row in layer i is zero (ReLU of 0
    is 0 without a bias) or its column in layer i + 1 is zero (nothing reads it).
    A layer with no live neuron keeps its first one, so every width stays >= 1.
    """
    live = []
    for w, w_next in zip(weights[:-1], weights[1:]):
        keep = (w != 0).any(dim=1) & (w_next != 0).any(dim=0)
        if not keep.any():
            keep = keep.clone()
            keep[0] = True
        live.append(keep)
    return live


def compact_units(model: MLP) -> MLP:
    r"""Rebuild a unit-pruned :class:`MLP` as a physically smaller dense :class:`MLP`.

    Every hidden neuron that cannot affect the output is removed: the neurons whose weight
    row (dimension 0 of the ``(out, in)`` weight) is all zero, and those whose column in
    the next layer is all zero. Removing neuron :math:`j` of layer :math:`i` deletes row
    :math:`j` of ``fc_i`` and column :math:`j` of ``fc_{i+1}``. In a bias-free ReLU network
    both kinds of neuron output or pass on exactly zero, so the compact network computes
    the same logits (up to floating-point summation order). The input layer keeps all its
    inputs and the logits layer all its outputs.

    A hidden layer with no live neuron left (as when a level removes every neuron of a
    layer) keeps a single all-zero neuron, since :class:`MLP` needs widths
    >= 1; the logits are then exactly zero, as in the pruned network.

    Args:
        model: a bias-free :class:`MLP`, typically from
            :func:`helpers.pruning.unit_prune`; it is not modified.

    Returns:
        A new :class:`MLP` on the CPU with widths
        ``(in, live_1, ..., live_{N-1}, out)`` and copies of the kept weights.
        For the study's network unit-pruned at k = 90 % these are 784-100-100-50-20-10.

    Raises:
        TypeError: ``model`` is not an :class:`MLP`.
        ValueError: a layer of ``model`` has a bias.
    """
    weights = [w.cpu() for w in _check_mlp(model)]
    live = _live_units(weights)
    keep_in = [None, *live]  # columns kept per layer (None: all inputs)
    keep_out = [*live, None]  # rows kept per layer (None: all logits)
    kept = []
    for w, cols, rows in zip(weights, keep_in, keep_out):
        if rows is not None:
            w = w[rows]
        if cols is not None:
            w = w[:, cols]
        kept.append(w)
    small = MLP(hidden=[int(m.sum()) for m in live], in_features=weights[0].shape[1],
                n_classes=weights[-1].shape[0])
    with torch.no_grad():
        for (_, layer), w in zip(linear_layers(small), kept):
            layer.weight.copy_(w)
    return small.eval()


def kept_positions(model: MLP) -> list[torch.Tensor]:
    """For each layer of ``model``, the flat positions in its ``(out, in)`` weight of the weights
    :func:`compact_units` keeps, in the compact layer's row-major order: ``compact_units(model)``'s
    layer ``i`` weight is ``model``'s ``weight.flatten()[positions[i]]``, reshaped."""
    weights = _check_mlp(model)
    live = _live_units([w.cpu() for w in weights])
    positions = []
    for w, rows, cols in zip(weights, [*live, None], [None, *live]):
        rows = torch.arange(w.shape[0]) if rows is None else rows.nonzero().squeeze(1)
        cols = torch.arange(w.shape[1]) if cols is None else cols.nonzero().squeeze(1)
        positions.append((rows[:, None] * w.shape[1] + cols[None, :]).flatten())
    return positions


def restore_units(small: MLP, pruned: MLP) -> MLP:
    """The inverse of :func:`compact_units`: a deep copy of ``pruned`` whose live weights (the
    rows and columns :func:`compact_units` keeps) are replaced by ``small``'s, which must have
    the shape of ``compact_units(pruned)``. The weights of dead neurons keep ``pruned``'s values;
    they cannot affect the logits. Used to train the compact form and report the masked one."""
    weights = [w.cpu() for w in _check_mlp(pruned)]
    live = _live_units(weights)
    restored = copy.deepcopy(pruned)
    small_layers = [layer for _, layer in linear_layers(small)]
    if [layer.weight.shape for layer in small_layers] != [
            (int(r.sum()) if r is not None else w.shape[0], int(c.sum()) if c is not None else w.shape[1])
            for w, r, c in zip(weights, [*live, None], [None, *live])]:
        raise ValueError("small must have the shape of compact_units(pruned)")
    with torch.no_grad():
        for (_, layer), w_small, rows, cols in zip(linear_layers(restored), small_layers, [*live, None], [None, *live]):
            rows = torch.arange(layer.weight.shape[0]) if rows is None else rows.nonzero().squeeze(1)
            cols = torch.arange(layer.weight.shape[1]) if cols is None else cols.nonzero().squeeze(1)
            layer.weight[rows.unsqueeze(1).to(layer.weight.device), cols.to(layer.weight.device)] = (
                w_small.weight.detach().to(layer.weight.device))
    return restored


# --------------------------------------------------------------------------- sparse network


def csr_tensor(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int], *,
               check_invariants: bool = True) -> torch.Tensor:
    """The CSR matrix of ``shape`` with row pointers ``crow``, column indices ``cols`` and
    ``values``, built without torch's note that CSR support is in beta (it would print under every
    notebook cell that builds or trains one); ``check_invariants=False`` for a pattern valid by
    construction."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CSR_BETA_WARNING)
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=check_invariants)


def _csr(weight: torch.Tensor, index_dtype: torch.dtype) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CSR_BETA_WARNING)
        csr = weight.to_sparse_csr()
    return csr_tensor(csr.crow_indices().to(index_dtype), csr.col_indices().to(index_dtype), csr.values(), csr.shape)


class SparseMLP(nn.Module):
    r"""Inference-only ReLU perceptron whose layers are CSR or dense ``(out, in)`` weights.

    Computes the same function as :class:`MLP` with these weights:
    :math:`\text{logits} = W_N\,\text{relu}(\dots\text{relu}(W_1 x))`. The activations are
    kept transposed, ``(features, images)``, so that a CSR layer is one
    ``torch.sparse.mm(W, h)`` (MKL sparse BLAS on CPU builds that have it). A single image
    takes the matrix-vector path (``W @ v``). Larger batches are split into chunks of at
    most ``chunk_size`` images (see :data:`DEFAULT_CHUNK_SIZE`). Without any CSR layer the
    network runs like :class:`MLP`, with ``F.linear`` on whole batches.

    The weights are non-trainable parameters (``requires_grad=False``), so
    ``model.parameters()`` yields them and :func:`helpers.training.evaluate` works.
    Build one with :func:`to_sparse`.

    Args:
        weights: one 2-D float tensor per layer, ``(out, in)``, in ``torch.strided`` or
            ``torch.sparse_csr`` layout; consecutive shapes must chain.
        chunk_size: largest number of images per pass through the network, >= 1.
    """

    def __init__(self, weights: Sequence[torch.Tensor], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__()
        self.chunk_size = positive_int("chunk_size", chunk_size)
        if len(weights) < 1:
            raise ValueError(f"weights must hold at least one layer, got {len(weights)}")
        for i, w in enumerate(weights):
            if w.layout not in (torch.strided, torch.sparse_csr) or w.dim() != 2:
                raise ValueError(
                    f"weights[{i}] must be a 2-D strided or sparse_csr tensor, "
                    f"got layout {w.layout} with shape {tuple(w.shape)}"
                )
        for i, (w, w_next) in enumerate(zip(weights[:-1], weights[1:])):
            if w.shape[0] != w_next.shape[1]:
                raise ValueError(
                    f"weights[{i}] has {w.shape[0]} outputs but weights[{i + 1}] takes "
                    f"{w_next.shape[1]} inputs"
                )
        self.layer_names = tuple(f"fc{i}" for i in range(1, len(weights) + 1))
        for name, w in zip(self.layer_names, weights):
            self.register_parameter(name, nn.Parameter(w.detach(), requires_grad=False))
        self.widths = (weights[0].shape[1], *(w.shape[0] for w in weights))
        self._any_csr = any(w.layout == torch.sparse_csr for w in weights)

    def weights(self) -> list[torch.Tensor]:
        """The layers' weights in order, CSR or dense."""
        return [getattr(self, name) for name in self.layer_names]

    @property
    def formats(self) -> tuple[str, ...]:
        """Per layer, ``"csr"`` or ``"dense"``."""
        return tuple("csr" if w.layout == torch.sparse_csr else "dense" for w in self.weights())

    def _pass(self, h: torch.Tensor) -> torch.Tensor:
        """Logits for transposed activations ``h`` of shape ``(in, n)`` or ``(in,)``."""
        *hidden, last = self.weights()
        for w in hidden:
            h = (w @ h).relu_()  # in place on the fresh product: one allocation less
        return last @ h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1) if x.dim() > 2 else x
        if x.dim() != 2 or x.shape[1] != self.widths[0]:
            raise ValueError(
                f"expected input of shape (N, {self.widths[0]}) or (N, ...) with "
                f"{self.widths[0]} features per image, got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            return x.new_zeros(0, self.widths[-1])
        if not self._any_csr:  # a dense network: the usual orientation, no chunks
            *hidden, last = self.weights()
            for w in hidden:
                x = nn.functional.linear(x, w).relu_()
            return nn.functional.linear(x, last)
        if x.shape[0] == 1:
            return self._pass(x[0])[None]
        chunks = [self._pass(c.t().contiguous()).t() for c in x.split(self.chunk_size)]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def to_sparse(
    model: MLP,
    *,
    max_density: float = DEFAULT_MAX_DENSITY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    index_dtype: torch.dtype = torch.int32,
) -> SparseMLP:
    r"""Store the sparse layers of a weight-pruned :class:`MLP` in CSR format.

    A layer goes to CSR when its density (non-zero weights / weights) is at most
    ``max_density``; the others, the logits layer of the study (left dense by pruning)
    among them, stay dense, where a dense kernel is faster.

    Args:
        model: a bias-free :class:`MLP`, typically from :func:`helpers.pruning.weight_prune`;
            it is not modified.
        max_density: largest density stored as CSR, 0 <= max_density <= 1
            (1 stores every layer as CSR). Default :data:`DEFAULT_MAX_DENSITY`.
        chunk_size: largest number of images per pass, >= 1. Default
            :data:`DEFAULT_CHUNK_SIZE`.
        index_dtype: ``torch.int32`` (half the index memory) or ``torch.int64``.

    Returns:
        A :class:`SparseMLP` on the CPU giving the same logits as ``model``.

    Raises:
        TypeError: ``model`` is not an :class:`MLP`.
        ValueError: an argument is outside the accepted values given above.
    """
    if isinstance(max_density, bool) or not isinstance(max_density, numbers.Real) or not (
        0.0 <= max_density <= 1.0
    ):
        raise ValueError(f"max_density must be a fraction in [0, 1], got {max_density!r}")
    if index_dtype not in (torch.int32, torch.int64):
        raise ValueError(f"index_dtype must be torch.int32 or torch.int64, got {index_dtype!r}")
    positive_int("chunk_size", chunk_size)
    weights = [w.cpu().contiguous() for w in _check_mlp(model)]
    stored = []
    for w in weights:
        density = int(torch.count_nonzero(w)) / w.numel()
        stored.append(_csr(w, index_dtype) if density <= max_density else w.clone())
    return SparseMLP(stored, chunk_size=chunk_size).eval()


# --------------------------------------------------------------------------- saving


def save_compact(model: MLP | SparseMLP, path: str | os.PathLike) -> Path:
    """Save the compact form of ``model`` atomically with ``torch.save``; return ``path``.

    An :class:`MLP` is saved as its state dict and widths (float32: 4 bytes per weight).
    A :class:`SparseMLP` is saved per layer as plain tensors: a dense layer's weight, or a
    CSR layer's float32 ``values``, its ``crow_indices`` as int32 and its ``col_indices``
    in the smallest signed integer type that holds the layer's input count (int16 for
    the study's layers; int32 beyond 32,767 inputs). The values are stored exactly: the file
    holds everything needed to rebuild the same network.

    Raises:
        TypeError: ``model`` is neither an :class:`MLP` nor a :class:`SparseMLP`.
    """
    if isinstance(model, SparseMLP):
        layers = []
        for w in model.weights():
            if w.layout == torch.sparse_csr:
                col_dtype = torch.int16 if w.shape[1] <= torch.iinfo(torch.int16).max + 1 else torch.int32
                layers.append({
                    "shape": tuple(w.shape),
                    "values": w.values().detach().clone(),
                    "crow_indices": w.crow_indices().to(torch.int32),
                    "col_indices": w.col_indices().to(col_dtype),
                })
            else:
                layers.append({"shape": tuple(w.shape), "weight": w.detach().clone()})
        blob = {"kind": "sparse_mlp", "chunk_size": model.chunk_size, "layers": layers}
    elif isinstance(model, MLP):
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        blob = {"kind": "mlp", "widths": model.widths, "state_dict": state}
    else:
        raise TypeError(f"model must be an MLP or a SparseMLP, got {type(model).__name__}")
    io.save_torch(blob, path)
    return Path(path)


def layer_weights(model: MLP | SparseMLP) -> list[torch.Tensor]:
    """The weights of ``model``'s layers in order: dense ``(out, in)`` tensors, or CSR ones for
    the sparse layers of a :class:`SparseMLP`."""
    if isinstance(model, SparseMLP):
        return model.weights()
    if isinstance(model, MLP):
        return [m.weight.detach() for _, m in linear_layers(model)]
    raise TypeError(f"model must be an MLP or a SparseMLP, got {type(model).__name__}")
