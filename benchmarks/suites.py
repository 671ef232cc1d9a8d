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

from benchmarks.data.seg import SEG_DATASETS, seg_dataset
from benchmarks.versions import versions
from zoo import Registry, TransferMode, check_precision


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
    time_budget_s: float | None = None  # training stops at the first epoch end past this (recorded); the suites
    # budget in epochs instead, so where training stops does not depend on the machine or its load
    precision: str = "fp32"  # fp32 | bf16: the networks' arithmetic in training, feature extraction and inference
    # (`zoo.autocast`: the classifier, losses, metrics, heads and stored outputs stay fp32)
    train_subset: int | None = None  # train on this many training images (a stratified subset, the same for every
    # seed and row: the low-data regime where transfer matters); validation and test stay whole

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}: adam, adamw or sgd")
        if self.schedule not in ("multistep", "cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}: multistep, cosine or constant")
        if self.monitor not in ("val_auc", "val_loss", "val_dice"):
            raise ValueError(f"unknown monitor {self.monitor!r}: val_auc, val_dice or val_loss")
        check_precision(self.precision)
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if self.train_subset is not None and self.train_subset < 2:
            raise ValueError(f"train_subset must be at least 2 images, got {self.train_subset}")


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


def config_hash(config: dict[str, Any]) -> str:
    """The 12-hex suffix of a cell key: sha256 of the cell config's sorted-key JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
    init_from: str = ""  # key of a cell of the same suite whose kept model initialises this one (`arch.<dataset>`)

    @property
    def arch(self) -> str:
        return self.model.partition(".")[0]

    @property
    def tag(self) -> str:
        return self.model.partition(".")[2]

    @property
    def pretrained(self) -> bool:
        return self.tag != "random"

    @property
    def keeps_model(self) -> bool:
        """Only cells that train the backbone have a model worth keeping (and exporting)."""
        return self.mode in (TransferMode.FINETUNE, TransferMode.SCRATCH)

    def config(self) -> dict[str, Any]:
        """Everything that decides the cell's numbers, as plain JSON data."""
        d = asdict(self)
        d["policy"], d["mode"] = self.policy.value, self.mode.value
        d["protocol"]["milestones"] = list(self.protocol.milestones)
        d["overrides"] = [list(o) for o in self.overrides]
        if not self.init_from:  # absent, not empty: the keys of cells that start from no other cell stay as they were
            del d["init_from"]
        if self.protocol.train_subset is None:  # likewise for cells that train on the whole training split
            del d["protocol"]["train_subset"]
        d["versions"] = versions(self.arch, self.kind, self.protocol.precision)
        return d

    @property
    def kind(self) -> str:
        """The cell kind (`benchmarks.versions.CELL_VERSIONS`): what code turns it into a result."""
        return "segmentation" if isinstance(self.protocol, SegProtocol) else "classification"

    @property
    def config_hash(self) -> str:
        return config_hash(self.config())

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

    def cells(self, suite: Suite) -> list[Cell]:
        return [
            Cell(suite=suite.name, version=suite.version, model=m, dataset=d, data_size=s, policy=self.policy,
                 input_size=self.input_size or s, mode=TransferMode(mode), seed=seed, protocol=self.protocol)
            for m, d, s, mode, seed in product(self.models, self.datasets, self.data_sizes, self.modes, self.seeds)
        ]


