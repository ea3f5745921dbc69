"""Atomic file writes: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The rename is atomic on POSIX file systems, so an interrupted run leaves either the
    previous artefact or none, never a truncated one that a later step would read.
    Parent folders are created. Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` to CSV at ``path`` atomically, without the index."""
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON at ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by an earlier step; the error names the step's missing output."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: run the notebook that writes it first (see README)"
        )
    return pd.read_csv(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by an earlier step; the error names the step's missing output."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: run the step that writes it first (see README)"
        )
    return json.loads(path.read_text())
