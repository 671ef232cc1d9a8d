"""On-disk cache of frozen-backbone features: computed once per (weights, data, split, resolution, preprocessing),
reused by every head, seed and re-run that shares them.

The key is a sha256 of what decides the numbers: the model's architecture and a hash of its actual
weights (so random-init weights of another seed, or other pretrained weights, never share an entry), the dataset's
fingerprint (md5 of its file), the split, the stored size, resize policy and input size, mean/std, the device
and the precision (fp32 / bf16) the backbone ran in (for bf16, `AUTOCAST_VERSION`: which parts stayed fp32), and the
feature code's version (not the torch/timm versions or the CPU/GPU model, whose kernels may differ in the last bits:
`medzoo cache clear` after an upgrade if that matters to you). An entry is one safetensors file whose metadata
repeats the key's fields and the sha256 of the feature bytes: a truncated, corrupt or mismatched file is detected,
deleted and recomputed — never used. Writes go to a temp file renamed into place, so a half-written entry is never
visible, also to other processes or nodes sharing the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save
from torch import nn

from benchmarks.results.store import atomic_write
from benchmarks.versions import AUTOCAST_VERSION

FORMAT = 2  # bump when the way features are computed changes: old entries are then never hit


def cache_dir() -> Path:
    """`$MEDZOO_CACHE_DIR/features`, else `~/.cache/medzoo/features`."""
    return Path(os.environ.get("MEDZOO_CACHE_DIR") or Path.home() / ".cache" / "medzoo").expanduser() / "features"


def weights_hash(net: nn.Module) -> str:
    """sha256 of the backbone's state dict (names, shapes, dtypes, bytes): the classifier is left out, since
    pooled pre-logit features do not depend on it (so a new head per cell or seed still shares the entry)."""
    head = getattr(net, "pretrained_cfg", {}).get("classifier") or ()
    heads = tuple(f"{c}." for c in ((head,) if isinstance(head, str) else head))
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        if heads and name.startswith(heads):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class FeatureKey:
    arch: str
    weights: str  # weights_hash of the backbone
    dataset: str
    fingerprint: str  # the dataset's file checksum
    split: str  # `train`, `val`, `test`; `train[N]` for a `train_subset` of N images
    data_size: int
    policy: str
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: str  # cpu / cuda: kernels differ in the last bits
    precision: str  # fp32 / bf16: the backbone's arithmetic (bf16 features differ in the third digit)

    def fields(self) -> dict[str, Any]:
        out = {**self.__dict__, "mean": list(self.mean), "std": list(self.std), "format": FORMAT}
        return out | {"autocast": AUTOCAST_VERSION} if self.precision == "bf16" else out  # what bf16 keeps fp32

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()[:32]


def _tensor_sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


class FeatureCache:
    """`get_or_compute(key, compute)`; `entries()` and `clear()` for `medzoo cache ls|clear`."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root else cache_dir()

    def path(self, key: FeatureKey) -> Path:
        return self.root / f"{key.arch}__{key.dataset}__{key.split}__{key.input_size}__{key.digest}.safetensors"

    def load(self, key: FeatureKey) -> torch.Tensor | None:
        """The cached features, or None (missing; or corrupt/stale, which is deleted)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            feats = load_file(str(path))["features"].clone()  # not backed by the file: it may be replaced
            ok = json.loads(meta.get("key", "null")) == json.loads(json.dumps(key.fields())) and \
                meta.get("sha256") == _tensor_sha(feats)
        except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError):
            ok = False
        if not ok:
            path.unlink(missing_ok=True)
            return None
        return feats

    def save(self, key: FeatureKey, feats: torch.Tensor) -> Path:
        path = self.path(key)
        feats = feats.detach().cpu().contiguous()
        atomic_write(path, save({"features": feats}, metadata={"key": json.dumps(key.fields()),
                                                               "sha256": _tensor_sha(feats),
                                                               "created": str(int(time.time()))}))
        return path

    @staticmethod
    def key_fields(path: Path) -> dict[str, Any]:
        """The key fields an entry file records (its metadata)."""
        with safe_open(str(path), framework="pt") as f:
            return dict(json.loads((f.metadata() or {})["key"]))

    def get_or_compute(self, key: FeatureKey, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, bool]:
        """(features, hit)."""
        cached = self.load(key)
        if cached is not None:
            return cached, True
        feats = compute()
        self.save(key, feats)
        return feats, False

    def entries(self) -> list[dict[str, Any]]:
        """One row per readable entry (arch, dataset, split, input size, shape, MB, created, path)."""
        rows = []
        for p in sorted(self.root.glob("*.safetensors")):
            try:
                with safe_open(str(p), framework="pt") as f:
                    meta, shape = f.metadata() or {}, f.get_slice("features").get_shape()
                key = json.loads(meta["key"])
            except (SafetensorError, OSError, KeyError, json.JSONDecodeError):
                key, shape, meta = {}, [], {}
            rows.append({"arch": key.get("arch", "?"), "dataset": key.get("dataset", "?"),
                         "split": key.get("split", "?"), "input_size": key.get("input_size", "?"),
                         "shape": "x".join(map(str, shape)) or "unreadable", "mb": p.stat().st_size / 1e6,
                         "created": int(meta.get("created", 0)), "path": str(p)})
        return rows

    def clear(self, pattern: str = "*") -> int:
        """Delete entries whose file name matches `pattern` (fnmatch; default all); returns how many."""
        if "/" in pattern or pattern.startswith(".."):
            raise ValueError(f"pattern {pattern!r} must be a file-name pattern inside {self.root}")
        paths = list(self.root.glob(f"{pattern}.safetensors" if not pattern.endswith(".safetensors") else pattern))
        for p in paths:
            p.unlink(missing_ok=True)
        return len(paths)