@dataclass(frozen=True)
class TransferGrid:
    """Medical source → medical target transfer for one architecture.

    Each dataset is a source: for every seed s, the model trained on it with seed s (from scratch, or fine-tuned from
    `imagenet` weights when the architecture has them) is kept and initialises the seed-s `arch.<source>` cells on
    every other dataset, in `features` and `finetune` mode (the diagonal is left out) — so a transfer row's seeds vary
    its source too. The baselines on each target are the same grid's `arch.random` cells (`scratch` at each budget of
    `scratch_epochs`, the board choosing one per seed on validation; and random-weight `features`) and, with
    `imagenet`, the ImageNet cells (their `features` once: fixed weights and a deterministic head give every seed the
    same numbers). Sources train under `source_protocol` (e.g. on the whole source split while targets get a
    `train_subset`); without one they are the targets' scratch cells, so nothing is trained twice. Channels are adapted
    by the zoo (3→1 sum, 1→3 replicate/3).
    """

    arch: str
    datasets: tuple[str, ...]
    imagenet: str | None = None  # the architecture's ImageNet weights tag, if it has one
    seeds: tuple[int, ...] = (0,)
    data_size: int = 28
    policy: Policy = Policy.NATIVE
    input_size: int | None = None
    protocol: Protocol = field(default_factory=Protocol)  # every training run on a target
    source_protocol: Protocol | None = None  # how sources are trained; None: as targets (sources = scratch baselines)
    scratch_epochs: tuple[int, ...] = ()  # from-scratch budgets, one chosen per seed on validation; (): the protocol's

    @property
    def data_sizes(self) -> tuple[int, ...]:
        return (self.data_size,)

    @property
    def scratch_protocols(self) -> tuple[Protocol, ...]:
        return tuple(replace(self.protocol, epochs=e) for e in self.scratch_epochs) or (self.protocol,)

    def sources(self, suite: Suite) -> dict[tuple[str, int], Cell]:
        """(dataset, seed) → the cell whose kept model is that seed's source backbone."""
        model, mode = (f"{self.arch}.{self.imagenet}", TransferMode.FINETUNE) if self.imagenet else \
            (f"{self.arch}.random", TransferMode.SCRATCH)
        return {(d, s): self._cell(suite, model, d, mode, s, self.source_protocol or self.protocol)
                for d in self.datasets for s in self.seeds}

    def _cell(self, suite: Suite, model: str, dataset: str, mode: TransferMode, seed: int, protocol: Protocol,
              init_from: str = "") -> Cell:
        return Cell(suite=suite.name, version=suite.version, model=model, dataset=dataset, data_size=self.data_size,
                    policy=self.policy, input_size=self.input_size or self.data_size, mode=mode, seed=seed,
                    protocol=protocol, init_from=init_from)

    def targets(self, suite: Suite) -> list[Cell]:
        """The cells scored on a target: baselines and transfers (a source may be one of them, as a scratch cell)."""
        def cell(model: str, dataset: str, mode: TransferMode, seed: int, init_from: str = "",
                 protocol: Protocol | None = None) -> Cell:
            return self._cell(suite, model, dataset, mode, seed, protocol or self.protocol, init_from)

        sources = self.sources(suite)
        random, imagenet = f"{self.arch}.random", f"{self.arch}.{self.imagenet}"
        out: list[Cell] = []
        for target, seed in product(self.datasets, self.seeds):
            out += [cell(random, target, TransferMode.SCRATCH, seed, protocol=p) for p in self.scratch_protocols]
            out.append(cell(random, target, TransferMode.FEATURES, seed))
            if self.imagenet:
                out.append(cell(imagenet, target, TransferMode.FINETUNE, seed))
                if seed == self.seeds[0]:
                    out.append(cell(imagenet, target, TransferMode.FEATURES, seed))
            out += [cell(f"{self.arch}.{source}", target, mode, seed, sources[source, seed].key)
                    for source in self.datasets if source != target
                    for mode in (TransferMode.FEATURES, TransferMode.FINETUNE)]
        return out

    def cells(self, suite: Suite) -> list[Cell]:
        out = {c.key: c for c in self.sources(suite).values()}  # sources first: the transfer cells need their models
        for c in self.targets(suite):
            out.setdefault(c.key, c)
        return list(out.values())


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    description: str
    grids: tuple[Grid | TransferGrid, ...]
    minutes: str = ""  # what a full run costs, measured (for `medzoo ls suites`)
    board: str = ""  # its board's kind (a key of `benchmarks.boards.BOARDS`); empty: the kind its grids imply

    def __post_init__(self) -> None:
        if not self.board:  # transfer grids get the matrix; segmentation datasets their board; the rest rank AUC
            kind = ("transfer-matrix" if self.grids and all(isinstance(g, TransferGrid) for g in self.grids)
                    else "segmentation" if self.grids and self.grids[0].datasets[0] in SEG_DATASETS
                    else "classification")
            object.__setattr__(self, "board", kind)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def cells(self) -> list[Cell]:
        return [c for g in self.grids for c in g.cells(self)]


