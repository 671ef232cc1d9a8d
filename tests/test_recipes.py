"""The recipes in docs/recipes run as written, on small stand-ins in their data's layout (the real data needs a
download the user does). The only edits are to cost, listed in `CHEAPER`: smaller inputs and fewer epochs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torchvision
from PIL import Image
from safetensors.torch import save_file
from test_segmentation_data import _fake_drive
from test_weights import _hub_cache

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "recipes"
CHEAPER = {"chest-vs-abdomen.md": [("--sizes 299", "--sizes 75 --epochs 2")],
           "drive-unet.md": [("--save-checkpoints --results-dir", "--epochs 1 --save-checkpoints --results-dir")],
           "own-csv.md": [("--sizes 224", "--sizes 64 --epochs 1")]}


def commands(page: Path) -> list[str]:
    """The page's medzoo and cat commands, in order (data downloads and listings are the stand-in's job)."""
    blocks = re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.DOTALL)
    lines = [ln.strip() for b in blocks for ln in b.splitlines()]
    out = [ln for ln in lines if ln.startswith(("medzoo ", "cat "))]
    for old, new in CHEAPER[page.name]:
        assert any(old in c for c in out), f"{page.name}: the cost edit {old!r} no longer applies"
        out = [c.replace(old, new) for c in out]
    return out


def run_page(page: Path, cwd: Path, env: dict[str, str]) -> str:
    script = "set -euo pipefail\n" + "\n".join(commands(page)) + "\n"
    bin_dir = str(Path(sys.executable).parent)
    done = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=900, check=False,
                          env=os.environ | env | {"PATH": bin_dir + os.pathsep + os.environ["PATH"]})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _png(path: Path, value: int, rng: np.random.Generator, side: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(value + rng.normal(0, 25, (side, side)), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf"), "MEDZOO_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
            "TORCH_HOME": str(tmp_path / "torch")}


def test_every_recipe_is_tested() -> None:
    assert {p.name for p in RECIPES.glob("*.md")} == set(CHEAPER)
    readme = (ROOT / "README.md").read_text()
    assert all(f"docs/recipes/{name}" in readme for name in CHEAPER)


def test_chest_vs_abdomen_recipe(tmp_path: Path, env: dict[str, str]) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "Open_I_abd_vs_CXRs"  # the tutorial's layout: TRAIN/ and VAL/ by class, loose TEST/ images
    for split, n in (("TRAIN", 12), ("VAL", 4)):
        for ci, cls in enumerate(("abd", "chest")):
            for i in range(n):
                _png(data / split / cls / f"{cls}{i}.png", 70 + 90 * ci, rng)
    _png(data / "TEST" / "chest2.png", 160, rng)
    _png(data / "TEST" / "abd2.png", 70, rng)
    torch_sd = torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=True).state_dict()
    repo, revision = "timm/inception_v3.tv_in1k", "0" * 40  # the default weights, in their real key layout
    _hub_cache(tmp_path / "hf", repo, {}, revision=revision)
    save_file(torch_sd, str(tmp_path / "hf" / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
                        / "model.safetensors"))
    out = run_page(RECIPES / "chest-vs-abdomen.md", tmp_path, env)
    assert "inception_v3.tv_in1k" in out and "features" in out and "finetune" in out  # the board was shown
    pred = pd.read_csv(tmp_path / "chest-vs-abdomen-predictions" / "predictions.csv")
    assert list(pred.columns) == ["path", "predicted", "p_abd", "p_chest"] and len(pred) == 2
    assert set(pred["predicted"]) <= {"abd", "chest"}
    np.testing.assert_allclose(pred[["p_abd", "p_chest"]].sum(1), 1.0, atol=1e-6)


def test_drive_recipe(tmp_path: Path, env: dict[str, str]) -> None:
    _fake_drive(tmp_path / "data" / "DRIVE", h=128, w=112)
    run_page(RECIPES / "drive-unet.md", tmp_path, env | {"DATA": str(tmp_path / "data")})
    board = (tmp_path / "drive-board" / "segmentation.md").read_text()
    assert "## drive" in board and "reported (paper)" in board and "0.8142" in board
    assert Image.open(tmp_path / "drive-predictions" / "01_test_mask.png").size == (112, 128)


def test_own_csv_recipe(tmp_path: Path, env: dict[str, str]) -> None:
    rng = np.random.default_rng(1)
    rows = ["path,label,patient_id"]
    for ci, cls in enumerate(("benign", "malignant", "normal")):
        for p in range(8):
            for k in range(2):
                name = f"scans/{cls}{p}_{k}.png"
                _png(tmp_path / "my_study" / name, 50 + 70 * ci, rng, side=32)
                rows.append(f"{name},{cls},{cls}{p}")
    (tmp_path / "my_study" / "labels.csv").write_text("\n".join(rows) + "\n")
    for i in range(3):
        _png(tmp_path / "new_scans" / f"n{i}.png", 50 + 70 * i, rng, side=32)
    out = run_page(RECIPES / "own-csv.md", tmp_path, env)
    assert out.count("tf_efficientnet_lite0.pypi_in1k") >= 3 and "resnet18.random" in out
    pred = pd.read_csv(tmp_path / "my-predictions" / "predictions.csv")
    assert list(pred.columns) == ["path", "predicted", "p_benign", "p_malignant", "p_normal"] and len(pred) == 3
