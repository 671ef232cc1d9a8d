"""Numeric precision: bf16 where the hardware has bf16 units, fp32 where numbers are decided.

Intel Xeons with AMX and AVX512-BF16 (and AMD EPYCs with AVX512-BF16) multiply bf16 several times faster than fp32;
AVX2-only CPUs do not, and emulate it (slower than fp32). So bf16 is a choice recorded with every result, never an
assumption: `bf16_support` says what this machine has (read from torch, whose CPU queries are private and guarded,
else from `/proc/cpuinfo`; CUDA from torch.cuda), and `autocast` runs a network's body in bf16 while two parts stay
fp32 (`fp32_parts`): the classifier (`get_classifier()`: the final Linear, or a U-Net's 1x1 output conv) — bf16
logits are coarse enough to create ties that move AUC — and the stem conv (`pretrained_cfg["first_conv"]`), whose
input is the normalised image: rounding the image alone to bf16 moved BreastMNIST test AUC by up to 0.003 for every
family (docs/precision-parity.md), and the stem is a few percent of the network's work. On CUDA, fp32 is IEEE fp32
(`ieee_fp32`): cuDNN's default would run fp32 convolutions in TF32.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from zoo.errors import MedzooError

PRECISIONS = ("fp32", "bf16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of the bf16 matrix / dot-product units


class Bf16EmulatedWarning(UserWarning):
    """A bf16 protocol runs on a device without bf16 units: correct, but slower than fp32."""


@dataclass(frozen=True)
class Bf16Support:
    """What bf16 hardware a device has, and where that was read."""

    device: str  # cpu / cuda
    units: tuple[str, ...]  # e.g. ("amx_bf16", "avx512_bf16"), ("cuda",); empty: none
    source: str  # torch / /proc/cpuinfo / torch.cuda

    @property
    def native(self) -> bool:
        return bool(self.units)

    def record(self) -> dict[str, Any]:
        return asdict(self) | {"units": list(self.units), "native": self.native}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise MedzooError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    return precision


def _torch_cpu_units() -> tuple[str, ...] | None:
    """bf16 units from torch's CPU queries (private in torch 2.x: None when they are missing or fail)."""
    queries = {"amx_bf16": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    try:
        found = tuple(unit for unit, fn in queries.items() if getattr(torch.cpu, fn)())
    except (AttributeError, RuntimeError):
        return None
    return found


def cpu_flags(path: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The CPU's feature flags as the kernel lists them (empty where there is no `/proc/cpuinfo`)."""
    try:
        with open(path) as f:
            return tuple(next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), []))
    except OSError:
        return ()


def _cpuinfo_units(path: str = "/proc/cpuinfo") -> tuple[str, ...]:
    flags = cpu_flags(path)
    return tuple(u for u in CPU_BF16_FLAGS if u in flags)


@lru_cache(maxsize=4)
def bf16_support(device_type: str = "cpu") -> Bf16Support:
    """The bf16 units of `device_type` (`cpu` or `cuda`)."""
    if device_type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        return Bf16Support("cuda", ("cuda",) if ok else (), "torch.cuda")
    units = _torch_cpu_units()
    if units is not None:
        return Bf16Support("cpu", units, "torch")
    return Bf16Support("cpu", _cpuinfo_units(), "/proc/cpuinfo")


_warned: set[str] = set()


def _warn_if_emulated(device_type: str) -> None:
    support = bf16_support(device_type)
    if not support.native and device_type not in _warned:
        _warned.add(device_type)
        warnings.warn(Bf16EmulatedWarning(
            f"this {device_type} has no bf16 units ({support.source} reports none of "
            f"{', '.join(CPU_BF16_FLAGS) if device_type == 'cpu' else 'bf16 support'}): bf16 runs correctly but "
            f"slower than fp32 here; pass --precision fp32 to run fp32 cells instead (a different cell)"),
            stacklevel=3)


def _fp32_forward(forward: Callable[..., torch.Tensor], device_type: str) -> Callable[..., torch.Tensor]:
    def run(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.autocast(device_type, enabled=False):
            return forward(x.float(), *args, **kwargs)
    return run


def fp32_parts(net: nn.Module | None) -> list[nn.Module]:
    """The parts of `net` that a bf16 `autocast` keeps in fp32: its classifier and its stem conv (those it has, with
    parameters; a bare head on features is all classifier)."""
    if net is None:
        return []
    parts = [net.get_classifier()] if hasattr(net, "get_classifier") else []
    stem = getattr(net, "pretrained_cfg", {}).get("first_conv")
    if stem:
        try:
            parts.append(net.get_submodule(stem))
        except AttributeError:  # a wrapper whose names differ from its pretrained_cfg's: its stem stays bf16
            pass
    mods = [m for m in parts if isinstance(m, nn.Module) and any(True for _ in m.parameters())]
    return list({id(m): m for m in mods}.values())


@contextmanager
def ieee_fp32() -> Iterator[None]:
    """fp32 means fp32 on CUDA too: cuDNN runs fp32 convolutions in TF32 (a 10-bit mantissa) unless told not to, which
    would make an fp32 cell on a GPU a third precision (measured on an H200: ResNet-18/VGG/GoogLeNet features 7e-4
    relative error against the CPU with TF32, 1e-6 without). No effect on the CPU."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextmanager
def autocast(net: nn.Module | None, device: torch.device | str, precision: str) -> Iterator[None]:
    """Run `net` in `precision`: fp32 as is; bf16 under autocast with `fp32_parts(net)` in fp32. Losses and metrics
    are the caller's to compute from `.float()` outputs. On CUDA, what runs in fp32 is IEEE fp32 (`ieee_fp32`)."""
    dtype = torch.device(device).type
    with ieee_fp32() if dtype == "cuda" else nullcontext():
        if check_precision(precision) == "fp32":
            yield
            return
        _warn_if_emulated(dtype)
        parts = fp32_parts(net)
        for m in parts:
            m.forward = _fp32_forward(type(m).forward.__get__(m), dtype)  # type: ignore[method-assign]
        try:
            with torch.autocast(dtype, dtype=torch.bfloat16):
                yield
        finally:
            for m in parts:
                del m.forward
