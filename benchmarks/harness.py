"""Run one cell and return its `Result`. Pure apart from the per-epoch checkpoints it hands to the store: no
printing (progress goes to a callback the CLI draws), no result files (the CLI passes results to the store).

One training loop serves `linear_probe`, `finetune` and `scratch`; `features` fits the zoo's scikit-learn heads.
A linear probe without augmentation trains its head on features computed once per split: the backbone is frozen
and in eval mode, so this equals forwarding it every epoch, at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import zoo
from benchmarks import metrics
from benchmarks.datasets import DATASETS, DatasetSpec, Split, Task
from benchmarks.feature_cache import FeatureCache, FeatureKey, weights_hash
from benchmarks.results import ResultStore
from benchmarks.schema import Result, finite, finite_dict, probabilities
from benchmarks.suites import Cell, Policy, Protocol
from zoo import MedzooError, TransferMode, WeightsUnavailableError
from zoo._inference import trained_meta
from zoo._weights import verify_sha256

Report = Callable[[str, int, int, str], None]
"""`report(kind, completed, total, text)`: kind is `epoch`, `batch` or `features`; the CLI turns it into bars."""

CODE_PATHS = ("zoo", "benchmarks", "scripts", "pyproject.toml")
"""What "the code" is for provenance: a result is dirty when these differ from the commit; the results store,
boards, figures and docs a run writes are not code."""
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


class TrainingDivergedError(RuntimeError):
    """A cell's validation metric or loss is not finite: that cell fails (recorded in the run summary), the run goes
    on with the others."""


def _quiet(kind: str, completed: int, total: int, text: str) -> None:
    """The default report: none."""


# --- data --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolution:
    data_size: int
    policy: Policy
    requested_size: int
    input_size: int  # max(requested, the model's minimum)

    @property
    def bumped(self) -> bool:
        return self.input_size > self.requested_size

    @property
    def interpolation(self) -> str | None:
        """`None` when nothing is resized."""
        if self.policy is Policy.PAD:
            return "bicubic" if self.bumped and self.input_size > max(self.requested_size, self.data_size) else None
        if self.input_size == self.data_size:
            return None
        return self.policy.interpolation or "bicubic"


def to_input(images: torch.Tensor, res: Resolution, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 `(B, H, W[, C])` → normalised float `(B, C, S, S)`, done per batch (no float copy of a dataset)."""
    x = images.unsqueeze(-1) if images.ndim == 3 else images
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if res.policy is Policy.PAD and res.requested_size > x.shape[-1]:
        total = res.requested_size - x.shape[-1]
        x = nn.functional.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
    if x.shape[-1] != res.input_size:
        mode = res.interpolation or "bicubic"
        kw: dict[str, Any] = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
        x = nn.functional.interpolate(x, size=(res.input_size, res.input_size), mode=mode, **kw)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return ((x - m) / s).contiguous(memory_format=torch.channels_last)


def draw_flips(gen: torch.Generator) -> tuple[int, int, int]:
    """One random (horizontal flip, vertical flip, 90-degree turns) draw from the cell's own generator, so a resumed
    cell draws the same."""
    h, v = torch.randint(0, 2, (2,), generator=gen).tolist()
    return h, v, int(torch.randint(0, 4, (1,), generator=gen))


def apply_flips(t: torch.Tensor, draw: tuple[int, int, int], dims: tuple[int, int] = (1, 2)) -> torch.Tensor:
    """Apply a `draw_flips` draw to the (height, width) `dims` of `t` (image and mask get the same draw)."""
    flip_h, flip_v, rot = draw
    if flip_h:
        t = t.flip(dims[1])
    if flip_v:
        t = t.flip(dims[0])
    return torch.rot90(t, rot, dims=dims) if rot else t


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips and 90-degree rotations of a uint8 `(B, H, W[, C])` batch (one draw per batch)."""
    return apply_flips(images, draw_flips(gen))


def autocast(device: torch.device) -> AbstractContextManager[object]:
    """bf16 autocast on CUDA (losses and scores are computed in fp32 from `.float()` logits); fp32 on the CPU,
    where bf16 convolutions are slower on AVX2 machines."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _batches(n: int, size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    idx = order if order is not None else torch.arange(n)
    yield from idx.split(size)


