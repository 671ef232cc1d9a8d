"""Frozen spec dataclasses: what a model is, which weights exist for it, how its inputs are prepared.

They are validated on construction so that a typo in a family file fails at import, not in a benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for typing: specs stay importable (and listable) without loading torch
    from torch import nn

SOURCE_SCHEMES = ("hf-hub:", "https://", "http://", "package:", "file:")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Task(str, Enum):
    """What a model or a dataset is for: one enum for both, so they compare directly. A model is CLASSIFICATION or
    SEGMENTATION; a classification dataset names its label type (BINARY, MULTICLASS, MULTILABEL, ORDINAL, as the
    MedMNIST paper describes them), whose `kind` is CLASSIFICATION."""

    CLASSIFICATION = "classification"
    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    ORDINAL = "ordinal"
    SEGMENTATION = "segmentation"

    @property
    def kind(self) -> Task:
        """CLASSIFICATION or SEGMENTATION: the models that fit a dataset of this task."""
        return Task.SEGMENTATION if self is Task.SEGMENTATION else Task.CLASSIFICATION


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for a set of weights (the model sees `(x/255 - mean) / std`)."""

    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean {self.mean} and std {self.std} must have the same non-zero length")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if self.interpolation not in ("nearest", "bilinear", "bicubic"):
            raise ValueError(f"unknown interpolation {self.interpolation!r}")

    def for_channels(self, in_chans: int) -> Preprocess:
        """Mean/std for a model adapted to `in_chans` inputs.

        A 1-channel model made by summing the RGB filters of the first conv sees a grey image; it is equivalent to
        the RGB model on that grey image replicated only if every channel is normalised alike, so we use the mean of
        the RGB means and of the RGB stds (documented in docs/cli-and-api.md).
        """
        if in_chans == len(self.mean):
            return self
        m = sum(self.mean) / len(self.mean)
        s = sum(self.std) / len(self.std)
        return replace(self, mean=(m,) * in_chans, std=(s,) * in_chans)


@dataclass(frozen=True)
class WeightsSpec:
    """One checkpoint: where it lives, how to check it, what it was trained on, how to feed it.

    `revision=None` and `sha256=None` on an `hf-hub:` source mean *unpinned*: timm does not publish them, and we
    do not invent values; `unpinned` makes that explicit.
    """

    tag: str
    source: str
    pretrain_data: str
    license: str
    preprocess: Preprocess
    num_classes: int | None  # None: weights without a classifier (e.g. a segmentation encoder)
    revision: str | None = None
    sha256: str | None = None
    filename: str = "model.safetensors"
    rename_in_order: bool = False  # keys use another naming style but the same order (lukemelas → timm)
    drop_prefixes: tuple[str, ...] = ()  # e.g. auxiliary heads that medzoo models do not build
    target: str = ""  # sub-module the checkpoint belongs to ("" = the whole network)
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.source.startswith(SOURCE_SCHEMES):
            raise ValueError(f"weights source {self.source!r} must start with one of {SOURCE_SCHEMES}")
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            raise ValueError(f"sha256 {self.sha256!r} is not 64 lower-case hex digits")
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError("num_classes must be >= 1")

    @property
    def unpinned(self) -> bool:
        return self.source.startswith("hf-hub:") and self.revision is None and self.sha256 is None


Builder = Callable[..., "nn.Module"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture. Numbers are measured (see `scripts/measure_specs.py`) and checked by tests.

    - `min_size`: the smallest square input the forward pass accepts (never below the network's total stride);
    - `feature_dim`: width of `forward_head(x, pre_logits=True)`;
    - `num_params`: at `num_classes`, in_chans=3, without auxiliary heads;
    - `gflops`: "GFLOPs (2×MAC)" as `torch.utils.flop_counter` counts them at `default_size`, batch 1.
    """

    name: str
    family: str
    task: Task
    paper: str
    builder: Builder = field(repr=False, compare=False)
    weights: Mapping[str, WeightsSpec]
    default_tag: str | None
    default_size: int
    min_size: int
    feature_dim: int
    num_params: int
    gflops: float
    num_classes: int = 1000
    size_divisor: int = 1
    description: str = ""
    version: int = 1  # bump when what the builder makes changes (part of every cell key: benchmarks.versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        if self.default_tag is not None and self.default_tag not in self.weights:
            raise ValueError(f"{self.name}: default tag {self.default_tag!r} not in its weights table")
        for tag, w in self.weights.items():
            if tag != w.tag:
                raise ValueError(f"{self.name}: weights key {tag!r} != its tag {w.tag!r}")
        if self.min_size > self.default_size or self.min_size % self.size_divisor:
            raise ValueError(f"{self.name}: min_size {self.min_size} must be <= default and a multiple of "
                             f"{self.size_divisor}")

    @property
    def pretrained(self) -> bool:
        return bool(self.weights)

    @property
    def takes_timm_kwargs(self) -> bool:
        """Whether its builder takes `**kwargs` (the timm-built ones hand them to timm; the others refuse them)."""
        import inspect

        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(self.builder).parameters.values())
