"""Where the datasets' IDX files come from, checked: a data folder, a local archive or a download.

The four published IDX files of each dataset sit where ``torchvision.datasets`` keeps them, and
torchvision downloads them when nothing else has. Every file is read whole and checked
(header, size, labels, published SHA-256) before its bytes are used.

Where the files come from, in order:
1. ``data_dir`` already holds the raw files torchvision expects;
2. a local archive folder holding the four original ``.gz`` IDX files (argument
   ``archive``, else the environment variable named in :data:`ARCHIVE_ENV`, else,
   for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` folder when installed);
3. torchvision's own download.
With none of them available, :func:`load_raw` raises an error that says what is missing and
how to provide it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

DATASETS: dict[str, str] = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
}
"""Dataset name -> the ``torchvision.datasets`` class that downloads it and names its folder
(both share MNIST's file layout)."""


def _torchvision_dataset(name: str):
    """The ``torchvision.datasets`` class of dataset ``name``."""
    # imported when needed, not with this module: importing torchvision takes about as long as
    # importing torch (its models pull in torch._dynamo), and only a download needs it
    from torchvision import datasets
    return getattr(datasets, DATASETS[name])


ARCHIVE_ENV: dict[str, str] = {
    "mnist": "MNIST_ARCHIVE",
    "fashion_mnist": "FASHION_MNIST_ARCHIVE",
}
"""Environment variable that may name a local folder of the four ``.gz`` IDX files."""

DEFAULT_ARCHIVES: dict[str, Path] = {
    "fashion_mnist": Path("/usr/share/datasets/fashion-mnist"),
}
"""System folders that hold an offline copy when a distribution package installed one."""

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files of both datasets, uncompressed names."""

SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
"""SHA-256 of each uncompressed IDX file of the published datasets: the same content whatever
the compression of the archive it came from (MNIST's as listed in the offline copy's
``SHA256SUMS``; both as listed by other public projects for the publishers' downloads).
A file with another digest is refused."""


class DataUnavailableError(RuntimeError):
    """The dataset is neither on disk, nor in a local archive, nor downloadable."""


class CorruptDataError(DataUnavailableError):
    """A data file is present but is not a valid, complete copy of the published file."""


def check_name(name: str) -> None:
    """Refuse a dataset name other than those of :data:`DATASETS`."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {sorted(DATASETS)}")


def archive_folder(name: str, archive: str | os.PathLike | None = None) -> Path | None:
    """The local archive folder to use for ``name``: the argument, else its environment
    variable, else a system folder that exists, else None."""
    check_name(name)
    if archive is not None and str(archive) != "":
        return Path(archive)
    from_env = os.environ.get(ARCHIVE_ENV[name], "")
    if from_env:
        return Path(from_env)
    default = DEFAULT_ARCHIVES.get(name)
    if default is not None and default.is_dir():
        return default
    return None


def raw_folder(name: str, data_dir: str | os.PathLike) -> Path:
    """Where torchvision looks for the uncompressed IDX files of ``name`` under ``data_dir``."""
    check_name(name)
    return Path(data_dir) / DATASETS[name] / "raw"


IMAGE_SIZE = (28, 28)
N_CLASSES = 10


def check_idx_file(path: Path, name: str) -> np.ndarray:
    """Check that ``path`` is a complete IDX file of the kind its name says (``*-images-idx3-ubyte``:
    magic 0x00000803, N x 28 x 28 unsigned bytes; ``*-labels-idx1-ubyte``: magic 0x00000801, N
    labels in 0..9), with the published SHA-256 of dataset ``name`` when :data:`SHA256` lists it.

    Returns its contents, the bytes just checked (uint8, N x 28 x 28 or N), read only. Raises
    :class:`CorruptDataError` naming the file and what is wrong with it.
    """
    ndim = 3 if "images" in path.name else 1
    blob = path.read_bytes()

    def bad(problem: str) -> CorruptDataError:
        return CorruptDataError(f"{path} is not a valid {name} data file: {problem}")

    header = 4 + 4 * ndim
    if len(blob) < header:
        raise bad(f"{len(blob)} bytes, shorter than its {header}-byte IDX header")
    zero, dtype, dims = struct.unpack(">HBB", blob[:4])
    if (zero, dtype, dims) != (0, 0x08, ndim):
        raise bad(f"magic number 0x{blob[:4].hex()}, expected 0x000008{ndim:02x} (unsigned bytes, {ndim}-D)")
    shape = struct.unpack(f">{ndim}I", blob[4:header])
    if ndim == 3 and shape[1:] != IMAGE_SIZE:
        raise bad(f"images of {shape[1]} x {shape[2]} pixels, expected 28 x 28")
    expected = header + int(np.prod(shape))
    if len(blob) != expected:
        raise bad(f"{len(blob):,} bytes where its header {shape} implies {expected:,} (truncated or padded)")
    if ndim == 1:
        labels = np.frombuffer(blob, dtype=np.uint8, offset=header)
        if labels.size and labels.max() >= N_CLASSES:
            where = int(np.argmax(labels >= N_CLASSES))
            raise bad(f"label {int(labels[where])} at index {where}; labels must be in 0..{N_CLASSES - 1}")
    published = SHA256.get(name, {}).get(path.name)
    if published is not None:
        actual = hashlib.sha256(blob).hexdigest()
        if actual != published:
            raise bad(f"SHA-256 {actual[:16]}..., the published file's is {published[:16]}...")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


def read_raw_files(name: str, folder: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read the four IDX files of ``name`` in ``folder``, each checked (:func:`check_idx_file`),
    and check that each split has as many labels as images.

    Returns what :func:`load_raw` returns, from the very bytes checked: ``{"train": (images,
    labels), "test": (images, labels)}``, images uint8 N x 28 x 28, labels int64 (the tensors
    torchvision's dataset classes hold)."""
    contents = {f: check_idx_file(folder / f, name) for f in RAW_FILES}
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = contents[f"{prefix}-images-idx3-ubyte"], contents[f"{prefix}-labels-idx1-ubyte"]
        if len(images) != len(labels):
            raise CorruptDataError(
                f"{folder}: {prefix} split has {len(images):,} images but {len(labels):,} labels"
            )
        splits[split] = (torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))
    return splits


def extract_from_archive(name: str, data_dir: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Decompress the four ``<file>.gz`` of ``archive`` into torchvision's raw folder.

    Each file is decompressed to a temporary folder and checked (:func:`read_raw_files`);
    the four are moved into place only when all are complete and valid, so an interrupted
    extraction or a bad archive leaves nothing torchvision would read. Returns the raw folder.
    """
    archive = Path(archive)
    missing = [f"{f}.gz" for f in RAW_FILES if not (archive / f"{f}.gz").is_file()]
    if missing:
        raise DataUnavailableError(
            f"local archive {archive} for {name} lacks {', '.join(missing)}; it must hold "
            f"the four original gzipped IDX files {', '.join(f + '.gz' for f in RAW_FILES)}"
        )
    target = raw_folder(name, data_dir)
    target.mkdir(parents=True, exist_ok=True)
    from torchvision.datasets.utils import extract_archive  # when needed: see _torchvision_dataset

    with tempfile.TemporaryDirectory(dir=target) as tmp:
        for f in RAW_FILES:
            try:
                extract_archive(str(archive / f"{f}.gz"), tmp)
            except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
                raise CorruptDataError(
                    f"{archive / (f + '.gz')} cannot be decompressed ({err}): replace it with "
                    f"the original gzipped file"
                ) from err
        try:
            read_raw_files(name, Path(tmp))
        except CorruptDataError as err:
            raise CorruptDataError(f"local archive {archive} for {name}: {err}") from err
        for f in RAW_FILES:
            shutil.move(os.path.join(tmp, f), target / f)
    return target


def _fetch(name: str, data_dir: Path, archive: Path | None) -> None:
    """Make the raw files of ``name`` present under ``data_dir`` (archive, else download)."""
    if archive is not None:
        extract_from_archive(name, data_dir, archive)
        return
    try:
        _torchvision_dataset(name)(str(data_dir), train=True, download=True)
    except Exception as err:  # torchvision raises RuntimeError or URLError, depending on the failure
        raise DataUnavailableError(
            f"{name} is not in {raw_folder(name, data_dir)} and could not be downloaded ({err}). "
            f"Provide it in one of these ways: run on a machine with internet access; or set "
            f"{ARCHIVE_ENV[name]} (or pass archive=...) to a folder holding "
            f"{', '.join(f + '.gz' for f in RAW_FILES)}; or put the uncompressed files in "
            f"{raw_folder(name, data_dir)}."
        ) from err


def load_raw(
    name: str = "mnist",
    data_dir: str | os.PathLike = "data",
    archive: str | os.PathLike | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Raw images (uint8, N x 28 x 28) and labels (int64, N) of both splits.

    Returns ``{"train": (images, labels), "test": (images, labels)}``.
    """
    check_name(name)
    data_dir = Path(data_dir)
    folder = raw_folder(name, data_dir)
    present = [f for f in RAW_FILES if (folder / f).is_file()]
    if len(present) < len(RAW_FILES):
        # A folder holding only some files is completed from the archive (or download), all
        # four replaced together; without a source the error says which files are missing.
        try:
            _fetch(name, data_dir, archive_folder(name, archive))
        except DataUnavailableError as err:
            if not present or isinstance(err, CorruptDataError):
                raise
            missing = sorted(set(RAW_FILES) - set(present))
            raise DataUnavailableError(f"{folder} holds only {len(present)} of the four files "
                                       f"(missing: {', '.join(missing)}). {err}") from err
    try:
        return read_raw_files(name, folder)
    except CorruptDataError as err:
        raise CorruptDataError(
            f"{err}. Delete {folder} and run again: the files are extracted afresh from the "
            f"archive (${ARCHIVE_ENV[name]}) or downloaded."
        ) from err
