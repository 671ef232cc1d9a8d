"""ResNet — He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385).
Built by timm.

The 28 px variants `resnet18_28` / `resnet50_28` are the MedMNIST v2 baselines (Yang et al., Sci. Data 2023):
a CIFAR-style stem — 3x3 stride-1 first conv and no max-pool — so a 28x28 image keeps enough resolution.
They are timm ResNets with that stem swapped in (same blocks, same head, same key names).

| tag     | source                                              | data        | license      |
|---------|-----------------------------------------------------|-------------|--------------|
| tv_in1k | torchvision URL (sha256 prefix in the file name)    | ImageNet-1k | BSD-3-Clause |
| a1_in1k | HF Hub timm/resnetNN.a1_in1k (unpinned)             | ImageNet-1k | Apache-2.0   |

Default `tv_in1k`: the classic torchvision weights used by most medical transfer-learning papers (and by the
MedMNIST+ study), so our rows compare with theirs; it also keeps the canonical ImageNet normalisation. timm's
stronger `a1_in1k` recipe ("ResNet strikes back", arXiv:2110.00476: BCE loss, 600 epochs, heavy augmentation)
is one tag away.

`resnet18_28` also has medzoo's own medical weights, one tag per MedMNIST dataset it was trained on (28 px, from
scratch: the source models of the `transfer-matrix` suite). They live on the Hugging Face Hub under `medzoo/`,
published by the maintainers with `medzoo export` + `medzoo push`; revision and sha256 are pinned here once pushed
(until then the entry is *unpinned*). There is no default tag: name the dataset.

| tag            | source                                  | data                          | license   |
|----------------|-----------------------------------------|-------------------------------|-----------|
| breastmnist    | HF Hub medzoo/resnet18_28.breastmnist    | BreastMNIST (1 channel, 2)    | CC BY 4.0 |
| pneumoniamnist | HF Hub medzoo/resnet18_28.pneumoniamnist | PneumoniaMNIST (1 channel, 2) | CC BY 4.0 |
| retinamnist    | HF Hub medzoo/resnet18_28.retinamnist    | RetinaMNIST (3 channels, 5)   | CC BY 4.0 |

Random initialisation follows torchvision and MedMNIST v2, not timm's default: the last batch norm of each residual
block starts at gamma = 1 (`zero_init_last=False`). timm's zero-init turns every residual branch off at init, which
changes what a from-scratch run and a random-feature control measure.
"""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from zoo._registry import register_model
from zoo._specs import Preprocess, WeightsSpec
from zoo.models._common import timm_builder, timm_weights

PAPER = "He et al., CVPR 2016, arXiv:1512.03385"

#        name        min params gflops dim
_VARIANTS = [
    ("resnet18", 32, 11689512, 3.628, 512),
    ("resnet34", 32, 21797672, 7.328, 512),
    ("resnet50", 32, 25557032, 8.178, 2048),
    ("resnet101", 32, 44549160, 15.603, 2048),
    ("resnet152", 32, 60192808, 23.027, 2048),
]

for _name, _min, _params, _gflops, _dim in _VARIANTS:
    register_model(family="resnet", paper=PAPER, default_tag="tv_in1k", default_size=224, min_size=_min,
                   feature_dim=_dim, num_params=_params, gflops=_gflops,
                   weights={"tv_in1k": timm_weights(_name, "tv_in1k", url=True),
                            "a1_in1k": timm_weights(_name, "a1_in1k")})(timm_builder(_name, zero_init_last=False))


def _cifar_stem(arch: str, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans,
                              **{"zero_init_last": False, **kwargs})
    model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


MEDMNIST = "He et al., CVPR 2016; CIFAR stem as in MedMNIST v2 (Yang et al., Sci. Data 2023)"


def _medical(dataset: str, title: str, channels: int, classes: int) -> WeightsSpec:
    return WeightsSpec(
        tag=dataset, source=f"hf-hub:medzoo/resnet18_28.{dataset}", license="CC BY 4.0", num_classes=classes,
        pretrain_data=f"{title} (MedMNIST v2, 28 px, train split), from scratch: transfer-matrix@1 source cell",
        preprocess=Preprocess(input_size=28, mean=(0.5,) * channels, std=(0.5,) * channels, interpolation="bicubic"),
        notes="medzoo's own; pinned once the maintainers push it")


_MEDICAL_28 = {w.tag: w for w in (_medical("breastmnist", "BreastMNIST", 1, 2),
                                  _medical("pneumoniamnist", "PneumoniaMNIST", 1, 2),
                                  _medical("retinamnist", "RetinaMNIST", 3, 5))}


@register_model(family="resnet", paper=MEDMNIST, default_size=28, min_size=8, feature_dim=512, num_params=11681832,
                gflops=0.914, weights=_MEDICAL_28)
def resnet18_28(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-18 with a CIFAR stem for 28x28 input (MedMNIST v2 baseline)."""
    return _cifar_stem("resnet18", num_classes, in_chans, **kwargs)


@register_model(family="resnet", paper=MEDMNIST, default_size=28, min_size=8, feature_dim=2048, num_params=25549352,
                gflops=2.1)
def resnet50_28(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-50 with a CIFAR stem for 28x28 input (MedMNIST v2 baseline)."""
    return _cifar_stem("resnet50", num_classes, in_chans, **kwargs)
