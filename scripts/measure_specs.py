"""Measure the numbers a ModelSpec carries (min_size, feature_dim, num_params, GFLOPs) for every registered model.

Run after adding or changing a model and copy the printed values into its family file; the test suite checks
that the specs still match these measurements. Usage: python scripts/measure_specs.py [PATTERN]
"""

from __future__ import annotations

import math
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

import zoo


def build(name: str) -> torch.nn.Module:
    spec, weights = zoo.resolve(name)
    n_cls = weights.num_classes if weights and weights.num_classes else spec.num_classes
    return spec.builder(num_classes=n_cls, in_chans=3).eval()


def gflops(model: torch.nn.Module, size: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def accepts(model: torch.nn.Module, size: int) -> bool:
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size))
        return True
    except (RuntimeError, ValueError):
        return False


def measure(name: str) -> dict[str, float | int]:
    spec = zoo.get_spec(name)
    model = build(name)
    with torch.inference_mode():
        fmap = model.forward_features(torch.zeros(1, 3, spec.default_size, spec.default_size))
        dim = model.forward_head(fmap, pre_logits=True).shape[1]
    stride = 2 ** round(math.log2(spec.default_size / fmap.shape[-1]))  # 299 px → 10x10 map: stride 32, not 29
    step = spec.size_divisor
    size = step
    while not accepts(model, size):
        size += step
    floor = -(-max(size, stride) // step) * step
    return dict(min_size=floor, feature_dim=dim, num_params=sum(p.numel() for p in model.parameters()),
                gflops=round(gflops(model, spec.default_size), 3))


if __name__ == "__main__":
    for n in zoo.list_models(sys.argv[1] if len(sys.argv) > 1 else "*"):
        print(n, measure(n), flush=True)
