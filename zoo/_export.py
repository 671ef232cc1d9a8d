"""Hugging Face Hub-style model folders: `save_pretrained` writes one, `load_pretrained` reads one from a local folder
or `hf-hub:ORG/NAME[@revision]` (through huggingface_hub's cache, so `HF_HUB_OFFLINE=1` works once it is cached).

A folder holds `model.safetensors` and a timm-style `config.json` (`architecture`, `num_classes`, `num_features`,
`label_names`, `model_args` with `in_chans`, and a `pretrained_cfg` with input size, mean/std, interpolation,
crop_pct, first_conv and classifier), plus a `medzoo` entry with medzoo's own facts. For architectures timm builds
under the same name (e.g. `resnet18`, `tf_efficientnet_lite0`), plain `timm.create_model("hf-hub:ORG/NAME", pretrained=True)`
loads the same folder; medzoo-only architectures (e.g. the CIFAR-stem `resnet18_28`) load through medzoo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import nn

from zoo._factory import create_model
from zoo._specs import Preprocess
from zoo._weights import _NotFetched, hf_file
from zoo.errors import MedzooError, WeightsUnavailableError

WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = "model.safetensors", "config.json", "README.md"


def _config(model: nn.Module, label_names: list[str] | None, medzoo: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = model.pretrained_cfg
    n_cls = int(getattr(model, "num_classes", cfg.get("num_classes") or 0))
    if label_names is not None and len(label_names) != n_cls:
        raise ValueError(f"{len(label_names)} label names for a model with {n_cls} classes")
    in_chans = int(cfg["input_size"][0])
    return {
        "architecture": cfg["architecture"], "num_classes": n_cls,
        "num_features": int(getattr(model, "num_features", 0)),
        "label_names": label_names or [str(i) for i in range(n_cls)],
        "model_args": {"in_chans": in_chans},
        "pretrained_cfg": {k: (list(v) if isinstance(v, tuple) else v) for k, v in {
            "input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"],
            "interpolation": cfg["interpolation"], "crop_pct": cfg["crop_pct"],
            "first_conv": cfg.get("first_conv"), "classifier": cfg.get("classifier"),
            "license": cfg.get("license") or "other"}.items()},
        "medzoo": medzoo,
    }


def save_pretrained(model: nn.Module, out_dir: Path | str, *, label_names: list[str] | None = None,
                    card: str | None = None, medzoo: dict[str, Any] | None = None) -> Path:
    """Write `model` (made by `zoo.create_model`) as a Hub-style folder; returns it. `card` becomes README.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    config = _config(model, label_names, medzoo or {})
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if card is not None:
        (out / CARD_FILE).write_text(card)
    return out


def _hub_files(repo: str, cache_dir: Path | str | None, weights: bool) -> Path:
    """The snapshot folder of `repo` with its config, and its weights only when `weights` (as timm: a model built
    without pretrained weights downloads the config alone)."""
    repo_id, _, revision = repo.partition("@")
    cache = Path(cache_dir) if cache_dir else None
    try:
        cfg = hf_file(repo_id, CONFIG_FILE, revision or None, cache)
        if weights:
            hf_file(repo_id, WEIGHTS_FILE, revision or None, cache)
    except _NotFetched as e:
        raise WeightsUnavailableError(
            f"cannot load hf-hub:{repo}: {e.reason} ({e.file}, looked in {e.where}). Load it once online (or "
            f"copy a Hugging Face cache folder that has it and point HF_HUB_CACHE at it), then work offline with "
            f"HF_HUB_OFFLINE=1") from None
    return cfg.parent


def _read_folder(source: str | Path, cache_dir: Path | str | None, weights: bool) -> tuple[Path, dict[str, Any], str]:
    text = str(source)
    folder = (_hub_files(text.removeprefix("hf-hub:"), cache_dir, weights) if text.startswith("hf-hub:")
              else Path(text))
    if not (folder / CONFIG_FILE).is_file() or (weights and not (folder / WEIGHTS_FILE).is_file()):
        raise MedzooError(f"{folder} is not a model folder: it needs {CONFIG_FILE} and {WEIGHTS_FILE} "
                          f"(as written by zoo.save_pretrained / medzoo export)")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except json.JSONDecodeError as e:
        raise MedzooError(f"{folder / CONFIG_FILE} is not JSON ({e}): re-export the model") from e
    label = f"hf-hub:{text.removeprefix('hf-hub:')}" if text.startswith("hf-hub:") else f"file:{folder}"
    return folder, config, label


def build_from_folder(source: str | Path, cache_dir: Path | str | None = None, *, pretrained: bool,
                      num_classes: int | None = None, in_chans: int | None = None, **kwargs: Any) -> nn.Module:
    """The saved architecture with `num_classes`/`in_chans` defaulting to the saved ones, its weights when
    `pretrained` (the first convolution adapted, a head of another size left fresh), in train mode: what
    `timm.create_model("hf-hub:...")` does, and what `create_model` does for such names."""
    folder, config, label = _read_folder(source, cache_dir, weights=pretrained)
    try:
        pre = config["pretrained_cfg"]
        saved_classes = int(config["num_classes"])
        saved_chans = int(config.get("model_args", {}).get("in_chans", pre["input_size"][0]))
        arch = config["architecture"]
    except (KeyError, TypeError, ValueError) as e:
        raise MedzooError(f"{folder / CONFIG_FILE} lacks what medzoo needs ({e!r}): re-export the model") from e
    n_cls, chans = num_classes or saved_classes, in_chans or saved_chans
    model = create_model(arch, pretrained=folder / WEIGHTS_FILE if pretrained else False, num_classes=n_cls,
                         in_chans=chans, **kwargs)
    if pretrained:
        saved = Preprocess(input_size=int(pre["input_size"][-1]), mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                           interpolation=pre["interpolation"], crop_pct=pre["crop_pct"]).for_channels(chans)
        model.pretrained_cfg.update({
            "input_size": (chans, saved.input_size, saved.input_size), "mean": saved.mean, "std": saved.std,
            "interpolation": saved.interpolation, "crop_pct": saved.crop_pct, "source": label, "tag": "exported",
            "label_names": config.get("label_names") if n_cls == saved_classes else None,
            "medzoo": config.get("medzoo") or {}})  # what the harness knew: task, threshold, input policy
    return model


def load_pretrained(source: str | Path, cache_dir: Path | str | None = None, *, num_classes: int | None = None,
                    in_chans: int | None = None) -> nn.Module:
    """A model from a folder written by `save_pretrained`, or from `hf-hub:ORG/NAME[@revision]`, with its weights,
    in eval mode; its labels and preprocessing come back in `model.pretrained_cfg` (`label_names`, `mean`, `std`,
    `input_size`). `num_classes`/`in_chans` other than the saved ones give a fresh head / an adapted first conv."""
    return build_from_folder(source, cache_dir, pretrained=True, num_classes=num_classes, in_chans=in_chans).eval()
