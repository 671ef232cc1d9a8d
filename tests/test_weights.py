"""Weight loaders, offline: a real huggingface_hub cache folder, a torch.hub cache folder, local files, hash checks,
in_chans adaptation and head replacement."""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from hub_standin import Proxy
from safetensors.torch import save_file

import zoo
from zoo import HashMismatchError, WeightsMismatchError, WeightsUnavailableError
from zoo._weights import NETWORK_TIMEOUT_S, load_into, read_state_dict

torch.manual_seed(0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor, atol: float = 0.0) -> None:
    with torch.inference_mode():
        ya, yb = a.eval()(x), b.eval()(x)
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb, atol=atol, rtol=0 if atol == 0 else 1e-5)


def _hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = "0" * 40) -> None:
    """The layout huggingface_hub writes: models--ORG--NAME/refs/main → snapshots/<revision>/files."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)


def test_hf_hub_cache_offline_loads_identical_model(offline_env: Path) -> None:
    src = zoo.create_model("resnet18", num_classes=1000).eval()
    tmp = offline_env / "model.safetensors"
    save_file(src.state_dict(), str(tmp))
    _hub_cache(offline_env / "hf", "timm/resnet18.a1_in1k",
               {"model.safetensors": tmp.read_bytes(), "config.json": json.dumps({"architecture": "resnet18"}).encode()})
    loaded = zoo.create_model("resnet18.a1_in1k", pretrained=True)
    assert loaded.pretrained_cfg["tag"] == "a1_in1k" and loaded.pretrained_cfg["interpolation"] == "bicubic"
    _same_outputs(src, loaded, torch.randn(2, 3, 64, 64))


def test_hf_hub_offline_and_not_cached_fails_fast_with_the_fix(offline_env: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as e:
        zoo.create_model("resnet50.a1_in1k", pretrained=True)
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert "offline mode" in msg and "medzoo pull resnet50.a1_in1k" in msg and str(offline_env / "hf") in msg


def test_torchvision_url_loader_through_torch_hub_cache(offline_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A torchvision checkpoint, named `<arch>-<sha256 prefix>.pth` as torch.hub expects, loads into timm's
    resnet18 (same key names) and gives torchvision's outputs."""
    tv = torchvision.models.resnet18().eval()
    tmp = offline_env / "tmp.pth"
    torch.save(tv.state_dict(), tmp)
    name = f"resnet18-{_sha256(tmp)[:8]}.pth"
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    tmp.rename(cache / name)
    weights = replace(zoo.get_spec("resnet18").weights["tv_in1k"], source=f"https://download.pytorch.org/models/{name}")
    path = zoo.fetch(weights)
    assert path == cache / name
    model = zoo.create_model("resnet18", num_classes=1000)
    load_into(model, read_state_dict(path), weights, source=name)
    _same_outputs(tv, model, torch.randn(2, 3, 64, 64), atol=1e-5)


