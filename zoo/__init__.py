"""medzoo's model zoo: a registry of medical-imaging baselines with pretrained-weight loaders and transfer modes.

    >>> import zoo
    >>> model = zoo.create_model("resnet18", num_classes=2, in_chans=1)   # random init
    >>> zoo.get_spec("resnet18").weights["tv_in1k"].source
    'https://download.pytorch.org/models/resnet18-f37072fd.pth'
"""

from zoo._export import load_pretrained, save_pretrained
from zoo._factory import SCRATCH_PREPROCESS, create_model, get_spec, list_models, preprocess_of, resolve
from zoo._inference import (SEGMENTATION_META, image_to_tensor, load_trained, save_trained, sliding_window,
                            trained_bytes, trained_meta)
from zoo._precision import (PRECISIONS, Bf16EmulatedWarning, Bf16Support, autocast, bf16_support, check_precision,
                            cpu_flags, fp32_parts, ieee_fp32)
from zoo._registry import Registry, register_model
from zoo._specs import ModelSpec, Preprocess, Task, WeightsSpec
from zoo._transfer import (HEADS, TransferMode, extract_features, fit_head, make_head, param_groups, prepare,
                           preprocess_images, train_mode)
from zoo._weights import fetch, hub_unreachable, offline, unreachable, verify_sha256
from zoo.errors import (HashMismatchError, InputShapeError, MedzooError, MissingExtraError, UnknownNameError,
                        WeightsMismatchError, WeightsUnavailableError)

__all__ = [
    "HEADS", "PRECISIONS", "SCRATCH_PREPROCESS", "Bf16EmulatedWarning", "Bf16Support", "SEGMENTATION_META", "HashMismatchError", "InputShapeError", "MedzooError", "MissingExtraError",
    "ModelSpec", "Preprocess", "Registry", "Task", "TransferMode", "UnknownNameError", "WeightsMismatchError",
    "WeightsSpec", "WeightsUnavailableError",
    "autocast", "bf16_support", "check_precision", "cpu_flags", "create_model", "extract_features", "fetch", "fit_head", "fp32_parts", "get_spec", "ieee_fp32", "image_to_tensor", "list_models",
    "load_pretrained", "load_trained", "make_head", "offline", "param_groups", "prepare", "preprocess_images",
    "preprocess_of", "register_model", "resolve", "save_pretrained", "save_trained", "sliding_window",
    "train_mode", "trained_bytes", "trained_meta", "unreachable", "verify_sha256", "hub_unreachable",
]
