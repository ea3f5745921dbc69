"""The benchmark's measurements as the report uses them: cached under the weights they measured, and in long form."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from io import StringIO
from pathlib import Path

import pandas as pd

from . import cache, io, provenance
from .benchmark import BATCHES, Settings, measure
from .checkpoints import dense_checkpoint, load_checkpoint
from .pruning import METHODS

LONG_COLUMNS: tuple[str, ...] = (
    "method", "k", "batch", "format", "layer_formats", "widths",
    "weights", "nonzero_weights", "compression_ratio", "dense_macs", "macs", "executed_macs",
    "theoretical_speedup", "memory_bytes", "memory_fraction", "disk_bytes", "disk_fraction", "max_abs_diff",
    "ms_dense", "ms_compact", "images_per_second_dense", "images_per_second_compact", "measured_speedup",
    "threads", "repeats", "cpu", "torch_version",
)
"""Columns of the benchmark in long form: one row per method, level and batch size, with the
names the pruning results use (``nonzero_weights``, not ``nonzero_params``)."""


def long_form(frame: pd.DataFrame) -> pd.DataFrame:
    """The benchmark's table (one row per method and level, a column per batch size) in long
    form, one row per method, level and batch (:data:`LONG_COLUMNS`): milliseconds per call of
    the dense and the compact network, their images per second and the paired speed-up."""
    shared = frame.rename(columns={"dense_params": "weights", "nonzero_params": "nonzero_weights"})
    rows = []
    for batch in BATCHES:
        if batch == 1:
            ms = {side: shared[f"latency_b1_ms_{side}"] for side in ("dense", "compact")}
        else:
            ms = {side: 1e3 * batch / shared[f"throughput_b{batch}_{side}"] for side in ("dense", "compact")}
        rows.append(shared.assign(batch=batch, ms_dense=ms["dense"], ms_compact=ms["compact"],
                                  images_per_second_dense=1e3 * batch / ms["dense"],
                                  images_per_second_compact=1e3 * batch / ms["compact"],
                                  measured_speedup=shared[f"measured_speedup_b{batch}"]))
    return (pd.concat(rows, ignore_index=True)[list(LONG_COLUMNS)]
            .sort_values(["method", "k", "batch"], key=lambda c: c.map({m: i for i, m in enumerate(METHODS)})
                         if c.name == "method" else c, kind="stable", ignore_index=True))



MEASURED_SCHEMA = 4
"""Version of what a benchmark measures, part of its cache key: 2 adds bf16 autocast training and
retraining in compact form, 3 weight-pruned retraining in CSR around where it pays, 4 gradual
pruning in the forms it trains after each pruning step; a measurement cached before is taken
afresh."""


def measured(checkpoint_dir: str | os.PathLike, fingerprints: dict[str, str], cache_dir: str | os.PathLike,
             quick: bool = False, ks: Sequence[float] | None = None) -> tuple[Path, Path]:
    """The benchmark of the first dense model of ``fingerprints`` (seed as text -> fingerprint of
    the dense weights that pruning results start from) left in ``checkpoint_dir``: its CSV and
    JSON, measured now or by an earlier run (``cache_dir``, keyed by the weights' fingerprint, the
    settings, package versions and machine: a measurement is an artefact like a trained model).
    ``ks``: the levels to measure (default :data:`STUDY_KS`, or :data:`QUICK_KS` when ``quick``);
    a level that would empty a layer of a method is left out for that method.

    Raises ``ValueError`` before measuring when the checkpoint there holds other weights than the
    results started from. Returns the paths of the CSV and the JSON in ``cache_dir``.
    """
    seed, expected = next(iter(fingerprints.items()))
    checkpoint = dense_checkpoint(checkpoint_dir, int(seed))
    fingerprint = load_checkpoint(checkpoint)[1]["fingerprint"]
    if fingerprint != expected:
        raise ValueError(f"{checkpoint} holds the dense model with weights {fingerprint!r}, not the one the pruning "
                         f"results start from (seed {seed}: {expected!r}): rerun the notebooks on the same "
                         f"checkpoint_dir, or point checkpoint_dir at the models the results come from")
    machine = {k: v for k, v in provenance.machine().items() if k != "torch_threads"}  # the benchmark sets its own
    levels = {} if ks is None else {"ks": [float(k) for k in ks]}  # absent: keys of earlier runs still hold
    key = {"fingerprint": fingerprint, "quick": quick, "versions": provenance.versions(), "machine": machine,
           "schema": MEASURED_SCHEMA, **levels}
    csv = cache.entry(cache_dir, "efficiency", key, ".csv", 12)
    record = csv.with_suffix(".json")

    def load(stored: Path) -> tuple[Path, Path]:  # the pair whole, and of these weights
        if io.read_json(record)["settings"]["fingerprint"] != fingerprint:
            raise ValueError(f"{record} measured other weights")
        return stored, record

    def measured_now() -> tuple[Path, Path]:
        settings = Settings(checkpoint=checkpoint, quick=quick, ks=None if ks is None else tuple(ks))
        command = " ".join(["python -m helpers.benchmark --checkpoint", str(checkpoint),
                            *(["--quick"] if quick else []),
                            *(["--ks", *map(str, ks)] if ks is not None else [])])
        with contextlib.redirect_stdout(StringIO()):  # its progress lines would clutter a rendered notebook
            measure(settings, csv, record, command)
        return csv, record
    return cache.reuse(csv, load, measured_now, unusable=(ValueError, KeyError, TypeError, FileNotFoundError))