SUITES: Registry[Suite] = Registry("suite")

F, LP, FT, SC = TransferMode.FEATURES, TransferMode.LINEAR_PROBE, TransferMode.FINETUNE, TransferMode.SCRATCH

# --- quick: offline, <= 10 minutes on a 2-core CPU ---------------------------------------------------------------
_QUICK_DATA = ("breastmnist", "pneumoniamnist")
SUITES.add(Suite(
    name="quick", version="2",
    description="What ImageNet pretraining buys on small medical sets, and proof that every path runs: real "
                "ImageNet EfficientNet-Lite0 (features, linear probe) against random-weight controls of each "
                "family, and a CIFAR-stem ResNet-18 from scratch. Offline; 28 px files resized to 64 px; networks "
                "in bf16 (classifiers, heads and scores fp32); budgets in epochs.",
    minutes="~4 min on a 2-core CPU with bf16 units (239 s measured from an empty feature cache)",
    grids=(
        Grid(models=("tf_efficientnet_lite0.pypi_in1k",), datasets=_QUICK_DATA, modes=(F, LP),
             policy=Policy.RESIZE_BICUBIC, input_size=64,
             protocol=Protocol(epochs=30, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
                               schedule="cosine", monitor="val_loss", patience=5, precision="bf16")),
        Grid(models=("alexnet.random", "vgg11.random", "googlenet.random", "resnet18.random", "xception41.random",
                     "tf_efficientnet_lite0.random"),
             datasets=_QUICK_DATA, modes=(F,), policy=Policy.RESIZE_BICUBIC, input_size=64,
             protocol=Protocol(precision="bf16")),
        Grid(models=("resnet18_28.random",), datasets=("breastmnist",), modes=(SC,),
             protocol=Protocol(epochs=8, batch_size=128, optimizer="adam", lr=1e-3, schedule="constant",
                               precision="bf16")),
    ),
))

# --- medmnist-v2: the paper's protocol exactly --------------------------------------------------------------------
_V2_DATA = ("pathmnist", "chestmnist", "dermamnist", "octmnist", "pneumoniamnist", "retinamnist", "breastmnist",
            "bloodmnist", "tissuemnist", "organamnist", "organcmnist", "organsmnist")
_V2 = Protocol(epochs=100, batch_size=128, optimizer="adam", lr=1e-3, schedule="multistep", milestones=(0.5, 0.75),
               gamma=0.1, monitor="val_auc", precision="bf16")
