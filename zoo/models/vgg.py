"""VGG — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (arXiv:1409.1556). Built by timm; `pre_logits` is the 4096-wide output of the (convolutional) fc7.

| tag     | source                     | data        | license      |
|---------|----------------------------|-------------|--------------|
| tv_in1k | HF Hub `timm/vggNN.tv_in1k` (torchvision's weights, converted by timm; unpinned) | ImageNet-1k | BSD-3-Clause |
"""

from __future__ import annotations

from zoo._factory import register_model
from zoo.models._common import timm_builder, timm_weights

PAPER = "Simonyan & Zisserman, ICLR 2015, arXiv:1409.1556"

#       name        min_size  params  gflops
_VARIANTS = [
    ("vgg11", 0, 0, 0.0),
    ("vgg11_bn", 0, 0, 0.0),
    ("vgg13", 0, 0, 0.0),
    ("vgg13_bn", 0, 0, 0.0),
    ("vgg16", 0, 0, 0.0),
    ("vgg16_bn", 0, 0, 0.0),
    ("vgg19", 0, 0, 0.0),
    ("vgg19_bn", 0, 0, 0.0),
]

for _name, _min, _params, _gflops in _VARIANTS:
    register_model(family="vgg", paper=PAPER, weights={"tv_in1k": timm_weights(_name, "tv_in1k")},
                   default_tag="tv_in1k", default_size=224, min_size=_min, feature_dim=4096, num_params=_params,
                   gflops=_gflops)(timm_builder(_name))
