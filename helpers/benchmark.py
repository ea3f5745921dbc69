"""Measured speed, memory and size of pruned networks in compact form.

For each pruning method (``weight``, ``unit``) and sparsity level k, the network is
pruned, turned into its compact form (the method's :attr:`helpers.pruning.Method.compact`:
CSR layers for weight pruning, a smaller dense network for unit pruning), checked to give the pruned network's logits, and measured against the pruned
network run densely, side by side in the same run and with the same thread count.

    python -m helpers.benchmark [--checkpoint PATH] [--out results/efficiency.csv]
                                [--ks K ...] [--threads N] [--repeats R] [--quick]

Writes, atomically, one CSV row per (method, k) and, beside it, ``<out stem>_machine.json``
with the machine's facts, its dense matrix-multiply peak, and the training loop's
multiply-add rate as a fraction of that peak. Without ``--checkpoint`` the study's network
is freshly initialised (seed 0): sizes and speeds do not depend on training, only on the
sparsity pattern, which for weight pruning is then uniform rather than learned.

Timings are medians of repeated rounds under ``torch.inference_mode`` on random inputs;
each round times the dense and the compact network back to back, and a measured speed-up
is the median over rounds of their ratio in the same round. The default is one thread: on a 2-core machine shared with other jobs, two OpenMP threads make
every parallel region wait for a descheduled thread (tens of ms), which drowns the short
sparse kernels and makes the ratios meaningless; ``--threads 2`` is there for quiet machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from . import cost, io, timing
from .checkpoints import load_checkpoint
from .checks import in_range
from .compact import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_DENSITY, SparseMLP
from .machine import machine_facts
from .model import MLP
from .pruning import METHODS, STUDY_KS, check_k, emptied_layers, method as pruning_method, prune
from .strategies import GRADUAL
from .training import TrainConfig

RETRAINING_CASES: tuple[tuple[str, float], ...] = (("unit", 90.0), ("weight", 80.0), ("weight", 85.0),
                                                   ("weight", 90.0), ("weight", 99.0))
"""(method, k) whose retraining epoch is timed in the form fine-tuning trains against the masked
dense shape (:func:`helpers.timing.retraining_speedup`): unit pruning compact, weight pruning
compact with its pruned layers in CSR, at the levels around where CSR starts to pay."""

GRADUAL_CASES: tuple[tuple[str, float], ...] = (("unit", 90.0), ("weight", 90.0), ("weight", 99.0))
"""(method, k) whose epoch of gradual pruning, in the forms it trains after each pruning step,
is timed against the masked dense shape (:func:`helpers.timing.gradual_speedup`); weight-pruned
layers go to CSR from the lowest of the :data:`RETRAINING_CASES` levels where CSR measured faster."""

QUICK_KS: tuple[float, ...] = (90, 99)
"""Levels of a ``--quick`` run (the dense network is timed beside each of them anyway)."""

BATCHES: tuple[int, int, int] = (1, 256, 10_000)
"""Latency batch, throughput batch, and the whole MNIST test set at once."""

COLUMNS: tuple[str, ...] = (
    "method", "k", "format", "layer_formats", "widths",
    "dense_params", "nonzero_params", "compression_ratio",
    "dense_macs", "macs", "executed_macs", "theoretical_speedup",
    "dense_memory_bytes", "memory_bytes", "memory_fraction",
    "dense_disk_bytes", "disk_bytes", "disk_fraction",
    "max_abs_diff",
    "latency_b1_ms_dense", "latency_b1_ms_compact", "measured_speedup_b1",
    "throughput_b256_dense", "throughput_b256_compact", "measured_speedup_b256",
    "throughput_b10000_dense", "throughput_b10000_compact", "measured_speedup_b10000",
    "threads", "repeats", "cpu", "torch_version",
)
"""Columns of the CSV, in order (throughputs in images per second)."""


def benchmark_row(
    method_name: str,
    k: float,
    model: MLP,
    *,
    repeats: int,
    big_repeats: int,
    warmup: int,
    max_density: float,
    chunk_size: int,
    facts: dict,
    dense_disk: int,
) -> dict[str, object]:
    """One CSV row: prune ``model`` by the method called ``method_name`` at ``k`` %, turn it into
    the method's compact form, check that it gives the pruned network's logits, and measure it."""
    m = pruning_method(method_name)
    pruned = prune(model, k, method_name).eval()
    compact = m.compact(pruned, max_density=max_density, chunk_size=chunk_size)

    probe = torch.randn(512, model.widths[0], generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():  # a batch and a single image: the sparse kernels differ between them
        logits = [(pruned(x), compact(x)) for x in (probe, probe[:1])]
    for expected, got in logits:
        if not torch.allclose(expected, got, rtol=1e-5, atol=1e-5):
            raise AssertionError(f"{method_name} k={k}: compact logits differ from the pruned network's by "
                                 f"{(expected - got).abs().max():.3g} (batch {len(expected)})")

    if isinstance(compact, SparseMLP):
        layer_formats = compact.formats
        fmt = "csr" if "csr" in layer_formats else "dense"
    else:
        layer_formats = ("dense",) * (len(compact.widths) - 1)
        fmt = "shrunk"
    dense_macs = cost.macs_per_image(pruned, executed=True)
    macs = cost.macs_per_image(compact, executed=m.shrinks)
    row: dict[str, object] = {
        "method": method_name,
        "k": k,
        "format": fmt,
        "layer_formats": "/".join(layer_formats),
        "widths": "-".join(str(w) for w in compact.widths),
        "dense_params": cost.dense_params(pruned),
        "nonzero_params": cost.nonzero_params(compact),
        "compression_ratio": cost.compression_ratio(pruned, compact),
        "dense_macs": dense_macs,
        "macs": macs,
        "executed_macs": cost.macs_per_image(compact, executed=True),
        "theoretical_speedup": dense_macs / macs if macs else math.inf,
        "dense_memory_bytes": cost.memory_bytes(pruned),
        "memory_bytes": cost.memory_bytes(compact),
        "dense_disk_bytes": dense_disk,
        "disk_bytes": cost.disk_bytes(compact),
        "max_abs_diff": float((logits[0][0] - logits[0][1]).abs().max()),  # over the batch
    }
    row["memory_fraction"] = row["memory_bytes"] / row["dense_memory_bytes"]
    row["disk_fraction"] = row["disk_bytes"] / dense_disk

    models = {"dense": pruned, "compact": compact}
    b1, b_mid, b_big = BATCHES
    t = timing.time_side_by_side(models, b1, repeats=2 * repeats, warmup=warmup, min_seconds=0.02)
    row["latency_b1_ms_dense"] = 1e3 * statistics.median(t["dense"])
    row["latency_b1_ms_compact"] = 1e3 * statistics.median(t["compact"])
    row["measured_speedup_b1"] = timing.paired_speedup(t["dense"], t["compact"])
    # the big batch: one call takes ~1 s, timed alone without warm-up (the rounds' median absorbs a slow first one)
    for batch, rounds, warm, min_seconds in ((b_mid, repeats, warmup, 0.02), (b_big, big_repeats, 0, 0.0)):
        t = timing.time_side_by_side(models, batch, repeats=rounds, warmup=warm, min_seconds=min_seconds)
        row[f"throughput_b{batch}_dense"] = batch / statistics.median(t["dense"])
        row[f"throughput_b{batch}_compact"] = batch / statistics.median(t["compact"])
        row[f"measured_speedup_b{batch}"] = timing.paired_speedup(t["dense"], t["compact"])
    row.update(threads=torch.get_num_threads(), repeats=repeats, cpu=facts["cpu"],
               torch_version=facts["torch_version"])
    return row


def _pick(frame: pd.DataFrame, method: str, k: float, column: str) -> float | None:
    hit = frame[(frame["method"] == method) & (frame["k"] == k)]
    return float(hit[column].iloc[0]) if len(hit) else None


def headline_targets(frame: pd.DataFrame, training: dict, retraining: dict | None = None) -> dict[str, object]:
    """The headline ratios next to the capability's targets (None where not measured)."""
    targets = {
        "weight_k99_speedup_b256": ("weight", 99, "measured_speedup_b256", ">=", 10.0),
        "weight_k99_speedup_b1": ("weight", 99, "measured_speedup_b1", ">=", 3.0),
        "unit_k90_speedup_b256": ("unit", 90, "measured_speedup_b256", ">=", 20.0),
        "weight_k99_disk_fraction": ("weight", 99, "disk_fraction", "<=", 0.03),
        "unit_k90_disk_fraction": ("unit", 90, "disk_fraction", "<=", 0.05),
    }
    out: dict[str, object] = {}
    for name, (method, k, column, op, target) in targets.items():
        value = _pick(frame, method, k, column)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out[name] = {"value": value, "target": f"{op} {target}", "met": met}
    fraction = training["fraction_of_peak"]
    out["training_fraction_of_peak"] = {"value": fraction, "target": ">= 0.85", "met": fraction >= 0.85}
    for case, target in (("unit k=90", 10.0), ("weight k=99", 2.0)):
        if retraining and case in retraining:
            value = retraining[case]["speedup"]
            out[f"{case.replace(' k=', '_k')}_retraining_speedup"] = {"value": value, "target": f">= {target}",
                                                                     "met": value >= target}
    return out


