"""Make pruning's savings real: physically smaller and sparse networks, and what they cost.

Zeroed weights in a dense tensor save neither time nor memory. This module turns a
pruned :class:`~helpers.model.MLP` into a *compact form* that does, and measures it:

- :func:`compact_units` rebuilds a unit-pruned network as a smaller dense
  :class:`~helpers.model.MLP`: every hidden neuron whose weight row is zero (or whose
  outgoing weights are all zero) is dropped together with the matching input column
  of the next layer. The result computes the same logits (up to summation order).
- :func:`to_sparse` stores each sufficiently sparse layer of a weight-pruned network
  in compressed sparse row (CSR) format with 32-bit indices and runs it with
  ``torch.sparse.mm`` (:class:`SparseMLP`); denser layers stay dense.
- :func:`nonzero_params`, :func:`macs_per_image`, :func:`memory_bytes`,
  :func:`disk_bytes` give the sizes and the theoretical cost of either form,
  :func:`compare_speed` measures a compact form against the dense network side by
  side, and :func:`matmul_peak` and :func:`training_throughput` relate the training
  loop's speed to the machine's dense matrix-multiply peak.

The sparse kernel was chosen by measurement (whole study network weight-pruned at
k = 99 %, torch 2.14.1 with MKL, AMD EPYC): ``torch.sparse.mm(W_csr, h)`` with the
activations transposed to ``(features, images)`` ran a batch of 256 in 1.2 ms with int32
indices and 1.4 ms with int64 ones, against 10 ms for COO and 24 ms for
``h @ W_csr.T`` (dense times sparse); one image took 0.05 ms (CSR int32), 0.09 ms (int64),
0.7 ms (COO). SciPy is not a dependency and was not installed. See
:data:`DEFAULT_MAX_DENSITY` and :data:`DEFAULT_CHUNK_SIZE` for the two other choices.
"""

from __future__ import annotations

import math
import numbers
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from . import io
from .checks import non_negative_int, positive_int
from .model import MLP, STUDY_HIDDEN, linear_layers

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

_CSR_BETA_WARNING = "Sparse CSR tensor support is in beta state"


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


# --------------------------------------------------------------------------- sparse network


def _csr(weight: torch.Tensor, index_dtype: torch.dtype) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CSR_BETA_WARNING)
        csr = weight.to_sparse_csr()
        return torch.sparse_csr_tensor(
            csr.crow_indices().to(index_dtype),
            csr.col_indices().to(index_dtype),
            csr.values(),
            size=csr.shape,
            check_invariants=True,
        )


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
    layout: str = "csr",
    max_density: float = DEFAULT_MAX_DENSITY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    index_dtype: torch.dtype = torch.int32,
) -> SparseMLP:
    r"""Store the sparse layers of a weight-pruned :class:`MLP` in CSR format.

    A layer goes to CSR when its density (non-zero weights / weights) is at most
    ``max_density``; the others, the logits layer of the study (left dense by pruning)
    among them, stay dense, where a dense kernel is faster. ``layout="dense"`` keeps every
    layer dense (``max_density`` is then ignored), which gives the dense baseline in the
    same code path.

    Args:
        model: a bias-free :class:`MLP`, typically from :func:`helpers.pruning.weight_prune`;
            it is not modified.
        layout: ``"csr"`` or ``"dense"``.
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
    if layout not in ("csr", "dense"):
        raise ValueError(f"layout must be 'csr' or 'dense', got {layout!r}")
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
        stored.append(_csr(w, index_dtype) if layout == "csr" and density <= max_density else w.clone())
    return SparseMLP(stored, chunk_size=chunk_size).eval()


# --------------------------------------------------------------------------- saving


def save_compact(model: MLP | SparseMLP, path: str | os.PathLike) -> Path:
    """Save the compact form of ``model`` atomically with ``torch.save``; return ``path``.

    An :class:`MLP` is saved as its state dict and widths (float32: 4 bytes per weight).
    A :class:`SparseMLP` is saved per layer as plain tensors: a dense layer's weight, or a
    CSR layer's float32 ``values``, its ``crow_indices`` as int32 and its ``col_indices``
    in the smallest signed integer type that holds the layer's input count (int16 for
    the study's layers; int32 beyond 32,767 inputs). The values are stored exactly, so
    :func:`load_compact` gives back the same logits.

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