# --- the training loop -------------------------------------------------------------------------------------------
def _loss_fn(task: Task) -> nn.Module:
    return nn.BCEWithLogitsLoss() if task is Task.MULTILABEL else nn.CrossEntropyLoss()


def _targets(y: np.ndarray, task: Task) -> torch.Tensor:
    return torch.as_tensor(y, dtype=torch.float32) if task is Task.MULTILABEL else torch.as_tensor(y.ravel()).long()


def _optimizer(params: list[dict[str, Any]], p: Protocol) -> torch.optim.Optimizer:
    if p.optimizer == "adam":
        return torch.optim.Adam(params, lr=p.lr, weight_decay=p.weight_decay)
    if p.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=p.lr, weight_decay=p.weight_decay)
    return torch.optim.SGD(params, lr=p.lr, momentum=0.9, weight_decay=p.weight_decay)


def _scheduler(opt: torch.optim.Optimizer, p: Protocol) -> torch.optim.lr_scheduler.LRScheduler:
    if p.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, [round(f * p.epochs) for f in p.milestones], p.gamma)
    if p.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.epochs)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


@dataclass
class _Split:
    x: np.ndarray | torch.Tensor  # uint8 images (possibly memory-mapped), or float features
    y: np.ndarray

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows `idx` as a tensor; a memory-mapped array is read batch by batch, never whole."""
        return self.x[idx] if isinstance(self.x, torch.Tensor) else torch.from_numpy(self.x[idx.numpy()])


@torch.inference_mode()
def _predict(net: nn.Module, data: _Split, transform: Callable[[torch.Tensor], torch.Tensor], task: Task,
             batch_size: int, device: torch.device) -> tuple[np.ndarray, float]:
    """float32 logits and mean loss on a split, in eval mode."""
    was = net.training
    net.eval()
    with autocast(device):
        logits = torch.cat([net(transform(data.take(i).to(device, non_blocking=True))).float().cpu()
                            for i in _batches(len(data.x), batch_size)])
    net.train(was)
    loss = float(_loss_fn(task)(logits, _targets(data.y, task)))
    return logits.numpy().astype(np.float32), loss


def train_subset(data: _Split, n: int, task: Task) -> _Split:
    """`n` training images, stratified by label (multi-label: plain random), drawn with a fixed seed: every seed and
    every row of a suite sees the same images, so rows differ only in what they compare."""
    from sklearn.model_selection import train_test_split

    if n >= len(data.y):
        return data
    idx = np.arange(len(data.y))
    keep, _ = train_test_split(idx, train_size=n, random_state=0,
                               stratify=None if task is Task.MULTILABEL else data.y.ravel())
    keep = np.sort(keep)
    return _Split(np.asarray(data.x[keep]), data.y[keep])


@dataclass
class Loop:
    """What the training loop needs from a task: one epoch's `(inputs, targets)` batches on the device (drawn with
    the cell's generator), the loss, and a validation pass returning `val_loss` and the monitored metric."""

    batches: Callable[[torch.Generator], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    n_batches: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    validate: Callable[[nn.Module, int], dict[str, float]]  # (net, epoch) -> metrics


def classification_loop(train_data: _Split, val_data: _Split, transform: Callable[[torch.Tensor], torch.Tensor],
                        task: Task, p: Protocol, device: torch.device, images: bool = True) -> Loop:
    """Shuffled batches of a split (augmented when the protocol says so); validation AUC and loss."""
    y_train, loss_fn = _targets(train_data.y, task), _loss_fn(task)

    def batches(gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(train_data.x), generator=gen)
        for idx in _batches(len(order), p.batch_size, order):
            xb = train_data.take(idx)
            if p.augment and images:
                xb = augment(xb, gen)
            # uint8 goes to the device, and is normalised (and resized) there: 4x less to copy than float
            yield transform(xb.to(device, non_blocking=True)), y_train[idx].to(device)

    def validate(net: nn.Module, epoch: int) -> dict[str, float]:
        logits, val_loss = _predict(net, val_data, transform, task, p.batch_size, device)
        return {"val_loss": val_loss, "val_auc": metrics.evaluate(val_data.y, probabilities(logits, task.value),
                                                                  task)["auc"]}

    return Loop(batches, -(-len(train_data.x) // p.batch_size), lambda z, y: loss_fn(z.float(), y), validate)


@dataclass
class TrainOutcome:
    net: nn.Module  # with the best epoch's weights
    epochs_run: int
    best_epoch: int
    stop_reason: str
    history: list[dict[str, float]]
    resumed_from: int


def train(
    net: nn.Module,
    mode: TransferMode,
    loop: Loop,
    protocol: Protocol,
    seed: int,
    device: torch.device,
    checkpoint: tuple[Callable[[dict[str, Any]], None], Callable[[], dict[str, Any] | None]] | None = None,
    report: Report = _quiet,
    images: bool = True,
) -> TrainOutcome:
    """Train `net` (a timm-contract model, or a bare head on cached features when `images` is False) on `loop`.

    Best-on-validation selection by `protocol.monitor` (`val_loss` is minimised, the rest maximised); optional early
    stopping and time budget; a checkpoint (model, optimiser, scheduler, RNG state, best weights, history) after
    every epoch, restored first when one exists.
    """
    p = protocol
    net.to(device)
    opt = _optimizer(zoo.param_groups(net, p.lr, p.backbone_lr_scale) if images else
                     [{"params": [q for q in net.parameters() if q.requires_grad], "lr": p.lr}], p)
    sched = _scheduler(opt, p)
    gen = torch.Generator().manual_seed(seed)
    sign = -1.0 if p.monitor == "val_loss" else 1.0
    best_score, best_epoch, bad, history = -float("inf"), 0, 0, []
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    start, elapsed_before = 0, 0.0
    saved = checkpoint[1]() if checkpoint else None
    if saved is not None:
        net.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        best_state, history = saved["best_state"], saved["history"]
        best_score, best_epoch, bad = saved["best_score"], saved["best_epoch"], saved["bad_epochs"]
        start, elapsed_before = saved["epoch"], saved["elapsed"]
        if saved.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
    t0 = time.perf_counter() - elapsed_before
    stop_reason = saved.get("stop_reason", "epochs") if saved else "epochs"
    for epoch in range(start, p.epochs if stop_reason == "epochs" else start):
        if mode.trains_backbone or not images:
            net.train()
        else:
            zoo.train_mode(net, mode)
        total_loss, seen = 0.0, 0
        for b, (xb, yb) in enumerate(loop.batches(gen)):
            with autocast(device):
                loss = loop.loss_fn(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            batch_loss = loss.item()
            total_loss, seen = total_loss + batch_loss * len(xb), seen + len(xb)
            report("batch", b + 1, loop.n_batches, f"epoch {epoch + 1}: loss {batch_loss:.3f}")
        sched.step()
        val = loop.validate(net, epoch + 1)
        if not all(np.isfinite(v) for v in val.values()):
            raise TrainingDivergedError(f"validation gave {val} at epoch {epoch + 1}: a class is missing from the "
                                        f"validation split or training diverged; fix the split or lower the lr")
        history.append({"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1), **val})
        score = sign * val[p.monitor]
        if score > best_score:
            best_score, best_epoch, bad = score, epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
        elapsed = time.perf_counter() - t0
        report("epoch", epoch + 1, p.epochs,
               ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in val.items()) + f" (best epoch {best_epoch})")
        if p.patience is not None and bad >= p.patience:
            stop_reason = f"early stop (no {p.monitor} improvement in {p.patience} epochs)"
        elif p.time_budget_s is not None and elapsed > p.time_budget_s and epoch + 1 < p.epochs:
            stop_reason = f"time budget {p.time_budget_s:.0f} s"
        if checkpoint:  # after the stop decision, so a resume never trains past a finished run
            checkpoint[0]({"epoch": epoch + 1, "model": net.state_dict(), "optimizer": opt.state_dict(),
                           "scheduler": sched.state_dict(), "generator": gen.get_state(),
                           "torch_rng": torch.get_rng_state(),
                           "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                           "best_state": best_state, "best_score": best_score, "best_epoch": best_epoch,
                           "bad_epochs": bad, "history": history, "elapsed": elapsed, "stop_reason": stop_reason})
        if stop_reason != "epochs":
            break
    net.load_state_dict(best_state)
    return TrainOutcome(net=net, epochs_run=len(history), best_epoch=best_epoch, stop_reason=stop_reason,
                        history=history, resumed_from=start)


# --- provenance --------------------------------------------------------------------------------------------------
def _run_git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30)


def git_state(where: Path | None = None) -> dict[str, Any]:
    """The commit and whether the *code* (`CODE_PATHS`) differs from it; when it does, a sha256 of the difference
    (`git diff HEAD` of tracked code, in a fixed format whatever the user's git config, plus the names and bytes of
    untracked code files), so two results from the same edit share it. All None unless medzoo runs from its own
    checkout (an installed wheel, or a venv inside another repository, says nothing about medzoo's code)."""
    project = (where or Path(__file__).resolve().parent.parent).resolve()
    unknown = {"sha": None, "dirty": None, "paths": list(CODE_PATHS)}
    try:
        top = _run_git(["rev-parse", "--show-toplevel"], project)
        sha = _run_git(["rev-parse", "HEAD"], project)
        if top.returncode or sha.returncode or Path(top.stdout.decode().strip()).resolve() != project:
            return unknown
        paths = [p for p in CODE_PATHS if (project / p).exists()]
        diff = _run_git(["diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames",
                         "--src-prefix=a/", "--dst-prefix=b/", "--", *paths], project)
        untracked = _run_git(["ls-files", "--others", "--exclude-standard", "-z", "--", *paths], project)
        names = sorted(n for n in untracked.stdout.decode().split("\0") if n)
        out: dict[str, Any] = {"sha": sha.stdout.decode().strip(), "dirty": bool(diff.stdout or names),
                               "paths": list(CODE_PATHS)}
        if out["dirty"]:
            h = hashlib.sha256(diff.stdout)
            for name in names:
                h.update(b"\0untracked\0" + name.encode() + b"\0" + (project / name).read_bytes())
            out["diff_sha256"] = h.hexdigest()
    except (OSError, subprocess.SubprocessError):
        return unknown
    return out


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def imported_packages() -> dict[str, str]:
    """Every installed distribution with a module in `sys.modules`, with its version: what the cell actually used
    (monai, scikit-image, scipy, Pillow, … as well as torch), not a fixed list."""
    dists = _distributions()
    tops = {m.partition(".")[0] for m in list(sys.modules)}
    out: dict[str, str] = {}
    try:
        out["medzoo"] = metadata.version("medzoo")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        out["medzoo"] = "not installed"
    for top in tops & set(dists):
        for name in dists[top]:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    return dict(sorted(out.items()))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu_isa() -> list[str]:
    """torch's CPU capability (`torch:AVX512`, ...) and the vector/matrix flags of `/proc/cpuinfo` that decide speed
    (AVX2, AVX-512, AVX512-BF16, AMX): machines of one kind differ, so each result says which it ran on."""
    out = [f"torch:{torch.backends.cpu.get_cpu_capability()}"]
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        flags = []
    return out + [f for f in ISA_FLAGS if f in flags]


def provenance(device: torch.device) -> dict[str, Any]:
    """Where and with what a cell runs; `packages` and `duration_s` are filled in when it ends (`finish`)."""
    return {
        "git": git_state(), "packages": {}, "python": platform.python_version(), "platform": platform.platform(),
        "device": str(device), "cpu": _cpu(), "cpu_isa": cpu_isa(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "autocast": "bfloat16" if device.type == "cuda" else None,  # see autocast()
        "torch_threads": torch.get_num_threads(),
        "deterministic": {"algorithms": torch.are_deterministic_algorithms_enabled(),
                          "cudnn_benchmark": torch.backends.cudnn.benchmark},
        "load_average_at_start": list(os.getloadavg()),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def finish(prov: dict[str, Any], t0: float) -> dict[str, Any]:
    """`prov` with what is known only at the end: the imported packages and the duration."""
    return prov | {"packages": imported_packages(), "duration_s": round(time.perf_counter() - t0, 2)}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- one cell ----------------------------------------------------------------------------------------------------
def score_outputs(task: Task, y: dict[Split, np.ndarray], logits: dict[Split, np.ndarray],
                  seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metrics section and the outputs arrays of a classification cell, the metrics computed from exactly the
    arrays stored: probabilities from the float32 logits (`schema.probabilities`); binary sensitivity/specificity
    at the threshold chosen on validation; bootstrap CIs and per-class AUC on test."""
    probs = {s: probabilities(logits[s], task.value) for s in (Split.VAL, Split.TEST)}
    threshold = metrics.choose_threshold(y[Split.VAL], probs[Split.VAL]) if task is Task.BINARY else None
    section = test_section(task, y[Split.TEST], probs[Split.TEST], threshold, seed) | {
        "val": finite_dict(metrics.evaluate(y[Split.VAL], probs[Split.VAL], task))}
    arrays = {}
    for s in (Split.VAL, Split.TEST):
        labels = np.asarray(y[s]).astype(np.int64)
        arrays |= {f"{s.value}/ids": np.arange(len(labels), dtype=np.int64),
                   f"{s.value}/labels": labels.reshape(len(labels), -1),
                   f"{s.value}/logits": np.asarray(logits[s], dtype=np.float32)}
    return section, arrays


def test_section(task: Task, y: np.ndarray, probs: np.ndarray, threshold: float | None, seed: int,
                 ci_metrics: tuple[str, ...] = ("auc", "acc")) -> dict[str, Any]:
    """Test metrics (at `threshold`), bootstrap CIs and per-class AUC of the test probabilities, as a result stores
    them (NaN as None)."""
    ci = {m: tuple(finite(x) for x in metrics.bootstrap_ci(y, probs, task, metric=m, seed=seed)) for m in ci_metrics}
    return {"test": finite_dict(metrics.evaluate(y, probs, task, threshold=threshold)), "ci": ci,
            "per_class_auc": [finite(a) for a in metrics.per_class_auc(y, probs, task)]}


def head_logits(clf: Any, x: np.ndarray, task: Task) -> np.ndarray:
    """float32 logits of a fitted scikit-learn head, such that `schema.probabilities` gives its probabilities:
    a logistic head's decision function (binary: [0, d]); any other head's log-probabilities (multi-label: logits of
    its per-label probabilities), clipped at 1e-30."""
    fitted = clf.estimators_ if hasattr(clf, "estimators_") else [clf]
    finals = [e.steps[-1][1] if hasattr(e, "steps") else e for e in fitted]
    # one-vs-rest puts a constant predictor (decision = the label, not a logit) where a training label never varies
    if all(type(f).__name__.startswith("LogisticRegression") for f in finals):
        d = np.asarray(clf.decision_function(x), dtype=np.float64)
        if d.ndim == 1:
            d = np.stack([np.zeros_like(d), d], axis=1)
        return d.astype(np.float32)
    p = np.clip(np.asarray(clf.predict_proba(x), dtype=np.float64), 1e-30, 1.0)
    if task is Task.MULTILABEL:
        return (np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16))).astype(np.float32)
    return np.log(p).astype(np.float32)


def _features_head(ds: DatasetSpec, kind: str, seed: int):  # type: ignore[no-untyped-def]
    head = zoo.make_head(kind, seed=seed)
    if ds.task is Task.MULTILABEL:
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(head)
    return head


def run_cell(
    cell: Cell,
    data_dir: Path | str | None = None,
    device: str = "cpu",
    store: ResultStore | None = None,
    report: Report = _quiet,
    cache: FeatureCache | None = None,
    keep_model: bool = False,
) -> Result:
    """Run `cell` and return its Result (`skipped` when its weights cannot be had, with the reason). With a
    `store`, training checkpoints every epoch and resumes from the last one; the caller writes the result. With a
    feature `cache`, frozen-backbone features are read from it or computed once and put there. `keep_model` (with a
    `store`) keeps the best model of a cell that trains the backbone, referenced from the result by path and sha256;
    a cell with `init_from` starts from the model its source cell kept in the same store."""
    dev = torch.device(device)
    prov = provenance(dev)
    t0 = time.perf_counter()
    ds = DATASETS.get(cell.dataset)
    if ds.task is Task.SEGMENTATION:
        from benchmarks.segment import run_segmentation_cell  # it builds on this module

        return run_segmentation_cell(cell, data_dir, device, store, report)
    spec = zoo.get_spec(cell.arch)
    res = Resolution(cell.data_size, cell.policy, cell.input_size, max(cell.input_size, spec.min_size))
    seed_everything(cell.seed)
    try:
        if cell.init_from:
            source = kept_model(store, cell.suite, cell.init_from)
            net = zoo.create_model(cell.arch, pretrained=source.path, num_classes=ds.num_classes,
                                   in_chans=ds.n_channels)
            adapted = zoo.Preprocess(res.input_size, tuple(source.meta["mean"]), tuple(source.meta["std"]))
            adapted = adapted.for_channels(ds.n_channels)  # the source's normalisation, on the target's channels
            net.pretrained_cfg.update(mean=adapted.mean, std=adapted.std, source=f"medzoo:{cell.init_from}",
                                      tag=cell.tag, sha256=source.sha256)
        else:
            net = zoo.create_model(cell.model if cell.pretrained else cell.arch, pretrained=cell.pretrained,
                                   num_classes=ds.num_classes, in_chans=ds.n_channels)
    except WeightsUnavailableError as e:
        return Result(key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="skipped",
                      reason=str(e), provenance=finish(prov, t0))
    # from scratch there are no weights whose statistics apply: MedMNIST's mean 0.5 / std 0.5, as the v2 paper.
    # Random-weight *features* controls keep the weights' preprocessing: they differ from the pretrained row only
    # in the weights.
    pre = zoo.SCRATCH_PREPROCESS.for_channels(ds.n_channels) if cell.mode is TransferMode.SCRATCH \
        else zoo.preprocess_of(net)
    data = {s: _Split(*ds.load(s, cell.data_size, data_dir)) for s in Split}
    ds_train_n = len(data[Split.TRAIN].y)
    if cell.protocol.train_subset:
        data[Split.TRAIN] = train_subset(data[Split.TRAIN], cell.protocol.train_subset, ds.task)
    y = {s: d.y for s, d in data.items()}

    def transform(b: torch.Tensor) -> torch.Tensor:
        return to_input(b, res, pre.mean, pre.std)

    store_ckpt = (lambda s: store.save_checkpoint(cell, s), lambda: store.load_checkpoint(cell)) if store else None
    training: dict[str, Any] = {}
    logits: dict[Split, np.ndarray] = {}
    p = cell.protocol
    net = net.to(dev)
    fingerprint = ds.fingerprint(cell.data_size, data_dir)
    if cell.mode is TransferMode.FEATURES or (cell.mode is TransferMode.LINEAR_PROBE and not p.augment):
        feats, cache_hits = {}, {}
        backbone = weights_hash(net) if cache else ""
        for split in Split:
            n = -(-len(data[split].x) // p.batch_size)

            def batches(split: Split = split, n: int = n) -> Iterator[torch.Tensor]:
                for i, idx in enumerate(_batches(len(data[split].x), p.batch_size)):
                    report("features", i + 1, n, f"features: {split.value}")
                    yield transform(data[split].take(idx))

            subset = split is Split.TRAIN and len(data[split].y) < ds_train_n  # a train_subset: other images
            key = FeatureKey(spec.name, backbone, ds.name, fingerprint,
                             f"{split.value}[{len(data[split].y)}]" if subset else split.value, res.data_size,
                             res.policy.value, res.input_size, tuple(pre.mean), tuple(pre.std), dev.type)
            feats[split], hit = (cache.get_or_compute(key, lambda b=batches: zoo.extract_features(net, b(), device=dev))
                                 if cache else (zoo.extract_features(net, batches(), device=dev), False))
            cache_hits[split.value] = hit
        if cell.mode is TransferMode.FEATURES:
            clf = zoo.fit_head(_features_head(ds, p.head, cell.seed), feats[Split.TRAIN].numpy(),
                               y[Split.TRAIN] if ds.task is Task.MULTILABEL else y[Split.TRAIN].ravel())
            logits = {s: head_logits(clf, feats[s].numpy(), ds.task) for s in (Split.VAL, Split.TEST)}
            training = {"head": p.head, "feature_dim": int(feats[Split.TRAIN].shape[1]),
                        "feature_cache_hits": cache_hits}
        else:
            zoo.prepare(net, cell.mode, ds.num_classes)
            head = _fresh_head(net)
            # standardise with train statistics (a BatchNorm without affine, as MAE's linear probe), then fold
            # the standardisation into the head so it applies to raw features like any timm classifier
            mu, sd = feats[Split.TRAIN].mean(0), feats[Split.TRAIN].std(0)
            sd = torch.where(sd < 1e-6, torch.ones_like(sd), sd)  # a constant feature is centred, not blown up
            z = {s: _Split((feats[s] - mu) / sd, y[s]) for s in Split}
            loop = classification_loop(z[Split.TRAIN], z[Split.VAL], lambda f: f, ds.task, p, dev, images=False)
            out = train(head, cell.mode, loop, p, cell.seed, dev, store_ckpt, report, images=False)
            logits = {s: _predict(out.net, z[s], lambda f: f, ds.task, p.batch_size, dev)[0]
                      for s in (Split.VAL, Split.TEST)}
            with torch.no_grad():
                head.weight.div_(sd.to(head.weight.device))
                head.bias.sub_(head.weight @ mu.to(head.weight.device))
            training = _training(out) | {"features_cached_in_cell": True, "features_standardised": True,
                                         "feature_cache_hits": cache_hits}
    else:
        zoo.prepare(net, cell.mode, ds.num_classes)
        if cell.pretrained:
            _fresh_head(net)
        if dev.type == "cpu":
            net = net.to(memory_format=torch.channels_last)
        loop = classification_loop(data[Split.TRAIN], data[Split.VAL], transform, ds.task, p, dev)
        out = train(net, cell.mode, loop, p, cell.seed, dev, store_ckpt, report)
        logits = {s: _predict(out.net, data[s], transform, ds.task, p.batch_size, dev)[0]
                  for s in (Split.VAL, Split.TEST)}
        training = _training(out)
    model: dict[str, Any] = {"name": cell.model, "arch": spec.name, "family": spec.family, "tag": cell.tag,
                             "source": net.pretrained_cfg.get("source"), "num_params": spec.num_params,
                             "preprocessing": {"mean": list(pre.mean), "std": list(pre.std)}}
    if cell.init_from:
        model["init_sha256"] = net.pretrained_cfg["sha256"]
    if keep_model and store is not None and cell.keeps_model:
        path = store.model_path(cell)
        meta = {"task": ds.task.value, "arch": spec.name, "num_classes": ds.num_classes, "in_chans": ds.n_channels,
                "mean": list(pre.mean), "std": list(pre.std), "input_size": res.input_size,
                "data_size": res.data_size, "policy": res.policy.value, "interpolation": res.interpolation,
                "label_names": [ds.labels[str(i)] for i in range(ds.num_classes)], "trained_on": ds.name,
                "cell": cell.key}
        model["checkpoint"] = {"path": str(path), "sha256": zoo.save_trained(path, net, meta)}
    section, arrays = score_outputs(ds.task, y, logits, cell.seed)
    return Result(
        key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="ok", training=training,
        data={"dataset": ds.name, "task": ds.task.value, "fingerprint": fingerprint, "n": {s.value: len(y[s])
              for s in Split}, "license": ds.license, "citation": ds.citation, "data_size": res.data_size,
              "policy": res.policy.value, "requested_size": res.requested_size, "input_size": res.input_size,
              "bumped_to_min_size": res.bumped, "interpolation": res.interpolation},
        model=model, metrics=section, provenance=finish(prov, t0),
    ).with_outputs(arrays, "classification-logits")


@dataclass(frozen=True)
class KeptModel:
    path: Path
    sha256: str
    meta: dict[str, Any]


def kept_model(store: ResultStore | None, suite: str, key: str) -> KeptModel:
    """The model that cell `key` of `suite` kept in `store`, its sha256 verified; `WeightsUnavailableError` (the
    dependent cell is skipped, and tried again by the next run) says what is missing and how to get it."""
    if store is None:
        raise WeightsUnavailableError(f"this cell starts from the model of cell {key}, which lives in a results store: "
                                      f"run it through `medzoo run` (or pass store=)")
    result = store.result(suite, key)
    fix = f"run `medzoo run --suite {suite}` (source cells run first and keep their models)"
    if result is None or result.status != "ok" or result.model is None:
        raise WeightsUnavailableError(f"source cell {key} has no result in {store.root}: {fix}")
    ckpt = result.model.checkpoint
    if ckpt is None or not Path(ckpt.path).is_file():
        where = ckpt.path if ckpt else "nowhere (it ran without keeping its model)"
        raise WeightsUnavailableError(f"source cell {key} kept no model file (looked at {where}): delete "
                                      f"{store.root / suite / (key + '.json')} and {fix}")
    path = Path(ckpt.path)
    verify_sha256(path, ckpt.sha256)
    return KeptModel(path, ckpt.sha256, trained_meta(path))


def _fresh_head(net: nn.Module) -> nn.Linear:
    """Re-initialise the new classifier of a pretrained model: N(0, 0.01) weights, zero bias (as MAE/DINO probes).
    Family inits differ (timm's EfficientNet draws U(±1/sqrt(classes)): logits of ±25 on 1280 features), and a
    probe's result should not depend on that."""
    head = net.get_classifier()
    if not isinstance(head, nn.Linear):
        raise MedzooError(f"{type(net).__name__}'s classifier is {type(head).__name__}, not a Linear layer")
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def _training(out: TrainOutcome) -> dict[str, Any]:
    return {"epochs_run": out.epochs_run, "best_epoch": out.best_epoch, "stop_reason": out.stop_reason,
            "resumed_from_epoch": out.resumed_from,
            "history": [{k: round(v, 6) for k, v in h.items()} for h in out.history]}
