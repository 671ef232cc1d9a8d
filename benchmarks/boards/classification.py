"""Leaderboards are pure functions of the results store: results → pandas → `<suite>.md`, `.csv`, `.png`.

Rows are configurations (model, weights, mode, resolution, protocol); seeds are aggregated as mean ± std (std blank
for one run) with a CI of the mean over seeds and test images (`metrics.seeds_mean_ci`). A row's rank is 1 + the
number of rows whose test AUC is significantly higher by paired bootstraps over every shared seed, Holm-corrected
within the dataset (`metrics.ranks`), so every row no other row beats has rank 1; rows are ordered by rank, then AUC.
Published MedMNIST v2 numbers appear beside ours, marked "reported (paper)"; they never enter the store.
Tables hold no timestamps or durations, so `--check` can compare them byte for byte.
"""

from __future__ import annotations

import io
import json
from importlib import resources

import numpy as np
import pandas as pd
from rich.table import Table

from benchmarks import metrics
from benchmarks.boards.coverage import downloaded
from benchmarks.boards.render import (
    NOTES_TEXT,
    Point,
    footer,
    forest_figure,
    header,
    headline_section,
    notes,
    ok_results,
    png,
    runs,
    seeds_text,
)
from benchmarks.data import DATASETS
from benchmarks.results import ResultStore
from benchmarks.results.schema import CellRecord, Result
from benchmarks.suites import Suite
from zoo import Task, get_spec

RANK_BY = "auc"  # rows are ordered and ranked by it, in its registered direction


def _extra() -> list[metrics.Metric]:
    """The registered metrics that ask for a column on classification boards (after AUC and ACC)."""
    return [m for m in metrics.METRICS.values() if m.column and any(t.kind is Task.CLASSIFICATION for t in m.tasks)]


def columns() -> list[str]:
    """The board's CSV columns (metric columns follow the registry)."""
    return (["dataset", "rank", "model", "weights", "mode", "data_size", "policy", "input_size", "protocol",
             "precision", "seeds", "auc_mean", "auc_std", "auc_ci_low", "auc_ci_high", "acc_mean", "acc_std"]
            + [m.name for m in _extra()] + ["params_m", "notes", "source"])


def _config_id(r: Result) -> str:
    """A row: the cell config without its seed."""
    cfg = {k: v for k, v in r.cell.config().items() if k != "seed"}
    return json.dumps(cfg, sort_keys=True)


def _protocol_label(cell: CellRecord) -> str:
    p = cell.protocol
    if cell.mode == "features":
        text = f"{p.head} head"
    else:
        text = f"{p.optimizer} {p.lr:g}, {p.epochs} ep, {p.schedule}"
        if p.patience is not None:
            text += f", patience {p.patience}"
    return text + "".join(f"; {k}={v} (override)" for k, v in cell.overrides)


def results_frame(store: ResultStore, suite: Suite) -> tuple[pd.DataFrame, list[Result]]:
    """One row per `ok` result of the suite's current version; and the skipped/failed ones."""
    ok, other = ok_results(store, suite)
    extra = _extra()
    rows = []
    for r in ok:
        assert r.data is not None and r.metrics is not None and r.model is not None  # ok results carry them
        rows.append({
            "config": _config_id(r), "dataset": r.cell.dataset, "model": r.cell.arch, "weights": r.cell.tag,
            "mode": r.cell.mode, "data_size": r.cell.data_size, "policy": r.data.policy,
            "input_size": r.data.input_size, "protocol": _protocol_label(r.cell),
            "precision": r.cell.protocol.precision, "seed": r.cell.seed,
            "auc": r.test["auc"], "acc": r.test["acc"], **{m.name: r.test.get(m.name) for m in extra},
            "auc_ci_low": r.metrics.ci["auc"][0], "auc_ci_high": r.metrics.ci["auc"][1],
            "params_m": r.model.num_params / 1e6, "result": r})
    return pd.DataFrame(rows), other


