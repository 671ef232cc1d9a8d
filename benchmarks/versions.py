"""Explicit code versions, part of every cell key.

A result must say which code made it. The git sha says *where* to look; these integers say *what changed*: each
model spec, each cell kind and the training protocol has a version, recorded in the cell (`cell.versions`) and so in
its key. Change what a unit computes and bump its version: its cells become new cells, never confused with the old
results. `tests/fingerprints.json` holds a sha256 of each unit's source; `tests/test_versions.py` fails when a
source changes under the same version (`python scripts/fingerprints.py` rewrites the file after a bump, or with
`--same-behaviour` after a change that provably moves no number, e.g. a docstring).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from typing import Any

# cell kinds: the code that turns (model, data, protocol) into outputs and metrics
CELL_VERSIONS = {"classification": 2, "segmentation": 2}  # 2: precision (bf16 autocast), channels_last features
PROTOCOL_VERSION = 2  # the training loop and the protocol's meaning; 2: precision
# what a bf16 cell keeps in fp32 (`zoo.autocast`): 1 the classifier; 2 the stem conv too. Only bf16 cells record it
# (fp32 cells never autocast), so a change here makes new bf16 cells and leaves every fp32 cell's key as it was.
AUTOCAST_VERSION = 2

CELL_SOURCES = {
    "classification": ("benchmarks.cells.classification", "benchmarks.cells.prep", "benchmarks.metrics.classification",
                       "benchmarks.metrics.stats", "zoo._transfer", "zoo._adapters",
                       "benchmarks.results.schema:probabilities"),
    "segmentation": ("benchmarks.cells.segmentation", "benchmarks.metrics.segmentation", "zoo._inference"),
}
AUTOCAST_SOURCES = ("zoo._precision",)
PROTOCOL_SOURCES = ("benchmarks.suites:Protocol", "benchmarks.suites:SegProtocol", "benchmarks.cells.train")


def versions(arch: str, kind: str, precision: str = "fp32") -> dict[str, int]:
    """The versions a cell of `arch`, cell kind `kind` and `precision` records."""
    import zoo

    out = {"model": zoo.get_spec(arch).version, "cell": CELL_VERSIONS[kind], "protocol": PROTOCOL_VERSION}
    return out | {"autocast": AUTOCAST_VERSION} if precision == "bf16" else out


def _source(ref: str) -> str:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    return inspect.getsource(getattr(obj, attr) if attr else obj)


def _digest(refs: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for ref in refs:
        h.update(ref.encode() + b"\0" + _source(ref).encode() + b"\0")
    return h.hexdigest()


def fingerprints() -> dict[str, dict[str, Any]]:
    """Unit → {version, sha256 of its source}: every model (its family file), cell kind and the protocol."""
    import zoo

    out: dict[str, dict[str, Any]] = {}
    for spec in map(zoo.get_spec, zoo.list_models()):
        out[f"model:{spec.name}"] = {"version": spec.version, "sha256": _digest((spec.builder.__module__,))}
    for kind, refs in CELL_SOURCES.items():
        out[f"cell:{kind}"] = {"version": CELL_VERSIONS[kind], "sha256": _digest(refs)}
    out["protocol"] = {"version": PROTOCOL_VERSION, "sha256": _digest(PROTOCOL_SOURCES)}
    out["autocast"] = {"version": AUTOCAST_VERSION, "sha256": _digest(AUTOCAST_SOURCES)}
    return out
