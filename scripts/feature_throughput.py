"""Feature-extraction throughput (images/s) of `zoo.extract_features`, eager mode, fp32, on this machine.

Usage: python scripts/feature_throughput.py [MODEL ...] [--sizes 64 224] [--batch 64] [--repeats 3]
Run it with no other job on the machine; it prints the load average it started and ended with.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import zoo


def images_per_second(model: torch.nn.Module, size: int, batch: int, repeats: int) -> list[float]:
    x = torch.randn(batch, 3, size, size)
    zoo.extract_features(model, x[:8])  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        zoo.extract_features(model, x, batch_size=batch)
        rates.append(batch / (time.perf_counter() - t0))
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", default=["resnet18"])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor())
    print(f"{cpu}; torch {torch.__version__}; {torch.get_num_threads()} threads; batch {args.batch}; "
          f"load average at start {os.getloadavg()}")
    for name in args.models:
        model = zoo.create_model(name)
        for size in args.sizes:
            rates = images_per_second(model, size, args.batch, args.repeats)
            print(f"{name} {size:>4} px: best {max(rates):8.1f} images/s, median {sorted(rates)[len(rates) // 2]:8.1f}")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
