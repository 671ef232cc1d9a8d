"""bf16 as a protocol choice: capability detection (torch's private queries guarded, /proc/cpuinfo fallback), the
classifier kept in fp32, a bf16 cell that runs and says so once on a CPU without bf16 units, the override recorded
as a different cell, and the feature cache keyed on precision."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
import zoo._precision as precision
from benchmarks.cells import run_cell
from benchmarks.cells.feature_cache import FeatureCache
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result
from benchmarks.suites import SUITES, Cell, Grid, Policy, Protocol, Suite, select
from zoo import TransferMode

BF16 = Protocol(epochs=2, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant", precision="bf16")


@pytest.fixture()
def no_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU without bf16 units, whatever this machine has; the once-only warning re-armed."""
    def none(device_type: str = "cpu") -> zoo.Bf16Support:
        return zoo.Bf16Support(device_type, (), "test")

    monkeypatch.setattr(precision, "bf16_support", none)  # what autocast asks
    monkeypatch.setattr(zoo, "bf16_support", none)  # what provenance records
    monkeypatch.setattr(precision, "_warned", set())


def test_detection_reads_torch_and_falls_back_to_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    precision.bf16_support.cache_clear()
    found = zoo.bf16_support("cpu")
    assert found.device == "cpu" and set(found.units) <= {"amx_bf16", "avx512_bf16"}
    assert found.record()["native"] == bool(found.units)

    def gone() -> bool:
        raise AttributeError("private query removed")

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", gone, raising=False)
    assert precision._torch_cpu_units() is None
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert precision._cpuinfo_units(str(info)) == ("avx512_bf16",)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert precision._cpuinfo_units(str(info)) == ()
    precision.bf16_support.cache_clear()
    assert zoo.bf16_support("cpu").source == "/proc/cpuinfo"
    precision.bf16_support.cache_clear()


def test_bf16_body_with_an_fp32_stem_and_classifier() -> None:
    torch.manual_seed(0)
    net = zoo.create_model("resnet18_28", num_classes=3, in_chans=1).eval()
    seen: dict[str, object] = {}

    def head_hook(m: torch.nn.Linear, i: tuple[torch.Tensor], o: torch.Tensor) -> None:
        with torch.autocast("cpu", enabled=False):  # the hook runs inside the caller's bf16 block
            seen.update(head_out=o.dtype, head_fp32=torch.equal(o, torch.nn.functional.linear(i[0].float(), m.weight,
                                                                                               m.bias)))

    net.get_classifier().register_forward_hook(head_hook)
    net.conv1.register_forward_hook(lambda m, i, o: seen.update(stem=o.dtype))
    net.layer4.register_forward_hook(lambda m, i, o: seen.update(body=o.dtype))
    x = torch.randn(4, 1, 28, 28)
    with torch.inference_mode():
        ref = net(x)
        with zoo.autocast(net, "cpu", "bf16"):
            low = net(x)
    assert seen == {"stem": torch.float32, "body": torch.bfloat16, "head_out": torch.float32, "head_fp32": True}
    assert low.dtype == torch.float32 and torch.allclose(low, ref, atol=0.1) and not torch.equal(low, ref)
    assert "forward" not in vars(net.get_classifier()) and "forward" not in vars(net.conv1)  # wrappers gone after
    with torch.inference_mode(), zoo.autocast(net, "cpu", "fp32"):
        assert torch.equal(net(x), ref)
    with pytest.raises(zoo.MedzooError, match="fp32, bf16"):
        zoo.check_precision("fp16")


def test_features_in_bf16_are_float32_and_close() -> None:
    torch.manual_seed(0)
    net = zoo.create_model("resnet18", num_classes=2, in_chans=3)
    x = torch.randn(6, 3, 64, 64)
    f32, b16 = (zoo.extract_features(net, x, precision=p) for p in ("fp32", "bf16"))
    assert b16.dtype == torch.float32 and b16.shape == f32.shape
    assert torch.allclose(b16, f32, rtol=0.05, atol=0.05) and not torch.equal(b16, f32)


