"""Code versions: a cell key changes when a model, cell kind or protocol version does, and a unit's source cannot
change under the same version unnoticed (tests/fingerprints.json, written by scripts/fingerprints.py)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import versions
from benchmarks.suites import SUITES

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from fingerprints import FILE, stale  # noqa: E402

CURRENT = versions.fingerprints()


def test_every_unit_is_recorded_with_its_current_version() -> None:
    recorded = json.loads(FILE.read_text())
    assert set(recorded) == set(CURRENT), "run python scripts/fingerprints.py"
    assert {u: f["version"] for u, f in recorded.items()} == {u: f["version"] for u, f in CURRENT.items()}, \
        "a version was bumped: run python scripts/fingerprints.py"


@pytest.mark.parametrize("unit", sorted(CURRENT))
def test_source_unchanged_under_its_version(unit: str) -> None:
    recorded = json.loads(FILE.read_text())
    assert not stale(recorded, {unit: CURRENT[unit]}), (
        f"{unit}: its source changed but its version did not. Bump the version if results can change (then run "
        f"python scripts/fingerprints.py), or run python scripts/fingerprints.py --same-behaviour if none can")


def test_an_edit_under_the_same_version_is_caught_and_a_bump_is_not() -> None:
    edited = {u: dict(f) for u, f in CURRENT.items()}
    edited["model:resnet18_28"]["sha256"] = "0" * 64
    assert stale(edited, CURRENT) == ["model:resnet18_28"]
    edited["model:resnet18_28"]["version"] = CURRENT["model:resnet18_28"]["version"] + 1
    assert stale(edited, CURRENT) == []


def test_versions_are_part_of_the_cell_key(monkeypatch: pytest.MonkeyPatch) -> None:
    cell = next(c for c in SUITES.get("quick").cells() if c.arch == "resnet18_28")
    before = cell.key
    assert cell.config()["versions"] == {"model": 1, "cell": versions.CELL_VERSIONS["classification"],
                                         "protocol": versions.PROTOCOL_VERSION,
                                         "autocast": versions.AUTOCAST_VERSION}  # the quick suite runs in bf16
    monkeypatch.setitem(versions.CELL_VERSIONS, "classification", versions.CELL_VERSIONS["classification"] + 1)
    assert replace(cell).key != before
    monkeypatch.undo()
    assert replace(cell).key == before
    monkeypatch.setattr(versions, "PROTOCOL_VERSION", versions.PROTOCOL_VERSION + 1)
    assert replace(cell).key != before


def test_the_autocast_version_makes_new_bf16_cells_only(monkeypatch: pytest.MonkeyPatch) -> None:
    bf16 = next(c for c in SUITES.get("quick").cells() if c.arch == "resnet18_28")
    fp32 = replace(bf16, protocol=replace(bf16.protocol, precision="fp32"))
    assert "autocast" not in fp32.config()["versions"]  # fp32 cells never autocast: their keys stay as they were
    keys = bf16.key, fp32.key
    monkeypatch.setattr(versions, "AUTOCAST_VERSION", versions.AUTOCAST_VERSION + 1)
    assert replace(bf16).key != keys[0] and replace(fp32).key == keys[1]
