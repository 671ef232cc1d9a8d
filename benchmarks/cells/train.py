"""The one training loop every cell kind trains with (classification heads and backbones, U-Nets): best epoch on
validation, early stopping, time budget, and a checkpoint after every epoch that a resumed cell restores first.
Pure: progress goes to a `Report` callback the CLI draws; checkpoints go to callbacks the store provides."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import zoo
from benchmarks.suites import Protocol
from zoo import TransferMode

Report = Callable[[str, int, int, str], None]
"""`report(kind, completed, total, text)`: kind is `epoch`, `batch` or `features`; the CLI turns it into bars."""


class TrainingDivergedError(RuntimeError):
    """A cell's validation metric or loss is not finite: that cell fails (recorded in the run summary), the run goes
    on with the others."""


def quiet(kind: str, completed: int, total: int, text: str) -> None:
    """The default report: none."""


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


def index_batches(n: int, size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    idx = order if order is not None else torch.arange(n)
    yield from idx.split(size)


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
class Loop:
    """What the training loop needs from a task: one epoch's `(inputs, targets)` batches on the device (drawn with
    the cell's generator), the loss, and a validation pass returning `val_loss` and the monitored metric."""

    batches: Callable[[torch.Generator], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    n_batches: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    validate: Callable[[nn.Module, int], dict[str, float]]  # (net, epoch) -> metrics



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
    report: Report = quiet,
    images: bool = True,
) -> TrainOutcome:
    """Train `net` (a timm-contract model, or a bare head on cached features when `images` is False) on `loop`.

    Best-on-validation selection by `protocol.monitor` (`val_loss` is minimised, the rest maximised); forward passes
    in `protocol.precision` (the loss in fp32); optional early stopping and time budget; a checkpoint (model, optimiser, scheduler, RNG state, best weights, history) after
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
            with zoo.autocast(net, device, p.precision if images else "fp32"):  # a bare head on features: fp32
                out = net(xb)
            loss = loop.loss_fn(out, yb)
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)



def training_record(out: TrainOutcome) -> dict[str, Any]:
    return {"epochs_run": out.epochs_run, "best_epoch": out.best_epoch, "stop_reason": out.stop_reason,
            "resumed_from_epoch": out.resumed_from,
            "history": [{k: round(v, 6) for k, v in h.items()} for h in out.history]}
