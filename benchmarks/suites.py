"""Versioned benchmark suites: data, not code. A suite is a list of grids (models x datasets x sizes x modes x
seeds) with one training protocol each; `Suite.cells()` expands them into the cells the harness runs.

Bump a suite's `version` whenever its data, splits, protocol or metrics change: results carry `suite@version`
and a board never mixes versions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from itertools import product
from typing import Any

from benchmarks.datasets.segmentation import NATIVE_SIZE
from zoo import Registry, TransferMode


class Policy(str, Enum):
    """How a stored image of `data_size` becomes the network's `input_size` (recorded in every result)."""

    NATIVE = "native"  # as stored; if the model needs more, bicubic resize up to its minimum (the result says so)
    RESIZE_NEAREST = "resize-nearest"  # MedMNIST v2's "224" runs: 28 px upsampled with nearest neighbour
    RESIZE_BILINEAR = "resize-bilinear"
    RESIZE_BICUBIC = "resize-bicubic"
    PAD = "pad"  # zero-padded (centred) to input_size, as MedMNIST+ does

    @property
    def interpolation(self) -> str | None:
        return self.value.split("-", 1)[1] if self.value.startswith("resize-") else None


@dataclass(frozen=True)
class Protocol:
    """How a cell trains. `features` mode uses only `head`; the others use the optimiser fields."""

    epochs: int = 100
    batch_size: int = 128
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of `epochs` (MedMNIST v2: 50 and 75 of 100)
    gamma: float = 0.1
    monitor: str = "val_auc"  # the best epoch: val_auc / val_dice (max) or val_loss (min)
    patience: int | None = None  # early stopping on `monitor`; None trains every epoch
    augment: bool = False  # random flips and 90-degree rotations of training batches
    backbone_lr_scale: float = 1.0
    head: str = "logistic"  # scikit-learn head of `features` cells
    time_budget_s: float | None = None  # training stops at the first epoch end past this (recorded)

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}: adam, adamw or sgd")
        if self.schedule not in ("multistep", "cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}: multistep, cosine or constant")
        if self.monitor not in ("val_auc", "val_loss", "val_dice"):
            raise ValueError(f"unknown monitor {self.monitor!r}: val_auc, val_dice or val_loss")
        object.__setattr__(self, "milestones", tuple(self.milestones))


@dataclass(frozen=True)
class SegProtocol(Protocol):
    """Patch-based segmentation training: an epoch is `patches_per_epoch` random `patch_size` crops of the training
    images (flipped and rotated when `augment`), loss BCE + Dice; validation on a fixed set of `val_patches` crops
    every epoch and on the full validation images (sliding window) every `val_full_every` epochs; test by sliding
    window with `overlap` (fraction of the patch) and averaged probabilities."""

    batch_size: int = 8
    monitor: str = "val_loss"
    augment: bool = True
    patch_size: int = 96
    patches_per_epoch: int = 512
    val_patches: int = 128
    val_full_every: int = 5
    overlap: float = 0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if min(self.patch_size, self.patches_per_epoch, self.val_patches, self.val_full_every) <= 0:
            raise ValueError("patch_size, patches_per_epoch, val_patches and val_full_every must be positive")


