"""U-Net variants for segmentation (task = segmentation; outputs mask logits of the input's height and width).

- `unet2015`, `unet2015_w32` — Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
  Segmentation", MICCAI 2015 (arXiv:1505.04597). Written here (no maintained library builds the plain 2015
  network): four 2x2 max-pool levels, two 3x3 conv + ReLU per level, 2x2 up-convolutions, skip concatenation,
  a 1x1 output conv. *Documented deviation*: convolutions are same-padded, so output size equals input size
  (the paper's valid convolutions shrink a 572 px tile to 388 px). `_w32` halves every width (32 … 512) for CPU
  budgets.
- `unet_<encoder>` — U-Net with a VGG or ResNet encoder; `unetpp_<encoder>` — U-Net++ (Zhou et al., DLMIA 2018,
  arXiv:1807.10165). Both built by segmentation-models-pytorch.
- `attention_unet_w32` — Attention U-Net (Oktay et al., MIDL 2018, arXiv:1804.03999), built by MONAI's
  `AttentionUnet` with widths 32 … 512.

All are given timm's contract by `SegmentationContract`: features are the per-pixel decoder features before the
output conv. Weights: smp models take smp's ImageNet encoder weights (`imagenet` tag: HF Hub `smp-hub/*` at the
revision smp pins, copied into `_SMP_HUB` below and checked against smp by a test) into the encoder only; offline
they are built with random encoders. The others have no pretrained weights in medzoo.

MONAI and segmentation-models-pytorch (the `[seg]` extra) are imported inside the builders, so that every model is
listed without them and building one without them is one error naming `pip install 'medzoo[seg]'`.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo._adapters import SegmentationContract
from zoo._registry import register_model
from zoo._specs import Builder, Preprocess, Task, WeightsSpec
from zoo.extras import require
from zoo.models._common import IMAGENET_MEAN, IMAGENET_STD


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNet2015(nn.Module):
    """The 2015 U-Net body (same padding): image → per-pixel features of width `width`."""

    def __init__(self, in_chans: int, width: int = 64, depth: int = 4) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(_double_conv(c_in, c_out) for c_in, c_out in zip([in_chans, *widths], widths))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(depth)))
        self.dec = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        for m in self.modules():  # He-normal as the paper (std sqrt(2 / fan-in), fan-in as torch computes it; for the
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # up-convolutions that is out-channels x 2 x 2): with
                # PyTorch's default (uniform, gain 1/sqrt(3)) the signal fades over the 23 layers and nothing is learnt
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([skips.pop(), up(x)], dim=1))
        return x


class _EncoderDecoder(nn.Module):
    """smp's encoder + decoder, without its head."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = net.encoder, net.decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


SEG = dict(task=Task.SEGMENTATION, num_classes=1, default_size=256)


def _unet2015(width: int, num_classes: int, in_chans: int) -> nn.Module:
    return SegmentationContract(UNet2015(in_chans, width), nn.Conv2d(width, num_classes, 1), first_conv="down.0.0",
                                size_divisor=16)


@register_model(family="unet", paper="Ronneberger et al., MICCAI 2015, arXiv:1505.04597", min_size=16,
                size_divisor=16, feature_dim=64, num_params=31031745, gflops=96.335, **SEG)
def unet2015(*, num_classes: int, in_chans: int = 3) -> nn.Module:
    """The 2015 U-Net, widths 64-1024, same-padded convolutions."""
    return _unet2015(64, num_classes, in_chans)


@register_model(family="unet", paper="Ronneberger et al., MICCAI 2015, arXiv:1505.04597", min_size=16,
                size_divisor=16, feature_dim=32, num_params=7760097, gflops=24.142, **SEG)
def unet2015_w32(*, num_classes: int, in_chans: int = 3) -> nn.Module:
    """The 2015 U-Net at half width (32-512), same-padded convolutions."""
    return _unet2015(32, num_classes, in_chans)


@register_model(family="unet", paper="Oktay et al., MIDL 2018, arXiv:1804.03999", min_size=16, size_divisor=16,
                feature_dim=32, num_params=7940321, gflops=21.194, **SEG)
def attention_unet_w32(*, num_classes: int, in_chans: int = 3) -> nn.Module:
    """Attention U-Net (MONAI AttentionUnet), widths 32-512."""
    nets = require("monai.networks.nets", "attention_unet_w32")
    net = nets.AttentionUnet(spatial_dims=2, in_channels=in_chans, out_channels=num_classes,
                        channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2))
    return SegmentationContract(nn.Sequential(net.model[0], net.model[1]), net.model[2].conv,
                                first_conv="0.conv.0.conv", size_divisor=16)


#  encoder   smp's ImageNet encoder weights: (HF Hub repo, the revision smp pins)
_SMP_HUB = {
    "vgg11": ("smp-hub/vgg11.imagenet", "ad8b90e1051c38fdbf399cf5016886a1be357390"),
    "resnet18": ("smp-hub/resnet18.imagenet", "3f2325ff978283d47aa6a1d6878ca20565622683"),
    "resnet34": ("smp-hub/resnet34.imagenet", "7a57b34f723329ff020b3f8bc41771163c519d0c"),
}


def _smp_weights(encoder: str) -> dict[str, WeightsSpec]:
    repo, revision = _SMP_HUB[encoder]
    return {"imagenet": WeightsSpec(
        tag="imagenet", source=f"hf-hub:{repo}", revision=revision, target="body.encoder",
        pretrain_data="imagenet-1k", license="bsd-3-clause (torchvision ImageNet weights, via smp-hub)",
        num_classes=None, preprocess=Preprocess(input_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        notes="encoder only; decoder and head start random",
    )}


#        name               smp class        encoder     first conv of the encoder  params gflops
_SMP_VARIANTS = [
    ("unet_vgg11", "Unet", "vgg11", "features.0", 18254033, 28.934),
    ("unet_resnet18", "Unet", "resnet18", "conv1", 14328209, 10.796),
    ("unet_resnet34", "Unet", "resnet34", "conv1", 24436369, 15.628),
    ("unetpp_vgg11", "UnetPlusPlus", "vgg11", "features.0", 33853137, 166.038),
    ("unetpp_resnet18", "UnetPlusPlus", "resnet18", "conv1", 15970449, 31.935),
]


def _smp_builder(name: str, cls: str, encoder: str, first_conv: str) -> Builder:
    def build(*, num_classes: int, in_chans: int = 3) -> nn.Module:
        smp = require("segmentation_models_pytorch", name)
        net = getattr(smp, cls)(encoder_name=encoder, encoder_weights=None, in_channels=in_chans,
                                classes=num_classes)
        return SegmentationContract(_EncoderDecoder(net), net.segmentation_head[0],
                                    first_conv=f"encoder.{first_conv}", size_divisor=32)

    build.__name__ = name
    build.__doc__ = f"{cls} with a {encoder} encoder (segmentation-models-pytorch)."
    return build


for _name, _cls, _enc, _first, _params, _gflops in _SMP_VARIANTS:
    _paper = ("Zhou et al., DLMIA 2018, arXiv:1807.10165" if _cls == "UnetPlusPlus"
              else "Ronneberger et al., MICCAI 2015, arXiv:1505.04597")
    register_model(family="unet", paper=_paper, weights=_smp_weights(_enc), default_tag="imagenet", min_size=32,
                   size_divisor=32, feature_dim=16, num_params=_params, gflops=_gflops,
                   **SEG)(_smp_builder(_name, _cls, _enc, _first))