def load_compact(path: str | os.PathLike) -> MLP | SparseMLP:
    """Load a model written by :func:`save_compact` (CSR indices come back as int32)."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if blob.get("kind") == "mlp":
        widths = blob["widths"]
        model = MLP(hidden=widths[1:-1], in_features=widths[0], n_classes=widths[-1])
        model.load_state_dict(blob["state_dict"])
        return model.eval()
    if blob.get("kind") == "sparse_mlp":
        weights = []
        for layer in blob["layers"]:
            if "weight" in layer:
                weights.append(layer["weight"])
            else:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=_CSR_BETA_WARNING)
                    weights.append(torch.sparse_csr_tensor(
                        layer["crow_indices"].to(torch.int32),
                        layer["col_indices"].to(torch.int32),
                        layer["values"],
                        size=layer["shape"],
                        check_invariants=True,
                    ))
        return SparseMLP(weights, chunk_size=blob["chunk_size"]).eval()
    raise ValueError(f"{path} does not hold a model written by save_compact (kind {blob.get('kind')!r})")


# --------------------------------------------------------------------------- sizes and costs


def _weights_of(model: nn.Module) -> list[torch.Tensor]:
    if isinstance(model, SparseMLP):
        return model.weights()
    if isinstance(model, MLP):
        return [m.weight.detach() for _, m in linear_layers(model)]
    raise TypeError(f"model must be an MLP or a SparseMLP, got {type(model).__name__}")


def _nnz(w: torch.Tensor) -> int:
    if w.layout == torch.sparse_csr:
        return int(torch.count_nonzero(w.values()))
    return int(torch.count_nonzero(w))


def nonzero_params(model: MLP | SparseMLP) -> int:
    """Number of non-zero weights of ``model`` (stored zeros of a CSR layer not counted)."""
    return sum(_nnz(w) for w in _weights_of(model))


def dense_params(model: MLP | SparseMLP) -> int:
    """Number of weights ``model`` would have as a dense network of its own widths."""
    return sum(math.prod(w.shape) for w in _weights_of(model))


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
        w.values().numel() if w.layout == torch.sparse_csr else w.numel() for w in _weights_of(model)
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
    return sum(tensor_bytes(w) for w in _weights_of(model))


def disk_bytes(model: MLP | SparseMLP) -> int:
    """Size in bytes of the file :func:`save_compact` writes for ``model``, measured by
    writing it to a temporary folder and reading its size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_compact(model, Path(tmp) / "model.pt")
        return path.stat().st_size


