"""The segmentation board: results store → pandas → `<suite>.md`, `.csv`, `.png` (a pure function of the store,
like the classification board; the `segmentation` entry of `benchmarks.boards.BOARDS`).

Rows are configurations, seeds aggregated as mean ± std, ordered by the dataset's headline metric (vessels: F1
inside the FOV; membranes: Dice). Beside them: the human baseline (second observer against the first, computed by
the harness with the same code, stored with each result) and published numbers marked "reported (paper)".
"""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from benchmarks.boards.render import (
    NOTES_TEXT,
    Point,
    footer,
    forest_figure,
    header,
    headline_section,
    notes,
    number,
    ok_results,
    png,
    runs,
    seeds_text,
)
from benchmarks.data import DATASETS
from benchmarks.data.seg import seg_dataset
from benchmarks.metrics import higher_is_better
from benchmarks.metrics.segmentation import f1_threshold, histogram_metrics, pooled_cis
from benchmarks.results import ResultStore
from benchmarks.results.schema import CellRecord, Result
from benchmarks.suites import Suite

REPORTED_COLUMNS = {"auc": "AUC", "acc": "Acc", "sensitivity": "Se", "f1": "F1",
                    "pixel_error": "pixel error (challenge)", "rand_error": "Rand error (challenge)"}
BASE = ["dataset", "model", "weights", "mode", "patch", "budget", "epochs_run", "best_epoch", "stop", "seeds", "img_f1_min",
        "img_f1_max", "val_t_min", "val_t_max", "params_m", "notes", "source"]


