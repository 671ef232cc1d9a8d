"""Parametrized over every registered model: build, forward at the minimum size with 1 and 3 channels (also in bf16,
with the parts that stay fp32 found), and the measured spec numbers (feature dim, parameters, GFLOPs)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import zoo

MODELS = zoo.list_models()


def _checkpoint_classes(name: str) -> int:
    spec, weights = zoo.resolve(name)
    return weights.num_classes if weights and weights.num_classes else spec.num_classes


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", MODELS)
def test_forward_at_min_size(name: str, in_chans: int) -> None:
    spec = zoo.get_spec(name)
    n_cls = 3 if spec.task is zoo.Task.CLASSIFICATION else 2
    model = zoo.create_model(name, num_classes=n_cls, in_chans=in_chans).eval()
    x = torch.randn(2, in_chans, spec.min_size, spec.min_size)
    with torch.inference_mode():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
        y = model(x)
    # timm: `head_hidden_size` is the pre-logits width where it differs from the feature map's (e.g. VGG's fc7)
    assert pooled.shape == (2, spec.feature_dim) == (2, getattr(model, "head_hidden_size", model.num_features))
    if spec.task is zoo.Task.SEGMENTATION:
        assert y.shape == (2, n_cls, spec.min_size, spec.min_size), "mask logits must match the input size"
    else:
        assert y.shape == (2, n_cls)
    assert torch.isfinite(y).all()
    assert model.pretrained_cfg["input_size"][0] == in_chans
    assert len(model.pretrained_cfg["mean"]) == in_chans
    # bf16 keeps the classifier and the stem conv (the first layer to see the image) in fp32
    head, stem = zoo.fp32_parts(model)
    assert head is model.get_classifier() and isinstance(stem, torch.nn.Conv2d) and stem.in_channels == in_chans
    with torch.inference_mode(), zoo.autocast(model, "cpu", "bf16"):
        low = model(x)
    assert low.dtype == torch.float32 and low.shape == y.shape and torch.isfinite(low).all()


@pytest.mark.parametrize("name", MODELS)
def test_num_params_and_gflops_match_the_spec(name: str) -> None:
    spec = zoo.get_spec(name)
    model = zoo.create_model(name, num_classes=_checkpoint_classes(name)).eval()
    assert sum(p.numel() for p in model.parameters()) == spec.num_params
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 3, spec.default_size, spec.default_size))
    assert counter.get_total_flops() / 1e9 == pytest.approx(spec.gflops, rel=1e-3)


# Independent published values (2 FLOPs per multiply-add), so the spec test above is not circular:
# ResNet-18 1.82 GMAC, ResNet-50 4.09 GMAC, VGG-16 15.47 GMAC at 224 px.
@pytest.mark.parametrize("name, gflops", [("resnet18", 3.63), ("resnet50", 8.18), ("vgg16", 30.94)])
def test_gflops_against_published_values(name: str, gflops: float) -> None:
    assert zoo.get_spec(name).gflops == pytest.approx(gflops, rel=0.01)


@pytest.mark.parametrize("name", ["resnet18_28", "resnet50_28"])
def test_medmnist_resnets_have_a_cifar_stem(name: str) -> None:
    model = zoo.create_model(name, num_classes=2)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    with torch.inference_mode():
        assert model.eval().forward_features(torch.zeros(1, 3, 28, 28)).shape[-1] == 4  # stride 8, not 32


def test_segmentation_model_rejects_sizes_it_cannot_take() -> None:
    model = zoo.create_model("unet2015_w32", num_classes=1).eval()
    with pytest.raises(zoo.InputShapeError, match="divisible by 16"):
        model(torch.zeros(1, 3, 40, 40))


def test_googlenet_and_inception_have_no_input_transform() -> None:
    # torchvision's transform_input would assume 3 ImageNet-normalised channels; medzoo moves it into preprocessing
    model = zoo.create_model("googlenet", num_classes=2, in_chans=1)
    assert not getattr(model, "transform_input", False)
    assert zoo.get_spec("googlenet").weights["tv_in1k"].preprocess.mean == (0.5, 0.5, 0.5)