def max_abs_difference(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    """Largest absolute difference between the logits of ``a`` and ``b`` on ``x``."""
    with torch.inference_mode():
        return float((a(x) - b(x)).abs().max())


def same_logits(a: nn.Module, b: nn.Module, x: torch.Tensor, *, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
    """Whether ``a`` and ``b`` give the same logits on ``x`` (``torch.allclose``)."""
    with torch.inference_mode():
        return bool(torch.allclose(a(x), b(x), rtol=rtol, atol=atol))


# --------------------------------------------------------------------------- timing


def time_call(
    fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, min_seconds: float = 0.0
) -> list[float]:
    """Seconds per call of ``fn``: ``repeats`` measurements after ``warmup`` unmeasured calls.

    Each measurement calls ``fn`` enough times in a row to last at least ``min_seconds``
    (found during the warm-up) and reports the mean per call, so calls far shorter than the
    clock's and the scheduler's resolution are still timed well.

    Raises:
        ValueError: ``repeats`` < 1, ``warmup`` < 0 or ``min_seconds`` < 0.
    """
    repeats = positive_int("repeats", repeats)
    warmup = non_negative_int("warmup", warmup)
    if not min_seconds >= 0:
        raise ValueError(f"min_seconds must be >= 0, got {min_seconds!r}")
    per_call = math.inf
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        per_call = min(per_call, time.perf_counter() - start)
    inner = max(1, math.ceil(min_seconds / per_call)) if math.isfinite(per_call) and per_call > 0 else 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return times


def time_side_by_side(
    models: dict[str, nn.Module],
    batch_size: int,
    *,
    repeats: int = 5,
    warmup: int = 1,
    min_seconds: float = 0.02,
    in_features: int = 784,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Seconds per forward pass of a batch of ``batch_size`` random images, per model and round.

    The models are timed side by side: each round times every model once (the order
    alternating between rounds), so a machine busy with other work slows them alike and
    the ratio of two models' times *in the same round* stays meaningful. Each measurement
    repeats the call enough times to last ``min_seconds`` (calibrated on the warm-up) and
    reports the mean per call. Runs under ``torch.inference_mode`` on the CPU with the
    thread count set by the caller (``torch.set_num_threads``).

    Args:
        models: name -> model taking ``(batch_size, in_features)`` float32 inputs.
        batch_size: images per forward pass, >= 1.
        repeats: timed rounds, >= 1.
        warmup: untimed calls per model before the rounds, >= 0.
        min_seconds: shortest time of one measurement, >= 0.
        in_features: input features per image, >= 1.
        seed: seed of the random inputs.

    Returns:
        name -> ``repeats`` seconds per forward pass, in round order.
    """
    batch_size = positive_int("batch_size", batch_size)
    repeats = positive_int("repeats", repeats)
    warmup = non_negative_int("warmup", warmup)
    in_features = positive_int("in_features", in_features)
    if not min_seconds >= 0:
        raise ValueError(f"min_seconds must be >= 0, got {min_seconds!r}")
    if not models:
        raise ValueError("models must name at least one model, got none")
    x = torch.randn(batch_size, in_features, generator=torch.Generator().manual_seed(seed))
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        calls = {name: (lambda m=models[name]: m(x)) for name in names}
        inner = {}
        for name in names:
            per_call = min(time_call(calls[name], repeats=1, warmup=warmup)) if warmup else math.inf
            inner[name] = max(1, math.ceil(min_seconds / per_call)) if math.isfinite(per_call) else 1
        for r in range(repeats):
            for name in names if r % 2 == 0 else reversed(names):
                start = time.perf_counter()
                for _ in range(inner[name]):
                    calls[name]()
                times[name].append((time.perf_counter() - start) / inner[name])
    return times


def compare_speed(models: dict[str, nn.Module], batch_size: int, **kwargs) -> dict[str, float]:
    """Median seconds per forward pass, per model, timed by :func:`time_side_by_side`
    (same arguments)."""
    return {name: statistics.median(ts) for name, ts in time_side_by_side(models, batch_size, **kwargs).items()}


def paired_speedup(baseline: Sequence[float], other: Sequence[float]) -> float:
    """Median over rounds of ``baseline[i] / other[i]``: how many times faster ``other`` ran
    than ``baseline`` in the same round (see :func:`time_side_by_side`).

    Pairing by round cancels what a busy machine does to both in that round; the median
    then discards rounds where it hit only one of them.
    """
    if len(baseline) != len(other) or not baseline:
        raise ValueError(
            f"need two equally long, non-empty lists of times, got {len(baseline)} and {len(other)}"
        )
    return statistics.median(b / o for b, o in zip(baseline, other))


# --------------------------------------------------------------------------- the machine


def machine_facts() -> dict[str, object]:
    """CPU model, logical cores, OS, Python and torch versions, torch's thread count and
    the BLAS torch uses, as a JSON-ready dict."""
    cpu, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not cpu:
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags.split()]
    config = torch.__config__.show()
    blas = "mkl" if "BLAS_INFO=mkl" in config else ("openblas" if "openblas" in config.lower() else "other")
    return {
        "cpu": cpu,
        "cpu_flags": isa,
        "logical_cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_blas": blas,
        "mkl_available": torch.backends.mkl.is_available(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def matmul_peak(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """The machine's dense float32 matrix-multiply rate with torch's current thread count.

    Times ``repeats`` products of two random ``size`` x ``size`` matrices (after one warm-up
    product) and reports the best, counting :math:`2 n^3` floating-point operations each.

    Returns:
        ``{"size": n, "seconds": best seconds, "gflops": best GFLOP/s,
        "gflops_median": median GFLOP/s}``.
    """
    size = positive_int("size", size)
    repeats = positive_int("repeats", repeats)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    out = torch.empty(size, size)
    with torch.inference_mode():
        times = time_call(lambda: torch.mm(a, b, out=out), repeats=repeats, warmup=1)
    flops = 2.0 * size**3
    return {
        "size": size,
        "seconds": min(times),
        "gflops": flops / min(times) / 1e9,
        "gflops_median": flops / statistics.median(times) / 1e9,
    }


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


def training_throughput(
    widths: Sequence[int] = (784, *STUDY_HIDDEN, 10),
    *,
    n_images: int = 60_000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Speed of :func:`helpers.training.train` on random MNIST-shaped data.

    Trains a freshly initialised :class:`MLP` of ``widths`` for one epoch over ``n_images``
    random images with random labels (Adam, the project's training loop unchanged) and
    relates the epoch's wall time to :func:`training_macs_per_image`.

    Returns:
        ``{"n_images", "batch_size", "seconds" (the epoch), "seconds_per_60000" (scaled to
        MNIST's training set), "macs_per_image", "gflops" (2 flops per multiply-add)}``.
    """
    from .data import Split
    from .training import train

    n_images = positive_int("n_images", n_images)
    batch_size = positive_int("batch_size", batch_size)
    widths = tuple(widths)
    gen = torch.Generator().manual_seed(seed)
    split = Split(
        torch.randn(n_images, widths[0], generator=gen),
        torch.randint(0, widths[-1], (n_images,), generator=gen),
    )
    torch.manual_seed(seed)
    model = MLP(hidden=widths[1:-1], in_features=widths[0], n_classes=widths[-1])
    history = train(model, split, {}, epochs=1, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    seconds = float(history["seconds"].iloc[0])
    macs = training_macs_per_image(widths)
    return {
        "n_images": n_images,
        "batch_size": batch_size,
        "seconds": seconds,
        "seconds_per_60000": seconds * 60_000 / n_images,
        "macs_per_image": macs,
        "gflops": 2.0 * macs * n_images / seconds / 1e9,
    }

