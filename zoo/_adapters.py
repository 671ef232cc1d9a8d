"""Give networks that are not timm models timm's model contract, so transfer code never branches on family.

The contract (timm's): `forward_features(x)` → feature map; `forward_head(x, pre_logits=True)` → pooled
feature vector of width `num_features`; `forward_head(x)` → logits; `get_classifier()`; `reset_classifier(n)`;
and a `pretrained_cfg` dict naming `first_conv` and `classifier` (used by the weights loader).

`TimmContract` adopts the children of a torchvision-style classifier *without renaming them*, so torchvision
checkpoints load strictly. `SegmentationContract` does the same job for U-Nets: features are the per-pixel
decoder features before the 1x1 (or 3x3) segmentation head, pooled for `pre_logits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from zoo.errors import InputShapeError


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


class TimmContract(nn.Module):
    """A network split as `features` → `pool` → flatten → `pre_logits` → `classifier` (module paths)."""

    def __init__(
        self,
        net: nn.Module,
        *,
        features: Sequence[str],
        pool: str,
        pre_logits: Sequence[str],
        classifier: str,
        first_conv: str,
    ) -> None:
        super().__init__()
        for name, child in net.named_children():
            self.add_module(name, child)
        self._features, self._pool, self._pre_logits = tuple(features), pool, tuple(pre_logits)
        fc = self.get_submodule(classifier)
        if not isinstance(fc, nn.Linear):
            raise TypeError(f"classifier {classifier!r} must be nn.Linear, got {type(fc).__name__}")
        self.num_features = self.head_hidden_size = fc.in_features
        self.num_classes = fc.out_features
        self.pretrained_cfg: dict[str, Any] = {"first_conv": first_conv, "classifier": classifier}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._features:
            x = self.get_submodule(name)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.get_submodule(self._pool)(x), 1)
        for name in self._pre_logits:
            x = self.get_submodule(name)(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.pretrained_cfg["classifier"])

    def reset_classifier(self, num_classes: int) -> None:
        head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        _set_submodule(self, self.pretrained_cfg["classifier"], head)
        self.num_classes = num_classes


class SegmentationContract(nn.Module):
    """`body` maps an image to per-pixel features (B, C, H, W); `head` maps them to mask logits."""

    def __init__(self, body: nn.Module, head: nn.Conv2d, *, first_conv: str, size_divisor: int = 1) -> None:
        super().__init__()
        self.body, self.head = body, head
        self.size_divisor = size_divisor
        self.num_features = self.head_hidden_size = head.in_channels
        self.num_classes = head.out_channels
        self.pretrained_cfg: dict[str, Any] = {"first_conv": f"body.{first_conv}", "classifier": "head"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size_divisor or w % self.size_divisor:
            raise InputShapeError(f"{type(self.body).__name__} needs height and width divisible by "
                                  f"{self.size_divisor}, got {h}x{w}: pad or crop the image (sliding-window "
                                  f"inference does this for you)")
        return self.body(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        old = self.head
        self.head = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, padding=old.padding)
        self.num_classes = num_classes
