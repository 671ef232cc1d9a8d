"""Convert a schema-1 results store to schema 2 (`benchmarks.results.schema`), without pretending anything was re-run.

Schema-1 results kept test probabilities rounded to 6 decimals and no validation outputs (classification), or only
rounded per-image metrics (segmentation). Each converted result:
- gets the schema-2 cell section (versions 1: the code that made schema-1 results) and so a new key; cells that
  started from another cell's model point at that cell's new key;
- classification: stores the rounded test probabilities and labels as its outputs (`rounded-probabilities`, not
  lossless) and its test metrics, CIs and per-class AUC *re-scored from them* (sensitivity/specificity at the
  threshold schema 1 recorded), so every number a board shows comes from stored outputs; segmentation: no outputs,
  metrics as stored;
- records where it came from (path, sha256 and key of the schema-1 file, which stays in git history), the original
  metrics and the original git flag (which also counted the results store), and a note the boards show.

Usage: python scripts/migrate_results.py [--results-dir leaderboards/results] [--dry-run]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cells.classification import test_section
from benchmarks.data import Task
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result, finite_dict
from benchmarks.suites import config_hash

SCHEMA1_VERSIONS = {"model": 1, "cell": 1, "protocol": 1}
ROUNDED = "scores rounded (schema 1)"
NO_OUTPUTS = "no outputs (schema 1)"


def new_config(old: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    cfg = json.loads(json.dumps(old["cell"]))
    if cfg.get("init_from"):
        cfg["init_from"] = keys[cfg["init_from"]]
    cfg["versions"] = dict(SCHEMA1_VERSIONS)
    return cfg


def new_key(old: dict[str, Any], cfg: dict[str, Any]) -> str:
    return f"{old['key'].rsplit('__', 1)[0]}__{config_hash(cfg)}"


def convert(old: dict[str, Any], source: Path, root: Path, keys: dict[str, str]) -> Result:
    cfg = new_config(old, keys)
    key = new_key(old, cfg)
    prov = dict(old["provenance"])
    original_dirty = prov["git"].get("dirty")
    prov["git"] = {"sha": prov["git"].get("sha"), "dirty": None, "paths": []}  # unknown: see original_git_dirty
    base: dict[str, Any] = {"key": key, "suite": old["suite"], "status": old["status"], "reason": old["reason"],
                            "cell": cfg, "provenance": prov}
    migration: dict[str, Any] = {"from_schema": 1, "source_path": str(source.relative_to(root.parent.parent))
                                 if root.parent.parent in source.parents else str(source),
                                 "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                                 "source_key": old["key"], "original_git_dirty": original_dirty,
                                 "note": NO_OUTPUTS if old["data"].get("task") == "segmentation" else ROUNDED}
    if old["status"] != "ok":
        migration["note"] = "schema 1"
        return Result(**base, migration=migration)
    data = dict(old["data"], n=old["n"])
    original = {"original_metrics": finite_dict(old["metrics"]),
                "original_val_metrics": finite_dict(old["val_metrics"]),
                "original_ci": {k: tuple(v) for k, v in old["ci"].items()}}
    common = base | {"model": old["model"], "data": data, "training": old["training"]}
    if data["task"] == "segmentation":
        section = {"test": finite_dict(old["metrics"]), "val": finite_dict(old["val_metrics"]),
                   "per_image": [{"id": i["id"], "metrics": finite_dict({k: v for k, v in i.items() if k != "id"})}
                                 for i in old["per_image"]]}
        return Result(**common, metrics=section, migration=migration | original)
    labels = np.asarray(old["test_labels"], dtype=np.int64)
    probs = np.asarray(old["test_scores"], dtype=np.float64)
    section = test_section(Task(data["task"]), labels, probs, old["metrics"].get("threshold"), cfg["seed"],
                           tuple(old["ci"])) | {"val": {}}
    result = Result(**common, metrics=section, migration=migration | original)
    return result.with_outputs({"test/ids": np.arange(len(labels), dtype=np.int64),
                                "test/labels": labels.reshape(len(labels), -1), "test/probabilities": probs},
                               "rounded-probabilities", lossless=False,
                               note="schema 1 kept only test probabilities rounded to 6 decimals; no logits, no "
                                    "validation outputs")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results-dir", default="leaderboards/results")
    ap.add_argument("--dry-run", action="store_true", help="convert and validate, write nothing")
    args = ap.parse_args(argv)
    root = Path(args.results_dir)
    files = sorted(p for p in root.glob("*/*.json") if json.loads(p.read_text()).get("schema") == 1)
    olds = {p: json.loads(p.read_text()) for p in files}
    keys: dict[str, str] = {}
    pending = list(olds.values())
    while pending:  # a cell's new key needs the new key of the cell it starts from: resolve sources first
        ready = [o for o in pending if not o["cell"].get("init_from") or o["cell"]["init_from"] in keys]
        if not ready:
            raise SystemExit(f"init_from points at a cell with no result in {root}: {pending[0]['cell']['init_from']}")
        for old in ready:
            keys[old["key"]] = new_key(old, new_config(old, keys))
        pending = [o for o in pending if o["key"] not in keys]
    store = ResultStore(root)
    for p, old in olds.items():
        result = convert(old, p, root, keys)
        if args.dry_run:
            continue
        store.write(result)
        p.unlink()
    print(f"{'checked' if args.dry_run else 'converted'} {len(files)} schema-1 result(s) in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
