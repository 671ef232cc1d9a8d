"""Whole-image segmentation by sliding window, and trained-model files that `medzoo predict` reads back.

A trained model is one safetensors file: the state dict plus a `medzoo` metadata entry (JSON: architecture,
channels, normalisation, what it was trained on; segmentation models also patch size, overlap and threshold), so a
prediction or an export needs nothing but the file — no pickle, nothing executed on load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save
from torch import nn

from zoo._factory import create_model
from zoo._precision import autocast
from zoo.errors import InputShapeError, MedzooError
from zoo.extras import require

META_KEY = "medzoo"
REQUIRED_META = ("arch", "num_classes", "in_chans", "mean", "std")
SEGMENTATION_META = ("patch_size", "overlap", "threshold")  # what `medzoo predict` needs besides


def image_to_tensor(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 `(H, W)` or `(H, W, C)` → normalised float `(C, H, W)`: `(x / 255 - mean) / std`."""
    x = torch.from_numpy(np.array(image))  # a copy: samples are read-only and shared
    x = (x.unsqueeze(-1) if x.ndim == 2 else x).permute(2, 0, 1).float().div_(255.0)
    if x.shape[0] != len(mean):
        raise InputShapeError(f"the image has {x.shape[0]} channel(s) but the model takes {len(mean)}: convert it "
                              f"(e.g. PIL's .convert('{'L' if len(mean) == 1 else 'RGB'}')) first")
    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
    return (x - m) / s


@torch.inference_mode()
def sliding_window(net: nn.Module, image: torch.Tensor, patch_size: int, overlap: float = 0.25,
                   batch_size: int = 8, device: torch.device | str = "cpu", precision: str = "fp32") -> torch.Tensor:
    """Positive-class probabilities `(H, W)` of a normalised `(C, H, W)` image: `patch_size` windows with
    `overlap` (fraction of the window), probabilities averaged where windows overlap (MONAI's sliding window,
    constant weights; images smaller than a window are padded and cropped back). The network runs in `precision`
    (bf16: its 1x1 output conv, the sigmoid and the averaging stay fp32)."""
    inferers = require("monai.inferers", "sliding-window inference")  # here, not at import: monai is heavy

    was = net.training
    net.eval()
    def predictor(x: torch.Tensor) -> torch.Tensor:
        with autocast(net, device, precision):
            logits = net(x.contiguous(memory_format=torch.channels_last))
        return logits.float().sigmoid()

    try:
        prob = inferers.sliding_window_inference(image.unsqueeze(0).to(device), roi_size=(patch_size, patch_size),
                                                 sw_batch_size=batch_size, predictor=predictor, overlap=overlap,
                                                 mode="constant")
    finally:
        net.train(was)
    assert isinstance(prob, torch.Tensor)
    return prob[0, 0].cpu()


def trained_bytes(net: nn.Module, meta: dict[str, Any]) -> bytes:
    """`net`'s weights and `meta` (must hold `REQUIRED_META`) as the bytes of a safetensors file, for a caller that
    writes files its own way (the benchmark's results store)."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"trained-model metadata lacks {missing}")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    return save(state, metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def save_trained(path: Path | str, net: nn.Module, meta: dict[str, Any]) -> str:
    """Write `trained_bytes(net, meta)` to `path` (temp file, then rename); returns its sha256."""
    data, path = trained_bytes(net, meta), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def trained_meta(path: Path | str) -> dict[str, Any]:
    """The medzoo metadata of a `save_trained` file, without reading its tensors or building the model."""
    path = Path(path)
    if not path.is_file():
        raise MedzooError(f"no trained model at {path}: give a .safetensors file written by `medzoo run` "
                          f"(its path is in the result's model.checkpoint)")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        raise MedzooError(f"{path} is not a safetensors file ({e})") from e
    if raw is None:
        raise MedzooError(f"{path} has no medzoo metadata: it was not written by medzoo, so its architecture and "
                          f"normalisation are unknown")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise MedzooError(f"{path}: the medzoo metadata is not JSON ({e})") from e
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise MedzooError(f"{path}: the medzoo metadata lacks {missing}; re-export the model")
    return dict(meta)


def load_trained(path: Path | str) -> tuple[nn.Module, dict[str, Any]]:
    """The model in a `save_trained` file (eval mode) and its metadata; a file that is not one raises with why."""
    meta = trained_meta(path)
    try:
        state = load_file(str(path))
        net = create_model(meta["arch"], pretrained=False, num_classes=int(meta["num_classes"]),
                           in_chans=int(meta["in_chans"]))
        net.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, TypeError, ValueError, RuntimeError) as e:
        raise MedzooError(f"{path}: the weights do not match their medzoo metadata ({str(e).splitlines()[0]})") from e
    return net.eval(), meta
