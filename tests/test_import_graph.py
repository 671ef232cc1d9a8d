"""The layout's arrows, read from the source (AST, every import including those inside functions): `zoo` never
imports `benchmarks`; the parts of `benchmarks` (its subpackages and top-level modules) import each other without
a cycle; nothing outside `zoo` imports a private `zoo._name` (zoo's own white-box tests of its private modules
excepted: `test_weights.py`, `test_zoo_imports.py`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Absolute module names `path` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from benchmarks import boards` names a module
    return out


def _files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def _part(module: str) -> str | None:
    """`benchmarks.cells.train` → `cells`, `benchmarks.suites` → `suites`; None outside benchmarks."""
    parts = module.split(".")
    return parts[1] if parts[0] == "benchmarks" and len(parts) > 1 else None


def _benchmarks_parts() -> set[str]:
    return {p.stem if p.is_file() else p.name for p in (ROOT / "benchmarks").iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}


def test_zoo_never_imports_benchmarks() -> None:
    bad = {str(f.relative_to(ROOT)): sorted(m for m in _imports(f) if m.split(".")[0] == "benchmarks")
           for f in _files("zoo")}
    assert not {f: m for f, m in bad.items() if m}


def test_the_parts_of_benchmarks_import_each_other_without_a_cycle() -> None:
    parts = _benchmarks_parts()
    assert {"data", "metrics", "cells", "results", "boards", "cli", "suites", "runner"} <= parts
    edges: dict[str, set[str]] = {p: set() for p in parts}
    for f in _files("benchmarks"):
        src = _part(".".join(f.relative_to(ROOT).with_suffix("").parts))
        if src is None or src == "__init__":
            continue
        for m in _imports(f):
            dst = _part(m)
            if dst in parts and dst != src:
                edges[src].add(dst)

    def cycle_from(start: str, node: str, seen: list[str]) -> list[str] | None:
        for nxt in sorted(edges[node]):
            if nxt == start:
                return [*seen, nxt]
            if nxt not in seen:
                found = cycle_from(start, nxt, [*seen, nxt])
                if found:
                    return found
        return None

    cycles = [c for p in sorted(parts) if (c := cycle_from(p, p, [p]))]
    assert not cycles, f"import cycles among the parts of benchmarks: {cycles[0]}"


ZOO_WHITE_BOX = {"test_weights.py", "test_zoo_imports.py", "test_precision.py"}  # they test private parts


@pytest.mark.parametrize("top", ["benchmarks", "scripts", "tests"])
def test_nothing_outside_zoo_imports_a_private_zoo_name(top: str) -> None:
    bad = {}
    for f in _files(top):
        if f.name in ZOO_WHITE_BOX:
            continue
        private = sorted(m for m in _imports(f) if m.startswith("zoo.") and any(
            part.startswith("_") for part in m.split(".")[1:]))
        if private:
            bad[str(f.relative_to(ROOT))] = private
    assert not bad, f"use zoo's public API (zoo/__init__.py) instead: {bad}"