def test_sha256_mismatch_is_a_clear_error(offline_env: Path) -> None:
    """A file in the cache under the official name but with other content is refused."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    url = zoo.get_spec("alexnet").weights["tv_in1k"].source
    torch.save(torchvision.models.alexnet().state_dict(), cache / url.rsplit("/", 1)[-1])
    with pytest.raises(HashMismatchError, match="sha256 mismatch.*delete it and download again"):
        zoo.create_model("alexnet", pretrained=True)


def test_full_sha256_mismatch_on_a_local_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file(zoo.create_model("resnet18_28", num_classes=2).state_dict(), str(path))
    pinned = replace(zoo.get_spec("resnet18").weights["a1_in1k"], source=f"file:{path}", sha256="0" * 64)
    with pytest.raises(HashMismatchError):
        zoo.fetch(pinned)
    assert zoo.fetch(replace(pinned, sha256=_sha256(path))) == path


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_file_round_trip(tmp_path: Path, suffix: str) -> None:
    src = zoo.create_model("resnet18_28", num_classes=5, in_chans=1).eval()
    path = tmp_path / f"ckpt{suffix}"
    if suffix == ".safetensors":
        save_file(src.state_dict(), str(path))
    else:
        torch.save({"state_dict": src.state_dict()}, path)  # a training-checkpoint wrapper
    loaded = zoo.create_model("resnet18_28", pretrained=path, in_chans=1)
    assert loaded.num_classes == 5, "a local checkpoint keeps its own head"
    _same_outputs(src, loaded, torch.randn(2, 1, 28, 28))
    loaded_file_uri = zoo.create_model("resnet18_28", pretrained=f"file:{path}", in_chans=1)
    _same_outputs(src, loaded_file_uri, torch.randn(2, 1, 28, 28))


def test_other_num_classes_replaces_only_the_head(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = zoo.create_model("vgg11", num_classes=1000).eval()
    path = tmp_path / "vgg.safetensors"
    save_file(src.state_dict(), str(path))
    with caplog.at_level("INFO", logger="zoo"):
        model = zoo.create_model("vgg11", pretrained=path, num_classes=7).eval()
    assert "left randomly initialised" in caplog.text
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert model(x).shape == (1, 7)
        torch.testing.assert_close(model.forward_head(model.forward_features(x), pre_logits=True),
                                   src.forward_head(src.forward_features(x), pre_logits=True))


def test_checkpoint_of_another_architecture_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r34.safetensors"
    save_file(zoo.create_model("resnet34", num_classes=10).state_dict(), str(path))
    with pytest.raises(WeightsMismatchError, match="does not fit.*(missing|unexpected)"):
        zoo.create_model("resnet18", pretrained=path, num_classes=10)


def test_pickled_code_is_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    path.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(WeightsMismatchError, match="not a loadable tensor checkpoint"):
        zoo.create_model("resnet18", pretrained=path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_truncated_weights_file_is_one_clear_error_naming_it_and_the_fix(tmp_path: Path, suffix: str) -> None:
    """Not safetensors' raw SafetensorError (issue 15): medzoo's weights error with the file and what to do."""
    path = tmp_path / f"cut{suffix}"
    sd = zoo.create_model("resnet18_28").state_dict()
    if suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsMismatchError, match="delete it and download or save it again") as e:
        zoo.create_model("resnet18_28", pretrained=path)
    assert str(path) in str(e.value)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="not found"):
        zoo.create_model("resnet18", pretrained=tmp_path / "nope.safetensors")


def test_torchvision_googlenet_checkpoint_loads_without_aux_heads(tmp_path: Path) -> None:
    tv = torchvision.models.GoogLeNet(aux_logits=True, transform_input=False, init_weights=True).eval()
    path = tmp_path / "googlenet.pth"
    torch.save(tv.state_dict(), path)
    ours = zoo.create_model("googlenet", pretrained=path)
    _same_outputs(tv, ours, torch.randn(2, 3, 64, 64), atol=1e-5)


def test_torchvision_inception_v3_checkpoint_with_its_aux_head_loads_from_the_hub(offline_env: Path) -> None:
    """The default Inception-v3 weights (`tv_in1k`, timm/inception_v3.tv_in1k) carry `AuxLogits.*`, which timm loads
    non-strictly: a hub snapshot of that key layout loads, the aux head dropped (issue 15)."""
    src = timm.create_model("inception_v3", aux_logits=True, num_classes=1000).eval()
    assert any(k.startswith("AuxLogits.") for k in src.state_dict())
    tmp = offline_env / "model.safetensors"
    save_file(src.state_dict(), str(tmp))
    _hub_cache(offline_env / "hf", "timm/inception_v3.tv_in1k", {"model.safetensors": tmp.read_bytes()})
    ours = zoo.create_model("inception_v3", pretrained=True)
    assert ours.pretrained_cfg["tag"] == "tv_in1k" and "AuxLogits" not in dict(ours.named_children())
    plain = timm.create_model("inception_v3", num_classes=1000).eval()
    plain.load_state_dict({k: v for k, v in src.state_dict().items() if not k.startswith("AuxLogits.")})
    _same_outputs(plain, ours, torch.randn(2, 3, 75, 75))


# in_chans adaptation: a 1-channel model on a normalised grey image equals the 3-channel model on that image
# replicated to 3 channels (3→1 sums the RGB filters), and 1→3 replicates and divides by 3.
@pytest.mark.parametrize("name", ["resnet18", "alexnet", "vgg11_bn", "googlenet", "tf_efficientnet_lite0",
                                  "unet2015_w32"])
def test_in_chans_adaptation_numerics(tmp_path: Path, name: str) -> None:
    spec = zoo.get_spec(name)
    size = max(spec.min_size, 64)
    torch.manual_seed(0)  # the same random weights whatever ran before (the tolerance is float summation order)
    rgb = zoo.create_model(name, num_classes=4).eval()
    path = tmp_path / "rgb.safetensors"
    save_file(rgb.state_dict(), str(path))
    grey = zoo.create_model(name, pretrained=path, in_chans=1).eval()
    x = torch.randn(2, 1, size, size)
    with torch.inference_mode():
        torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)

    path1 = tmp_path / "grey.safetensors"
    save_file(grey.state_dict(), str(path1))
    rgb_again = zoo.create_model(name, pretrained=path1, in_chans=3).eval()
    with torch.inference_mode():
        torch.testing.assert_close(rgb_again(x.expand(-1, 3, -1, -1)), grey(x), atol=1e-4, rtol=1e-4)


def test_one_channel_preprocessing_is_the_mean_of_the_rgb_values() -> None:
    model = zoo.create_model("resnet18", in_chans=1)
    assert model.pretrained_cfg["mean"] == pytest.approx((sum((0.485, 0.456, 0.406)) / 3,))
    assert model.pretrained_cfg["std"] == pytest.approx((sum((0.229, 0.224, 0.225)) / 3,))


@pytest.mark.parametrize("name", ["unet_resnet18", "unetpp_vgg11"])
def test_smp_encoder_weights_load_from_a_pinned_hub_snapshot(offline_env: Path, name: str) -> None:
    """smp's ImageNet encoders live in pinned smp-hub repos; medzoo loads them into the encoder only."""
    weights = zoo.get_spec(name).weights["imagenet"]
    assert weights.revision and not weights.unpinned and weights.target == "body.encoder"
    donor = zoo.create_model(name, num_classes=1)
    tmp = offline_env / "enc.safetensors"
    save_file(donor.get_submodule("body.encoder").state_dict(), str(tmp))
    _hub_cache(offline_env / "hf", weights.source.removeprefix("hf-hub:"),
               {"model.safetensors": tmp.read_bytes(), "config.json": b"{}"}, revision=weights.revision)
    model = zoo.create_model(name, pretrained=True, num_classes=1, in_chans=1)
    enc, ref = model.get_submodule("body.encoder").state_dict(), donor.get_submodule("body.encoder").state_dict()
    first = next(iter(ref))
    torch.testing.assert_close(enc[first], ref[first].sum(1, keepdim=True))  # 3→1: RGB filters summed
    assert all(torch.equal(enc[k], ref[k]) for k in ref if k != first)
    assert not torch.equal(model.head.weight, donor.head.weight), "the head is not part of the encoder weights"


def test_network_probes_go_through_the_proxy_and_fail_fast_without(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probes before a download ask as the download would (urllib / huggingface_hub's client), so a login node
    behind an HTTP(S)_PROXY is not told "no network"; without a route they answer in seconds (issue 15: a raw
    socket to the host ignored proxies)."""
    import huggingface_hub

    for var in ("NO_PROXY", "HTTPS_PROXY", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    start = time.monotonic()
    assert "download.example.invalid" in (zoo.unreachable("http://download.example.invalid/w.pth") or "")
    huggingface_hub.close_session()
    assert "hub.example.invalid" in (zoo.hub_unreachable("http://hub.example.invalid") or "")
    assert time.monotonic() - start < 2 * NETWORK_TIMEOUT_S
    proxy = Proxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        huggingface_hub.close_session()  # its client reads the proxy settings when made
        assert zoo.unreachable("http://download.example.invalid/w.pth") is None
        assert zoo.hub_unreachable("http://hub.example.invalid") is None
        assert proxy.seen == ["HEAD http://download.example.invalid/w.pth HTTP/1.1",
                              "HEAD http://hub.example.invalid/ HTTP/1.1"]
    finally:
        proxy.close()
        huggingface_hub.close_session()
