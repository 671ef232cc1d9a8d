"""The generic registry and the model-registry API."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import zoo
from zoo import Registry, UnknownNameError
from zoo.errors import DuplicateNameError

FAMILIES = {"alexnet", "vgg", "inception", "resnet", "xception", "unet"}


@dataclass(frozen=True)
class _Entry:
    name: str


def test_duplicate_names_raise() -> None:
    reg: Registry[_Entry] = Registry("thing")
    reg.add(_Entry("a"))
    with pytest.raises(DuplicateNameError, match="already registered"):
        reg.add(_Entry("a"))


def test_unknown_name_suggests_close_ones() -> None:
    reg: Registry[_Entry] = Registry("thing")
    for n in ("resnet18", "resnet50", "vgg16"):
        reg.add(_Entry(n))
    with pytest.raises(UnknownNameError) as e:
        reg.get("resnet19")
    assert "resnet18" in e.value.suggestions and "vgg16" not in e.value.suggestions
    assert "Did you mean" in str(e.value) and "medzoo ls things" in str(e.value)


def test_registering_an_existing_model_again_raises() -> None:
    with pytest.raises(DuplicateNameError):
        zoo.register_model(name="resnet18", family="resnet", paper="x", default_size=224, min_size=32,
                           feature_dim=512, num_params=1, gflops=1.0)(lambda **kw: None)


def test_zoo_covers_the_six_families_with_at_least_30_models() -> None:
    names = zoo.list_models()
    assert len(names) >= 30
    assert FAMILIES <= {zoo.get_spec(n).family for n in names}
    for required in ("alexnet", "vgg11", "vgg19_bn", "googlenet", "inception_v3", "inception_v4",
                     "inception_resnet_v2", "resnet152", "resnet18_28", "resnet50_28", "legacy_xception",
                     "xception71", "tf_efficientnet_lite0", "unet2015", "unetpp_resnet18", "attention_unet_w32"):
        assert required in names


def test_list_models_filters() -> None:
    assert zoo.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    seg = zoo.list_models(task="segmentation")
    assert seg and all(zoo.get_spec(n).task is zoo.Task.SEGMENTATION for n in seg)
    assert not set(seg) & set(zoo.list_models(task="classification"))
    tagged = zoo.list_models("resnet18", pretrained=True)
    assert tagged == ["resnet18.a1_in1k", "resnet18.tv_in1k"]
    assert zoo.list_models("resnet18_28", pretrained=True) == [
        "resnet18_28.breastmnist", "resnet18_28.pneumoniamnist", "resnet18_28.retinamnist"]  # medzoo's own


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_spec_is_complete(name: str) -> None:
    spec = zoo.get_spec(name)
    assert spec.paper and spec.family and spec.description
    assert spec.num_params > 0 and spec.gflops > 0 and spec.feature_dim > 0 and spec.min_size > 0
    if spec.default_tag is not None:
        _, default = zoo.resolve(name)
        assert default is spec.weights[spec.default_tag]
    else:  # only medzoo's own medical weights come without a default (which dataset would it be?)
        assert all(w.source.startswith("hf-hub:medzoo/") for w in spec.weights.values())
    for w in spec.weights.values():
        assert w.license and w.pretrain_data and w.preprocess.input_size > 0
        if w.source.startswith("hf-hub:") and w.revision is None:
            assert w.unpinned and w.sha256 is None


def test_unknown_weights_tag_lists_the_real_ones() -> None:
    with pytest.raises(UnknownNameError, match=r"resnet18\.tv_in1k"):
        zoo.create_model("resnet18.tv_in1kk")


def test_spec_validation_catches_typos() -> None:
    pre = zoo.Preprocess(input_size=224, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="must start with"):
        zoo.WeightsSpec(tag="x", source="ftp://x", pretrain_data="d", license="l", preprocess=pre, num_classes=2)
    with pytest.raises(ValueError, match="64 lower-case hex"):
        zoo.WeightsSpec(tag="x", source="file:/x", pretrain_data="d", license="l", preprocess=pre, num_classes=2,
                        sha256="abc")
    with pytest.raises(ValueError, match="std must be positive"):
        zoo.Preprocess(input_size=224, mean=(0.5,), std=(0.0,))


@pytest.mark.parametrize(("arg", "value"), [("num_classes", 0), ("num_classes", -1), ("num_classes", 2.5),
                                            ("in_chans", 0), ("in_chans", True)])
def test_create_model_rejects_sizes_below_one_naming_the_argument(arg: str, value: object) -> None:
    """Not a model with no outputs, nor timm's "mean () and std () must have the same non-zero length" (issue 15)."""
    with pytest.raises(ValueError, match=f"{arg} must be a whole number >= 1, got {value!r}"):
        zoo.create_model("resnet18_28", **{arg: value})  # type: ignore[arg-type]


def _builder_kind(name: str) -> str:
    return "timm" if zoo.get_spec(name).takes_timm_kwargs else "other"


@pytest.mark.parametrize("name", zoo.list_models())
def test_extra_keywords_go_to_timm_or_raise_naming_the_builder(name: str) -> None:
    """timm-faithful `create_model(**kwargs)`: timm-built models take timm's keywords (drop_path_rate, global_pool
    change the network); the others refuse any extra keyword with a TypeError naming their builder (issue 15)."""
    spec = zoo.get_spec(name)
    if _builder_kind(name) == "timm":
        model = zoo.create_model(name, num_classes=2, global_pool="max")
        pools = [m for m in model.modules() if type(m).__name__ == "SelectAdaptivePool2d"]
        assert pools and all(p.pool_type == "max" for p in pools), name
    else:
        with pytest.raises(TypeError, match=rf"global_pool not accepted: {name} is built by "
                                            rf"{spec.builder.__module__}\.{spec.builder.__qualname__}"):
            zoo.create_model(name, num_classes=2, global_pool="max")
    with pytest.raises(ValueError, match="features_only is not supported.*classifier head"):
        zoo.create_model(name, num_classes=2, features_only=True)


def test_timm_built_families_are_the_timm_ones() -> None:
    """The rule above is not vacuous: both kinds exist, and the CIFAR-stem ResNets (built through timm) pass on."""
    kinds = {n: _builder_kind(n) for n in zoo.list_models()}
    assert {"resnet18", "resnet18_28", "vgg16", "inception_v3", "legacy_xception"} <= {
        n for n, k in kinds.items() if k == "timm"}
    assert {"alexnet", "googlenet", "unet2015", "unet_resnet18"} <= {n for n, k in kinds.items() if k == "other"}
    model = zoo.create_model("resnet18_28", num_classes=2, drop_path_rate=0.2)
    assert any(type(m).__name__ == "DropPath" for m in model.modules())
