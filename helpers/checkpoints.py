"""The checkpoint store: trained models saved with their provenance, verified when loaded, and
reused from a cache when the same record asks for them again.

A checkpoint holds a model's weights, its layer widths, the SHA-256 fingerprint of those
weights (:func:`helpers.provenance.state_fingerprint`) and the provenance record of what made
it. The cache key of a model is a hash of that record, so a rerun with the same
configuration, data and package versions trains nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from . import cache, io, provenance
from .data import Split
from .model import MLP

Checkpoint = dict[str, Any]
"""What :func:`load_checkpoint` returns beside the model: ``state_dict``, ``widths``,
``fingerprint`` (of the weights), ``provenance`` and any extra entries saved with them."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not of this project, or made for another
    configuration than the one asked for."""


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def save_checkpoint(model: MLP, path: str | os.PathLike, record: Mapping, **extra: Any) -> Checkpoint:
    """Save ``model``'s weights, widths, their fingerprint and the provenance ``record`` (and
    ``extra`` entries) atomically at ``path``; returns what was saved."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    checkpoint = {"state_dict": state, "widths": model.widths, "fingerprint": provenance.state_fingerprint(state),
                  "provenance": dict(record), **extra}
    io.save_torch(checkpoint, path)
    return checkpoint


def load_checkpoint(
    path: str | os.PathLike,
    device: torch.device | str | None = None,
    expect: Mapping | None = None,
    writer: str = "the step that writes it",
) -> tuple[MLP, Checkpoint]:
    """Rebuild the model saved at ``path`` by :func:`save_checkpoint`; returns ``(model, checkpoint)``.

    Refuses, with a :class:`CheckpointError` that names the file, the fault and the step to
    rerun (``writer``), a file that cannot be read (truncated, corrupted; the reader's own
    error is chained, not quoted), that is not a checkpoint of this project, whose weights
    differ from the fingerprint saved with them or do not fit its architecture, and, with
    ``expect``, whose provenance differs from ``expect`` in any field (each one named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: run {writer} first")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle and storage errors all mean an unusable file
        raise CheckpointError(f"{path} cannot be read as a checkpoint: it is truncated or corrupted; "
                              f"delete it and rerun {writer}") from err
    missing = {"state_dict", "widths", "fingerprint", "provenance"} - set(
        checkpoint if isinstance(checkpoint, dict) else ())
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint of this project (it lacks {sorted(missing)}): "
                              f"delete it and rerun {writer}")
    widths = tuple(checkpoint["widths"])
    if provenance.state_fingerprint(checkpoint["state_dict"]) != checkpoint["fingerprint"]:
        raise CheckpointError(f"{path}: its weights differ from the fingerprint saved with them (corrupted): "
                              f"delete it and rerun {writer}")
    try:
        model = MLP(hidden=widths[1:-1], in_features=widths[0], n_classes=widths[-1])
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: its weights do not fit the {'-'.join(map(str, widths))} network it "
                              f"names ({err})") from err
    if expect:
        wrong = provenance.differences(checkpoint["provenance"], expect)
        if wrong:
            raise CheckpointError(f"{path} was made for another configuration than the one asked for "
                                  f"({'; '.join(wrong)}): rerun {writer} with this configuration")
    return model.to(select_device(device)), checkpoint


def cache_path(cache_dir: str | os.PathLike, stem: str, record: Mapping) -> Path:
    """Where a model with provenance ``record`` is cached: ``<cache_dir>/<stem>-<hash of record>.pt``."""
    return cache.entry(cache_dir, stem, record, ".pt", 12)


def cached(
    cache_dir: str | os.PathLike,
    stem: str,
    record: Mapping,
    compute: Callable[[], tuple[MLP, Mapping[str, Any]]],
) -> tuple[MLP, Checkpoint, Path]:
    """The model made with provenance ``record``: loaded from ``cache_dir`` when a checkpoint of
    exactly that record is there, else ``compute()`` -> ``(model, extra entries)``, saved there.

    A file that is there but unusable (truncated, tampered, another record) is recomputed,
    with a warning saying why. Returns ``(model, checkpoint, path)``.
    """
    path = cache_path(cache_dir, stem, record)

    def made() -> tuple[MLP, Checkpoint]:
        model, extra = compute()
        return model, save_checkpoint(model, path, record, **extra)
    model, checkpoint = cache.reuse(path, lambda p: load_checkpoint(p, expect=record), made,
                                    unusable=(CheckpointError,), warn="model")
    return model, checkpoint, path


def data_expectation(data: Mapping[str, Split]) -> dict[str, str]:
    """What a dense checkpoint's provenance must say for use with ``data``: the same training
    and test data (dataset, subset and normalisation)."""
    return {"train_data": data["train"].fingerprint, "test_data": data["test"].fingerprint}


def dense_checkpoint(checkpoint_dir: str | os.PathLike, seed: int) -> Path:
    """Where the training notebook leaves the dense model of ``seed`` for later notebooks."""
    return Path(checkpoint_dir) / f"dense-seed{seed}.pt"


def load_dense(checkpoint_dir: str | os.PathLike, seed: int, data: Mapping[str, Split]) -> tuple[MLP, Checkpoint]:
    """The dense model of ``seed`` left in ``checkpoint_dir`` by the training notebook, refused
    (:class:`CheckpointError`) unless it was trained and evaluated on ``data``."""
    return load_checkpoint(dense_checkpoint(checkpoint_dir, seed), expect=data_expectation(data),
                           writer=f"02_training with checkpoint_dir = {str(checkpoint_dir)!r}")


DENSE_RECORD = "dense_models.json"
"""What the training notebook records beside the dense checkpoints it leaves in its checkpoint
folder: the dataset, subset sizes and seeds they were trained with, and their fingerprints."""

RECORDED_DATA = ("dataset", "train_size", "test_size", "validation_size")
"""The parameters that belong to the data of the dense models: later notebooks take them from
the record (when given None) or must agree with it."""


def write_dense_record(checkpoint_dir: str | os.PathLike, dataset: str, train_size: int | None,
                       test_size: int | None, fingerprints: Mapping[str, str], train_images: int,
                       validation_size: int) -> Path:
    """Record, beside the dense checkpoints in ``checkpoint_dir``, the data they were trained
    with (``train_images``: how many training images that was, ``validation_size`` more held
    out) and their fingerprints (seed as text -> fingerprint)."""
    path = Path(checkpoint_dir) / DENSE_RECORD
    io.write_json({"dataset": dataset, "train_size": train_size, "test_size": test_size,
                   "validation_size": int(validation_size),
                   "train_images": int(train_images), "seeds": [int(s) for s in fingerprints],
                   "fingerprints": dict(fingerprints)}, path)
    return path


def with_recorded_data(params: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """``params`` (a notebook's checked parameters, with ``checkpoint_dir``) with the dataset,
    subset sizes and seeds that the training notebook recorded for the dense models in
    ``checkpoint_dir``: a parameter given as None takes the recorded value; a given one must
    agree with it (seeds: be among the recorded ones).

    Raises ``ValueError`` naming every field that differs, with both values
    (``train_size: checkpoints 2000, asked 3000``), before anything is computed.
    """
    path = Path(params["checkpoint_dir"]) / DENSE_RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{notebook}: {path} does not exist: run 02_training with checkpoint_dir = "
                                f"{str(params['checkpoint_dir'])!r} first (it leaves the dense models there)")
    recorded = io.read_json(path)
    resolved, wrong = dict(params), []
    for name in RECORDED_DATA:
        if params.get(name) is None:
            resolved[name] = recorded[name]
        elif params[name] != recorded[name]:
            wrong.append(f"{name}: checkpoints {recorded[name]!r}, asked {params[name]!r}")
    if params.get("seeds") is None:
        resolved["seeds"] = list(recorded["seeds"])
    else:
        missing = [s for s in params["seeds"] if s not in recorded["seeds"]]
        if missing:
            wrong.append(f"seeds: checkpoints {recorded['seeds']}, asked {list(params['seeds'])} "
                         f"(no dense model for {missing})")
    if wrong:
        raise ValueError(f"{notebook}: the dense models in {params['checkpoint_dir']} were trained by 02_training "
                         f"with other data than this run asks for: {'; '.join(wrong)}. Rerun 02_training with "
                         f"these values, or leave them out (None) to use the recorded ones.")
    return resolved