def test_a_bf16_cell_without_bf16_units_runs_and_says_so_once(no_bf16_units: None, tmp_path: Path) -> None:
    cell = Cell(suite="t", version="1", model="resnet18_28.random", dataset="synthetic_binary", data_size=28,
                policy=Policy.NATIVE, input_size=28, mode=TransferMode.SCRATCH, seed=0, protocol=BF16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cell(cell)
        run_cell(cell)
    said = [w for w in caught if issubclass(w.category, zoo.Bf16EmulatedWarning)]
    assert len(said) == 1 and "--precision fp32" in str(said[0].message)
    assert result.status == "ok" and result.cell.protocol.precision == "bf16"
    assert result.provenance.autocast == "bfloat16" and result.provenance.bf16 is not None
    assert result.provenance.bf16.native is False and result.provenance.bf16.units == []
    assert result.outputs is not None and np.isfinite(result.test["auc"])


@pytest.fixture()
def tf32_on() -> Iterator[None]:
    """CUDA's TF32 switched on (cuDNN's default), whatever it was, and put back after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_fp32_on_cuda_is_ieee_fp32_for_the_whole_cell(tf32_on: None) -> None:
    """cuDNN's default TF32 is off inside a cell and inside `zoo.autocast(..., "cuda", ...)`, recorded in provenance,
    and the caller's setting is restored after (an H200 gave 7e-4 relative feature error with TF32, 1e-6 without)."""
    with zoo.autocast(None, "cuda", "fp32"):
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    with zoo.autocast(None, "cpu", "fp32"):
        assert torch.backends.cudnn.allow_tf32  # the CPU path leaves CUDA's settings alone
    cell = Cell(suite="t", version="1", model="resnet18_28.random", dataset="synthetic_binary", data_size=28,
                policy=Policy.NATIVE, input_size=28, mode=TransferMode.FEATURES, seed=0, protocol=Protocol())
    result = run_cell(cell)
    assert result.status == "ok" and result.provenance.deterministic["cuda_tf32"] is False
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32


def test_precision_override_is_a_recorded_different_cell_also_for_features(tmp_path: Path) -> None:
    suite = Suite(name="prec", version="1", description="test", grids=(
        Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",), modes=(TransferMode.FEATURES,
             TransferMode.SCRATCH), protocol=BF16),))
    base = {c.mode: c for c in select(suite)}
    fp32 = {c.mode: c for c in select(suite, precision="fp32")}
    for mode, cell in base.items():
        assert fp32[mode].protocol.precision == "fp32" and fp32[mode].overrides == (("precision", "fp32"),)
        assert fp32[mode].key != cell.key
    stored = ResultStore(tmp_path / "results").write(run_cell(fp32[TransferMode.FEATURES]), fp32[TransferMode.FEATURES])
    assert Result.model_validate_json(stored.read_text()).cell.overrides == [("precision", "fp32")]  # storable
    assert {c.key for c in select(suite, precision="bf16")} == {c.key for c in base.values()}  # no change: same cell
    epochs = {c.mode: c for c in select(suite, epochs=5)}
    assert epochs[TransferMode.FEATURES] == base[TransferMode.FEATURES]  # epochs do not touch features cells
    with pytest.raises(zoo.MedzooError, match="fp32, bf16"):
        select(suite, precision="half")


def test_feature_cache_keys_on_precision(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "features")
    cells = [Cell(suite="t", version="1", model="resnet18_28.random", dataset="synthetic_binary", data_size=28,
                  policy=Policy.NATIVE, input_size=28, mode=TransferMode.FEATURES, seed=0,
                  protocol=Protocol(precision=p)) for p in ("fp32", "bf16", "bf16")]
    hits = [run_cell(c, cache=cache).training.feature_cache_hits for c in cells]
    assert hits[0] == hits[1] == {"train": False, "val": False, "test": False}  # bf16 never reads fp32 features
    assert hits[2] == {"train": True, "val": True, "test": True}
    assert len(cache.entries()) == 6


@pytest.mark.parametrize("suite", ["quick", "medmnist-v2", "segmentation"])
def test_bf16_suites_budget_in_epochs(suite: str) -> None:
    cells = SUITES.get(suite).cells()
    assert {c.protocol.precision for c in cells} == {"bf16"}
    assert all(c.protocol.time_budget_s is None for c in cells)


@pytest.mark.parametrize("mode", [TransferMode.FEATURES, TransferMode.LINEAR_PROBE, TransferMode.SCRATCH])
def test_parity_scores_one_fp32_model_in_both_precisions(mode: TransferMode) -> None:
    from benchmarks import parity

    cell = Cell(suite="t", version="1", model="resnet18_28.random", dataset="synthetic_binary", data_size=28,
                policy=Policy.NATIVE, input_size=28, mode=mode, seed=0, protocol=BF16)
    row = parity.classification(cell, None)
    assert row.key == parity.fp32_twin(cell).key != cell.key
    assert row.fp32 == run_cell(parity.fp32_twin(cell)).test["auc"]  # the fp32 side is the fp32 cell's own score
    assert abs(row.delta) < 0.05
    assert row.pairs is not None and row.pairs.delta == pytest.approx(row.delta, abs=1e-12)  # the same pairs AUC saw
