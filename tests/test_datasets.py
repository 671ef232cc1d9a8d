"""MedMNIST files: md5 checks and clear errors for missing or corrupt files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.data import DATASETS, ChecksumError, DatasetNotFoundError, Task


def test_breastmnist_loads_with_official_split_sizes(medmnist_dir: Path) -> None:
    ds = DATASETS.get("breastmnist")
    assert ds.task is Task.BINARY and ds.n_channels == 1
    for split, n in ds.n_samples.items():
        images, labels = ds.load(split, 28, medmnist_dir)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8 and labels.shape == (n, 1)


def test_retinamnist_is_ordinal_rgb(medmnist_dir: Path) -> None:
    ds = DATASETS.get("retinamnist")
    images, labels = ds.load("test", 28, medmnist_dir)
    assert ds.task is Task.ORDINAL and images.shape[-1] == 3 and set(np.unique(labels)) == set(range(5))


def test_corrupt_file_is_refused(tmp_path: Path, medmnist_dir: Path) -> None:
    bad = tmp_path / "breastmnist.npz"
    shutil.copy(medmnist_dir / "breastmnist.npz", bad)
    with bad.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ChecksumError, match="md5 mismatch"):
        DATASETS.get("breastmnist").load("test", 28, tmp_path)


def test_missing_file_offline_names_file_path_and_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDZOO_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError) as e:
        DATASETS.get("pneumoniamnist").load("train", 64, tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "pneumoniamnist_64.npz") in msg and "medmnist.PneumoniaMNIST(" in msg and "size=64" in msg


def test_large_sets_are_memory_mapped_and_equal(medmnist_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """From MEMMAP_MIN_SIZE up, images come from a once-extracted .npy memory map with the same content."""
    from benchmarks.data import medmnist

    ds = DATASETS.get("breastmnist")
    plain, labels = ds.load("val", 28, medmnist_dir)
    monkeypatch.setattr(medmnist, "MEMMAP_MIN_SIZE", 28)
    monkeypatch.setenv("MEDZOO_CACHE_DIR", str(tmp_path))
    mapped, labels2 = ds.load("val", 28, medmnist_dir)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, plain)
    np.testing.assert_array_equal(labels2, labels)
    assert len(list(tmp_path.rglob("*.npy"))) == 1 and not list(tmp_path.rglob("*.tmp*"))