def _runs(store: ResultStore, results: list[Result], seeds: list[int] | None = None) -> tuple[np.ndarray, list]:
    """Test labels and each seed's test scores (seed order), from the stored outputs."""
    by_seed = {r.cell.seed: r for r in results}
    picked = [by_seed[s] for s in (seeds if seeds is not None else sorted(by_seed))]
    return store.scores(picked[0])[0], [store.scores(r)[1] for r in picked]


def _ranks(store: ResultStore, configs: list[str], results: dict[str, list[Result]], task: str) -> list[int]:
    """1 + the number of rows significantly better: paired bootstraps of ΔAUC over every seed two rows share (seeds
    and test images resampled), Holm-corrected over all pairs of the dataset (`metrics.ranks`)."""
    seeds = {c: {r.cell.seed for r in results[c]} for c in configs}
    tests = {}
    for i, a in enumerate(configs):
        for j in range(i + 1, len(configs)):
            common = sorted(seeds[a] & seeds[configs[j]])
            if common:
                labels, sa = _runs(store, results[a], common)
                sb = _runs(store, results[configs[j]], common)[1]
                tests[i, j] = metrics.paired_seeds_hierarchical(labels, sa, sb, task, metric=RANK_BY, seed=0)
    return metrics.ranks(tests, len(configs), metrics.higher_is_better(RANK_BY))


def board(store: ResultStore, suite: Suite, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The suite's board: one row per (dataset, configuration), seeds aggregated, ranked with ties (`df`: the suite's
    `results_frame`, when the caller has it)."""
    df = results_frame(store, suite)[0] if df is None else df
    if df.empty:
        return pd.DataFrame(columns=columns())
    keys = ["dataset", "config", "model", "weights", "mode", "data_size", "policy", "input_size", "protocol",
            "precision"]
    agg = df.groupby(keys, sort=False).agg(
        seeds=("seed", "count"), auc_mean=("auc", "mean"), auc_std=("auc", "std"), acc_mean=("acc", "mean"),
        acc_std=("acc", "std"), **{m.name: (m.name, "mean") for m in _extra()},
        params_m=("params_m", "first")).reset_index()
    results = df.groupby("config")["result"].apply(list).to_dict()
    task = {c: rs[0].data.task for c, rs in results.items() if rs[0].data is not None}
    ci = {c: metrics.seeds_mean_ci(*_runs(store, rs), task[c], RANK_BY, seed=0) for c, rs in results.items()}
    agg["auc_ci_low"] = agg["config"].map(lambda c: ci[c].ci_low)
    agg["auc_ci_high"] = agg["config"].map(lambda c: ci[c].ci_high)
    agg["notes"] = agg["config"].map(lambda c: notes(results[c]))
    parts = []
    for _, group in agg.groupby("dataset", sort=True):
        group = group.copy()
        group["rank"] = _ranks(store, list(group["config"]), results, task[group["config"].iloc[0]])
        parts.append(group.sort_values(["rank", f"{RANK_BY}_mean", "model", "weights", "mode", "input_size"],
                                       ascending=[True, not metrics.higher_is_better(RANK_BY), True, True, True,
                                                  True]))
    out = pd.concat(parts, ignore_index=True)
    out["source"] = "medzoo (this run)"
    return out[columns()]  # std stays blank (NaN) for a single run


def _matched(store: ResultStore, df: pd.DataFrame) -> list[tuple[pd.Series, int, metrics.PairedBootstrap]]:
    """Each pretrained row (of a `results_frame`) against the random-init row of the same architecture, mode, input
    and protocol: (the row, the number of seeds both ran, the paired Δ over them)."""
    results = df.groupby("config")["result"].apply(list).to_dict()
    rows = df.drop_duplicates("config")
    same = ["dataset", "model", "mode", "data_size", "policy", "input_size", "protocol"]
    out = []
    for _, group in rows.groupby(same, sort=True):
        random = group[group["weights"] == "random"]
        for _, r in group[group["weights"] != "random"].iterrows() if not random.empty else ():
            ours, base = results[r["config"]], results[random["config"].iloc[0]]
            seeds = sorted({x.cell.seed for x in ours} & {x.cell.seed for x in base})
            if not seeds or ours[0].data is None:
                continue
            labels, a = _runs(store, ours, seeds)
            out.append((r, len(seeds), metrics.paired_seeds_hierarchical(
                labels, a, _runs(store, base, seeds)[1], ours[0].data.task, metric=RANK_BY, seed=0)))
    return out


def matched_pretraining(store: ResultStore, df: pd.DataFrame,
                        matched: list[tuple[pd.Series, int, metrics.PairedBootstrap]] | None = None) -> list[str]:
    """Markdown: what pretraining adds with everything else held fixed (`_matched`, computed unless given), and
    which random-only architectures' pretrained rows need the network."""
    if df.empty:
        return []
    matched = _matched(store, df) if matched is None else matched
    table = [f"| {r['dataset']} | {r['model']} | {r['weights']} − random | {r['mode']} | {r['input_size']} px | "
             f"{runs(n)} | {t.delta:+.3f} | [{t.ci_low:+.3f}, {t.ci_high:+.3f}] |" for r, n, t in matched]
    lines = []
    if table:
        lines += ["## What pretraining adds, matched", "",
                  "Each pretrained row against the random-init row of the same architecture, mode, input and protocol: "
                  "the test-AUC difference, with a paired bootstrap 95% CI (1000 resamples of the seeds both rows "
                  "ran and the same test images; for one run, of the test images only).", "",
                  "| dataset | model | weights | mode | input | seeds | Δ test AUC | 95% CI |",
                  "|---|---|---|---|---:|---:|---:|---:|", *table, ""]
    pretrained = set(df.loc[df["weights"] != "random", "model"])
    controls = set(df.loc[df["mode"] != "scratch", "model"])  # random-init rows where pretrained weights would go
    offline = sorted(m for m in controls - pretrained if any(downloaded(m, tag) for tag in get_spec(m).weights))
    if offline:
        lines += [f"Random-init rows only for {', '.join(offline)}: their pretrained weights are downloaded (Hugging "
                  f"Face Hub / torchvision), which this suite's offline run cannot do; `medzoo run --suite transfer` "
                  f"on a machine with the network runs them.", ""]
    return lines


