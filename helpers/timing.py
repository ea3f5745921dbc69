"""Timing on a shared machine: paired rounds of forward passes, the matrix-multiply peak, and
the training loop's speed against it, in float32 and in bfloat16 autocast.

Measurements are made with :class:`torch.utils.benchmark.Timer` (which sets the thread count and
warms up before each measurement), except calls long enough to be timed one at a time, where its
warm-up would triple the work. Ratios of two models' times are taken round by round
(:func:`time_side_by_side`, :func:`paired_speedup`): a machine busy with other work slows both
in that round alike, which one adaptive run per model cannot cancel.
"""

from __future__ import annotations

import copy
import math
import statistics
import timeit
from collections.abc import Callable, Sequence

import logging

import torch
from torch import nn

# torch.utils.benchmark imports cpp_extension, which logs a CUDA_HOME notice on CPU-only
# machines; a rendered notebook would show it as an error-coloured line above its first figure
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

from .checks import non_negative_int, positive_int
from .cost import training_macs_per_image
from .data import Split
from .model import MLP, STUDY_HIDDEN
from .pruning import masks_of, prune
from .recovery import gradual_prune, pruning_interval, training_form
from .training import train


def _timer(fn: Callable[[], object]) -> benchmark.Timer:
    """A Timer of ``fn()`` at torch's current thread count."""
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())


def _calls_per_measurement(timer: benchmark.Timer, warmup: int, min_seconds: float) -> int:
    """How many calls in a row one measurement needs to last ``min_seconds``, from the fastest of
    ``warmup`` single calls (1 without warm-up)."""
    if not warmup:
        return 1
    per_call = min(timer.timeit(1).mean for _ in range(warmup))
    return max(1, math.ceil(min_seconds / per_call)) if per_call > 0 else 1


def time_call(
    fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, min_seconds: float = 0.0
) -> list[float]:
    """Seconds per call of ``fn``: ``repeats`` measurements after ``warmup`` calibrating calls.

    Each measurement (:meth:`torch.utils.benchmark.Timer.timeit`, which makes two untimed
    calls first) calls ``fn`` enough times in a row to last at least ``min_seconds`` (found
    on the calibrating calls) and reports the mean per call, so calls far shorter than the
    clock's and the scheduler's resolution are still timed well.

    Raises:
        ValueError: ``repeats`` < 1, ``warmup`` < 0 or ``min_seconds`` < 0.
    """
    repeats = positive_int("repeats", repeats)
    warmup = non_negative_int("warmup", warmup)
    if not min_seconds >= 0:
        raise ValueError(f"min_seconds must be >= 0, got {min_seconds!r}")
    timer = _timer(fn)
    inner = _calls_per_measurement(timer, warmup, min_seconds)
    return [timer.timeit(inner).mean for _ in range(repeats)]


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
        warmup: untimed calls per model before the rounds, >= 0; 0: no untimed call at all.
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
        timers = {name: _timer(calls[name]) for name in names}
        inner = {name: _calls_per_measurement(timers[name], warmup, min_seconds) for name in names}
        for r in range(repeats):
            for name in names if r % 2 == 0 else reversed(names):
                if warmup:
                    times[name].append(timers[name].timeit(inner[name]).mean)
                else:
                    # calls long enough to time one alone (a batch of 10,000 images): the standard
                    # library's timeit, which the Timer wraps, because Timer.timeit first makes two
                    # untimed calls, three times the work for the same measurement
                    times[name].append(timeit.Timer(calls[name]).timeit(inner[name]) / inner[name])
    return times


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


