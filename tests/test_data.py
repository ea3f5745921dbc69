import gzip
import shutil
import struct
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from helpers import data, sources
from helpers.data import load_dataset, validation_split
from helpers.sources import DataUnavailableError

from .conftest import DATA_DIR

ARCHIVE_ENVS = ("MNIST_ARCHIVE", "FASHION_MNIST_ARCHIVE")


def test_mnist_is_whole_normalised_and_in_memory(mnist):
    train, test = mnist["train"], mnist["test"]
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # normalised with the training statistics: mean 0, std 1 on the training split
    assert train.images.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert train.images.std().item() == pytest.approx(1.0, abs=1e-3)
    background = (0 - 0.1307) / 0.3081
    assert train.images.min().item() == pytest.approx(background, abs=1e-6)


def test_pixel_statistics_agree_with_the_study(mnist):
    raw = sources.load_raw("mnist", "data")
    mean, std = data.pixel_statistics(raw["train"][0])
    assert data.check_normalisation("mnist", mean, std)
    assert (round(mean, 4), round(std, 4)) == (0.1307, 0.3081)
    assert not data.check_normalisation("mnist", 0.2, 0.3)


def test_subsets_keep_the_first_examples(mnist):
    small = load_dataset("mnist", "data", train_size=100, test_size=20)
    assert len(small["train"]) == 100 and len(small["test"]) == 20
    assert torch.equal(small["train"].labels, mnist["train"].labels[:100])
    with pytest.raises(ValueError, match=r"train_size must be in \[1, 60000\] for mnist, got 70000"):
        load_dataset("mnist", "data", train_size=70_000)
    with pytest.raises(ValueError, match=r"test_size must be None \(all images\) or an integer >= 1, got 0"):
        load_dataset("mnist", "data", test_size=0)


def test_validation_split_is_disjoint_and_seeded(mnist):
    rest, val = validation_split(mnist["train"], 5_000, seed=0)
    assert len(rest) == 55_000 and len(val) == 5_000
    _, val_again = validation_split(mnist["train"], 5_000, seed=0)
    assert torch.equal(val.images, val_again.images)
    # no image is in both parts (compare exact rows through a hash of each image)
    h = lambda s: set(map(hash, map(bytes, (s.images * 1000).round().to(torch.int32).numpy())))
    assert not h(rest) & h(val)
    with pytest.raises(ValueError, match="validation size"):
        validation_split(mnist["train"], 60_000)


def test_unknown_dataset_names_the_accepted_ones(tmp_path):
    with pytest.raises(ValueError, match="fashion_mnist"):
        load_dataset("cifar10", tmp_path)


def _no_download(self):
    raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error no network>")


def test_missing_data_without_archive_or_network_says_how_to_provide_it(tmp_path, monkeypatch):
    for env in ARCHIVE_ENVS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setattr(datasets.MNIST, "download", _no_download)
    with pytest.raises(DataUnavailableError) as err:
        load_dataset("mnist", tmp_path)
    message = str(err.value)
    assert "MNIST_ARCHIVE" in message and "could not be downloaded" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert not any((tmp_path / "MNIST" / "raw").glob("*-ubyte"))


def test_without_archive_torchvision_download_is_used(tmp_path, monkeypatch, mnist):
    """The download path, exercised by its code: torchvision's download is replaced by a copy."""
    monkeypatch.delenv("MNIST_ARCHIVE", raising=False)
    calls = []

    def fake_download(self):
        calls.append(self.raw_folder)
        Path(self.raw_folder).mkdir(parents=True, exist_ok=True)
        for f in sources.RAW_FILES:
            shutil.copy(sources.raw_folder("mnist", "data") / f, self.raw_folder)

    monkeypatch.setattr(datasets.MNIST, "download", fake_download)
    loaded = load_dataset("mnist", tmp_path, test_size=10)
    assert calls == [str(tmp_path / "MNIST" / "raw")]
    assert torch.equal(loaded["test"].labels, mnist["test"].labels[:10])


def write_idx_gz(path, tensor):
    """Write a uint8 tensor in the IDX format (magic 0x0803 for images, 0x0801 for labels), gzipped."""
    header = struct.pack(">HBB", 0, 0x08, tensor.dim()) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + tensor.numpy().tobytes())


