"""MedMNIST v2 (Yang et al., Sci. Data 2023) — every 2D dataset, registered from the `medmnist` package's INFO
table so that no fact (URLs, md5, labels, split sizes, license) is re-typed here.

Files are looked for in `root` (the CLI's `--data-dir`), then `$MEDZOO_DATA_DIR`, then medmnist's default
`~/.medmnist`. Every file's md5 is checked before use. A missing file is downloaded when online (medmnist's
Zenodo URL, md5-checked); offline it is a `DatasetNotFoundError` naming the file, the path and the command.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from medmnist.info import DEFAULT_ROOT, INFO

from benchmarks.data._spec import (
    DATASETS,
    Arrays,
    ChecksumError,
    DatasetNotFoundError,
    DatasetSpec,
    Split,
    Task,
    file_md5,
)
from zoo import offline, unreachable

SIZES = (28, 64, 128, 224)
CITATION = "Yang et al., MedMNIST v2, Scientific Data 10, 41 (2023), doi:10.1038/s41597-022-01721-8"
_TASKS = {"binary-class": Task.BINARY, "multi-class": Task.MULTICLASS, "multi-label, binary-class": Task.MULTILABEL,
          "ordinal-regression": Task.ORDINAL}


def data_root(root: Path | str | None = None) -> Path:
    """`root`, else `$MEDZOO_DATA_DIR`, else medmnist's default folder."""
    return Path(root or os.environ.get("MEDZOO_DATA_DIR") or DEFAULT_ROOT).expanduser()


def file_name(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def _suffix(size: int) -> str:
    return "" if size == 28 else f"_{size}"


def _download_cmd(flag: str, size: int, root: Path) -> str:
    cls = INFO[flag]["python_class"]
    return (f"python -c \"import medmnist; medmnist.{cls}(split='test', size={size}, download=True, "
            f"root='{root}')\"")


def locate(flag: str, size: int = 28, root: Path | str | None = None) -> Path:
    """The verified local file of MedMNIST `flag` at `size`, downloading it when missing and online."""
    if size not in SIZES:
        raise ValueError(f"MedMNIST has sizes {SIZES}, not {size}")
    info, where = INFO[flag], data_root(root)
    path = where / file_name(flag, size)
    if not path.is_file():
        url = info[f"url{_suffix(size)}"]
        why = "offline mode (HF_HUB_OFFLINE/MEDZOO_OFFLINE)" if offline() else unreachable(url)
        if why:
            raise DatasetNotFoundError(
                f"{path.name} ({flag}, {size} px) not found at {path} and cannot be downloaded ({why}). Download it "
                f"on a machine with internet: {_download_cmd(flag, size, where)} — or copy the file there, or point "
                f"--data-dir / MEDZOO_DATA_DIR at the folder that holds it.")
        from torchvision.datasets.utils import download_url

        download_url(url, str(where), filename=path.name, md5=info[f"MD5{_suffix(size)}"])
    actual, expected = file_md5(path), info[f"MD5{_suffix(size)}"]
    if actual != expected:
        raise ChecksumError(f"md5 mismatch for {path}: expected {expected} (official), got {actual}. The file is "
                            f"corrupt or not the official release: delete it and download again.")
    return path


MEMMAP_MIN_SIZE = 128
"""From this size up, images are extracted once to `.npy` files and memory-mapped (PathMNIST-224 is ~16 GB)."""


def cache_dir() -> Path:
    """`$MEDZOO_CACHE_DIR`, else `~/.cache/medzoo`: extracted arrays (and later feature caches) live here."""
    return Path(os.environ.get("MEDZOO_CACHE_DIR") or Path.home() / ".cache" / "medzoo").expanduser()


def _memmapped(path: Path, md5: str, key: str) -> np.ndarray:
    """`key` of the npz at `path` as a read-only memory map, extracted once per file version (md5 in the folder
    name, so a changed file never reuses a stale extraction; written to a temp name and renamed: never half)."""
    out = cache_dir() / "medmnist" / f"{path.stem}-{md5[:12]}" / f"{key}.npy"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp.npy")
        with np.load(path) as npz:
            np.save(tmp, npz[key])
        os.replace(tmp, out)
    return np.load(out, mmap_mode="r")


def _loader(flag: str):  # type: ignore[no-untyped-def]
    def load(split: Split | str, size: int = 28, root: Path | None = None) -> Arrays:
        split = Split(split)
        path = locate(flag, size, root)
        with np.load(path) as npz:
            labels = npz[f"{split.value}_labels"]
            if size < MEMMAP_MIN_SIZE:
                return npz[f"{split.value}_images"], labels
        return _memmapped(path, file_md5(path), f"{split.value}_images"), labels

    return load


def _fingerprint(flag: str):  # type: ignore[no-untyped-def]
    def fingerprint(size: int = 28, root: Path | None = None) -> str:
        return file_md5(locate(flag, size, root))

    return fingerprint


for _flag, _info in INFO.items():
    if _flag.endswith("3d"):
        continue
    DATASETS.add(DatasetSpec(
        name=_flag, task=_TASKS[_info["task"]], n_channels=_info["n_channels"], labels=_info["label"],
        n_samples=_info["n_samples"], sizes=SIZES, license=_info["license"], citation=CITATION, load=_loader(_flag),
        fingerprint=_fingerprint(_flag),
        description=_info["description"].split(".")[0],
    ))
