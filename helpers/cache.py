"""Artefacts reused across runs: each cached under a key from the record that determines it, written atomically, checked on load.

A trained or retrained model (:func:`helpers.checkpoints.cached`), the evaluation of a pruned
network (:func:`helpers.sweep.cached_evaluation`) and a benchmark
(:func:`helpers.measurements.measured`) and an executed notebook
(:func:`helpers.pipeline.executed_notebook`) are each a pure function of a record: what they were
made from, how, with which data and package versions. :func:`entry` names the file the record
keys; :func:`reuse` loads it when it is there and whole, and otherwise computes it and stores
it with :mod:`helpers.io`'s atomic writes, so an interrupted run never leaves a half-written
entry that a later run would read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from . import provenance

T = TypeVar("T")


def entry(cache_dir: str | os.PathLike, stem: str, record: Mapping[str, Any], suffix: str,
          digits: int = 16) -> Path:
    """Where the artefact that ``record`` determines is cached:
    ``<cache_dir>/<stem>-<first digits of the record's SHA-256><suffix>``."""
    return Path(cache_dir) / f"{stem}-{provenance.digest(record, digits)}{suffix}"


def reuse(path: Path, load: Callable[[Path], T], compute: Callable[[], T], *,
          unusable: tuple[type[Exception], ...] = (ValueError, KeyError, TypeError),
          warn: str | None = None) -> T:
    """The artefact cached at ``path``: ``load(path)`` when the file is there and ``load`` accepts
    it (it raises one of ``unusable`` for an entry that is damaged or was made from another
    record), else ``compute()``, which stores what it returns at ``path`` (atomically). With
    ``warn`` (what the entry is), an unusable entry is recomputed with a warning saying why."""
    if path.is_file():
        try:
            return load(path)
        except unusable as err:
            if warn:
                warnings.warn(f"recomputing a cached {warn}: {err}", stacklevel=3)
    return compute()
