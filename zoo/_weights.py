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
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from zoo._specs import WeightsSpec
from zoo.errors import HashMismatchError, MissingExtraError, WeightsMismatchError, WeightsUnavailableError
from zoo.extras import install_hint

log = logging.getLogger("zoo")

StateDict = dict[str, torch.Tensor]
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")
NETWORK_TIMEOUT_S = 5.0


def offline() -> bool:
    """True when the user asked for offline mode (`HF_HUB_OFFLINE=1` or `MEDZOO_OFFLINE=1`)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on") for k in ("HF_HUB_OFFLINE",
                                                                                   "MEDZOO_OFFLINE"))


def hf_cache_dir(cache_dir: Path | None = None) -> Path:
    """`cache_dir`, else `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else huggingface_hub's default; read at call time
    (huggingface_hub reads them once, at import)."""
    from huggingface_hub import constants

    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


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


class _NotFetched(Exception):
    """Internal: why a file is not here, which file and where it was looked for; `fetch` turns it into a
    `WeightsUnavailableError` whose message names the model and the fix."""

    def __init__(self, reason: str, file: str, where: Path) -> None:
        super().__init__(reason)
        self.reason, self.file, self.where = reason, file, where


def _offline_help(e: _NotFetched, weights: WeightsSpec, name: str) -> str:
    return (
        f"cannot fetch weights {name} ({weights.source}): {e.reason}. Looked for {e.file} in the cache at "
        f"{e.where}. To work offline: run `medzoo pull {name}` once on a machine with internet and copy that cache "
        f"folder here (or point HF_HOME / TORCH_HOME / --cache-dir at a copy), or load a local file with "
        f"`zoo.create_model('{name.split('.')[0]}', pretrained='/path/to/checkpoint.safetensors')`."
    )


def unreachable(url: str) -> str | None:
    """Why `url` cannot be reached within NETWORK_TIMEOUT_S (None when it answers, whatever the status): a fast
    check before a download, so that a machine without network fails in seconds instead of after long retries.
    It asks through urllib, as the downloads do, so HTTP(S)_PROXY / NO_PROXY are honoured (HPC login nodes)."""
    import urllib.error
    import urllib.request

    try:
        opener = urllib.request.build_opener()  # reads the proxy settings now (urlopen keeps the first ones)
        opener.open(urllib.request.Request(url, method="HEAD"), timeout=NETWORK_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # the server (or the proxy) answered
    except (urllib.error.URLError, OSError) as e:
        return f"{urlparse(url).hostname}: {getattr(e, 'reason', e)}"
    return None


def hub_unreachable(endpoint: str | None = None) -> str | None:
    """As `unreachable`, for the Hugging Face Hub (`endpoint`, default huggingface_hub's), through huggingface_hub's
    own HTTP client (its proxies, its client factory); huggingface_hub itself retries a dead connection for ~20 s
    before giving up."""
    from huggingface_hub import constants, get_session

    url = endpoint or constants.ENDPOINT
    try:
        get_session().head(url, timeout=NETWORK_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001  (transport errors of httpx or requests, by version: all "no answer")
        return f"{urlparse(url).hostname}: {e}"
    return None


_OFFLINE = "offline mode (HF_HUB_OFFLINE/MEDZOO_OFFLINE is set) and the file is not cached"


def _fetch_hf(weights: WeightsSpec, cache_dir: Path | None) -> Path:
    return hf_file(weights.source.removeprefix("hf-hub:"), weights.filename, weights.revision, cache_dir)


def hf_file(repo_id: str, filename: str, revision: str | None, cache_dir: Path | None) -> Path:
    """One file of a Hub repo: from the cache when it is there, else downloaded when allowed (`_NotFetched`
    otherwise, with why)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    where, file = hf_cache_dir(cache_dir), f"{repo_id}/{filename}"
    kwargs = dict(repo_id=repo_id, filename=filename, revision=revision, cache_dir=where)
    try:  # the cache first: no network round trip when the file is there
        return Path(hf_hub_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        if offline():
            raise _NotFetched(_OFFLINE, file, where) from None
    why = hub_unreachable()
    if why:
        raise _NotFetched(f"no network ({why})", file, where)
    try:
        return Path(hf_hub_download(**kwargs, etag_timeout=NETWORK_TIMEOUT_S))
    except Exception as e:  # huggingface_hub raises many HTTP/OS error types; all mean "not fetched"
        raise _NotFetched(f"{type(e).__name__}: {e}", file, where) from e


def _fetch_url(weights: WeightsSpec, cache_dir: Path | None) -> Path:
    where = url_cache_dir(cache_dir)
    dest = where / Path(urlparse(weights.source).path).name
    if dest.is_file():
        return dest
    if offline():
        raise _NotFetched(_OFFLINE, dest.name, where)
    why = unreachable(weights.source)
    if why:
        raise _NotFetched(f"no network ({why})", dest.name, where)
    where.mkdir(parents=True, exist_ok=True)
    try:  # writes to a temp file and renames, checking the hash prefix like torch.hub's check_hash
        torch.hub.download_url_to_file(weights.source, str(dest), hash_prefix=expected_sha256(weights))
    except RuntimeError as e:
        if "invalid hash" in str(e):
            raise HashMismatchError(f"{weights.source}: {e}") from e
        raise
    except OSError as e:
        raise _NotFetched(str(e), dest.name, where) from e
    return dest


def _fetch_package(weights: WeightsSpec) -> Path:
    module, _, rel = weights.source.removeprefix("package:").partition("/")
    try:
        path = Path(str(importlib.resources.files(module).joinpath(rel)))
    except ModuleNotFoundError:  # an uninstalled extra stops a run (a user error), unlike weights offline (skipped)
        raise MissingExtraError(f"weights '{weights.tag}' ship in the Python package {module.replace('_', '-')!r}, "
                                f"which is not installed: `{install_hint(module)}`") from None
    if not path.is_file():
        raise WeightsUnavailableError(f"{path} is missing from the installed package {module!r}; reinstall it")
    return path


def fetch(weights: WeightsSpec, cache_dir: Path | str | None = None, name: str | None = None) -> Path:
    """Return a verified local path for `weights`, downloading it when needed and allowed.

    `name` (`arch.tag`) is only used to make error messages say what to run.
    """
    cache = Path(cache_dir) if cache_dir else None
    src = weights.source
    try:
        if src.startswith("hf-hub:"):
            path = _fetch_hf(weights, cache)
        elif src.startswith(("https://", "http://")):
            path = _fetch_url(weights, cache)
        else:
            path = _fetch_local(weights)
    except _NotFetched as e:
        raise WeightsUnavailableError(_offline_help(e, weights, name or f"NAME.{weights.tag}")) from None
    verify_sha256(path, expected_sha256(weights))
    return path


def _fetch_local(weights: WeightsSpec) -> Path:
    if weights.source.startswith("package:"):
        return _fetch_package(weights)
    return local_path(weights.source)


def local_path(source: str | Path) -> Path:
    path = Path(str(source).removeprefix("file:")).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"checkpoint file not found: {path}")
    return path


def read_state_dict(path: Path) -> StateDict:
    """safetensors when the file is one; otherwise `torch.load(weights_only=True)` (no pickled code)."""
    fix = ("if it is damaged or incomplete (an interrupted download or copy), delete it and download or save it "
           "again (`medzoo pull NAME` for registry weights)")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:  # truncated, not safetensors, unreadable
            raise WeightsMismatchError(f"{path} is not a readable safetensors file ({e}); {fix}") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError/RuntimeError for non-tensor pickles and bad files
        raise WeightsMismatchError(f"{path} is not a loadable tensor checkpoint ({e}); {fix}") from e
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


def _timm_filter(model: nn.Module, sd: StateDict) -> StateDict:
    """`sd` through the checkpoint filter of the timm module that built `model`, as timm's own loader applies it
    (e.g. VGG: torchvision's `classifier.0/3/6` → `pre_logits.fc1/fc2` convolutions and `head.fc`); unchanged for
    models timm did not build or whose module has no filter."""
    import importlib
    import inspect

    module = type(model).__module__
    if not module.startswith("timm.models."):
        return sd
    mod = importlib.import_module(module)
    fn = getattr(mod, "checkpoint_filter_fn", None) or getattr(mod, "_filter_fn", None)
    if fn is None:
        return sd
    return fn(sd, model) if len(inspect.signature(fn).parameters) > 1 else fn(sd)


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
    if set(sd) != set(own):  # another layout (a medzoo-saved or timm-hosted file already fits)
        sd = _timm_filter(target, sd)
    first = model.pretrained_cfg["first_conv"].removeprefix(weights.target + ".") + ".weight"
    if first in sd and first in own:
        sd[first] = adapt_input_conv(sd[first], own[first].shape[1])
    skipped: list[str] = []
    if not weights.target:
        head = _classifier_keys(model, own)
        if head and any(k in sd and sd[k].shape != own[k].shape for k in head):
            skipped = head
            log.info("%s: %s classes in checkpoint, %s in model: classifier %s left randomly initialised",
                     source, checkpoint_num_classes(model, sd) or "?", getattr(model, "num_classes", "?"),
                     ", ".join(head))
            sd = {k: v for k, v in sd.items() if k not in head}
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
