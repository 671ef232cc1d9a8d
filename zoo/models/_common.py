"""Helpers the family files share: timm builders and weights entries read from timm's own pretrained configs,
so preprocessing facts (mean, std, interpolation, crop) are never re-typed by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import timm
from timm.models import get_pretrained_cfg
from torch import nn

from zoo._specs import Preprocess, WeightsSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's ImageNet evaluation transform: resize 256, centre crop 224, bilinear.
TORCHVISION_224 = Preprocess(input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear",
                             crop_pct=0.875)
_PRETRAIN_DATA = {"in1k": "imagenet-1k", "in22k": "imagenet-22k"}


def timm_preprocess(arch_tag: str) -> Preprocess:
    cfg = get_pretrained_cfg(arch_tag)
    if cfg is None:
        raise KeyError(f"timm has no pretrained config {arch_tag!r}")
    return Preprocess(input_size=cfg.input_size[-1], mean=tuple(cfg.mean), std=tuple(cfg.std),
                      interpolation=cfg.interpolation or "bilinear", crop_pct=cfg.crop_pct)


def timm_weights(arch: str, tag: str, *, url: bool = False, **overrides: object) -> WeightsSpec:
    """A weights entry from timm's pretrained config: its HF Hub repo (unpinned: timm publishes no revision or
    hash), or with `url=True` its original download URL (torchvision's, hash-prefixed file names)."""
    cfg = get_pretrained_cfg(f"{arch}.{tag}")
    if cfg is None:
        raise KeyError(f"timm has no pretrained config {arch}.{tag}")
    source = cfg.url if url else f"hf-hub:{cfg.hf_hub_id}"
    if not source or source == "hf-hub:None":
        raise ValueError(f"timm's config for {arch}.{tag} has no {'URL' if url else 'HF Hub id'}")
    data = next((v for k, v in _PRETRAIN_DATA.items() if tag.endswith(k)), "unknown")
    fields: dict[str, object] = dict(tag=tag, source=source, pretrain_data=data, license=cfg.license or "unknown",
                                     preprocess=timm_preprocess(f"{arch}.{tag}"), num_classes=cfg.num_classes)
    fields.update(overrides)
    return WeightsSpec(**fields)  # type: ignore[arg-type]


def timm_builder(arch: str, **kwargs: Any) -> Callable[..., nn.Module]:
    """A builder that delegates to timm (random init: medzoo's loader applies weights); `kwargs`, then the caller's
    extra keywords, go to timm."""

    def build(*, num_classes: int, in_chans: int = 3, **extra: Any) -> nn.Module:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans,
                                 **{**kwargs, **extra})

    build.__name__ = arch
    build.__doc__ = f"timm `{arch}`."
    return build