# our model at its input size → its MedMNIST v2 paper row, for the headline
_PAPER_METHOD = {("resnet18_28", 28): "ResNet-18 (28)", ("resnet50_28", 28): "ResNet-50 (28)",
                 ("resnet18", 224): "ResNet-18 (224)", ("resnet50", 224): "ResNet-50 (224)"}


def headline(b: pd.DataFrame, matched: list[tuple[pd.Series, int, metrics.PairedBootstrap]]) -> list[str]:
    """Per dataset the top row (and how many share its rank), the paper's number for the same model where it has
    one, and each matched pretrained − random Δ."""
    rep = reported()
    lines = []
    for name in sorted(set(b["dataset"])):
        rows = b[b["dataset"] == name]
        top = rows.iloc[0]
        auc = f"{top['auc_mean']:.3f}" + (f" ± {top['auc_std']:.3f}" if top["seeds"] > 1 else "")
        ci = "" if np.isnan(top["auc_ci_low"]) else f" [{top['auc_ci_low']:.3f}, {top['auc_ci_high']:.3f}]"
        text = (f"- {name}: top {top['model']}.{top['weights']} {top['mode']} at {top['input_size']} px "
                f"({top['precision']}), test AUC {auc}{ci} ({seeds_text(int(top['seeds']))})")
        tied = int((rows["rank"] == 1).sum()) - 1
        if tied:
            text += f"; {tied} other row(s) not significantly below it"
        same_protocol = top["mode"] == "scratch" and top["weights"] == "random"  # the paper trains from scratch
        paper = rep[(rep["dataset"] == name) & same_protocol
                    & (rep["method"] == _PAPER_METHOD.get((top["model"], int(top["input_size"]))))]
        if not paper.empty:
            text += f"; MedMNIST v2 reported {paper['method'].iloc[0]}: {paper['test_auc'].iloc[0]:.3f}"
        lines.append(text)
    lines += [f"- {r['dataset']}: {r['model']} {r['weights']} − random weights ({r['mode']}, {r['input_size']} px): "
              f"Δ test AUC {t.delta:+.3f} [{t.ci_low:+.3f}, {t.ci_high:+.3f}] ({seeds_text(n)})" for r, n, t in matched]
    return lines


