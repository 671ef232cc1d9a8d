"""Provenance of a cell: which code (commit, and whether the code differs from it), which packages, which machine
(CPU model and ISA, threads, load), so a result says where its numbers came from."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

CODE_PATHS = ("zoo", "benchmarks", "scripts", "pyproject.toml")
"""What "the code" is for provenance: a result is dirty when these differ from the commit; the results store,
boards, figures and docs a run writes are not code."""
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")



def _run_git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30)


def git_state(where: Path | None = None) -> dict[str, Any]:
    """The commit and whether the *code* (`CODE_PATHS`) differs from it; when it does, a sha256 of the difference
    (`git diff HEAD` of tracked code, in a fixed format whatever the user's git config, plus the names and bytes of
    untracked code files), so two results from the same edit share it. All None unless medzoo runs from its own
    checkout (an installed wheel, or a venv inside another repository, says nothing about medzoo's code)."""
    project = (where or Path(__file__).resolve().parents[2]).resolve()
    unknown = {"sha": None, "dirty": None, "paths": list(CODE_PATHS)}
    try:
        top = _run_git(["rev-parse", "--show-toplevel"], project)
        sha = _run_git(["rev-parse", "HEAD"], project)
        if top.returncode or sha.returncode or Path(top.stdout.decode().strip()).resolve() != project:
            return unknown
        paths = [p for p in CODE_PATHS if (project / p).exists()]
        diff = _run_git(["diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames",
                         "--src-prefix=a/", "--dst-prefix=b/", "--", *paths], project)
        untracked = _run_git(["ls-files", "--others", "--exclude-standard", "-z", "--", *paths], project)
        names = sorted(n for n in untracked.stdout.decode().split("\0") if n)
        out: dict[str, Any] = {"sha": sha.stdout.decode().strip(), "dirty": bool(diff.stdout or names),
                               "paths": list(CODE_PATHS)}
        if out["dirty"]:
            h = hashlib.sha256(diff.stdout)
            for name in names:
                h.update(b"\0untracked\0" + name.encode() + b"\0" + (project / name).read_bytes())
            out["diff_sha256"] = h.hexdigest()
    except (OSError, subprocess.SubprocessError):
        return unknown
    return out


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@lru_cache(maxsize=None)
def _version(name: str) -> str | None:
    """An installed distribution's version, read once per process (reading every one took ~0.2 s a cell)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def imported_packages() -> dict[str, str]:
    """Every installed distribution with a module in `sys.modules`, with its version: what the cell actually used
    (monai, scikit-image, scipy, Pillow, … as well as torch), not a fixed list."""
    dists = _distributions()
    tops = {m.partition(".")[0] for m in list(sys.modules)}
    out = {"medzoo": _version("medzoo") or "not installed"}  # not installed: run from a source tree
    for top in tops & set(dists):
        for name in dists[top]:
            if (version := _version(name)) is not None:
                out[name] = version
    return dict(sorted(out.items()))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu_isa() -> list[str]:
    """torch's CPU capability (`torch:AVX512`, ...) and the vector/matrix flags of `/proc/cpuinfo` that decide speed
    (AVX2, AVX-512, AVX512-BF16, AMX): machines of one kind differ, so each result says which it ran on."""
    import zoo

    flags = zoo.cpu_flags()
    return [f"torch:{torch.backends.cpu.get_cpu_capability()}"] + [f for f in ISA_FLAGS if f in flags]


def provenance(device: torch.device, precision: str) -> dict[str, Any]:
    """Where and with what a cell runs (in `precision`); `packages` and `duration_s` are filled in when it ends
    (`finish`)."""
    import zoo

    return {
        "git": git_state(), "packages": {}, "python": platform.python_version(), "platform": platform.platform(),
        "device": str(device), "cpu": cpu_name(), "cpu_isa": cpu_isa(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "autocast": "bfloat16" if precision == "bf16" else None,  # see zoo.autocast
        "bf16": zoo.bf16_support(device.type).record(),
        "torch_threads": torch.get_num_threads(),
        "deterministic": {"algorithms": torch.are_deterministic_algorithms_enabled(),
                          "cudnn_benchmark": torch.backends.cudnn.benchmark,
                          "cuda_tf32": torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32},
        "load_average_at_start": list(os.getloadavg()),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def finish(prov: dict[str, Any], t0: float) -> dict[str, Any]:
    """`prov` with what is known only at the end: the imported packages and the duration."""
    return prov | {"packages": imported_packages(), "duration_s": round(time.perf_counter() - t0, 2)}


