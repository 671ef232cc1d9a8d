"""The speed benchmark's parts run (timings themselves are `medzoo speed`'s job, not a test's), and medzoo's fast
data path feeds the network exactly what the MedMNIST reference pipeline does."""

from __future__ import annotations

from pathlib import Path

import medmnist
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

import zoo
from benchmarks.cells.prep import Resolution, to_input
from benchmarks.data import DATASETS, Split
from benchmarks.speed import Row, feature_flops, feature_throughput, peak_gflops, report_markdown, train_step
from benchmarks.suites import Policy


def test_fast_path_equals_the_medmnist_pipeline(medmnist_dir: Path) -> None:
    """Same images → same tensors (to 1e-6) → same predictions (to 1e-5) on the same weights."""
    x, _ = DATASETS.get("pneumoniamnist").load(Split.TRAIN, 28, medmnist_dir)
    ref = medmnist.PneumoniaMNIST(split="train", root=str(medmnist_dir), transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(mean=[0.5], std=[0.5])]))
    ref_batch = torch.stack([ref[i][0] for i in range(32)])
    ours = to_input(torch.from_numpy(x[:32]), Resolution(28, Policy.NATIVE, 28, 28), (0.5,), (0.5,))
    torch.testing.assert_close(ours, ref_batch, atol=1e-6, rtol=0)
    torch.manual_seed(0)
    net = zoo.create_model("resnet18_28", num_classes=2, in_chans=1).eval()
    with torch.inference_mode():
        torch.testing.assert_close(net(ours), net(ref_batch.contiguous()), atol=1e-5, rtol=1e-5)


def test_speed_parts_measure_something() -> None:
    for precision in ("fp32", "bf16"):
        p = peak_gflops(n=256, repeats=1, precision=precision)
        assert min(p.values()) > 0 and p["peak"] == max(p["matmul"], p["conv1x1"])
    net = zoo.create_model("resnet18", num_classes=2).eval()
    flops = feature_flops(net, torch.randn(1, 3, 64, 64))
    assert 0.25e9 < flops < 0.35e9  # ResNet-18: 1.82 GMAC at 224 px, x (64/224)^2 = 0.15 GMAC = 0.3 GFLOP
    peaks = {"fp32": 1000.0, "bf16": 4000.0}
    row = feature_throughput("resnet18", 32, peaks, batch=2, repeats=1)
    assert row.numbers["fp32_images_per_s"] > 0 and row.numbers["bf16_images_per_s"] > 0
    assert 0 < row.numbers["fraction_of_bf16_peak"] < 1 and row.numbers["ratio"] > 0
    step = train_step("resnet18_28", 28, 4, peaks, repeats=1)
    forward = zoo.create_model("resnet18_28", num_classes=2, in_chans=1)
    with FlopCounterMode(display=False) as counter:
        forward(torch.randn(1, 1, 28, 28))
    assert 2.5 < step.numbers["gflop"] * 1e9 / counter.get_total_flops() < 3.5  # backward: about twice the forward
    md = report_markdown([row, Row("x", "y", "1x")], {"cpu": "test"}, 1.0)
    assert "| feature extraction | resnet18 @ 32 px |" in md and "| cpu | test |" in md
