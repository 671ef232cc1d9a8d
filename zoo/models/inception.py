"""Inception family.

- GoogLeNet (Inception v1) — Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842).
  Built by torchvision with `aux_logits=False` and `transform_input=False`: torchvision's `transform_input`
  re-normalises ImageNet-normalised RGB to mean 0.5 / std 0.5 inside the network, which breaks 1-channel input,
  so that normalisation is moved into the weights' preprocessing (mean = std = 0.5, mathematically identical).
  The checkpoint's auxiliary classifiers (aux1, aux2) are dropped on load.
- Inception-v3 — Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016 (arXiv:1512.00567), timm.
  torchvision's checkpoint (`tv_in1k`) carries the auxiliary classifier (`AuxLogits.*`), which timm loads
  non-strictly; it is dropped on load.
- Inception-v4 and Inception-ResNet-v2 — Szegedy et al., AAAI 2017 (arXiv:1602.07261), timm.

| model               | tags (default first)               | source                      | license      |
|---------------------|------------------------------------|-----------------------------|--------------|
| googlenet           | tv_in1k                            | torchvision URL             | BSD-3-Clause |
| inception_v3        | tv_in1k, tf_in1k, gluon_in1k       | HF Hub timm/* (unpinned)    | Apache-2.0 / BSD-3-Clause |
| inception_v4        | tf_in1k                            | HF Hub timm/* (unpinned)    | Apache-2.0   |
| inception_resnet_v2 | tf_in1k, tf_ens_adv_in1k           | HF Hub timm/* (unpinned)    | Apache-2.0   |

Defaults follow timm's default tag for each architecture.
"""

from __future__ import annotations

import torchvision
from torch import nn

from zoo._adapters import TimmContract
from zoo._registry import register_model
from zoo._specs import Preprocess, WeightsSpec
from zoo.models._common import timm_builder, timm_weights

GOOGLENET_WEIGHTS = {
    "tv_in1k": WeightsSpec(
        tag="tv_in1k", source=torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.url, pretrain_data="imagenet-1k",
        license="bsd-3-clause", num_classes=1000, drop_prefixes=("aux1.", "aux2."),
        preprocess=Preprocess(input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear",
                              crop_pct=0.875),
        notes="torchvision's transform_input normalisation moved into preprocessing; aux heads dropped",
    ),
}
_GOOGLENET_STAGES = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                     "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                     "inception5a", "inception5b"]


@register_model(family="inception", paper="Szegedy et al., CVPR 2015, arXiv:1409.4842", weights=GOOGLENET_WEIGHTS,
                default_tag="tv_in1k", default_size=224, min_size=32, feature_dim=1024, num_params=6624904, gflops=2.997)
def googlenet(*, num_classes: int, in_chans: int = 3) -> nn.Module:
    """GoogLeNet / Inception v1 (torchvision, no auxiliary heads, transform_input=False)."""
    net = torchvision.models.GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False,
                                       init_weights=True)
    if in_chans != 3:
        net.conv1.conv = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return TimmContract(net, features=_GOOGLENET_STAGES, pool="avgpool", pre_logits=["dropout"], classifier="fc",
                        first_conv="conv1.conv")


#        name                  paper                                    tags (default first)      min params gflops dim
_TIMM_VARIANTS = [
    ("inception_v3", "Szegedy et al., CVPR 2016, arXiv:1512.00567", ("tv_in1k", "tf_in1k", "gluon_in1k"), 75, 23834568, 11.426,
     2048),
    ("inception_v4", "Szegedy et al., AAAI 2017, arXiv:1602.07261", ("tf_in1k",), 75, 42679816, 24.508, 1536),
    ("inception_resnet_v2", "Szegedy et al., AAAI 2017, arXiv:1602.07261", ("tf_in1k", "tf_ens_adv_in1k"), 75,
     55843464, 26.312, 1536),
]

_AUX_HEADS = {("inception_v3", "tv_in1k"): ("AuxLogits.",)}  # timm: "only torchvision pretrained weights have aux"

for _name, _paper, _tags, _min, _params, _gflops, _dim in _TIMM_VARIANTS:
    register_model(family="inception", paper=_paper,
                   weights={t: timm_weights(_name, t, drop_prefixes=_AUX_HEADS.get((_name, t), ())) for t in _tags},
                   default_tag=_tags[0], default_size=299, min_size=_min, feature_dim=_dim, num_params=_params,
                   gflops=_gflops)(timm_builder(_name))
