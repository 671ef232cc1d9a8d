"""Every default weights tag of every family loads a checkpoint in the key layout of its real file (names and shapes;
random values), and gives what the reference loader gives on the same file: timm's own loader (its checkpoint filter
functions and strictness) for timm-built models, torchvision's or smp's strict `load_state_dict` for theirs.

The real layouts, offline: torchvision's URL checkpoints (and timm's re-hosted `*.tv_in1k` files) are the state dict of
torchvision's model of that name; timm's own Hub files are the state dict of timm's model; smp's encoder repos hold
the encoder alone. Hub-hosted tags go end to end through a huggingface_hub cache (`create_model(pretrained=True)`);
URL-hosted ones load the same file from a local path (their file names carry a sha256 prefix a random file cannot
match). The one `package:` tag ships real weights and is loaded from the installed package elsewhere.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from test_weights import _hub_cache

import zoo

DEFAULTS = [(n, zoo.get_spec(n).default_tag) for n in zoo.list_models() if zoo.get_spec(n).default_tag
            and not zoo.get_spec(n).weights[zoo.get_spec(n).default_tag].source.startswith("package:")]


def _torchvision_layout(name: str, weights: zoo.WeightsSpec) -> bool:
    return weights.source.startswith("https://download.pytorch.org/") or weights.tag.startswith("tv_")


def _real_layout(name: str, weights: zoo.WeightsSpec) -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    """A state dict with the real file's names and shapes (random values), and the library model it came from."""
    torch.manual_seed(0)
    if weights.target:  # smp-hub: the encoder alone, as smp builds it
        donor = zoo.create_model(name, num_classes=1).get_submodule(weights.target)
    elif _torchvision_layout(name, weights):
        donor = torchvision.models.get_model(name, weights=None, num_classes=1000, init_weights=False) \
            if name in ("googlenet", "inception_v3") else torchvision.models.get_model(name, weights=None)
    else:
        donor = timm.create_model(name, num_classes=1000)
    with torch.no_grad():  # values no init would give (a load that silently skips a tensor shows)
        for k, t in donor.state_dict().items():
            if k.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif t.is_floating_point():
                t.normal_(0.0, 0.05)
    return {k: v.clone() for k, v in donor.state_dict().items()}, donor.eval()


def _reference(name: str, weights: zoo.WeightsSpec, sd: dict[str, torch.Tensor],
               donor: torch.nn.Module) -> torch.nn.Module | None:
    """The model the library's own loader makes of `sd` (None for an encoder: compared tensor by tensor)."""
    if weights.target:
        return None
    builder = zoo.get_spec(name).builder
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(builder).parameters.values()):  # built by timm
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"state_dict": sd, "num_classes": 1000,
                                                                                "tag": weights.tag}).eval()
    return donor  # built by torchvision: its own strict load of this very state dict


@pytest.mark.parametrize(("name", "tag"), DEFAULTS, ids=[f"{n}.{t}" for n, t in DEFAULTS])
def test_default_weights_load_from_their_real_key_layout(offline_env: Path, name: str, tag: str) -> None:
    spec = zoo.get_spec(name)
    weights = spec.weights[tag]
    sd, donor = _real_layout(name, weights)
    if weights.source.startswith("hf-hub:"):
        repo, revision = weights.source.removeprefix("hf-hub:"), weights.revision or "0" * 40
        _hub_cache(offline_env / "hf", repo, {}, revision=revision)  # then the file straight into the snapshot
        save_file(sd, str(offline_env / "hf" / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
                          / "model.safetensors"))
        ours = zoo.create_model(name, pretrained=True, **({"num_classes": 1} if weights.target else {}))
        assert ours.pretrained_cfg["tag"] == tag
    else:  # the same loader, from a local file in the real layout
        path = offline_env / "real-layout.safetensors"
        save_file(sd, str(path))
        ours = zoo.create_model(name, pretrained=path)
    ours.eval()
    ref = _reference(name, weights, sd, donor)
    if ref is None:
        enc = ours.get_submodule(weights.target).state_dict()
        assert enc.keys() == sd.keys() and all(torch.equal(enc[k], sd[k]) for k in sd)
        return
    size = max(spec.min_size, 75 if "inception" in name else 64)
    x = torch.randn(2, 3, size, size)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_every_family_with_default_weights_is_covered() -> None:
    assert {zoo.get_spec(n).family for n, _ in DEFAULTS} >= {"alexnet", "vgg", "inception", "resnet", "xception",
                                                             "unet"}
