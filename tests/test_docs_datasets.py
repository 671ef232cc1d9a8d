"""docs/datasets.md, run: its dataset file registers a new segmentation dataset that loads, trains and shows on a
board with the columns the file names — adding a dataset is that one file."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cells import run_cell
from benchmarks.data import DATASETS, Split
from benchmarks.data.seg import SEG_DATASETS, load_samples
from benchmarks.results import ResultStore
from benchmarks.suites import SegProtocol, Suite, _seg_grids
from zoo import TransferMode

DOC = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The doc's dataset file imported as a module (as `benchmarks/data/seg/` would), and its toy images."""
    dataset_file, maker = _blocks()
    folder = tmp_path_factory.mktemp("docs")
    path = folder / "toy_nuclei.py"
    path.write_text(dataset_file)
    spec = importlib.util.spec_from_file_location("toy_nuclei", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_nuclei"] = module
    spec.loader.exec_module(module)
    namespace: dict[str, object] = {}
    exec(maker, namespace)  # noqa: S102  (the documentation's own example)
    namespace["make_toy_nuclei"](folder / "toy_nuclei")  # type: ignore[operator]
    yield folder
    for registry in (SEG_DATASETS, DATASETS):  # leave the registries as the other tests expect them
        registry._entries.pop("toy_nuclei", None)
    sys.modules.pop("toy_nuclei", None)


def test_the_documented_dataset_file_registers_loads_trains_and_boards(toy: Path) -> None:
    from benchmarks import boards

    assert DATASETS.get("toy_nuclei").sizes == (48,) and SEG_DATASETS.get("toy_nuclei").scorer == "pooled"
    test = load_samples("toy_nuclei", Split.TEST, toy)
    assert [s.id for s in test] == ["06", "07"] and test[0].image.shape == (48, 40) and test[0].mask.any()
    p = SegProtocol(epochs=1, batch_size=4, patches_per_epoch=8, val_patches=4, val_full_every=1, patch_size=32)
    suite = Suite("toy", "1", "A U-Net on the documentation's toy dataset.",
                  _seg_grids(("unet2015_w32.random",), ("toy_nuclei",), TransferMode.SCRATCH, p))
    [cell] = suite.cells()
    store = ResultStore(toy / "results", toy / "checkpoints")
    result = run_cell(cell, data_dir=toy, store=store)
    assert result.status == "ok" and result.data is not None and result.data.n == {"train": 4, "val": 1, "test": 2}
    assert {"f1", "iou", "auc", "whole_f1"} <= set(result.test) and np.isfinite(result.test["f1"])
    store.write(result, cell)
    md = boards.generate(store, suite)["toy.md"]
    assert isinstance(md, str) and "## toy_nuclei" in md and "pooled over the 2 test images' pixels" in md
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert "| Dice |" in header and "| IoU |" in header and "| AUC |" in header and "Se" not in header
