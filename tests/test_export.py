"""Hub-style model folders: save_pretrained → a real huggingface_hub cache folder → offline load with medzoo (and with
plain timm for an architecture timm builds) gives identical outputs, labels and preprocessing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
from test_weights import _hub_cache

import zoo
from zoo import HashMismatchError, MedzooError, WeightsUnavailableError


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(("arch", "in_chans", "size", "timm_native"),
                         [("resnet18", 1, 64, True), ("resnet18_28", 1, 28, False)])
def test_export_hub_cache_round_trip(offline_env: Path, monkeypatch: pytest.MonkeyPatch, arch: str, in_chans: int,
                                     size: int, timm_native: bool) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub reads these at import: plain timm
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(offline_env / "hf"))  # needs them set here
    torch.manual_seed(0)
    src = zoo.create_model(arch, num_classes=3, in_chans=in_chans).eval()
    with torch.no_grad():  # not the init: a trained-looking model
        for p in src.parameters():
            p.add_(0.01 * torch.randn_like(p))
    out = zoo.save_pretrained(src, offline_env / "export", label_names=["normal", "benign", "malignant"],
                              card="# a model card\n")
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == arch and config["num_classes"] == 3 and config["model_args"] == {"in_chans": 1}
    _hub_cache(offline_env / "hf", f"medzoo-test/{arch}", _files(out))
    x = torch.randn(2, in_chans, size, size)
    with torch.no_grad():
        want = src(x)
        for loaded in (zoo.create_model(f"hf-hub:medzoo-test/{arch}", pretrained=True).eval(), zoo.load_pretrained(out)):
            torch.testing.assert_close(loaded(x), want)
            assert loaded.pretrained_cfg["label_names"] == ["normal", "benign", "malignant"]
            assert zoo.preprocess_of(loaded).mean == zoo.preprocess_of(src).mean
        if timm_native:
            plain = timm.create_model(f"hf-hub:medzoo-test/{arch}", pretrained=True).eval()
            torch.testing.assert_close(plain(x), want)
            assert plain.pretrained_cfg["label_names"] == ["normal", "benign", "malignant"]
    # as timm: num_classes / in_chans override the saved ones, pretrained says whether the weights load, train mode
    body = next(k for k in src.state_dict() if k.startswith("layer4") and k.endswith("conv1.weight"))
    other = zoo.create_model(f"hf-hub:medzoo-test/{arch}", pretrained=True, num_classes=5, in_chans=3)
    assert other.training and other(torch.randn(2, 3, size, size)).shape == (2, 5)
    torch.testing.assert_close(other.state_dict()[body], src.state_dict()[body])
    assert other.pretrained_cfg["label_names"] is None and len(zoo.preprocess_of(other).mean) == 3
    if timm_native:
        plain = timm.create_model(f"hf-hub:medzoo-test/{arch}", pretrained=True, num_classes=5, in_chans=3)
        first = plain.pretrained_cfg["first_conv"] + ".weight"
        torch.testing.assert_close(other.state_dict()[first], plain.state_dict()[first])  # same channel adaptation
    fresh = zoo.create_model(f"hf-hub:medzoo-test/{arch}")
    assert fresh.training and fresh(torch.randn(2, in_chans, size, size)).shape == (2, 3)
    assert not torch.equal(fresh.state_dict()[body], src.state_dict()[body])
    # as timm, a model without pretrained weights needs the config alone: a snapshot without the weights builds it
    _hub_cache(offline_env / "hf", f"medzoo-test/{arch}-config-only", {"config.json": (out / "config.json").read_bytes()})
    assert zoo.create_model(f"hf-hub:medzoo-test/{arch}-config-only")(x).shape == (2, 3)
    with pytest.raises(WeightsUnavailableError, match="model.safetensors"):
        zoo.create_model(f"hf-hub:medzoo-test/{arch}-config-only", pretrained=True)


def test_missing_hub_model_offline_and_bad_folders_fail_clearly(offline_env: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        zoo.create_model("hf-hub:medzoo-test/nothing-here")
    with pytest.raises(MedzooError, match="not a model folder"):
        zoo.load_pretrained(offline_env)
    with pytest.raises(ValueError, match="label names"):
        zoo.save_pretrained(zoo.create_model("resnet18_28", num_classes=2), offline_env / "x", label_names=["a"])


MEDICAL = [f"{name}.{tag}" for name in zoo.list_models() for tag, w in zoo.get_spec(name).weights.items()
           if w.source.startswith("hf-hub:medzoo/")]


@pytest.mark.parametrize("name", MEDICAL)
def test_medical_weights_tags_load_from_a_hub_cache_and_check_a_pinned_sha256(offline_env: Path, name: str) -> None:
    """medzoo's own tags (e.g. resnet18_28.pneumoniamnist) resolve to their Hub repo: a folder exported by medzoo in
    a hub cache built here loads offline with its classes and preprocessing; a pinned sha256 is enforced."""
    spec, w = zoo.resolve(name)
    assert w is not None and w.num_classes
    in_chans = len(w.preprocess.mean)
    torch.manual_seed(0)
    src = zoo.create_model(spec.name, num_classes=w.num_classes, in_chans=in_chans).eval()
    out = zoo.save_pretrained(src, offline_env / "export")
    _hub_cache(offline_env / "hf", w.source.removeprefix("hf-hub:"), _files(out))
    loaded = zoo.create_model(name, pretrained=True, in_chans=in_chans).eval()
    x = torch.randn(2, in_chans, w.preprocess.input_size, w.preprocess.input_size)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), src(x))
    assert loaded.pretrained_cfg["tag"] == w.tag and zoo.preprocess_of(loaded).mean == w.preprocess.mean
    with pytest.raises(HashMismatchError, match="sha256 mismatch"):
        zoo.fetch(replace(w, sha256="0" * 64))
