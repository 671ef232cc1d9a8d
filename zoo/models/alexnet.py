"""AlexNet — Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NeurIPS 2012. Built by torchvision (the single-GPU "one weird trick" variant, arXiv:1404.5997) and given timm's
contract by `TimmContract`; `pre_logits` is the 4096-wide output of the second fully connected layer.

| tag     | source                    | data        | license      |
|---------|---------------------------|-------------|--------------|
| tv_in1k | torchvision URL (sha256 prefix in the file name) | ImageNet-1k | BSD-3-Clause |
"""

from __future__ import annotations

import torchvision
from torch import nn

from zoo._adapters import TimmContract
from zoo._registry import register_model
from zoo._specs import WeightsSpec
from zoo.models._common import TORCHVISION_224

WEIGHTS = {
    "tv_in1k": WeightsSpec(
        tag="tv_in1k", source=torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url, pretrain_data="imagenet-1k",
        license="bsd-3-clause", preprocess=TORCHVISION_224, num_classes=1000,
    ),
}


@register_model(family="alexnet", paper="Krizhevsky et al., NeurIPS 2012", weights=WEIGHTS, default_tag="tv_in1k",
                default_size=224, min_size=63, feature_dim=4096, num_params=61100840, gflops=1.428)
def alexnet(*, num_classes: int, in_chans: int = 3) -> nn.Module:
    """AlexNet (torchvision)."""
    net = torchvision.models.alexnet(num_classes=num_classes)
    if in_chans != 3:
        net.features[0] = nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2)
    return TimmContract(net, features=["features"], pool="avgpool",
                        pre_logits=[f"classifier.{i}" for i in range(6)], classifier="classifier.6",
                        first_conv="features.0")
