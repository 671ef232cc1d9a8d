"""From stored uint8 images to model inputs: the resolution policy (pad or resize, bumped to a model's minimum
size), per-batch normalisation on the device, and the fixed training subset a suite may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.data import Task
from benchmarks.suites import Policy


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



@dataclass
class SplitData:
    x: np.ndarray | torch.Tensor  # uint8 images (possibly memory-mapped), or float features
    y: np.ndarray

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows `idx` as a tensor; a memory-mapped array is read batch by batch, never whole."""
        return self.x[idx] if isinstance(self.x, torch.Tensor) else torch.from_numpy(self.x[idx.numpy()])



def train_subset(data: SplitData, n: int, task: Task) -> SplitData:
    """`n` training images, stratified by label (multi-label: plain random), drawn with a fixed seed: every seed and
    every row of a suite sees the same images, so rows differ only in what they compare."""
    from sklearn.model_selection import train_test_split

    if n >= len(data.y):
        return data
    idx = np.arange(len(data.y))
    keep, _ = train_test_split(idx, train_size=n, random_state=0,
                               stratify=None if task is Task.MULTILABEL else data.y.ravel())
    keep = np.sort(keep)
    return SplitData(np.asarray(data.x[keep]), data.y[keep])


