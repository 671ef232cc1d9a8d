"""Dataset specs and their registry (the same `Registry` idiom as the model zoo)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from zoo import MedzooError, Registry, Task


class Split(str, Enum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class DatasetNotFoundError(MedzooError, FileNotFoundError):
    """A dataset file is missing (and could not be downloaded)."""


class ChecksumError(MedzooError, RuntimeError):
    """A dataset file's md5 differs from the official one."""


@lru_cache(maxsize=1024)
def _md5(path: Path, mtime_ns: int, nbytes: int) -> str:  # keyed on stat: re-hashed when the file changes
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_md5(path: Path) -> str:
    """The md5 of a dataset file, computed once per file version (the one md5 cache of every dataset kind)."""
    stat = path.stat()
    return _md5(path, stat.st_mtime_ns, stat.st_size)


Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: facts (task, channels, labels, sizes, license, citation) and a loader.

    `load(split, size, root)` returns `(images uint8 (N, H, W[, C]), labels (N, 1) or (N, L))`;
    `fingerprint(size, root)` returns a checksum of the verified source file(s) (an md5 for MedMNIST), recorded
    with every result so a board never mixes data versions.
    """

    name: str
    task: Task
    n_channels: int
    labels: Mapping[str, str]
    n_samples: Mapping[str, int]
    sizes: tuple[int, ...]
    license: str
    citation: str
    load: Callable[[Split, int, Path | None], Arrays] = field(repr=False, compare=False)
    fingerprint: Callable[[int, Path | None], str] = field(repr=False, compare=False)
    description: str = ""
    test_only: bool = False  # synthetic sets for the tests: hidden from `medzoo ls datasets`
    redistributable: bool = True  # False (DRIVE): a board's missing cells say the user must bring their own copy
    reading: str = ""  # how a user's files became these arrays (bit depth, window, channels, resize, split)
    resize: str = "pad"  # how an image of another size is brought to this dataset's (`data.images.fit`; predict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "n_samples", MappingProxyType(dict(self.n_samples)))

    @property
    def num_classes(self) -> int:
        return len(self.labels)


DATASETS: Registry[DatasetSpec] = Registry("dataset")
