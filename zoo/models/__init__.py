"""One module per architecture family; importing them fills the model registry."""

from zoo.models import alexnet, efficientnet, inception, resnet, unet, vgg, xception

__all__ = ["alexnet", "efficientnet", "inception", "resnet", "unet", "vgg", "xception"]