def reported() -> pd.DataFrame:
    """Published MedMNIST v2 numbers (our cited copy: benchmarks/reference/)."""
    text = resources.files("benchmarks").joinpath("reference/medmnist_v2.csv").read_text()
    return pd.read_csv(io.StringIO(text))


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _dataset_section(name: str, rows: pd.DataFrame, rep: pd.DataFrame, n_test: int | None) -> list[str]:
    ds, extra = DATASETS.get(name), _extra()
    lines = [f"## {name}", "", f"{ds.description} — task: {ds.task.value}"
             + (f"; test images: {n_test}" if n_test else "") + ".", "",
             "| rank | model | weights | mode | input (data → policy) | protocol | seeds | test AUC | 95% CI | "
             "test ACC | " + "".join(f"{m.column} | " for m in extra) + "params | notes |",
             "|---:|---|---|---|---|---|---:|---|---|---|" + "---:|" * len(extra) + "---:|---|"]
    for r in rows.itertuples():
        weights = "random init (no pretraining)" if r.weights == "random" else r.weights
        seeds_sd = f" ± {r.auc_std:.3f}" if r.seeds > 1 else ""
        acc_sd = f" ± {r.acc_std:.3f}" if r.seeds > 1 else ""
        lines.append(f"| {r.rank} | {r.model} | {weights} | {r.mode} | {r.input_size} px ({r.data_size} → {r.policy})"
                     f" | {r.protocol} | {runs(r.seeds)} | {r.auc_mean:.3f}{seeds_sd} | [{r.auc_ci_low:.3f}, "
                     f"{r.auc_ci_high:.3f}] | {r.acc_mean:.3f}{acc_sd} | "
                     + "".join(f"{_fmt(getattr(r, m.name))} | " for m in extra)
                     + f"{r.params_m:.1f}M | {r.notes} |")
    if not rep.empty:
        lines += ["", "Reported (paper), not re-run — MedMNIST v2 (Yang et al., Sci. Data 2023):", "",
                  "| source | method | test AUC | test ACC |", "|---|---|---:|---:|"]
        lines += [f"| reported (paper) | {r.method} | {r.test_auc:.3f} | {r.test_acc:.3f} |"
                  for r in rep.itertuples()]
    return lines + [""]