def matmul_peak(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """The machine's dense float32 matrix-multiply rate with torch's current thread count.

    Times ``repeats`` products of two random ``size`` x ``size`` matrices (after the Timer's
    warm-up) and reports the best, counting :math:`2 n^3` floating-point operations each.

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
        times = time_call(lambda: torch.mm(a, b, out=out), repeats=repeats, warmup=0)
    flops = 2.0 * size**3
    return {
        "size": size,
        "seconds": min(times),
        "gflops": flops / min(times) / 1e9,
        "gflops_median": flops / statistics.median(times) / 1e9,
    }


def training_throughput(
    widths: Sequence[int] = (784, *STUDY_HIDDEN, 10),
    *,
    n_images: int = 60_000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    precision: str = "fp32",
) -> dict[str, float]:
    """Speed of :func:`helpers.training.train` (in ``precision``) on random MNIST-shaped data.

    Trains a freshly initialised :class:`MLP` of ``widths`` for one epoch over ``n_images``
    random images with random labels (Adam, the project's training loop unchanged) and
    relates the epoch's wall time to :func:`training_macs_per_image`.

    Returns:
        ``{"n_images", "batch_size", "seconds" (the epoch), "seconds_per_60000" (scaled to
        MNIST's training set), "macs_per_image", "gflops" (2 flops per multiply-add)}``.
    """
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
    history = train(model, split, {}, epochs=1, batch_size=batch_size, lr=lr, seed=seed, precision=precision,
                    progress=False)
    seconds = float(history["seconds"].iloc[0])
    macs = training_macs_per_image(widths)
    return {
        "n_images": n_images,
        "batch_size": batch_size,
        "seconds": seconds,
        "seconds_per_60000": seconds * 60_000 / n_images,
        "macs_per_image": macs,
        "gflops": 2.0 * macs * n_images / seconds / 1e9,
        "precision": precision,
    }


def retraining_speedup(pruned: MLP, *, csr: bool = False, n_images: int = 8_192, batch_size: int = 256,
                       rounds: int = 3, seed: int = 0) -> dict[str, float]:
    """How much faster one epoch of retraining ``pruned`` runs in the form :func:`helpers.recovery.finetune`
    trains (:func:`helpers.recovery.training_form`: compact, and with ``csr`` its prunable
    layers in CSR) than as the masked network of the dense shape, on ``n_images`` random
    MNIST-shaped images.

    Each of ``rounds`` rounds times both epochs back to back; the result is the median of the
    per-round ratios (see :func:`paired_speedup`) with the median seconds per 60,000 images.
    """
    gen = torch.Generator().manual_seed(seed)
    split = Split(torch.randn(n_images, pruned.widths[0], generator=gen),
                  torch.randint(0, pruned.widths[-1], (n_images,), generator=gen))
    forms = {"masked": (pruned, masks_of(pruned)), "compact": training_form(pruned, csr=csr)}
    seconds: dict[str, list[float]] = {name: [] for name in forms}
    for r in range(positive_int("rounds", rounds)):
        for name in forms if r % 2 == 0 else reversed(forms):
            model = copy.deepcopy(forms[name][0])
            history = train(model, split, {}, epochs=1, batch_size=batch_size, lr=1e-3, seed=seed,
                            masks=forms[name][1], progress=False)
            seconds[name].append(float(history["seconds"].iloc[0]))
    return {"widths_masked": list(pruned.widths), "widths_compact": list(forms["compact"][0].widths), "csr": csr,
            "seconds_per_60000_masked": statistics.median(seconds["masked"]) * 60_000 / n_images,
            "seconds_per_60000_compact": statistics.median(seconds["compact"]) * 60_000 / n_images,
            "speedup": paired_speedup(seconds["masked"], seconds["compact"])}


def gradual_speedup(dense: MLP, method: str, k: float, *, csr_from_k: float | None = None, n_images: int = 16_384,
                    batch_size: int = 256, rounds: int = 3, seed: int = 0) -> dict[str, float]:
    """How much faster one epoch of gradual pruning of ``dense`` to ``k`` by ``method`` runs
    (:func:`helpers.recovery.gradual_prune`: after each pruning step, the smallest form of what
    is left; weight-pruned layers in CSR from ``csr_from_k``) than one epoch of the masked
    network of the dense shape, which is what each of its epochs cost when it trained masked,
    on ``n_images`` random MNIST-shaped images. Pruning steps fall as often, scaled by
    ``n_images / 60,000``, as in a one-epoch run on 60,000 images
    (:func:`helpers.recovery.pruning_interval`), so that the epoch has as many.

    Paired rounds like :func:`retraining_speedup`; returns the median seconds per 60,000 images
    of each and the median of the per-round ratios."""
    gen = torch.Generator().manual_seed(seed)
    split = Split(torch.randn(n_images, dense.widths[0], generator=gen),
                  torch.randint(0, dense.widths[-1], (n_images,), generator=gen))
    pruned = prune(dense, k, method)
    prune_every = max(1, round(pruning_interval(-(-60_000 // batch_size)) * n_images / 60_000))
    runs = {
        "masked": lambda: train(copy.deepcopy(pruned), split, {}, epochs=1, batch_size=batch_size, lr=1e-3, seed=seed,
                                masks=masks_of(pruned), progress=False),
        "in_forms": lambda: gradual_prune(dense, split, {}, k=k, method=method, epochs=1, lr=1e-3,
                                         batch_size=batch_size, seed=seed, prune_every=prune_every,
                                         csr_from_k=csr_from_k)[1],
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(positive_int("rounds", rounds)):
        for name in runs if r % 2 == 0 else reversed(runs):
            seconds[name].append(float(runs[name]()["seconds"].iloc[0]))
    return {"csr_from_k": csr_from_k,
            "seconds_per_60000_masked": statistics.median(seconds["masked"]) * 60_000 / n_images,
            "seconds_per_60000_gradual": statistics.median(seconds["in_forms"]) * 60_000 / n_images,
            "speedup": paired_speedup(seconds["masked"], seconds["in_forms"])}