@dataclass(frozen=True)
class Cell:
    """One unit of work and of the results store."""

    suite: str
    version: str
    model: str  # arch.tag, or arch.random for random initial weights
    dataset: str
    data_size: int  # which stored resolution is read (MedMNIST: 28, 64, 128, 224)
    policy: Policy
    input_size: int  # requested; the harness runs at max(input_size, the model's minimum) and records it
    mode: TransferMode
    seed: int
    protocol: Protocol
    overrides: tuple[tuple[str, Any], ...] = ()  # command-line changes to the suite, recorded in the result

    @property
    def arch(self) -> str:
        return self.model.partition(".")[0]

    @property
    def tag(self) -> str:
        return self.model.partition(".")[2]

    @property
    def pretrained(self) -> bool:
        return self.tag != "random"

    def config(self) -> dict[str, Any]:
        """Everything that decides the cell's numbers, as plain JSON data."""
        d = asdict(self)
        d["policy"], d["mode"] = self.policy.value, self.mode.value
        d["protocol"]["milestones"] = list(self.protocol.milestones)
        d["overrides"] = [list(o) for o in self.overrides]
        return d

    @property
    def config_hash(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def key(self) -> str:
        """File-name-safe identity: a 5-epoch run never shares the 100-epoch cell's key (the hash differs)."""
        return (f"{self.model}__{self.dataset}__{self.data_size}-{self.policy.value}-{self.input_size}__"
                f"{self.mode.value}__s{self.seed}__{self.config_hash}")

    @property
    def size(self) -> int:
        """The size a paper would name the row by: the stored size when it is fed as is or padded, the input size
        when it is resized (MedMNIST v2's "224" rows are 28 px files upsampled)."""
        return self.data_size if self.policy in (Policy.NATIVE, Policy.PAD) else self.input_size

    @property
    def label(self) -> str:
        return f"{self.model} · {self.dataset} · {self.input_size}px · {self.mode.value} · seed {self.seed}"


@dataclass(frozen=True)
class Grid:
    """A product of choices sharing one protocol."""

    models: tuple[str, ...]
    datasets: tuple[str, ...]
    modes: tuple[TransferMode, ...]
    seeds: tuple[int, ...] = (0,)
    data_sizes: tuple[int, ...] = (28,)
    policy: Policy = Policy.NATIVE
    input_size: int | None = None  # None: the data size
    protocol: Protocol = field(default_factory=Protocol)


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    description: str
    grids: tuple[Grid, ...]
    minutes: str = ""  # what a full run costs, measured (for `medzoo ls suites`)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def cells(self) -> list[Cell]:
        return [
            Cell(suite=self.name, version=self.version, model=m, dataset=d, data_size=s, policy=g.policy,
                 input_size=g.input_size or s, mode=TransferMode(mode), seed=seed, protocol=g.protocol)
            for g in self.grids
            for m, d, s, mode, seed in product(g.models, g.datasets, g.data_sizes, g.modes, g.seeds)
        ]


SUITES: Registry[Suite] = Registry("suite")

F, LP, FT, SC = TransferMode.FEATURES, TransferMode.LINEAR_PROBE, TransferMode.FINETUNE, TransferMode.SCRATCH

# --- quick: offline, <= 10 minutes on a 2-core CPU ---------------------------------------------------------------
_QUICK_DATA = ("breastmnist", "pneumoniamnist")
SUITES.add(Suite(
    name="quick", version="1",
    description="What ImageNet pretraining buys on small medical sets, and proof that every path runs: real "
                "ImageNet EfficientNet-Lite0 (features, linear probe) against random-weight controls of each "
                "family, and a CIFAR-stem ResNet-18 from scratch. Offline; 28 px files resized to 64 px.",
    minutes="~6 on a 2-core CPU",
    grids=(
        Grid(models=("tf_efficientnet_lite0.pypi_in1k",), datasets=_QUICK_DATA, modes=(F, LP),
             policy=Policy.RESIZE_BICUBIC, input_size=64,
             protocol=Protocol(epochs=30, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
                               schedule="cosine", monitor="val_loss", patience=5, time_budget_s=120)),
        Grid(models=("alexnet.random", "vgg11.random", "googlenet.random", "resnet18.random", "xception41.random",
                     "tf_efficientnet_lite0.random"),
             datasets=_QUICK_DATA, modes=(F,), policy=Policy.RESIZE_BICUBIC, input_size=64,
             protocol=Protocol(time_budget_s=120)),
        Grid(models=("resnet18_28.random",), datasets=("breastmnist",), modes=(SC,),
             protocol=Protocol(epochs=8, batch_size=128, optimizer="adam", lr=1e-3, schedule="constant",
                               time_budget_s=240)),
    ),
))

# --- medmnist-v2: the paper's protocol exactly --------------------------------------------------------------------
_V2_DATA = ("pathmnist", "chestmnist", "dermamnist", "octmnist", "pneumoniamnist", "retinamnist", "breastmnist",
            "bloodmnist", "tissuemnist", "organamnist", "organcmnist", "organsmnist")
_V2 = Protocol(epochs=100, batch_size=128, optimizer="adam", lr=1e-3, schedule="multistep", milestones=(0.5, 0.75),
               gamma=0.1, monitor="val_auc")
SUITES.add(Suite(
    name="medmnist-v2", version="1",
    description="MedMNIST v2 (Yang et al. 2023) baselines re-run: ResNet-18/50 from scratch, CIFAR stem at 28 px "
                "and torchvision ResNets on 28 px upsampled (nearest) to 224; Adam 1e-3, 100 epochs, lr x0.1 at 50 "
                "and 75, batch 128, no augmentation, best validation AUC evaluated on test; 3 seeds.",
    minutes="~35 per BreastMNIST 28 px seed on a 2-core CPU; days for all datasets (use a GPU)",
    grids=(
        Grid(models=("resnet18_28.random", "resnet50_28.random"), datasets=_V2_DATA, modes=(SC,), seeds=(0, 1, 2),
             protocol=_V2),
        Grid(models=("resnet18.random", "resnet50.random"), datasets=_V2_DATA, modes=(SC,), seeds=(0, 1, 2),
             policy=Policy.RESIZE_NEAREST, input_size=224, protocol=_V2),
    ),
))

# --- transfer: MedMNIST+-style transfer from ImageNet ------------------------------------------------------------
_TRANSFER = Protocol(epochs=100, batch_size=64, optimizer="adamw", lr=1e-4, weight_decay=1e-2, schedule="cosine",
                     monitor="val_loss", patience=5)
SUITES.add(Suite(
    name="transfer", version="1",
    description="MedMNIST+-style transfer (Doerrich et al. 2024): one ImageNet model per family x {features, "
                "linear probe, finetune} x stored sizes {28, 64, 128, 224} zero-padded to 224; AdamW 1e-4, cosine, "
                "early stopping on validation loss (patience 5); 3 seeds. Needs the ImageNet weights (online).",
    minutes="GPU-days",
    grids=(
        Grid(models=("alexnet.tv_in1k", "vgg16_bn.tv_in1k", "inception_v3.tv_in1k", "resnet50.tv_in1k",
                     "legacy_xception.tf_in1k", "tf_efficientnet_lite0.pypi_in1k"),
             datasets=_V2_DATA, modes=(F, LP, FT), seeds=(0, 1, 2), data_sizes=(28, 64, 128, 224),
             policy=Policy.PAD, input_size=224, protocol=_TRANSFER),
    ),
))


# --- segmentation: U-Nets on retinal vessels and EM membranes ----------------------------------------------------
_SEG = SegProtocol(epochs=60, batch_size=8, optimizer="adam", lr=1e-3, schedule="cosine", monitor="val_loss",
                   patience=15, time_budget_s=3000, patch_size=96, patches_per_epoch=512, val_patches=128,
                   val_full_every=5, overlap=0.25)
_SEG_SHORT = replace(_SEG, epochs=25, time_budget_s=900)


def _seg_grids(models: tuple[str, ...], datasets: tuple[str, ...], mode: TransferMode,
               protocol: SegProtocol) -> tuple[Grid, ...]:
    """One grid per dataset: each is read at its own native size; the network sees `patch_size` crops."""
    return tuple(Grid(models=models, datasets=(d,), modes=(mode,), data_sizes=(NATIVE_SIZE[d],),
                      input_size=protocol.patch_size, protocol=protocol) for d in datasets)


SUITES.add(Suite(
    name="segmentation", version="1",
    description="U-Net variants on CHASE_DB1 and DRIVE retinal vessels and ISBI-2012 EM membranes, trained on random "
                "96 px patches (flips, 90-degree turns), BCE + Dice, Adam 1e-3 with cosine decay, early stopping on "
                "the validation patches' loss (patience 15), a wall-clock budget per cell (recorded); scored on the "
                "whole test images by sliding window (25% overlap) at threshold 0.5. The plain U-Net gets 50 minutes, "
                "the other variants 15; offline the smp U-Nets train from scratch, online their ImageNet-encoder rows "
                "run too.",
    minutes="~50 per plain U-Net cell, ~15 per other cell, on a 2-core CPU (one thread per cell, two side by side)",
    grids=(
        *_seg_grids(("unet2015_w32.random",), ("chase_db1", "isbi2012", "drive"), SC, _SEG),
        *_seg_grids(("attention_unet_w32.random", "unet_resnet18.random"), ("chase_db1", "isbi2012"), SC,
                    _SEG_SHORT),
        *_seg_grids(("unet_resnet18.imagenet",), ("chase_db1", "isbi2012"), FT, _SEG_SHORT),
    ),
))


OVERRIDABLE = {"epochs": int, "batch_size": int, "lr": float, "patience": int, "time_budget_s": float}


def select(
    suite: Suite,
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    modes: list[str] | None = None,
    sizes: list[int] | None = None,
    seeds: list[int] | None = None,
    **protocol_overrides: Any,
) -> list[Cell]:
    """The suite's cells, filtered (fnmatch on model names; exact values otherwise) and with protocol fields
    changed. Every change is recorded in the cell, so it is part of the cell's key and result."""
    import fnmatch

    cells = suite.cells()
    if models:
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c.model, p) or fnmatch.fnmatchcase(c.arch, p)
                                         for p in models)]
    if datasets:
        cells = [c for c in cells if c.dataset in datasets]
    if modes:
        cells = [c for c in cells if c.mode.value in modes]
    if sizes:
        cells = [c for c in cells if c.size in sizes]
    if seeds is not None:
        cells = [replace(c, seed=s) for c in {(replace(c, seed=0)): None for c in cells} for s in seeds]
    changes = {k: v for k, v in protocol_overrides.items() if v is not None}
    for k, v in changes.items():
        if k not in OVERRIDABLE:
            raise ValueError(f"cannot override {k!r}; overridable: {', '.join(OVERRIDABLE)}")
        if v <= 0:
            raise ValueError(f"{k} must be positive, got {v}")
    if changes:  # training overrides do not touch `features` cells: they would only re-run them under a new key
        cells = [c if c.mode is TransferMode.FEATURES else
                 replace(c, protocol=replace(c.protocol, **changes), overrides=tuple(sorted(changes.items())))
                 for c in cells]
    return cells