def markdown(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str:
    df, other = results_frame(store, suite)
    b = board(store, suite, df) if b is None else b
    rep = reported()
    n_test: dict[str, int] = {}
    for r in store.results(suite.name):
        if r.status == "ok" and r.data is not None:
            n_test[r.cell.dataset] = r.data.n.get("test", 0)
    matched = _matched(store, df) if not df.empty else []
    lines = header(suite) + [
             "Rows are medzoo's own runs of this suite version; the test split is the dataset's official test split, "
             "never used for training or model selection. Test AUC/ACC are MedMNIST's definitions; mean ± std over "
             "seeds (\"1 run\": one seed, no spread to show). The 95% CI is that of the mean: 1000 bootstrap "
             "resamples that draw seeds and test images together (class-stratified), so it covers seed-to-seed and "
             "test-set variation; for one run it covers the test set only. **rank** = 1 + the number of rows whose "
             "test AUC is significantly higher: paired bootstraps of ΔAUC over every seed two rows share (seeds and "
             "the same test images resampled), with Holm's correction over all pairs of the dataset at 5%. Rank 1 "
             "rows are those no row beats; significance is not transitive, so equal ranks lower down are counts, not "
             "ties. Rows are ordered by rank, then by test AUC. "
             "ECE: expected "
             "calibration error (15 bins; lower is better). *random init* rows are no-pretraining controls. "
             "Every number is computed from the outputs stored with the results (`benchmarks.results.schema`). "
             + NOTES_TEXT, "", *headline_section(headline(b, matched))]
    for name in sorted(set(b["dataset"])):
        lines += _dataset_section(name, b[b["dataset"] == name], rep[rep["dataset"] == name], n_test.get(name))
    lines += matched_pretraining(store, df, matched)
    if b["dataset"].nunique() > 1:
        wide = b.pivot_table(index=["model", "weights", "mode", "data_size", "policy", "input_size", "protocol"],
                             columns="dataset", values="auc_mean")
        complete = wide.dropna()
        if not complete.empty:
            complete = complete.assign(mean=complete.mean(axis=1)).sort_values("mean", ascending=False)
            cols = list(wide.columns)
            lines += ["## Average over datasets", "", "Test AUC (mean over seeds), rows that ran on every dataset.", "",
                      "| model | weights | mode | input | " + " | ".join(cols) + " | mean |",
                      "|---|---|---|---:|" + "---:|" * (len(cols) + 1)]
            for idx, row in complete.iterrows():
                model, weights, mode, _, _, size, _ = idx  # type: ignore[misc]
                lines.append(f"| {model} | {weights} | {mode} | {size} | "
                             + " | ".join(f"{row[c]:.3f}" for c in cols) + f" | {row['mean']:.3f} |")
            lines.append("")
    return "\n".join(lines + footer(store, suite, other, sorted(set(b["dataset"]))))


def csv_text(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str:
    b = board(store, suite) if b is None else b
    rep = reported()
    rep = rep[rep["dataset"].isin(set(b["dataset"]))]
    rep_rows = pd.DataFrame({"dataset": rep["dataset"], "model": rep["method"], "auc_mean": rep["test_auc"],
                             "acc_mean": rep["test_acc"], "source": "reported (paper)"})
    out = pd.concat([b, rep_rows], ignore_index=True)[columns()] if not b.empty else b
    out = out.astype({c: "Int64" for c in ("rank", "data_size", "input_size", "seeds")})  # blank on reported rows
    return out.to_csv(index=False, float_format="%.4f", lineterminator="\n")


def panels(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> dict[str, tuple[str, list[Point]]]:
    """Each dataset's metric header, its rows (test AUC, 95% CI of the mean) and the paper's numbers for it."""
    b = board(store, suite) if b is None else b
    rep = reported()
    out: dict[str, tuple[str, list[Point]]] = {}
    for name in sorted(set(b["dataset"])):
        points = [Point(f"{r.model}.{r.weights} · {r.mode} · {r.input_size} px"
                        + ("".join(f" · {o}" for o in r.protocol.split("; ")[1:])), r.auc_mean, r.auc_ci_low,
                        r.auc_ci_high) for r in b[b["dataset"] == name].itertuples()]
        points += [Point(f"{r.method} (paper)", r.test_auc, kind="reported")
                   for r in rep[rep["dataset"] == name].itertuples()]
        out[name] = ("AUC", points)
    return out


def plot_png(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> bytes:
    """Test AUC per row with its CI, beside the paper's numbers, one panel per dataset."""
    return png(forest_figure(suite.id, {n: pts for n, (_, pts) in panels(store, suite, b).items()}, "test AUC"))


def rich_table(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> Table:
    """The board for a terminal: the columns a reader ranks by (the .md has the rest)."""
    b = board(store, suite) if b is None else b
    table = Table(title=f"{suite.id} — test AUC; equal ranks: not significantly different")
    for col in ("dataset", "#", "model.weights", "mode", "px", "precision", "test AUC", "95% CI"):
        table.add_column(col, justify="right" if col in ("#", "px", "test AUC") else "left", overflow="fold")
    for r in b.itertuples():
        auc = f"{r.auc_mean:.3f}" + (f"±{r.auc_std:.3f}" if r.seeds > 1 else "")
        table.add_row(r.dataset.removesuffix("mnist"), str(r.rank), f"{r.model}.{r.weights}", r.mode,
                      str(r.input_size), r.precision, auc, f"{r.auc_ci_low:.2f}–{r.auc_ci_high:.2f}")
    return table
