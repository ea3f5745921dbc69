"""MNIST and Fashion-MNIST as whole normalised tensors in memory.

The checked bytes of the IDX files (:mod:`helpers.sources`) become one float tensor per split,
so training batches are slices of a tensor: no per-sample PIL transform, no DataLoader
workers. With no data available, :func:`load_dataset` raises the error of
:func:`helpers.sources.load_raw`, which says what is missing and how to provide it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .sources import check_name, load_raw

NORMALISATION: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion_mnist": (0.2860, 0.3530),
}
"""Mean and standard deviation of the training pixels scaled to [0, 1], per dataset."""

CLASSES: dict[str, tuple[str, ...]] = {
    "mnist": ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
              "8 - eight", "9 - nine"),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
}
"""The class names of each dataset (index = label), as ``torchvision.datasets`` lists them (a
test checks they agree); kept here so that naming the classes does not import torchvision."""


def classes(name: str) -> tuple[str, ...]:
    """The class names of dataset ``name`` (index = label)."""
    check_name(name)
    return CLASSES[name]


@dataclass(frozen=True)
class Split:
    """One split held in memory.

    ``images`` is float32 of shape (N, 784), normalised; ``labels`` is int64 of shape (N,).
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"images and labels differ in length: {self.images.shape[0]} != {self.labels.shape[0]}"
            )

    def __len__(self) -> int:
        return self.labels.shape[0]

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all of them when ``n`` is None)."""
        if n is None:
            return self
        if not 1 <= n <= len(self):
            raise ValueError(f"subset size must be in [1, {len(self)}], got {n}")
        return Split(self.images[:n], self.labels[:n])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the images and labels exactly as held: which data, which
        subset, which normalisation. Models trained on it record it as their provenance."""
        digest = hashlib.sha256()
        for tensor in (self.images, self.labels):
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Flatten uint8 images (N x 28 x 28) to float32 (N x 784) scaled to [0, 1], then standardised."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return ((images.reshape(images.shape[0], -1).float() / 255.0) - mean) / std


def pixel_statistics(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation over all pixels of uint8 ``images`` scaled to [0, 1]."""
    x = images.double() / 255.0
    return float(x.mean()), float(x.std())


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike = "data",
    archive: str | os.PathLike | None = None,
    *,
    train_size: int | None = None,
    test_size: int | None = None,
) -> dict[str, Split]:
    """Both splits of ``name`` as normalised in-memory tensors.

    ``train_size`` and ``test_size`` keep only the first examples (for smoke runs).
    Returns ``{"train": Split, "test": Split}``.
    """
    check_name(name)
    mean, std = NORMALISATION[name]
    sizes = {"train": train_size, "test": test_size}
    for split, size in sizes.items():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{split}_size must be None (all images) or an integer >= 1, got {size!r}")
    raw = load_raw(name, data_dir, archive)
    for split, (images, _) in raw.items():
        if sizes[split] is not None and sizes[split] > len(images):
            raise ValueError(f"{split}_size must be in [1, {len(images)}] for {name}, got {sizes[split]}")
    return {
        split: Split(normalise(images, mean, std), labels).head(sizes[split])
        for split, (images, labels) in raw.items()
    }


def validation_split(train: Split, size: int, seed: int = 0) -> tuple[Split, Split]:
    """Hold out ``size`` random training examples for model selection.

    Returns ``(remaining_train, validation)``; the permutation depends only on ``seed``.
    """
    if not 1 <= size < len(train):
        raise ValueError(f"validation size must be in [1, {len(train) - 1}], got {size}")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    val, rest = perm[:size], perm[size:]
    return Split(train.images[rest], train.labels[rest]), Split(train.images[val], train.labels[val])


VALIDATION_SEED = 0
"""Seed of the permutation that holds the validation images out (:func:`hold_out`)."""


def hold_out(data: Mapping[str, Split], validation_size: int) -> dict[str, Split]:
    """``data`` (``"train"`` and ``"test"``) with ``validation_size`` training images held out as
    ``"validation"``, the same images every time (:data:`VALIDATION_SEED`): every model of the
    study trains on the rest, every choice is made on them, and the test set only reports."""
    rest, validation = validation_split(data["train"], validation_size, VALIDATION_SEED)
    return {**data, "train": rest, "validation": validation}


@functools.lru_cache(maxsize=2)
def held_out(name: str, data_dir: str | os.PathLike, archive: str | os.PathLike | None, train_size: int | None,
             test_size: int | None, validation_size: int) -> dict[str, Split]:
    """:func:`load_dataset` with :func:`hold_out` applied: the splits every model of the study
    trains, is chosen and is tested on, loaded once per process, so that the jobs a worker runs
    share them. Callers must not modify them."""
    return hold_out(load_dataset(name, data_dir, archive, train_size=train_size, test_size=test_size), validation_size)


def check_normalisation(name: str, mean: float, std: float, places: int = 4) -> bool:
    """Whether ``mean`` and ``std`` computed from the training pixels round to the
    normalisation constants used for ``name`` (to ``places`` decimals)."""
    check_name(name)
    used_mean, used_std = NORMALISATION[name]
    return round(mean, places) == used_mean and round(std, places) == used_std


def summary(raw: dict[str, tuple[torch.Tensor, torch.Tensor]], classes: tuple[str, ...]) -> dict:
    """Sizes, class counts and pixel statistics of the splits returned by :func:`load_raw`."""
    out: dict = {"splits": {}, "class_counts": {}, "pixels": {}}
    for split, (images, labels) in raw.items():
        out["splits"][split] = {
            "images": int(images.shape[0]),
            "height": int(images.shape[1]),
            "width": int(images.shape[2]),
            "dtype": str(images.dtype).removeprefix("torch."),
            "classes": int(labels.unique().numel()),
        }
        counts = torch.bincount(labels, minlength=len(classes))
        out["class_counts"][split] = {c: int(n) for c, n in zip(classes, counts)}
        mean, std = pixel_statistics(images)
        out["pixels"][split] = {"mean": mean, "std": std}
    return out
