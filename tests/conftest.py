"""Shared fixtures. Real data comes from `../shared/data` (or `$MEDZOO_DATA_DIR`): a missing folder fails the tests
that need it, it never skips them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def medmnist_dir() -> Path:
    path = Path(os.environ.get("MEDZOO_DATA_DIR") or ROOT.parent / "shared" / "data" / "medmnist")
    if not (path / "breastmnist.npz").is_file():
        pytest.fail(f"MedMNIST files not found in {path}: set MEDZOO_DATA_DIR=../shared/data/medmnist")
    return path


@pytest.fixture()
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Offline mode with empty, private weight caches (so nothing from the developer's cache leaks in)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def _private_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Feature-cache entries and memory-mapped arrays of the tests go to a temporary folder, never the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDZOO_CACHE_DIR", str(tmp_path_factory.mktemp("medzoo-cache")))
        yield