SUITES.add(Suite(
    name="medmnist-v2", version="2",
    description="MedMNIST v2 (Yang et al. 2023) baselines re-run: ResNet-18/50 from scratch, CIFAR stem at 28 px "
                "and torchvision ResNets on 28 px upsampled (nearest) to 224; Adam 1e-3, 100 epochs, lr x0.1 at 50 "
                "and 75, batch 128, no augmentation, best validation AUC evaluated on test; 3 seeds. Networks in bf16 "
                "(the classifier, loss and scores fp32); version 1 was fp32.",
    minutes="~8 min per BreastMNIST and ~19 min per RetinaMNIST 28 px seed on a 2-core CPU with bf16 units "
            "(measured); days for all datasets (use a GPU)",
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


# --- transfer-matrix: does pretraining on one medical dataset help another? ------------------------------------
_MATRIX_DATA = ("breastmnist", "pneumoniamnist", "retinamnist")
_MATRIX = Protocol(epochs=10, batch_size=32, optimizer="adam", lr=1e-3, schedule="cosine", monitor="val_auc",
                   train_subset=500, precision="bf16")
_MATRIX_SOURCE = replace(_MATRIX, epochs=5, train_subset=None)
SUITES.add(Suite(
    name="transfer-matrix", version="3",
    description="Medical source → medical target transfer among BreastMNIST, PneumoniaMNIST and RetinaMNIST: a "
                "backbone trained on the source (CIFAR-stem ResNet-18 from scratch at 28 px; EfficientNet-Lite0 "
                "fine-tuned from ImageNet at 64 px) transferred to each other dataset as frozen features (logistic "
                "head) and by fine-tuning, against the target from scratch / random features and from ImageNet. "
                "Low-data targets: each target trains on a fixed stratified subset of 500 of its training images "
                "(validation and test splits whole); sources train on their whole training split. Adam 1e-3, cosine, "
                "batch 32, best validation AUC; targets 10 epochs, 3 seeds, target seed s starting from source seed "
                "s (sources 5 epochs); from scratch at 10, 20 and 40 epochs, the budget chosen per seed on "
                "validation AUC; ImageNet features once (fixed weights: every seed would give the same numbers). "
                "Networks in bf16 (classifiers, heads and scores fp32); version 2 had one source seed and a 10-epoch "
                "scratch reference.",
    minutes="~6-12 hours on a 2-core CPU in bf16 (estimated from measured step rates; most of it PneumoniaMNIST "
            "training: 75 scratch epochs per seed)",
    grids=tuple(TransferGrid(arch=arch, imagenet=imagenet, datasets=_MATRIX_DATA, seeds=(0, 1, 2), data_size=28,
                             policy=policy, input_size=size, protocol=_MATRIX, source_protocol=_MATRIX_SOURCE,
                             scratch_epochs=(10, 20, 40))
                for arch, imagenet, policy, size in (
                    ("resnet18_28", None, Policy.NATIVE, 28),
                    ("tf_efficientnet_lite0", "pypi_in1k", Policy.RESIZE_BICUBIC, 64))),
))


# --- segmentation: U-Nets on retinal vessels and EM membranes ----------------------------------------------------
_SEG = SegProtocol(epochs=100, batch_size=8, optimizer="adam", lr=1e-3, schedule="cosine", monitor="val_loss",
                   patience=20, patch_size=96, patches_per_epoch=512, val_patches=128, val_full_every=5, overlap=0.25,
                   precision="bf16")
_SEG_SHORT = replace(_SEG, epochs=40, patience=15)


def _seg_grids(models: tuple[str, ...], datasets: tuple[str, ...], mode: TransferMode,
               protocol: SegProtocol, seeds: tuple[int, ...] = (0,)) -> tuple[Grid, ...]:
    """One grid per dataset: each is read at its own native size; the network sees `patch_size` crops."""
    return tuple(Grid(models=models, datasets=(d,), modes=(mode,), data_sizes=(seg_dataset(d).native_size,),
                      input_size=protocol.patch_size, protocol=protocol, seeds=seeds) for d in datasets)


SUITES.add(Suite(
    name="segmentation", version="2",
    description="U-Net variants on CHASE_DB1 and DRIVE retinal vessels and ISBI-2012 EM membranes, trained on random "
                "96 px patches (flips, 90-degree turns), BCE + Dice, Adam 1e-3 with cosine decay, early stopping on "
                "the validation patches' loss, budgets in epochs: the plain U-Net 100 epochs (patience 20), the other "
                "variants 40 (patience 15); networks in bf16 (the 1x1 output conv, loss and scores fp32); scored on "
                "the whole test images by sliding window (25% overlap) at threshold 0.5. The plain U-Net runs 3 seeds on "
                "CHASE_DB1 and ISBI-2012, every other row 1 run. Offline the smp U-Nets train "
                "from scratch, online their ImageNet-encoder rows run too. Version 1 had wall-clock budgets in fp32.",
    minutes="~40 min per plain U-Net cell (CHASE_DB1, measured), ~15-20 min per other cell, in bf16 on a 2-core "
            "CPU with bf16 units",
    grids=(
        *_seg_grids(("unet2015_w32.random",), ("chase_db1", "isbi2012"), SC, _SEG, seeds=(0, 1, 2)),
        *_seg_grids(("unet2015_w32.random",), ("drive",), SC, _SEG),
        *_seg_grids(("attention_unet_w32.random", "unet_resnet18.random"), ("chase_db1", "isbi2012"), SC,
                    _SEG_SHORT),
        *_seg_grids(("unet_resnet18.imagenet",), ("chase_db1", "isbi2012"), FT, _SEG_SHORT),
    ),
))


# --- ad-hoc grids on a user's own images (`medzoo run --images`) -------------------------------------------------
MODE_PROTOCOLS: dict[TransferMode, Protocol] = {
    F: Protocol(precision="bf16"),
    LP: Protocol(epochs=30, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine",
                 monitor="val_loss", patience=5, precision="bf16"),
    FT: Protocol(epochs=30, batch_size=32, optimizer="adamw", lr=1e-4, weight_decay=1e-4, schedule="cosine",
                 monitor="val_auc", patience=5, augment=True, precision="bf16"),
    SC: Protocol(epochs=60, batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine", monitor="val_auc",
                 patience=10, augment=True, precision="bf16"),
}
"""Each transfer mode's protocol for a user's images: the quick suite's for `features` / `linear_probe`; fine-tuning
at a tenth of the learning rate with flips and turns; from scratch longer, early-stopped on validation AUC."""

IMAGES_DEFAULTS = {"models": ("tf_efficientnet_lite0.pypi_in1k",), "modes": ("features", "linear_probe"),
                   "sizes": (224,), "seeds": (0,)}
"""What `--images` runs when not told: the ImageNet network available offline, its cheap modes, at 224 px."""


def images_suite(dataset: str, data_size: int, models: tuple[str, ...], modes: tuple[str, ...],
                 sizes: tuple[int, ...], seeds: tuple[int, ...]) -> Suite:
    """An ad-hoc suite on a user's registered dataset: each mode with its `MODE_PROTOCOLS` entry, every model,
    input size and seed; images stored at `data_size` are resized (bicubic) to each input size."""
    return Suite(
        name=f"images-{dataset}", version="1",
        description=f"Your images ({dataset}): {', '.join(models)} in {', '.join(modes)} mode at "
                    f"{', '.join(map(str, sizes))} px, seeds {', '.join(map(str, seeds))}; each mode's default "
                    f"protocol (`benchmarks.suites.MODE_PROTOCOLS`).",
        grids=tuple(Grid(models=models, datasets=(dataset,), modes=(TransferMode(m),), seeds=seeds,
                         data_sizes=(data_size,), input_size=s,
                         policy=Policy.NATIVE if s == data_size else Policy.RESIZE_BICUBIC,
                         protocol=MODE_PROTOCOLS[TransferMode(m)]) for m in modes for s in sizes),
        board="classification")


OVERRIDABLE = {"epochs": int, "batch_size": int, "lr": float, "patience": int, "time_budget_s": float,
               "precision": str}
UNTRAINED_TOO = ("precision",)  # overrides that change `features` cells as well (the others only train)


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

    if seeds is not None:  # re-seed the grids, so a transfer cell of seed s starts from the source of seed s
        suite = replace(suite, grids=tuple(replace(g, seeds=tuple(seeds)) for g in suite.grids))
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
    every = {c.key: c for c in suite.cells()}  # a transfer cell brings the source cell whose model it starts from
    cells = list({c.key: c for c in [every[c.init_from] for c in cells if c.init_from in every] + cells}.values())
    changes = {k: v for k, v in protocol_overrides.items() if v is not None}
    for k, v in changes.items():
        if k not in OVERRIDABLE:
            raise ValueError(f"cannot override {k!r}; overridable: {', '.join(OVERRIDABLE)}")
        if k == "precision":
            check_precision(v)
        elif v <= 0:
            raise ValueError(f"{k} must be positive, got {v}")

    def override(c: Cell) -> Cell:
        """Training overrides do not touch `features` cells (they would only re-run them under a new key); an
        override equal to the suite's value is no change."""
        mine = {k: v for k, v in changes.items() if (c.mode is not TransferMode.FEATURES or k in UNTRAINED_TOO)
                and getattr(c.protocol, k) != v}
        return replace(c, protocol=replace(c.protocol, **mine), overrides=tuple(sorted(mine.items()))) if mine else c

    if changes:
        changed = {c.key: override(c) for c in cells}
        renamed = {k: c.key for k, c in changed.items()}  # keys computed before any `init_from` is rewritten
        cells = [replace(c, init_from=renamed.get(c.init_from, c.init_from)) for c in changed.values()]
    return cells