def _per_seed(values: pd.Series) -> str:
    """Each seed's value in seed order, one value when all agree: a mean epoch count would hide that one seed stopped
    early while another ran to the cap."""
    texts = [str(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "; ".join(texts)


def _epochs(r: dict[str, Any]) -> str:
    """"run/best (stop)" per seed, the stop said once when every seed stopped for the same reason."""
    runs_, best, stop = (str(r[k]).split("; ") for k in ("epochs_run", "best_epoch", "stop"))
    n = max(len(runs_), len(best), len(stop))
    runs_, best, stop = (x * n if len(x) == 1 else x for x in (runs_, best, stop))
    pairs = [f"{e}/{b}" for e, b in zip(runs_, best, strict=True)]
    if len(set(stop)) == 1:
        return f"{', '.join(pairs)} ({stop[0]})"
    return ", ".join(f"{p} ({s})" for p, s in zip(pairs, stop, strict=True))


def _overrides(cell: CellRecord) -> str:
    return "".join(f"; {k}={v} (override)" for k, v in cell.overrides)


def _budget(cell: CellRecord) -> str:
    p = cell.protocol
    budget = f"{p.epochs} ep x {p.patches_per_epoch} patches"
    if p.time_budget_s:
        budget += f", ≤ {p.time_budget_s / 60:.0f} min"
    return budget + _overrides(cell)


def _columns(dataset: str) -> list[tuple[str, str, bool]]:
    """(metric key, header, higher is better) of the dataset's columns: the dataset names them, the metric
    registry gives each its direction."""
    return [(key, head, higher_is_better(key)) for key, head in seg_dataset(dataset).columns]


def board(store: ResultStore, suite: Suite) -> pd.DataFrame:
    """One row per (dataset, configuration): metrics as `<metric>_mean` / `<metric>_std` over seeds."""
    ok, _ = ok_results(store, suite)
    if not ok:
        return pd.DataFrame(columns=BASE)
    rows = []
    for r in ok:
        assert r.training is not None and r.model is not None and r.metrics is not None
        cfg = json.dumps({k: v for k, v in r.cell.config().items() if k != "seed"}, sort_keys=True)
        f1s = [i.metrics["f1"] for i in r.metrics.per_image if i.metrics.get("f1") is not None]
        val_t, f1_val_t = _val_threshold(store, r)
        rows.append({"dataset": r.cell.dataset, "config": cfg, "model": r.cell.arch, "weights": r.cell.tag,
                     "mode": r.cell.mode, "patch": r.cell.input_size, "budget": _budget(r.cell),
                     "overrides": _overrides(r.cell).removeprefix("; ").replace("; ", " · "),
                     "epochs_run": r.training.epochs_run, "best_epoch": r.training.best_epoch,
                     "stop": r.training.stop_reason,
                     "params_m": r.model.num_params / 1e6, "notes": notes([r]),
                     "img_f1_min": min(f1s, default=np.nan), "img_f1_max": max(f1s, default=np.nan),
                     "val_t": val_t, "f1_val_t": f1_val_t,
                     **{k: number(r.test.get(k)) for k, _ in seg_dataset(r.cell.dataset).columns}})
    df = pd.DataFrame(rows)
    by_config: dict[str, list[Result]] = {}
    for cfg, r in zip(df["config"], ok, strict=True):
        by_config.setdefault(cfg, []).append(r)
    cis = {cfg: _cis(store, results) for cfg, results in by_config.items()}
    keys = ["dataset", "config", "model", "weights", "mode", "patch", "budget", "overrides"]
    parts = []
    for name, group in df.groupby("dataset", sort=True):
        cols = [k for k, _ in seg_dataset(str(name)).columns]
        agg = group.groupby(keys, sort=False).agg(
            seeds=("model", "size"), epochs_run=("epochs_run", _per_seed), best_epoch=("best_epoch", _per_seed),
            stop=("stop", _per_seed),
            notes=("notes", lambda v: "; ".join(dict.fromkeys(x for x in v if x))),
            params_m=("params_m", "first"), img_f1_min=("img_f1_min", "min"), img_f1_max=("img_f1_max", "max"),
            val_t_min=("val_t", "min"), val_t_max=("val_t", "max"), f1_val_t_mean=("f1_val_t", "mean"),
            f1_val_t_std=("f1_val_t", "std"),
            **{f"{c}_mean": (c, "mean") for c in cols},
            **{f"{c}_std": (c, "std") for c in cols}).reset_index()
        for c in cols:
            agg[f"{c}_ci_low"] = agg["config"].map(lambda cfg, c=c: cis[cfg].get(c, (np.nan, np.nan))[0])
            agg[f"{c}_ci_high"] = agg["config"].map(lambda cfg, c=c: cis[cfg].get(c, (np.nan, np.nan))[1])
        headline = seg_dataset(str(name)).headline
        parts.append(agg.sort_values([f"{headline}_mean", "model"], ascending=[not higher_is_better(headline), True]))
    out = pd.concat(parts, ignore_index=True).drop(columns="config")
    out["source"] = "medzoo (this run)"
    return out


def _cis(store: ResultStore, results: list[Result]) -> dict[str, tuple[float, float]]:
    """95% CIs of a row's pooled metrics from its seeds' stored histograms (`metrics.segmentation.pooled_cis`:
    seeds and test images resampled together); empty where a result kept no outputs (schema 1)."""
    from benchmarks.cells.segmentation import SegOutputs

    hists = []
    for r in sorted(results, key=lambda r: r.cell.seed):
        if r.outputs is None or r.data is None or r.data.test_images is None:
            return {}
        hists.append(SegOutputs.from_arrays(store.outputs(r), "test", r.data.test_images).hists[:, 1])
    return pooled_cis(hists, seed=0)


def _val_threshold(store: ResultStore, r: Result) -> tuple[float, float]:
    """(the threshold where the validation images' pooled F1 peaks, the test F1 at that threshold): the papers fix
    0.5, a user would pick an operating point on held-out images. NaN where a result kept no outputs (schema 1)."""
    from benchmarks.cells.segmentation import SegOutputs

    if r.outputs is None:
        return np.nan, np.nan
    arrays = store.outputs(r)
    val, test = (SegOutputs.from_arrays(arrays, split, []).hists[:, 1].sum(0) for split in ("val", "test"))
    t = f1_threshold(val)
    return t, number(histogram_metrics(test, t)["f1"])


def reported() -> pd.DataFrame:
    text = resources.files("benchmarks").joinpath("reference/segmentation.csv").read_text()
    return pd.read_csv(io.StringIO(text))


def humans(store: ResultStore, suite: Suite) -> dict[str, dict[str, float]]:
    """The second observer's scores per dataset, as stored with the results (identical in every result of a
    dataset: it depends only on the test images)."""
    ok, _ = ok_results(store, suite)
    return {r.cell.dataset: {k: number(v) for k, v in r.data.second_observer.items()}
            for r in ok if r.data is not None and r.data.second_observer}



def _fmt(mean: float, std: float | None = None, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return "–"
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None and not np.isnan(std) else "")


def _ci(row: dict[str, object], metric: str) -> str:
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    return "" if not isinstance(low, float) or np.isnan(low) else f" [{low:.3f}, {high:.3f}]"


def _section(name: str, rows: pd.DataFrame, human: dict[str, float] | None, rep: pd.DataFrame) -> list[str]:
    ds, cols = DATASETS.get(name), _columns(name)
    lines = [f"## {name}", "", f"{ds.description}. Metrics {seg_dataset(name).scope}; threshold 0.5.", ""]
    if rows.empty:
        lines += ["No medzoo result for this dataset in this store (see *Cells without a result*).", ""]
    else:
        lines += [f"![image, ground truth, prediction](figures/segmentation_{name}.png)", "",
                  "| model | weights | mode | patch | budget | epochs run/best (stop) | seeds | "
                  + " | ".join(h + (" ↓" if not up else "") for _, h, up in cols)
                  + " | F1 (Dice), validation threshold | per-image F1 | params | notes |",
                  "|---|---|---|---:|---|---|---:|" + "---:|" * len(cols) + "---|---|---:|---|"]
    for r in rows.to_dict("records"):
        weights = "random init (from scratch)" if r["weights"] == "random" else r["weights"]
        multi = r["seeds"] > 1
        t_range = (f"{r['val_t_min']:.2f}" if r["val_t_min"] == r["val_t_max"]
                   else f"{r['val_t_min']:.2f}–{r['val_t_max']:.2f}")
        val_t = "–" if np.isnan(r["f1_val_t_mean"]) else (
            f"{_fmt(r['f1_val_t_mean'], r['f1_val_t_std'] if multi else None)} (t = {t_range})")
        metric_cells = " | ".join(_fmt(r[f"{c}_mean"], r[f"{c}_std"] if multi else None) + _ci(r, c)
                                  for c, _, _ in cols)
        lines.append(f"| {r['model']} | {weights} | {r['mode']} | {r['patch']} | {r['budget']} | "
                     f"{_epochs(r)} | {runs(r['seeds'])} | {metric_cells} | {val_t} | "
                     f"{_fmt(r['img_f1_min'], None, 3)}–{_fmt(r['img_f1_max'], None, 3)} | {r['params_m']:.1f}M | "
                     f"{r['notes']} |")
    if human:
        lines += ["", "Human baseline — the second observer scored against the first on the same test images, by the "
                      "same code (medzoo):", "",
                  "| rater | " + " | ".join(h for c, h, _ in cols if c in human) + " |",
                  "|---|" + "---:|" * sum(c in human for c, _, _ in cols),
                  "| second observer | " + " | ".join(_fmt(human[c]) for c, _, _ in cols if c in human) + " |"]
    if not rep.empty:
        shown = [c for c in REPORTED_COLUMNS if rep[c].notna().any()]
        lines += ["", "Reported (paper), not re-run — other splits, FOVs and protocols, so context only:", "",
                  "| source | method | test set | " + " | ".join(REPORTED_COLUMNS[c] for c in shown) + " |",
                  "|---|---|---|" + "---:|" * len(shown)]
        for r in rep.to_dict("records"):
            lines.append(f"| reported (paper): {r['source']} | {r['method']} | {r['test_set']} | "
                         + " | ".join(_fmt(r[c]) for c in shown) + " |")
        if rep["warping_error"].notna().any():
            lines += ["", "U-Net's challenge warping error: "
                      + ", ".join(f"{v:g}" for v in rep["warping_error"].dropna()) + " (not computed by medzoo)."]
    return lines + [""]


_HEADLINE_METRICS = ("auc", "f1", "dice", "pixel_error", "rand_error")  # of a dataset's columns, these


def headline(b: pd.DataFrame, rep: pd.DataFrame) -> list[str]:
    """Per dataset the row with the most seeds (then the best in the dataset's headline metric) at threshold 0.5,
    with CIs, beside the first paper row that reports any of the same metrics on a comparable test set."""
    lines = []
    for name in sorted(set(b["dataset"])):
        cols = [(k, head, up) for k, head, up in _columns(name) if k in _HEADLINE_METRICS]
        key = seg_dataset(name).headline
        top = b[b["dataset"] == name].sort_values(["seeds", f"{key}_mean"],
                                                  ascending=[False, not higher_is_better(key)]).iloc[0]
        n = int(top["seeds"])
        text = (f"- {name}: {top['model']}.{top['weights']} ({seeds_text(n)}"
                + (f"; {top['overrides']}" if top["overrides"] else "") + "), threshold 0.5: "
                + ", ".join(f"{head} {_fmt(top[f'{k}_mean'], top[f'{k}_std'] if n > 1 else None, 3)}{_ci(top, k)}"
                            for k, head, _ in cols))
        paper = rep[(rep["dataset"] == name) & ~rep["test_set"].str.contains("not comparable")]
        for r in paper.to_dict("records"):
            shown = [f"{head} {r[k]:.4g}" for k, head, _ in cols if k in r and not np.isnan(r[k])]
            if shown:
                text += f"; reported {r['method']}: {', '.join(shown)}"
                break
        lines.append(text)
    return lines


def markdown(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str:
    b = board(store, suite) if b is None else b
    _, other = ok_results(store, suite)
    rep, hum = reported(), humans(store, suite)
    lines = header(suite) + [
             "Test images are never used for training or model selection (CHASE_DB1 is split by child, ISBI-2012 "
             "by contiguous slice blocks; see `benchmarks/data/seg/`). Mean ± std over seeds "
             "where a row has more than one (\"1 run\": one seed, no spread to show); [brackets]: the 95% CI of the mean, 1000 bootstrap resamples that draw "
             "seeds and test images together and re-pool each drawn seed's pixels over the drawn images (one run: "
             "the test images only). With few test images it is optimistic: on simulated data it covered the truth "
             "95% of the time with 20 images but 83% with 8 (CHASE_DB1's test split). *per-image F1* is the range over the test images (inside the FOV; ISBI: "
             "membrane F1 = Dice per slice), a view of how much one image can differ from the pooled number. "
             "*F1 (Dice), validation threshold*: the papers' threshold is 0.5; this column scores the test images "
             "at the threshold t where each run's pooled F1 on its validation images peaks (t shown), the operating "
             "point a user would choose without seeing the test set. "
             "*budget* is the protocol's cap: training stops at the first epoch "
             "end past the time budget, at early stopping, or at the last epoch — *epochs run/best (stop)* says which, per "
             "seed, with the epoch whose model was kept (best validation loss). "
             "Figures: the first test image | ground truth | the plain U-Net's prediction, made by `medzoo predict` "
             "from the model the run kept (commands in `leaderboards/figures/README.md`). " + NOTES_TEXT, "",
             *headline_section(headline(b, rep))]
    datasets = sorted(set(b["dataset"]) | {r.cell.dataset for r in other})
    for name in datasets:
        lines += _section(name, b[b["dataset"] == name], hum.get(name), rep[rep["dataset"] == name])
    return "\n".join(lines + footer(store, suite, other, datasets))


def csv_text(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str:
    b = board(store, suite) if b is None else b
    rep = reported()
    rep = rep[rep["dataset"].isin(set(b["dataset"]))]
    hum = humans(store, suite)
    extra = [{"dataset": r["dataset"], "model": r["method"], "source": f"reported (paper): {r['source']}",
              **{f"{c}_mean": r[c] for c in REPORTED_COLUMNS}} for r in rep.to_dict("records")]
    extra += [{"dataset": d, "model": "second observer (human)", "source": "medzoo (same code)",
               **{f"{k}_mean": v for k, v in h.items()}} for d, h in sorted(hum.items())]
    out = pd.concat([b, pd.DataFrame(extra)], ignore_index=True) if extra else b
    metric_cols = sorted({c for c in out.columns if c.endswith(("_mean", "_std", "_ci_low", "_ci_high"))})
    out = out[[c for c in BASE if c in out.columns] + metric_cols]
    return out.to_csv(index=False, float_format="%.4f", lineterminator="\n")


def panels(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> dict[str, tuple[str, list[Point]]]:
    """Each dataset's headline metric: its column header, our rows, the second observer and the published rows."""
    b = board(store, suite) if b is None else b
    rep, hum = reported(), humans(store, suite)
    out = {}
    for name in sorted(set(b["dataset"])):
        metric = seg_dataset(name).headline
        head = {k: h for k, h, _ in _columns(name)}.get(metric, metric)
        points = [Point(" · ".join(x for x in (f"{r['model']}.{r['weights']}", r["overrides"]) if x),
                        r[f"{metric}_mean"], r.get(f"{metric}_ci_low"),
                        r.get(f"{metric}_ci_high")) for r in b[b["dataset"] == name].to_dict("records")]
        if name in hum and metric in hum[name]:
            points.append(Point("second observer", hum[name][metric], kind="human"))
        points += [Point(r["method"], r[metric], kind="reported") for r in rep[rep["dataset"] == name].to_dict("records")
                   if metric in r and not np.isnan(r[metric])]
        out[name] = (head, points)
    return out


def plot_png(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> bytes:
    """Each dataset's headline test metric (threshold 0.5) per row, beside the human baseline and published rows."""
    by = panels(store, suite, b)
    heads = sorted({h for h, _ in by.values()})
    return png(forest_figure(suite.id, {n: pts for n, (_, pts) in by.items()}, f"test {' / '.join(heads) or 'metric'}"
                             " (threshold 0.5)"))


def rich_table(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> Table:
    b = board(store, suite) if b is None else b
    table = Table(title=f"{suite.id} — test metrics (threshold 0.5)")
    for col in ("dataset", "model.weights", "epochs", "AUC", "F1/Dice", "pixel err", "Rand err"):
        table.add_column(col, justify="left" if col in ("dataset", "model.weights") else "right")
    for r in b.to_dict("records"):
        f1 = r.get("f1_mean", np.nan)
        table.add_row(r["dataset"], f"{r['model']}.{r['weights']}", str(r["epochs_run"]),
                      _fmt(r["auc_mean"], None, 3),
                      _fmt(r.get("dice_mean", f1) if np.isnan(f1) else f1, None, 3),
                      _fmt(r.get("pixel_error_mean", np.nan), None, 3), _fmt(r.get("rand_error_mean", np.nan), None, 3))
    return table