@dataclass(frozen=True)
class Settings:
    """What a benchmark run measures and how; ``None`` takes the default of :meth:`resolved`."""

    checkpoint: Path | None = None  # trained checkpoint; None: the study's network initialised with seed 0
    ks: tuple[float, ...] | None = None  # levels in percent; None: the study's (quick: QUICK_KS)
    methods: tuple[str, ...] = tuple(METHODS)
    threads: int = 1
    repeats: int | None = None  # timed rounds at batch 256 (9; quick 2)
    train_images: int | None = None  # random images in the timed training epoch (30,000; quick 1,024)
    train_batch_size: int | None = None  # batch of the training-speed measurement (TrainConfig's)
    max_density: float = DEFAULT_MAX_DENSITY  # largest layer density stored as CSR
    chunk_size: int = DEFAULT_CHUNK_SIZE  # images per pass through a sparse network
    quick: bool = False  # smoke run: QUICK_KS, few repeats, short training

    def resolved(self) -> Settings:
        """These settings checked, and their defaults filled in; ``ValueError`` naming the
        setting, the value and the accepted range."""
        for name in ("threads", "repeats", "train_images", "train_batch_size", "chunk_size"):
            value = getattr(self, name)
            if value is not None:
                in_range(name.replace("_", "-"), value, 1, integer=True)
        in_range("max-density", self.max_density, 0, 1)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; accepted: {list(METHODS)}")
        ks = QUICK_KS if self.ks is None and self.quick else STUDY_KS if self.ks is None else self.ks
        try:
            ks = tuple(check_k(k) for k in ks)
        except (TypeError, ValueError) as error:
            raise ValueError(f"ks: {error}") from None
        return replace(
            self, ks=ks, methods=tuple(self.methods),
            repeats=self.repeats or (2 if self.quick else 9),
            train_images=self.train_images or (1024 if self.quick else 30_000),
            train_batch_size=self.train_batch_size or TrainConfig().batch_size)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, Path, Path]:
    """The command line's settings, CSV path and machine-record path (checked: a bad value is a
    usage error naming it)."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.benchmark", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="trained checkpoint (helpers.training.save_checkpoint); "
                             "default: the study's network freshly initialised with seed 0")
    parser.add_argument("--out", type=Path, default=Path("results/efficiency.csv"))
    parser.add_argument("--machine-out", type=Path, default=None,
                        help="JSON of machine facts and training speed "
                             "(default: <out stem>_machine.json beside --out)")
    parser.add_argument("--ks", type=float, nargs="+", default=None,
                        help=f"sparsity levels in percent (default: the study's {list(STUDY_KS)})")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds at batch 256 (default 9; quick 2); batch 1 gets twice "
                             "as many, the 10,000-image batch a third as many (at least 1)")
    parser.add_argument("--train-batch-size", type=int, default=None,
                        help="batch of the training-speed measurement (default: TrainConfig's)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="random images in the timed training epoch (default 30000; quick 1024)")
    parser.add_argument("--max-density", type=float, default=DEFAULT_MAX_DENSITY,
                        help="largest layer density stored as CSR")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help="images per pass through a sparse network")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: levels {list(QUICK_KS)}, few repeats, short training")
    args = vars(parser.parse_args(argv))
    out, machine_out = args.pop("out"), args.pop("machine_out")
    settings = Settings(**{**args, "ks": None if args["ks"] is None else tuple(args["ks"]),
                           "methods": tuple(args["methods"])})
    try:
        settings = settings.resolved()
    except ValueError as error:
        parser.error(f"--{error}")
    return settings, out, machine_out or out.with_name(f"{out.stem}_machine.json")


def main(argv: Sequence[str] | None = None) -> int:
    settings, out, machine_out = parse_args(argv)
    command = " ".join(["python -m helpers.benchmark", *(argv if argv is not None else sys.argv[1:])])
    measure(settings, out, machine_out, command)
    return 0


def measure(settings: Settings, out: str | os.PathLike, machine_out: str | os.PathLike,
            command: str = "python -m helpers.benchmark") -> dict:
    """Measure what :class:`Settings` asks (checked and completed: :meth:`Settings.resolved`) with
    ``settings.threads`` torch threads (the caller's count is restored after) and write the CSV at
    ``out`` and the machine's record at ``machine_out``, atomically; returns that record.
    ``command``: the command line the record names as what produced it."""
    settings = settings.resolved()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _measure(settings, Path(out), Path(machine_out), command)
    finally:  # a caller in the same process (the pipeline) keeps its own thread count
        torch.set_num_threads(threads)


def _measure(args: Settings, out: Path, machine_out: Path, command: str) -> dict:
    started = time.perf_counter()
    facts = machine_facts()

    if args.checkpoint is not None:
        model, checkpoint = load_checkpoint(args.checkpoint, device="cpu")
        source, fingerprint = str(args.checkpoint), checkpoint["fingerprint"]
    else:
        torch.manual_seed(0)
        model = MLP()
        source, fingerprint = "random initialisation, torch.manual_seed(0)", None
    model.eval()
    dense_disk = cost.disk_bytes(model)

    rows = []
    for method in args.methods:
        for k in args.ks:
            if emptied_layers(model, k, method):  # e.g. unit pruning past 99.5 % empties fc4: nothing to run
                continue
            row = benchmark_row(
                method, k, model,
                repeats=args.repeats,
                big_repeats=max(1, args.repeats // 3),
                warmup=1 if args.quick else 2,
                max_density=args.max_density,
                chunk_size=args.chunk_size,
                facts=facts,
                dense_disk=dense_disk,
            )
            rows.append(row)
            print(
                f"{method:6s} k={k:5g}  {row['format']:6s} nnz={row['nonzero_params']:>9,d} "
                f"disk={row['disk_fraction']:7.2%}  speed-up b1 {row['measured_speedup_b1']:6.2f}x  "
                f"b256 {row['measured_speedup_b256']:6.2f}x  b10000 {row['measured_speedup_b10000']:6.2f}x  "
                f"(theory {row['theoretical_speedup']:.1f}x)",
                flush=True,
            )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))

    # The peak is measured just before and just after the training epoch and the better one
    # kept, so a busy spell on a shared machine cannot flatter the training's fraction of it.
    size, peak_repeats = (1024, 3) if args.quick else (2048, 10)
    peak_before = timing.matmul_peak(size, repeats=peak_repeats)
    training = timing.training_throughput(
        model.widths, n_images=args.train_images, batch_size=args.train_batch_size
    )
    peak_after = timing.matmul_peak(size, repeats=peak_repeats)
    # bfloat16 autocast against float32, on a quarter of the images: emulated without native
    # bf16 (AVX512-BF16 or AMX), where it is several times slower
    bf16 = timing.training_throughput(model.widths, n_images=max(1, args.train_images // 4),
                                      batch_size=args.train_batch_size, precision="bf16")
    bf16["speedup_over_fp32"] = training["seconds_per_60000"] / bf16["seconds_per_60000"]
    bf16["native"] = any(flag in facts["cpu_flags"] for flag in ("avx512_bf16", "amx_tile"))
    retraining = {f"{method} k={k:g}": timing.retraining_speedup(
        prune(model, k, method), csr=not pruning_method(method).shrinks, n_images=1_024 if args.quick else 8_192,
        rounds=1 if args.quick else 3)
        for method, k in RETRAINING_CASES}
    csr_from_k = min((k for (method, k) in RETRAINING_CASES
                      if method == "weight" and retraining[f"weight k={k:g}"]["speedup"] > 1), default=None)
    gradual = {f"{method} k={k:g}": timing.gradual_speedup(
        model, method, k, csr_from_k=csr_from_k, n_images=1_024 if args.quick else 16_384, rounds=1 if args.quick else 3)
        for method, k in GRADUAL_CASES}
    peak = max(peak_before, peak_after, key=lambda p: p["gflops"])
    peak["gflops_before_training"] = peak_before["gflops"]
    peak["gflops_after_training"] = peak_after["gflops"]
    training["fraction_of_peak"] = training["gflops"] / peak["gflops"]
    print(
        f"matmul peak {peak['gflops']:.1f} GFLOP/s; training {training['gflops']:.1f} GFLOP/s "
        f"= {training['fraction_of_peak']:.0%} of peak at batch {args.train_batch_size} "
        f"({training['seconds_per_60000']:.1f} s per 60,000-image epoch)",
        flush=True,
    )

    facts["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    machine = {
        "machine": facts,
        "threads": args.threads,
        "settings": {
            "model": source,
            "fingerprint": fingerprint,
            "widths": list(model.widths),
            "ks": args.ks,
            "methods": args.methods,
            "repeats": args.repeats,
            "batches": list(BATCHES),
            "max_density": args.max_density,
            "chunk_size": args.chunk_size,
            "quick": args.quick,
            "command": command,
        },
        "matmul_peak": peak,
        "training": training,
        "training_bf16": bf16,
        "retraining": retraining,
        GRADUAL.name: gradual,  # keyed by the strategy whose forms it times
        "summary": headline_targets(frame, training, retraining),
        "seconds": time.perf_counter() - started,
    }
    io.write_csv(frame, out)
    io.write_json(machine, machine_out)
    print(f"wrote {out} and {machine_out} in {machine['seconds']:.0f} s")
    print(json.dumps(machine["summary"], indent=1))
    return machine


if __name__ == "__main__":
    raise SystemExit(main())

