"""Xception — Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017
(arXiv:1610.02357). Built by timm: `legacy_xception` is the paper's network (Cadene's port of Keras weights);
xception41/65/71 are the aligned variants of DeepLab v3+ (Chen et al., ECCV 2018, arXiv:1802.02611).

| model           | tag     | source                                   | license    |
|-----------------|---------|------------------------------------------|------------|
| legacy_xception | tf_in1k | timm GitHub release URL (sha256 prefix in the file name) | Apache-2.0 |
| xception41/65/71| tf_in1k | HF Hub timm/* (unpinned)                 | Apache-2.0 |
"""

from __future__ import annotations

from zoo._registry import register_model
from zoo.models._common import timm_builder, timm_weights

#        name              paper                                            url?   min params gflops dim
_VARIANTS = [
    ("legacy_xception", "Chollet, CVPR 2017, arXiv:1610.02357", True, 32, 22855952, 16.715, 2048),
    ("xception41", "Chen et al., ECCV 2018, arXiv:1802.02611", False, 32, 26969560, 18.408, 2048),
    ("xception65", "Chen et al., ECCV 2018, arXiv:1802.02611", False, 32, 39916312, 27.705, 2048),
    ("xception71", "Chen et al., ECCV 2018, arXiv:1802.02611", False, 32, 42338736, 35.893, 2048),
]

for _name, _paper, _url, _min, _params, _gflops, _dim in _VARIANTS:
    register_model(family="xception", paper=_paper, weights={"tf_in1k": timm_weights(_name, "tf_in1k", url=_url)},
                   default_tag="tf_in1k", default_size=299, min_size=_min, feature_dim=_dim, num_params=_params,
                   gflops=_gflops)(timm_builder(_name))
