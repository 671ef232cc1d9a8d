"""The public entry points on the model registry (`zoo._registry.MODELS`): list_models, get_spec, resolve,
create_model, preprocess_of."""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from zoo import _weights
from zoo._registry import MODELS
from zoo._specs import ModelSpec, Preprocess, Task, WeightsSpec
from zoo.errors import UnknownNameError, WeightsUnavailableError

log = logging.getLogger("zoo")

# Inputs for models trained from scratch here: MedMNIST's own normalisation (mean 0.5, std 0.5).
SCRATCH_PREPROCESS = Preprocess(input_size=28, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear")
_LOCAL = WeightsSpec(tag="local", source="file:", pretrain_data="unknown", license="unknown",
                     preprocess=SCRATCH_PREPROCESS, num_classes=None)


def _ensure_loaded() -> None:
    import zoo.models  # noqa: F401  (importing the family files fills MODELS)


def get_spec(name: str) -> ModelSpec:
    """The spec of a model; `name` may carry a weights tag (`resnet18.tv_in1k`)."""
    return resolve(name)[0]


def resolve(name: str) -> tuple[ModelSpec, WeightsSpec | None]:
    """Split `arch[.tag]` and return the spec and the named (or default) weights."""
    _ensure_loaded()
    arch, _, tag = name.partition(".")
    spec = MODELS.get(arch)
    if not tag:
        return spec, spec.weights.get(spec.default_tag) if spec.default_tag else None
    if tag not in spec.weights:
        import difflib

        close = difflib.get_close_matches(tag, list(spec.weights), n=3, cutoff=0.3)
        raise UnknownNameError(f"weights tag for {arch}", tag, [f"{arch}.{t}" for t in close]
                               or [f"{arch}.{t}" for t in spec.weights], listing=f"medzoo info {arch}")
    return spec, spec.weights[tag]


def list_models(pattern: str = "*", pretrained: bool = False, task: Task | str | None = None) -> list[str]:
    """Registered model names matching `pattern` (fnmatch). With `pretrained=True`, `arch.tag` names of every
    weights entry instead, as timm does."""
    _ensure_loaded()
    wanted = Task(task).kind if task is not None else None
    specs = [s for s in MODELS if wanted is None or s.task == wanted]
    if not pretrained:
        return [s.name for s in specs if fnmatch.fnmatchcase(s.name, pattern)]
    tagged = [f"{s.name}.{t}" for s in specs for t in s.weights]
    return sorted(n for n in tagged if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n.split(".")[0],
                                                                                              pattern))


def create_model(
    name: str,
    pretrained: bool | str | Path = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    cache_dir: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model, optionally with weights, as `timm.create_model` does (train mode).

    `pretrained=True` loads the named (`arch.tag`) or default weights; a path (or `file:` URI) loads a local
    checkpoint. `num_classes` defaults to the checkpoint's; a different value gets a fresh head (logged);
    `in_chans` (default 3) adapts the first convolution as timm does. Other keywords (`drop_path_rate`,
    `global_pool`, ...) go to timm for timm-built models; other builders refuse them (TypeError naming the builder).
    The returned model's `pretrained_cfg` carries medzoo's preprocessing for it (`preprocess_of(model)`).
    `hf-hub:ORG/NAME[@revision]` names a model folder written by `zoo.save_pretrained`: its architecture, with its
    weights when `pretrained`, `num_classes` and `in_chans` defaulting to the saved ones.
    """
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"create_model: {arg} must be a whole number >= 1, got {value!r}")
    if kwargs.get("features_only"):
        raise ValueError("create_model: features_only is not supported: medzoo's transfer modes need the classifier "
                         "head; use zoo.extract_features or model.forward_features / forward_intermediates")
    if name.startswith("hf-hub:"):
        from zoo._export import build_from_folder

        return build_from_folder(name, cache_dir, pretrained=bool(pretrained), num_classes=num_classes,
                                 in_chans=in_chans, **kwargs)
    in_chans = in_chans or 3
    spec, named = resolve(name)
    if kwargs and not spec.takes_timm_kwargs:
        raise TypeError(f"create_model({name!r}): {', '.join(sorted(kwargs))} not accepted: {spec.name} is built by "
                        f"{spec.builder.__module__}.{spec.builder.__qualname__}, which takes only num_classes and "
                        f"in_chans (extra keywords go to timm for timm-built models only)")
    weights: WeightsSpec | None = None
    local: Path | None = None
    if pretrained is True:
        if named is None and spec.weights:
            raise WeightsUnavailableError(f"{spec.name} has no default weights: name a tag, e.g. "
                                          f"{', '.join(f'{spec.name}.{t}' for t in spec.weights)}")
        if named is None:
            raise WeightsUnavailableError(f"{spec.name} has no pretrained weights in medzoo; use pretrained=False "
                                          f"(train from scratch) or pass a checkpoint path as pretrained=")
        weights = named
    elif pretrained:
        local = _weights.local_path(pretrained)
        weights = replace(named or _LOCAL, tag="local", source=f"file:{local}", sha256=None, num_classes=None,
                          rename_in_order=False, target="")  # a whole model, in medzoo's key names
    n_cls = num_classes or (weights.num_classes if weights else None) or spec.num_classes
    model = spec.builder(num_classes=n_cls, in_chans=in_chans, **kwargs)  # before any download: a missing extra
    if weights is not None:  # fails here, not after fetching weights it cannot use
        sd = _weights.read_state_dict(local or _weights.fetch(weights, cache_dir, name=f"{spec.name}.{weights.tag}"))
        if weights.num_classes is None and not weights.target and num_classes is None:
            n_ckpt = _weights.checkpoint_num_classes(model, sd)  # a local checkpoint keeps its own head
            if n_ckpt and n_ckpt != n_cls:
                n_cls = n_ckpt
                model = spec.builder(num_classes=n_cls, in_chans=in_chans, **kwargs)
        _weights.load_into(model, sd, weights, source=f"{spec.name}.{weights.tag}")
    cfg_weights = weights or named
    pre = (cfg_weights.preprocess if cfg_weights else SCRATCH_PREPROCESS).for_channels(in_chans)
    inherited = {k: v for k, v in getattr(model, "pretrained_cfg", {}).items()
                 if k not in ("url", "hf_hub_id", "license", "tag")}  # timm's defaults, not what was loaded
    model.pretrained_cfg = {
        **inherited,
        "architecture": spec.name,
        "tag": weights.tag if weights else None,
        "pretrained": weights is not None,
        "source": weights.source if weights else None,
        "license": weights.license if weights else None,
        "input_size": (in_chans, pre.input_size, pre.input_size),
        "mean": pre.mean,
        "std": pre.std,
        "interpolation": pre.interpolation,
        "crop_pct": pre.crop_pct,
        "num_classes": n_cls,
    }
    return model


def preprocess_of(model: nn.Module) -> Preprocess:
    """The preprocessing recorded on a model made by `create_model`."""
    cfg: dict[str, Any] = model.pretrained_cfg
    return Preprocess(input_size=cfg["input_size"][-1], mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                      interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"])
