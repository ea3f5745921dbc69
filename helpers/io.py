"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

Results that a later step reads are written with a provenance record beside them
(``<name>.provenance.json``: what produced them, and the SHA-256 of the file it describes),
so that the reader can tell results of another configuration, or a pair left inconsistent
by an interrupted run, from the ones it expects.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The rename is atomic on POSIX file systems, so an interrupted run leaves either the
    previous artefact or none, never a truncated one that a later step would read.
    Parent folders are created; the file gets the permissions the umask gives (0644 under
    022). Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates the file private (0600); give it the mode a plain open() would (0644
    # under the usual umask 022), so that artefacts can be served and shared
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _WRITTEN.append(path.resolve())
    return path


_WRITTEN: list[Path] = []
"""Every file this process wrote through :func:`atomic_write`, in order (what
:func:`undo_on_failure` may have to take back)."""

_UNDO: list[Callable] = []  # the one post_run_cell callback undo_on_failure registered, if any


def undo_on_failure(outputs: list[Path]) -> None:
    """In a notebook kernel: should a cell fail from now on, remove every file written since
    this call (:func:`atomic_write`) that is one of ``outputs`` or lies in one of them (a
    folder), and say which; a run that failed half-way then leaves none of its results behind
    for a later step to read. Caches written elsewhere stay: each entry is whole and valid.
    Outside IPython, or called again (a rerun of the first cell), only the last call counts."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    for callback in _UNDO:
        shell.events.unregister("post_run_cell", callback)
    _UNDO.clear()
    outputs = [Path(p).resolve() for p in outputs]
    start, outputs = len(_WRITTEN), [*outputs, *(provenance_path(p) for p in outputs)]

    def remove_if_failed(result) -> None:
        if result.success:
            return
        removed = [f for f in dict.fromkeys(_WRITTEN[start:])
                   if any(f == o or o in f.parents for o in outputs) and f.is_file()]
        for f in removed:
            f.unlink()
        if removed:
            print(f"this run failed: removed the {len(removed)} file(s) it had written "
                  f"({', '.join(str(f) for f in removed)})", flush=True)

    shell.events.register("post_run_cell", remove_if_failed)
    _UNDO.append(remove_if_failed)


class StaleResultsError(ValueError):
    """A results file that does not match its provenance record, or has none."""


def provenance_path(path: str | os.PathLike) -> Path:
    """Where the provenance record of the file at ``path`` is kept: ``<stem>.provenance.json`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.provenance.json")


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, record: dict[str, Any] | None = None) -> None:
    """Write ``frame`` to CSV at ``path`` atomically, without the index; with ``record``, first
    write it, with the CSV's SHA-256, to :func:`provenance_path` (an interruption between the two
    leaves a pair that :func:`read_results` refuses, never a silently mismatched one)."""
    blob = frame.to_csv(index=False).encode()
    if record is not None:
        write_json({"file": Path(path).name, "sha256": hashlib.sha256(blob).hexdigest(), **record},
                   provenance_path(path))
    atomic_write(path, lambda tmp: tmp.write_bytes(blob))


def read_results(path: str | os.PathLike,
                 writer: str = "the step that writes it") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV written by :func:`write_csv` with a record, by the step ``writer``; returns
    ``(frame, record)``.

    Raises :class:`StaleResultsError` when the record is missing or describes other bytes than
    the file holds (written by another run, or an interrupted one), naming ``writer`` to rerun.
    """
    path = Path(path)
    frame = read_csv(path, writer)
    sidecar = provenance_path(path)
    if not sidecar.is_file():
        raise StaleResultsError(f"{path} has no provenance record ({sidecar.name}): rerun {writer}")
    record = read_json(sidecar, writer)
    if record.get("sha256") != hashlib.sha256(path.read_bytes()).hexdigest():
        raise StaleResultsError(f"{path} is not the file its provenance record {sidecar.name} describes (it was "
                                f"changed, or a run was interrupted between the two): rerun {writer}")
    return frame, record


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy ``source`` to ``target`` atomically; returns ``target`` as a :class:`Path`."""
    return atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON at ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _missing(path: Path, writer: str) -> FileNotFoundError:
    return FileNotFoundError(f"{path} does not exist: run {writer} first, with the path it writes "
                             f"set to this one (see README)")


def read_csv(path: str | os.PathLike, writer: str = "the step that writes it") -> pd.DataFrame:
    """Read a CSV written by an earlier step (``writer``, e.g. ``"03_weight_pruning"``); the
    error names that step when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path, writer)
    return pd.read_csv(path)


def read_json(path: str | os.PathLike, writer: str = "the step that writes it") -> Any:
    """Read a JSON file written by an earlier step (``writer``); the error names that step
    when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path, writer)
    return json.loads(path.read_text())
