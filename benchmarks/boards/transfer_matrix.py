"""The transfer-matrix board: for each architecture and transfer mode, rows = where the backbone came from (`none`,
`imagenet`, or a medical source dataset), columns = target dataset; each cell is the target's test AUC (mean ± std
over seeds) and its difference from training the target from scratch, with a paired-bootstrap 95% CI.

Pure functions of the results store, like every board (the `transfer-matrix` entry of `benchmarks.boards.BOARDS`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from rich.table import Table

from benchmarks import metrics
from benchmarks.boards.render import (
    NOTES_TEXT,
    footer,
    header,
    headline_section,
    notes,
    number,
    ok_results,
    png,
    seeds_text,
)
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result
from benchmarks.suites import Suite, TransferGrid

COLUMNS = ["arch", "mode", "source", "target", "seeds", "auc_mean", "auc_std", "delta", "delta_ci_low",
           "delta_ci_high", "scratch_auc_mean", "scratch_epochs", "best_baseline", "delta_best", "delta_best_ci_low",
           "delta_best_ci_high", "notes"]
MODES = ("features", "finetune")


def _row_of(r: Result, grid: TransferGrid) -> tuple[str, str] | None:
    """(source row, mode column) of a result, or None for the scratch reference (it is the Δ baseline)."""
    tag, mode = r.cell.tag, r.cell.mode
    if mode == "scratch":
        return None
    source = "none" if tag == "random" else "imagenet" if tag == grid.imagenet else tag
    return source, mode


def _split(ok: list[Result], suite: Suite, grid: TransferGrid) -> tuple[list[Result], list[Result]]:
    """The grid's target results and its source results (cells as the suite defines them now; a run with overridden
    settings is a different cell and stays off the matrix)."""
    targets = {c.key for c in grid.targets(suite)}
    sources = {c.key for c in grid.sources(suite).values()}
    return [r for r in ok if r.key in targets], [r for r in ok if r.key in sources]


def _by_seed(results: list[Result]) -> dict[int, Result]:
    return {r.cell.seed: r for r in sorted(results, key=lambda r: r.cell.seed)}


def _val_auc(r: Result) -> float:
    return number(r.metrics.val.get("auc")) if r.metrics is not None else float("nan")


def chosen_scratch(results: list[Result]) -> dict[int, Result]:
    """Seed → the from-scratch result whose budget (epochs) scored the best validation AUC (ties: fewer epochs),
    among the seeds that have run every budget any seed ran (a seed still missing one is left out: choosing among
    the budgets that happen to have finished would not be the rule)."""
    budgets = {r.cell.protocol.epochs for r in results}
    ran: dict[int, set[int]] = {}
    for r in results:
        ran.setdefault(r.cell.seed, set()).add(r.cell.protocol.epochs)
    out: dict[int, Result] = {}
    for r in sorted(results, key=lambda r: (r.cell.seed, r.cell.protocol.epochs)):
        if ran[r.cell.seed] != budgets:
            continue
        best = out.get(r.cell.seed)
        if best is None or _val_auc(r) > _val_auc(best):
            out[r.cell.seed] = r
    return out


def _delta(store: ResultStore, row: dict[int, Result], base: dict[int, Result],
           once: bool) -> metrics.PairedBootstrap | None:
    """Paired Δ test AUC over the seeds both have (seeds and test images resampled together); a row run `once` by
    design (fixed weights, deterministic head) pairs with every seed of the base, its one run standing for each."""
    seeds = sorted(row.keys() & base.keys())
    if once and row:
        seeds = sorted(base)
        row = dict.fromkeys(seeds, next(iter(row.values())))
    if not seeds:
        return None
    first = row[seeds[0]]
    assert first.data is not None
    return metrics.paired_seeds_hierarchical(store.scores(first)[0], [store.scores(row[s])[1] for s in seeds],
                                             [store.scores(base[s])[1] for s in seeds], first.data.task)


def board(store: ResultStore, suite: Suite) -> pd.DataFrame:
    """One row per (arch, mode, source, target) that has results: Δ against the target trained from scratch (its
    budget chosen per seed on validation) and against the better non-pretrained baseline (scratch or random-weight
    features, the one with the higher mean validation AUC)."""
    ok, _ = ok_results(store, suite)
    rows = []
    for grid in suite.grids:
        assert isinstance(grid, TransferGrid)
        mine, _ = _split(ok, suite, grid)
        design = Counter((c.model, c.dataset, c.mode.value) for c in grid.targets(suite))
        for target in grid.datasets:
            on_target = [r for r in mine if r.cell.dataset == target]
            scratch = chosen_scratch([r for r in on_target if r.cell.mode == "scratch"])
            groups: dict[tuple[str, str], list[Result]] = {}
            for r in on_target:
                where = _row_of(r, grid)
                if where is not None:
                    groups.setdefault(where, []).append(r)
            baselines = {"scratch": scratch, "random features": _by_seed(groups.get(("none", "features"), []))}
            baselines = {k: v for k, v in baselines.items() if v}
            best = max(baselines, key=lambda k: np.mean([_val_auc(r) for r in baselines[k].values()]), default=None)
            for (source, mode), results in groups.items():
                runs = _by_seed(results)
                auc = [number(r.test.get("auc")) for r in runs.values()]
                row = {"arch": grid.arch, "mode": mode, "source": source, "target": target, "seeds": len(auc),
                       "auc_mean": float(np.mean(auc)), "auc_std": float(np.std(auc, ddof=1)) if len(auc) > 1 else np.nan,
                       "scratch_auc_mean": np.nan, "scratch_epochs": "", "best_baseline": best or "",
                       "notes": notes(results + list(scratch.values()))}
                itself = best == "random features" and (source, mode) == ("none", "features")
                for name, base in (("delta", scratch), ("delta_best", {} if itself else baselines.get(best or "", {}))):
                    once = design[results[0].cell.model, target, mode] == 1
                    test = _delta(store, runs, base, once) if base else None
                    row |= {name: np.nan if test is None else test.delta,
                            f"{name}_ci_low": np.nan if test is None else test.ci_low,
                            f"{name}_ci_high": np.nan if test is None else test.ci_high}
                if scratch:
                    row |= {"scratch_auc_mean": float(np.mean([number(r.test.get("auc")) for r in scratch.values()])),
                            "scratch_epochs": "/".join(str(r.cell.protocol.epochs) for r in scratch.values())}
                rows.append(row)
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    order = {"none": 0, "imagenet": 1}
    out = pd.DataFrame(rows)
    out["_o"] = out["source"].map(lambda s: order.get(s, 2))
    return out.sort_values(["arch", "mode", "_o", "source", "target"]).drop(columns="_o")[COLUMNS].reset_index(
        drop=True)


def _cell_text(r: pd.Series | None, md: bool = True) -> str:
    if r is None:
        return "—"
    text = f"{r.auc_mean:.3f}" + (f" ± {r.auc_std:.3f}" if r.seeds > 1 else " (1 run)")
    sep = "<br>" if md else " "
    for name, label in (("delta", "Δ"), ("delta_best", "Δbest")):
        low, high = getattr(r, f"{name}_ci_low"), getattr(r, f"{name}_ci_high")
        if not np.isnan(getattr(r, name)):
            mark = "**" if md and (low > 0 or high < 0) else ""
            text += f"{sep}{mark}{label} {getattr(r, name):+.3f} [{low:+.3f}, {high:+.3f}]{mark}"
    return text


def _scratch_text(chosen: dict[int, Result]) -> str:
    if not chosen:
        return "—"
    auc = [number(r.test.get("auc")) for r in chosen.values()]
    spread = f" ± {np.std(auc, ddof=1):.3f}" if len(auc) > 1 else " (1 run)"
    return f"{np.mean(auc):.3f}{spread}<br>({'/'.join(str(r.cell.protocol.epochs) for r in chosen.values())} ep)"


def _protocol_text(results: list[Result]) -> str:
    trained = next((r for r in results if r.cell.mode != "features"), None)
    if trained is None:
        return ""
    p = trained.cell.protocol
    return (f"{p.optimizer} {p.lr:g}, {p.schedule}, {p.epochs} epochs, batch {p.batch_size}, best "
            f"{p.monitor.replace('_', ' ')}")


# the rows a headline sums up: (label, mode, which sources)
_HEADLINE_ROWS = (("fine-tuned from a medical source", "finetune", "medical"),
                  ("frozen features of a medical source", "features", "medical"),
                  ("fine-tuned from ImageNet", "finetune", "imagenet"),
                  ("frozen ImageNet features", "features", "imagenet"),
                  ("frozen random-weight features", "features", "none"))


def headline(b: pd.DataFrame) -> list[str]:
    """Per architecture, for each kind of row: its seeds, the range of Δ against the target from scratch, and how
    many of those Δs have a CI that excludes 0, in which direction."""
    lines = []
    for arch, sub in b.groupby("arch", sort=False):
        parts = []
        for label, mode, kind in _HEADLINE_ROWS:
            medical = ~sub["source"].isin(["none", "imagenet"])
            m = sub[(sub["mode"] == mode) & (medical if kind == "medical" else sub["source"] == kind)]
            m = m[m["delta"].notna() & m["delta_ci_low"].notna() & m["delta_ci_high"].notna()]
            if m.empty:
                continue
            seeds = sorted(set(m["seeds"].astype(int)))
            span = (f"Δ {m['delta'].iloc[0]:+.3f}" if len(m) == 1
                    else f"Δ {m['delta'].min():+.3f} to {m['delta'].max():+.3f}")
            below, above = int((m["delta_ci_high"] < 0).sum()), int((m["delta_ci_low"] > 0).sum())
            parts.append(f"{label} ({'/'.join(seeds_text(n) for n in seeds)}): {span}; of {len(m)} CIs, {below} "
                         f"below 0 and {above} above")
        if parts:
            lines.append(f"- {arch}, against the target from scratch: " + "; ".join(parts))
    return lines


def markdown(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str:
    b = board(store, suite) if b is None else b
    ok, other = ok_results(store, suite)
    shown: set[str] = set()
    lines = header(suite) + [
             "Rows: where the backbone's weights came from — **none** (random weights: the random-feature control in "
             "*features*), **imagenet**, or a medical **source** dataset (the model trained on it with the same seed "
             "as the target run, kept by the harness: a row's seeds vary its source too). Columns: the target "
             "dataset, scored on its official test split (never used for training or model selection). Each cell: "
             "test AUC mean ± std over seeds (*1 run*: ImageNet features, whose fixed weights and deterministic head "
             "give every seed the same numbers), then **Δ** = minus the same architecture trained on the target *from "
             "scratch* — per seed, the budget of 10, 20 or 40 epochs with the best validation AUC — and **Δbest** = "
             "minus the better non-pretrained baseline (scratch or random-weight features, the one with the higher "
             "mean validation AUC; named per target in the CSV). Each Δ is paired by seed with a 95% CI from 1000 "
             "bootstrap resamples that draw seeds and the target's test images together (a 1-run row stands for "
             "every seed); **bold** where the CI excludes 0. The diagonal (source = target) is left out. Figure: Δ "
             "as a heatmap. AUCs, Δs and CIs are computed from the outputs stored with the results. " + NOTES_TEXT
             + " A matrix cell's notes are in the CSV; the sources' notes in their table.", "",
             f"![transfer matrix heatmap]({suite.name}.png)", "", *headline_section(headline(b))]
    for grid in suite.grids:
        assert isinstance(grid, TransferGrid)
        mine, sources = _split(ok, suite, grid)
        shown.update(r.key for r in mine + sources)
        sub = b[b["arch"] == grid.arch]
        size = mine[0].data.input_size if mine and mine[0].data else grid.input_size or grid.data_size
        lines += [f"## {grid.arch} ({size} px)", ""]
        if sub.empty:
            lines += ["No results yet.", ""]
            continue
        subset = grid.protocol.train_subset
        lines += [f"Target runs: {_protocol_text([r for r in mine if r.cell.protocol.epochs == grid.protocol.epochs])}"
                  + (f", on {subset} training images of the target" if subset else "") + ". Sources: "
                  + (f"fine-tuned from ImageNet ({grid.imagenet})" if grid.imagenet else "trained from scratch")
                  + f", {_protocol_text(sources) or 'as the targets'}, on the whole training split, one per seed:",
                  "", "| source | seeds | test AUC on its own test split | training images | best epoch per seed | notes |",
                  "|---|---:|---:|---:|---|---|"]
        for dataset in grid.datasets:
            runs = list(_by_seed([r for r in sources if r.cell.dataset == dataset]).values())
            if runs:
                auc = [number(r.test.get("auc")) for r in runs]
                lines.append(f"| {dataset} | {len(runs)} | {np.mean(auc):.3f}"
                             + (f" ± {np.std(auc, ddof=1):.3f}" if len(runs) > 1 else " (1 run)")
                             + f" | {runs[0].data.n['train'] if runs[0].data else '?'} | "
                             + "/".join(str(r.training.best_epoch if r.training else "?") for r in runs)
                             + f" | {notes(runs)} |")
        lines.append("")
        scratch = {t: chosen_scratch([r for r in mine if r.cell.dataset == t and r.cell.mode == "scratch"])
                   for t in grid.datasets}
        for mode in MODES:
            m = sub[sub["mode"] == mode]
            if m.empty:
                continue
            sources = list(dict.fromkeys(m["source"]))
            lines += [f"### {mode}", "", "| source ↓ / target → | " + " | ".join(grid.datasets) + " |",
                      "|---|" + "---|" * len(grid.datasets)]
            for source in sources:
                cells = []
                for t in grid.datasets:
                    hit = m[(m["source"] == source) & (m["target"] == t)]
                    cells.append(_cell_text(hit.iloc[0] if len(hit) else None))
                lines.append(f"| {source} | " + " | ".join(cells) + " |")
            lines.append("| *scratch (reference; epochs chosen per seed)* | " + " | ".join(
                _scratch_text(v) for v in scratch.values()) + " |")
            lines.append("")
    hidden = [r for r in ok if r.key not in shown]
    if hidden:
        lines += [f"{len(hidden)} stored result(s) of {suite.id} ran with other settings (command-line overrides) and "
                  f"are not part of the matrix.", ""]
    return "\n".join(lines + footer(store, suite, other, sorted({d for g in suite.grids for d in g.datasets})))


def csv_text(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str:
    b = board(store, suite) if b is None else b
    return b.to_csv(index=False, float_format="%.4f", lineterminator="\n")


def plot_png(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> bytes:
    """One heatmap per (architecture, mode): colour = Δ AUC vs scratch, text = AUC and Δ (* = CI excludes 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = board(store, suite) if b is None else b
    grids = [g for g in suite.grids if isinstance(g, TransferGrid)]
    fig, axes = plt.subplots(len(grids), len(MODES), figsize=(5.6 * len(MODES), 3.9 * len(grids)), squeeze=False)
    fig.subplots_adjust(left=0.14, right=0.84, hspace=0.45, wspace=0.5)
    lim = max(0.05, float(np.nanmax(np.abs(b["delta"])))) if not b.empty and b["delta"].notna().any() else 0.1
    image = None
    for row, grid in zip(axes, grids, strict=True):
        for ax, mode in zip(row, MODES, strict=True):
            m = b[(b["arch"] == grid.arch) & (b["mode"] == mode)]
            sources = list(dict.fromkeys(m["source"])) or ["none"]
            grid_delta = np.full((len(sources), len(grid.datasets)), np.nan)
            for i, source in enumerate(sources):
                for j, t in enumerate(grid.datasets):
                    hit = m[(m["source"] == source) & (m["target"] == t)]
                    if len(hit):
                        r = hit.iloc[0]
                        grid_delta[i, j] = r.delta
                        star = "*" if r.delta_ci_low > 0 or r.delta_ci_high < 0 else ""
                        ax.text(j, i, f"{r.auc_mean:.3f}\nΔ {r.delta:+.3f}{star}", ha="center", va="center",
                                fontsize=7, color="white" if abs(r.delta) > 0.6 * lim else "black")
                    else:
                        ax.text(j, i, "—", ha="center", va="center", fontsize=8, color="grey")
            image = ax.imshow(grid_delta, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
            ax.set_xticks(range(len(grid.datasets)), [d.removesuffix("mnist") for d in grid.datasets], fontsize=8)
            ax.set_yticks(range(len(sources)), sources, fontsize=8)
            ax.set_title(f"{grid.arch} — {mode}", fontsize=9)
            ax.set_xlabel("target", fontsize=8)
            ax.set_ylabel("source", fontsize=8)
    if image is not None:
        fig.colorbar(image, cax=fig.add_axes((0.88, 0.15, 0.02, 0.7)), label="Δ test AUC vs target from scratch")
    fig.suptitle(f"{suite.id}: test AUC and Δ vs scratch (* 95% CI excludes 0) — research use only",
                 fontsize=9)
    return png(fig)


def rich_table(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> Table:
    b = board(store, suite) if b is None else b
    table = Table(title=f"{suite.id} — test AUC and Δ vs scratch [95% CI]")
    for col in ("arch", "mode", "source", "target", "seeds", "AUC / Δ"):
        table.add_column(col, overflow="fold")
    for r in b.itertuples():
        table.add_row(r.arch, r.mode, r.source, r.target.removesuffix("mnist"), str(r.seeds),
                      _cell_text(pd.Series(r._asdict()), md=False))
    return table
