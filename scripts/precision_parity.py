"""Precision parity (`benchmarks.parity`), written to docs/precision-parity.md and .json:
- deterministic: every quick-suite cell's fp32-trained model scored with its network in fp32 and in bf16, and the
  plain U-Net's fp32 CHASE_DB1 model when the results store holds it (`medzoo run --committed --suite segmentation
  --models unet2015_w32.random --datasets chase_db1 --precision fp32`);
- training: medmnist-v2 BreastMNIST resnet18_28 trained in bf16 (`medmnist-v2@2`) against the same cells trained in
  fp32 (`--precision fp32`: the same code, seeds and protocol but the precision), from the stored outputs of the
  results store (results of today's code versions only: `boards.render.current`); and the CHASE_DB1 plain U-Net, seed 0, bf16 against fp32 (F1 and pooled AUC), when both are stored.

Usage: python scripts/precision_parity.py [--data-dir DIR] [--results leaderboards/results] [--bf16-cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import parity
from benchmarks.boards.render import current
from benchmarks.cells.feature_cache import FeatureCache
from benchmarks.cells.provenance import cpu_isa, cpu_name, git_state
from benchmarks.results import ResultStore
from benchmarks.results.store import atomic_write
from benchmarks.suites import SUITES, Cell

BOUND = 0.002  # |ΔAUC| allowed for the same weights
TRAINING_BOUND = 0.02  # the bootstrap 95% CI of the seed-paired ΔAUC must lie inside ±this
UNET_BOUNDS = {"f1": 0.01, "auc": 0.003}  # |bf16 − fp32| of the CHASE_DB1 plain U-Net trained each way


def _line(r: parity.Parity) -> str:
    pairs = (f"{r.pairs.reordered} of {r.pairs.pairs} | {r.pairs.null_sd:.4f} | {r.delta / r.pairs.null_sd:+.1f}"
             if r.pairs and r.pairs.null_sd > 0 else "– | – | –")
    return f"| {r.cell} | {r.metric} | {r.fp32:.4f} | {r.bf16:.4f} | {r.delta:+.4f} | {pairs} |"


def _fp32_override(cell: Cell) -> Cell:
    return replace(cell, protocol=replace(cell.protocol, precision="fp32"), overrides=(("precision", "fp32"),))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", help="MedMNIST folder (default: $MEDZOO_DATA_DIR)")
    ap.add_argument("--results", default="leaderboards/results", help="results store (default %(default)s)")
    ap.add_argument("--bf16-cache", help="a feature cache a bf16 quick run filled (saves recomputing its features)")
    ap.add_argument("--out", default="docs/precision-parity", help="report path without suffix")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    store = ResultStore(args.results)
    bf16_cache = FeatureCache(args.bf16_cache) if args.bf16_cache else None
    rows = []
    for cell in SUITES.get("quick").cells():
        rows.append(parity.classification(cell, args.data_dir, bf16_cache))
        print(_line(rows[-1]), flush=True)
    seg = next(c for c in SUITES.get("segmentation").cells()
               if c.model == "unet2015_w32.random" and c.dataset == "chase_db1")
    seg32 = store.result(seg.suite, _fp32_override(seg).key)
    if seg32 is not None:
        rows.append(parity.segmentation(_fp32_override(seg), None, store))
        print(_line(rows[-1]), flush=True)
    report: dict[str, Any] = {"deterministic": parity.summary(rows, BOUND)}
    v2 = [r for r in store.results("medmnist-v2") if r.suite == "medmnist-v2@2" and r.status == "ok" and current(r)
          and r.cell.model == "resnet18_28.random" and r.cell.dataset == "breastmnist"]
    pick = [[r for r in v2 if r.cell.overrides == o] for o in ([("precision", "fp32")], [])]
    trained = parity.training(store, pick[0], pick[1], "medmnist-v2 BreastMNIST resnet18_28 (28 px), bf16 − fp32")
    ci = trained.hierarchical
    report["training"] = trained.record() | {"bound": TRAINING_BOUND,
                                             "within": -TRAINING_BOUND <= ci.ci_low and ci.ci_high <= TRAINING_BOUND}
    seg16 = store.result(seg.suite, seg.key)
    if seg32 is not None and seg16 is not None:
        deltas = {m: float(seg16.test[m]) - float(seg32.test[m]) for m in UNET_BOUNDS}
        report["unet_training"] = {"cell": seg.label, "fp32": {m: seg32.test[m] for m in UNET_BOUNDS},
                                   "bf16": {m: seg16.test[m] for m in UNET_BOUNDS}, "delta": deltas,
                                   "epochs": {"fp32": seg32.training.best_epoch if seg32.training else None,
                                              "bf16": seg16.training.best_epoch if seg16.training else None},
                                   "bounds": UNET_BOUNDS,
                                   "within": all(abs(deltas[m]) <= b for m, b in UNET_BOUNDS.items())}
    report |= {"machine": {"cpu": cpu_name(), "isa": cpu_isa(), "load_average_at_start": list(load)},
               "git": git_state()}
    out = Path(args.out)
    atomic_write(out.with_suffix(".json"), (json.dumps(report, indent=1) + "\n").encode())
    det = report["deterministic"]
    tr = report["training"]
    lines = ["# Precision parity: bf16 against fp32", "",
             "<!-- written by `python scripts/precision_parity.py`; do not edit by hand -->", "",
             f"Machine: {report['machine']['cpu']} ({' '.join(report['machine']['isa'])}); code "
             f"{(report['git']['sha'] or '?')[:10]}{' (uncommitted changes)' if report['git']['dirty'] else ''}.", "",
             "## The same fp32 weights, evaluated in fp32 and in bf16", "",
             (parity.__doc__ or "").split("\n\n")[1].replace("\n  ", " "), "",
             f"Bound: |ΔAUC| ≤ {BOUND}. Largest |ΔAUC|: **{det['max_abs_delta']:.4f}** — "
             f"{'within' if det['within'] else 'OUTSIDE'} the bound.", "",
             "AUC sees only the order of (positive, negative) test pairs. *Re-ordered* counts the pairs whose order "
             "bf16 changes; *null sd* is the sd ΔAUC would have if each of them had moved by a coin flip, i.e. the "
             "|ΔAUC| that rounding noise alone gives on this test set; *z* = Δ / null sd (|z| ≲ 2: no shift in one "
             "direction).", "",
             "| cell (fp32) | metric | fp32 | bf16 | Δ (bf16 − fp32) | re-ordered pairs | null sd | z |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [_line(r) for r in rows]
    if seg32 is None:
        lines += ["", f"Not run: the plain U-Net row (no fp32 result `{_fp32_override(seg).key}` in {args.results} "
                      f"yet: `medzoo run --committed --suite segmentation --models unet2015_w32.random --datasets "
                      f"chase_db1 --precision fp32 --save-checkpoints`)."]
    lines += ["", "## Trained in bf16 against trained in fp32", "",
              f"{tr['what']}: seeds {tr['seeds']}; test AUC fp32 {', '.join(f'{a:.4f}' for a in tr['fp32'])}; "
              f"bf16 {', '.join(f'{b:.4f}' for b in tr['bf16'])}; per-seed Δ "
              f"{', '.join(f'{d:+.4f}' for d in tr['per_seed_delta'])}.", "",
              f"Mean paired Δ **{tr['mean_delta']:+.4f}**, bootstrap 95% CI over seeds and test images "
              f"[{tr['ci_seeds_and_rows'][0]:+.4f}, {tr['ci_seeds_and_rows'][1]:+.4f}] (over test images with the "
              f"seeds fixed: [{tr['ci_test_rows'][0]:+.4f}, {tr['ci_test_rows'][1]:+.4f}]); bound ±{TRAINING_BOUND}: "
              f"**{'within' if tr['within'] else 'OUTSIDE'}**. Both sides are `medmnist-v2@2` cells run by the same "
              f"code with the same seeds; the fp32 side is its `--precision fp32` override.", ""]
    un = report.get("unet_training")
    if un is None:
        lines += ["CHASE_DB1 plain U-Net trained in bf16 and in fp32: not run yet (needs both results in the store)."]
    else:
        lines += [f"{un['cell']}, trained in bf16 against trained in fp32 (best epochs {un['epochs']['bf16']} and "
                  f"{un['epochs']['fp32']}): " + "; ".join(
                      f"{m} {un['fp32'][m]:.4f} → {un['bf16'][m]:.4f} (Δ {un['delta'][m]:+.4f}, bound ±{b})"
                      for m, b in un["bounds"].items()) + f": **{'within' if un['within'] else 'OUTSIDE'}**."]
    atomic_write(out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    print(f"wrote {out}.md and {out}.json")
    return 0 if det["within"] and tr["within"] and report.get("unet_training", {}).get("within", False) else 1


if __name__ == "__main__":
    sys.exit(main())
