"""VGG — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (arXiv:1409.1556). Built by timm; `pre_logits` is the 4096-wide output of the (convolutional) fc7.

| tag     | source                     | data        | license      |
|---------|----------------------------|-------------|--------------|
| tv_in1k | HF Hub `timm/vggNN.tv_in1k` (torchvision's weights; unpinned) | ImageNet-1k | BSD-3-Clause |

In torchvision's key layout (`classifier.0/3/6`) the file goes through timm's own VGG filter on load, as timm does.
"""

from __future__ import annotations

from zoo._registry import register_model
from zoo.models._common import timm_builder, timm_weights

PAPER = "Simonyan & Zisserman, ICLR 2015, arXiv:1409.1556"

#       name        min_size  params  gflops
_VARIANTS = [
    ("vgg11", 32, 132863336, 15.218),
    ("vgg11_bn", 32, 132868840, 15.218),
    ("vgg13", 32, 133047848, 22.617),
    ("vgg13_bn", 32, 133053736, 22.617),
    ("vgg16", 32, 138357544, 30.941),
    ("vgg16_bn", 32, 138365992, 30.941),
    ("vgg19", 32, 143667240, 39.264),
    ("vgg19_bn", 32, 143678248, 39.264),
]

for _name, _min, _params, _gflops in _VARIANTS:
    register_model(family="vgg", paper=PAPER, weights={"tv_in1k": timm_weights(_name, "tv_in1k")},
                   default_tag="tv_in1k", default_size=224, min_size=_min, feature_dim=4096, num_params=_params,
                   gflops=_gflops)(timm_builder(_name))
