"""Hub-style model folders: save_pretrained → a real huggingface_hub cache folder → offline load with medzoo (and with
plain timm for an architecture timm builds) gives identical outputs, labels and preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from test_weights import _hub_cache

import zoo
from zoo import MedzooError, WeightsUnavailableError


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
        for loaded in (zoo.create_model(f"hf-hub:medzoo-test/{arch}"), zoo.load_pretrained(out)):
            torch.testing.assert_close(loaded(x), want)
            assert loaded.pretrained_cfg["label_names"] == ["normal", "benign", "malignant"]
            assert zoo.preprocess_of(loaded).mean == zoo.preprocess_of(src).mean
        if timm_native:
            plain = timm.create_model(f"hf-hub:medzoo-test/{arch}", pretrained=True).eval()
            torch.testing.assert_close(plain(x), want)
            assert plain.pretrained_cfg["label_names"] == ["normal", "benign", "malignant"]


def test_missing_hub_model_offline_and_bad_folders_fail_clearly(offline_env: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        zoo.create_model("hf-hub:medzoo-test/nothing-here")
    with pytest.raises(MedzooError, match="not a model folder"):
        zoo.load_pretrained(offline_env)
    with pytest.raises(ValueError, match="label names"):
        zoo.save_pretrained(zoo.create_model("resnet18_28", num_classes=2), offline_env / "x", label_names=["a"])
