"""What `import zoo` loads and what zoo may import: the library stays light and independent of the harness.

`import zoo` must not load MONAI, segmentation-models-pytorch, pandas, matplotlib or scikit-image (they are imported
where a model or a head needs them); `zoo` never imports `benchmarks`; family files register through
`zoo._registry` and never import the factory, which imports them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo import _inference, _weights

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "zoo"
HEAVY = ("monai", "segmentation_models_pytorch", "pandas", "matplotlib", "skimage")


def _loaded_after(code: str) -> list[str]:
    """Heavy top-level packages in `sys.modules` after running `code` in a fresh interpreter (this process has
    long imported everything)."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_zoo_loads_no_heavy_package() -> None:
    assert _loaded_after("import zoo") == []


def test_listing_models_loads_no_heavy_package() -> None:
    # the U-Net family's weights table pins smp's Hub revisions itself: listing loads neither MONAI nor smp
    assert _loaded_after("import zoo\nzoo.list_models()\nzoo.get_spec('unet_resnet18')") == []


def _package(path: Path) -> str:
    """The package that relative imports in `path` resolve against."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1])


def _imports(source: str, package: str) -> set[str]:
    """Every module `source` imports, absolute; `from a import b` counts as `a` and `a.b` (b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _imports_of(path: Path) -> set[str]:
    return _imports(path.read_text(), _package(path))


def test_import_checker_sees_every_import_form() -> None:
    source = ("import benchmarks.cli\nfrom zoo import _factory\nfrom .. import _registry\nfrom ._common import x\n"
              "def f():\n    from benchmarks import suites\n")
    assert _imports(source, "zoo.models") >= {"benchmarks.cli", "zoo._factory", "zoo._registry",
                                              "zoo.models._common", "benchmarks.suites"}


@pytest.mark.parametrize("path", sorted(ZOO.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_zoo_never_imports_benchmarks(path: Path) -> None:
    assert not {m for m in _imports_of(path) if m.split(".")[0] == "benchmarks"}


@pytest.mark.parametrize("path", sorted((ZOO / "models").glob("*.py")), ids=lambda p: p.name)
def test_family_files_do_not_import_the_factory(path: Path) -> None:
    assert not {m for m in _imports_of(path) if m == "zoo._factory" or m.startswith("zoo._factory.")}


@pytest.mark.parametrize("name", ["trained_meta", "SEGMENTATION_META"])
def test_inference_names_are_public(name: str) -> None:
    assert name in zoo.__all__ and getattr(zoo, name) is getattr(_inference, name)


@pytest.mark.parametrize("name", ["verify_sha256", "offline", "unreachable", "hub_unreachable"])
def test_weights_names_are_public(name: str) -> None:
    assert name in zoo.__all__ and getattr(zoo, name) is getattr(_weights, name)


@pytest.mark.parametrize("name", ["attention_unet_w32", "unet_resnet18"])  # MONAI's and smp's, imported lazily
def test_unets_build_after_lazy_imports(name: str) -> None:
    assert name in zoo.list_models(task="segmentation")
    spec = zoo.get_spec(name)
    model = zoo.create_model(name, num_classes=1, in_chans=1).eval()
    with torch.inference_mode():
        y = model(torch.randn(1, 1, spec.min_size, spec.min_size))
    assert y.shape == (1, 1, spec.min_size, spec.min_size) and torch.isfinite(y).all()


def test_sliding_window_after_lazy_monai_import() -> None:
    model = zoo.create_model("unet2015_w32", num_classes=1, in_chans=1)
    prob = zoo.sliding_window(model, torch.randn(1, 40, 48), patch_size=32)
    assert prob.shape == (40, 48) and bool(((prob >= 0) & (prob <= 1)).all())
