"""Dataset specs and their registry (the same `Registry` idiom as the model zoo)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType

import numpy as np

from zoo import MedzooError, Registry


class Task(str, Enum):
    """Label types, named as the MedMNIST paper describes them (its strings map onto these)."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    ORDINAL = "ordinal"
    SEGMENTATION = "segmentation"


class Split(str, Enum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class DatasetNotFoundError(MedzooError, FileNotFoundError):
    """A dataset file is missing (and could not be downloaded)."""


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "n_samples", MappingProxyType(dict(self.n_samples)))

    @property
    def num_classes(self) -> int:
        return len(self.labels)


DATASETS: Registry[DatasetSpec] = Registry("dataset")