@pytest.fixture
def fake_archive(tmp_path, monkeypatch):
    """A folder of four small generated .gz IDX files (30 images per split); the published
    checksums are set aside for them, and no download is possible."""
    monkeypatch.setattr(datasets.MNIST, "download", _no_download)
    monkeypatch.setattr(sources, "SHA256", {})
    for env in ARCHIVE_ENVS:
        monkeypatch.delenv(env, raising=False)
    archive = tmp_path / "archive"
    archive.mkdir()
    images = torch.randint(0, 256, (30, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(30, dtype=torch.uint8) % 10
    for split in ("train", "t10k"):
        write_idx_gz(archive / f"{split}-images-idx3-ubyte.gz", images)
        write_idx_gz(archive / f"{split}-labels-idx1-ubyte.gz", labels)
    return archive, images, labels


def test_archive_is_extracted_into_torchvisions_layout(tmp_path, fake_archive):
    archive, images, labels = fake_archive
    loaded = load_dataset("mnist", tmp_path / "d", archive)
    assert len(loaded["train"]) == 30 and len(loaded["test"]) == 30
    assert torch.equal(loaded["test"].labels, labels.long())
    assert torch.allclose(loaded["train"].images, data.normalise(images, *data.NORMALISATION["mnist"]))
    assert sorted(p.name for p in (tmp_path / "d" / "MNIST" / "raw").iterdir()) == sorted(sources.RAW_FILES)


def test_incomplete_archive_names_the_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_ARCHIVE", str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataUnavailableError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", tmp_path / "d")
    assert not (tmp_path / "d" / "MNIST" / "raw").exists() or not any((tmp_path / "d" / "MNIST" / "raw").iterdir())


def test_fashion_mnist_loads_by_name():
    fashion = load_dataset("fashion_mnist", "data")
    assert len(fashion["train"]) == 60_000 and len(fashion["test"]) == 10_000
    assert fashion["train"].labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert torch.bincount(fashion["train"].labels).tolist() == [6000] * 10
    assert torch.bincount(fashion["test"].labels).tolist() == [1000] * 10
    assert fashion["train"].images.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert data.classes("fashion_mnist")[9] == "Ankle boot"


@pytest.mark.parametrize("name", sources.DATASETS)
def test_class_names_are_torchvisions(name):
    from torchvision import datasets

    assert list(data.classes(name)) == getattr(datasets, sources.DATASETS[name]).classes


# --- bad data files: a clear error naming the file, nothing left for torchvision to read ---


def _extracted(tmp_path, fake_archive):
    load_dataset("mnist", tmp_path / "d", fake_archive[0])
    return sources.raw_folder("mnist", tmp_path / "d")


def _expect_refusal(tmp_path, match, name="train-labels-idx1-ubyte"):
    with pytest.raises(sources.CorruptDataError, match=match) as err:
        load_dataset("mnist", tmp_path / "d")
    assert name in str(err.value) and "Delete" in str(err.value)


def test_truncated_file_is_refused(tmp_path, fake_archive):
    raw = _extracted(tmp_path, fake_archive)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    _expect_refusal(tmp_path, "truncated", "train-images-idx3-ubyte")


def test_wrong_magic_number_is_refused(tmp_path, fake_archive):
    raw = _extracted(tmp_path, fake_archive)
    path = raw / "train-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">I", 0x0803) + path.read_bytes()[4:])
    _expect_refusal(tmp_path, "magic number 0x00000803, expected 0x00000801")


def test_label_out_of_range_is_refused(tmp_path, fake_archive):
    raw = _extracted(tmp_path, fake_archive)
    path = raw / "train-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[8 + 7] = 12
    path.write_bytes(bytes(blob))
    _expect_refusal(tmp_path, r"label 12 at index 7; labels must be in 0\.\.9")


def test_images_and_labels_of_different_lengths_are_refused(tmp_path, fake_archive):
    raw = _extracted(tmp_path, fake_archive)
    write_idx_gz(tmp_path / "short.gz", torch.zeros(29, dtype=torch.uint8))
    with gzip.open(tmp_path / "short.gz") as f:
        (raw / "t10k-labels-idx1-ubyte").write_bytes(f.read())
    _expect_refusal(tmp_path, "30 images but 29 labels", "t10k")


def test_file_with_other_content_fails_the_published_checksum(tmp_path, mnist):
    """One changed pixel of the real MNIST is caught by its SHA-256."""
    raw = sources.raw_folder("mnist", tmp_path / "d")
    raw.mkdir(parents=True)
    for f in sources.RAW_FILES:
        shutil.copy(sources.raw_folder("mnist", DATA_DIR) / f, raw)
    path = raw / "t10k-images-idx3-ubyte"
    blob = bytearray(path.read_bytes())
    blob[5000] ^= 0xFF
    path.write_bytes(bytes(blob))
    _expect_refusal(tmp_path, "SHA-256", "t10k-images-idx3-ubyte")


def test_folder_with_some_files_is_completed_from_the_archive(tmp_path, fake_archive):
    raw = _extracted(tmp_path, fake_archive)
    (raw / "t10k-images-idx3-ubyte").unlink()
    assert len(load_dataset("mnist", tmp_path / "d", fake_archive[0])["test"]) == 30
    (raw / "t10k-images-idx3-ubyte").unlink()
    (raw / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataUnavailableError, match=r"holds only 2 of the four files \(missing: "
                                                   r"t10k-images-idx3-ubyte, train-labels-idx1-ubyte\)"):
        load_dataset("mnist", tmp_path / "d")


def test_corrupt_archive_leaves_nothing_behind(tmp_path, fake_archive):
    archive = fake_archive[0]
    gz = archive / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(sources.CorruptDataError, match="t10k-labels-idx1-ubyte.gz cannot be decompressed"):
        load_dataset("mnist", tmp_path / "d", archive)
    raw = sources.raw_folder("mnist", tmp_path / "d")
    assert not any(raw.iterdir())
    write_idx_gz(gz, torch.full((30,), 10, dtype=torch.uint8))
    with pytest.raises(sources.CorruptDataError, match="local archive .* label 10 at index 0"):
        load_dataset("mnist", tmp_path / "d", archive)
    assert not any(raw.iterdir())


def test_fingerprint_tells_data_apart(fake_archive, tmp_path):
    full = load_dataset("mnist", tmp_path / "d", fake_archive[0])
    subset = load_dataset("mnist", tmp_path / "d", train_size=10)
    assert full["train"].fingerprint == load_dataset("mnist", tmp_path / "d")["train"].fingerprint
    assert subset["train"].fingerprint != full["train"].fingerprint
    assert load_dataset("fashion_mnist", tmp_path / "d", fake_archive[0])["train"].fingerprint != \
        full["train"].fingerprint
