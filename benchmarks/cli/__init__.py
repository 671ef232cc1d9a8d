"""The `medzoo` command line: the only place that prints. Errors a user can fix are printed as one message (no
traceback) and exit with status 2."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

import zoo
from zoo import SEGMENTATION_META, MedzooError, ModelSpec, WeightsSpec

if TYPE_CHECKING:
    from benchmarks.executors import Executor
    from benchmarks.results.schema import Result
    from benchmarks.suites import Cell

out = Console()
err = Console(stderr=True)


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.1f}M"


def _source_kind(w: WeightsSpec) -> str:
    if w.source.startswith("hf-hub:"):
        return "hf-hub" + (" (unpinned)" if w.unpinned else "")
    return w.source.split(":", 1)[0]


def _ls_models(args: argparse.Namespace) -> None:
    names = zoo.list_models(args.pattern, task=args.task)
    if not names and not any(c in args.pattern for c in "*?["):
        zoo.get_spec(args.pattern)  # a plain name that matches nothing: did-you-mean
    specs = [zoo.get_spec(n) for n in names]
    if args.pretrained:
        table = Table(title="pretrained weights (arch.tag)")
        for col in ("name", "source", "pretrain data", "license", "classes", "input"):
            table.add_column(col)
        for s in specs:
            for w in s.weights.values():
                default = " (default)" if w.tag == s.default_tag else ""
                table.add_row(f"{s.name}.{w.tag}{default}", _source_kind(w), w.pretrain_data, w.license,
                              str(w.num_classes or "-"), str(w.preprocess.input_size))
    else:
        table = Table(title=f"{len(specs)} models")
        for col, justify in (("name", "left"), ("family", "left"), ("task", "left"), ("params", "right"),
                             ("GFLOPs (2×MAC)", "right"), ("size", "right"), ("min", "right"),
                             ("features", "right"), ("weights (default first)", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for s in specs:
            tags = sorted(s.weights, key=lambda t: t != s.default_tag)
            table.add_row(s.name, s.family, s.task.value, _fmt_params(s.num_params), f"{s.gflops:.2f}",
                          str(s.default_size), str(s.min_size), str(s.feature_dim), ", ".join(tags) or "-")
    if not table.rows:
        raise MedzooError(f"no model matches {args.pattern!r}" + (f" with task {args.task}" if args.task else ""))
    out.print(table)


def _ls_datasets(args: argparse.Namespace) -> None:
    from benchmarks.data import DATASETS

    table = Table(title="datasets")
    for col in ("name", "task", "channels", "classes", "train / val / test", "sizes", "license"):
        table.add_column(col)
    for d in DATASETS:
        if d.test_only or not __import__("fnmatch").fnmatchcase(d.name, args.pattern):
            continue
        if args.task and (d.task.value == "segmentation") != (args.task == "segmentation"):
            continue
        n = d.n_samples
        table.add_row(d.name, d.task.value, str(d.n_channels), str(d.num_classes),
                      f"{n['train']} / {n['val']} / {n['test']}", ", ".join(map(str, d.sizes)), d.license)
    out.print(table)


def _ls_suites(args: argparse.Namespace) -> None:
    from benchmarks.suites import SUITES

    table = Table(title="benchmark suites")
    for col in ("suite", "cells", "cost", "what it runs"):
        table.add_column(col, overflow="fold")
    for s in SUITES:
        if __import__("fnmatch").fnmatchcase(s.name, args.pattern):
            table.add_row(s.id, str(len(s.cells())), s.minutes, s.description)
    out.print(table)


LISTINGS: dict[str, Callable[[argparse.Namespace], None]] = {"models": _ls_models, "datasets": _ls_datasets,
                                                              "suites": _ls_suites}


def _cmd_ls(args: argparse.Namespace) -> None:
    if args.what not in LISTINGS:  # `medzoo ls res*` means models matching res*
        args.pattern, args.what = args.what, "models"
    LISTINGS[args.what](args)


def _weights_table(spec: ModelSpec, only: str | None) -> Table:
    table = Table(title=f"{spec.name}: weights")
    for col in ("tag", "source", "pinned", "data", "license", "classes", "preprocessing"):
        table.add_column(col, overflow="fold")
    for w in spec.weights.values():
        if only and w.tag != only:
            continue
        p = w.preprocess
        pinned = "unpinned" if w.unpinned else ", ".join(
            x for x in (f"rev {w.revision}" if w.revision else "", f"sha256 {w.sha256[:12]}…" if w.sha256 else "",
                        "hash prefix in file name" if not w.sha256 and "-" in w.source.rsplit("/", 1)[-1]
                        and w.source.startswith("http") else "") if x) or "-"
        mean = ", ".join(f"{m:.3f}" for m in p.mean)
        std = ", ".join(f"{s:.3f}" for s in p.std)
        table.add_row(w.tag + (" (default)" if w.tag == spec.default_tag else ""), w.source, pinned, w.pretrain_data,
                      w.license, str(w.num_classes or "-"),
                      f"{p.input_size} px, {p.interpolation}, crop {p.crop_pct}, mean ({mean}), std ({std})"
                      + (f"; {w.notes}" if w.notes else ""))
    return table


def _cmd_info(args: argparse.Namespace) -> None:
    spec, _ = zoo.resolve(args.name)
    tag = args.name.partition(".")[2] or None
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for k, v in (("name", spec.name), ("family", spec.family), ("task", spec.task.value), ("paper", spec.paper),
                 ("description", spec.description), ("default input", f"{spec.default_size} px"),
                 ("minimum input", f"{spec.min_size} px" + (f" (multiple of {spec.size_divisor})"
                                                            if spec.size_divisor > 1 else "")),
                 ("feature dim", str(spec.feature_dim)), ("parameters", f"{spec.num_params:,}"),
                 ("GFLOPs (2×MAC)", f"{spec.gflops} at {spec.default_size} px"),
                 ("default weights", f"{spec.name}.{spec.default_tag}" if spec.default_tag else
                  "none: name a tag below" if spec.weights else "none (random init)")):
        facts.add_row(k, v)
    out.print(facts)
    if spec.weights:
        out.print(_weights_table(spec, tag))


def _cmd_pull(args: argparse.Namespace) -> None:
    spec, weights = zoo.resolve(args.name)
    if weights is None:
        raise MedzooError(f"{spec.name} has no default weights to pull: " + (
            f"name one, e.g. {', '.join(f'{spec.name}.{t}' for t in spec.weights)}" if spec.weights else
            f"it has no pretrained weights (`medzoo info {spec.name}`)"))
    with err.status(f"fetching {spec.name}.{weights.tag} from {weights.source}"):
        path = zoo.fetch(weights, args.cache_dir, name=f"{spec.name}.{weights.tag}")
    out.print(f"[green]ok[/green] {spec.name}.{weights.tag} → {path}", soft_wrap=True, highlight=False)


def _cmd_probe(args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks.probe import probe

    cells = [(m, True) for m in args.models] + ([(m, False) for m in args.models] if args.random else [])
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("probe", total=len(cells) * 3)
        for model, pretrained in cells:
            def step(split: str, model: str = model, pretrained: bool = pretrained) -> None:
                if split != "train":  # one tick per finished split
                    bar.advance(task)
                bar.update(task, description=f"{model} ({'pretrained' if pretrained else 'random'}): {split}")

            results.append(probe(model, args.dataset, size=args.size, pretrained=pretrained, head=args.head,
                                 seed=args.seed, data_dir=args.data_dir, on_split=step))
            bar.advance(task)
    table = Table(title=f"{args.dataset}: frozen features + {args.head} head (fit on train, seed {args.seed})")
    for col in ("model", "size", "dim", "val AUC", "test AUC", "s"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for r in results:
        table.add_row(r.model, str(r.size), str(r.feature_dim), f"{r.val_auc:.3f}", f"{r.test_auc:.3f}",
                      f"{r.seconds:.1f}")
    out.print(table)


def _read_image(path: str, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.array(img.convert("L" if channels == 1 else "RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise MedzooError(f"cannot read {path} as an image ({e})") from None


def _panel(image: np.ndarray, truth: np.ndarray, mask: np.ndarray, title: str) -> bytes:
    """image | ground truth | prediction, as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    for ax, (what, a) in zip(axes, (("image", image), ("ground truth", truth), ("prediction (p ≥ threshold)", mask)),
                             strict=True):
        ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=255 if a.dtype == np.uint8 else 1,
                  interpolation="nearest")
        ax.set_title(what, fontsize=9)
        ax.axis("off")
    fig.suptitle(title + " — research use only, not a medical device", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _cmd_predict(args: argparse.Namespace) -> None:
    from pathlib import Path

    from PIL import Image
    from rich.progress import Progress

    from benchmarks.results import write_bytes

    if args.truth and len(args.truth) != len(args.images):
        raise MedzooError(f"--truth gives {len(args.truth)} masks for {len(args.images)} images: one per image, "
                          f"in order")
    net, meta = zoo.load_trained(args.checkpoint)
    if any(k not in meta for k in SEGMENTATION_META):
        raise MedzooError(f"{args.checkpoint} is a {meta.get('task', 'classification')} model ({meta['arch']} trained "
                          f"on {meta.get('trained_on', '?')}): `medzoo predict` segments images; export it with "
                          f"`medzoo export` and load it with zoo.load_pretrained instead")
    net = net.to(args.device)
    threshold = meta["threshold"] if args.threshold is None else args.threshold
    out_dir = Path(args.out)
    table = Table(title=f"{meta['arch']} trained on {meta.get('trained_on', '?')} — positive class: "
                        f"{meta.get('positive_class', '1')}")
    for col in ("image", "size", "positive px", "Dice vs truth", "written"):
        table.add_column(col)
    with Progress(console=err) as bar:
        task = bar.add_task("sliding window", total=len(args.images))
        for i, path in enumerate(args.images):
            image = _read_image(path, int(meta["in_chans"]))
            x = zoo.image_to_tensor(image, tuple(meta["mean"]), tuple(meta["std"]))
            prob = zoo.sliding_window(net, x, int(meta["patch_size"]), float(meta["overlap"]),
                                      device=args.device).numpy()
            mask = prob >= threshold
            stem = Path(path).stem
            files = {f"{stem}_prob.png": (prob * 255).round().astype(np.uint8),
                     f"{stem}_mask.png": mask * np.uint8(255)}
            dice, written = "–", list(files)
            for name, a in files.items():
                buf = io.BytesIO()
                Image.fromarray(a).save(buf, format="PNG")
                write_bytes(out_dir / name, buf.getvalue())
            if args.truth:
                truth = _read_image(args.truth[i], 1) > 127
                truth = ~truth if args.invert_truth else truth
                if truth.shape != mask.shape:
                    raise MedzooError(f"{args.truth[i]} is {truth.shape[1]}x{truth.shape[0]} but {path} is "
                                      f"{mask.shape[1]}x{mask.shape[0]}")
                denom = int(truth.sum()) + int(mask.sum())
                dice = f"{2 * int((truth & mask).sum()) / denom:.3f}" if denom else "–"
                write_bytes(out_dir / f"{stem}_panel.png", _panel(image, truth, mask, f"{stem}: {meta['arch']} "
                                                                   f"({meta.get('trained_on', '?')}), Dice {dice}"))
                written.append(f"{stem}_panel.png")
            table.add_row(path, f"{mask.shape[1]}x{mask.shape[0]}", f"{mask.mean():.1%}", dice,
                          ", ".join(str(out_dir / n) for n in written))
            bar.advance(task)
    out.print(table)


def _cmd_run(args: argparse.Namespace) -> None:
    from functools import partial

    from filelock import BaseFileLock, Timeout
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks.cells.feature_cache import FeatureCache
    from benchmarks.executors import Outcome
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES, select

    suite = SUITES.get(args.suite)
    if args.executor == "ray" and args.device.startswith("cuda") and (args.gpus_per_cell <= 0 or args.device != "cuda"):
        raise MedzooError("on Ray, give --device cuda (each task sees only its own GPUs) with --gpus-per-cell 1 (or "
                          "a fraction): without a GPU request Ray hides every GPU from the task")
    if args.device.startswith("cuda") and args.executor == "local":
        import torch

        if not torch.cuda.is_available():
            raise MedzooError(f"--device {args.device}: no CUDA device is visible to torch "
                              f"{torch.__version__}; run with --device cpu")
    try:
        cells = select(suite, models=args.models, datasets=args.datasets, modes=args.modes, sizes=args.sizes,
                       seeds=args.seeds, epochs=args.epochs)
    except ValueError as e:
        raise MedzooError(str(e)) from None
    if not cells:
        raise MedzooError(f"no cell of {suite.id} matches the filters (`medzoo ls suites`, `medzoo ls`)")
    store = ResultStore(args.results_dir)
    if args.force:
        for c in cells:
            store.clear_checkpoint(c)
    todo = [c for c in cells if args.force or not store.done(c)]
    if not todo:
        err.print(f"{suite.id}: all {len(cells)} cells are already in {store.root}", highlight=False)
        _write_board(suite.name, store, args.out_dir)
        return
    executor = _executor(args)
    err.print(f"{suite.id}: {len(cells)} cells, {len(cells) - len(todo)} already in {store.root}, {len(todo)} to run"
              + (f" on Ray ({args.cpus_per_cell:g} CPU, {args.gpus_per_cell:g} GPU per cell)"
                 if executor.name == "ray" else ""), highlight=False)
    failed: list[str] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bars:
        cells_bar = bars.add_task("cells", total=len(todo))
        inner: dict[str, object] = {}

        def report(kind: str, completed: int, total: int, text: str) -> None:
            if kind not in inner:
                inner[kind] = bars.add_task(kind, total=total)
            bars.update(inner[kind], completed=completed, total=total,  # type: ignore[arg-type]
                        description=f"  {text}")

        # progress callbacks cannot travel to Ray workers: there the bar counts finished cells only
        sources = frozenset(c.init_from for c in suite.cells() + cells if c.init_from)
        fn = partial(_run_keeping, keep=True if args.save_checkpoints else sources, data_dir=args.data_dir,
                     device=args.device, store=store, cache=None if args.no_feature_cache else FeatureCache(),
                     **({"report": report} if executor.name == "local" else {}))
        held: dict[str, BaseFileLock] = {}
        deferred: list[Cell] = []

        def claimed(candidates: list[Cell], wait: bool) -> Iterator[Cell]:
            """Cells this run computes: each under its store lock, taken just before the executor needs it (one
            at a time locally; all at submission on Ray). A cell locked by another run is deferred, or waited for."""
            for cell in candidates:
                lock = store.lock(cell)
                try:
                    lock.acquire(timeout=-1 if wait else 0)
                except Timeout:
                    deferred.append(cell)
                    continue
                if not args.force and store.done(cell):  # finished meanwhile by another `medzoo run` on this store
                    lock.release()
                    bars.advance(cells_bar)
                    continue
                held[cell.key] = lock
                bars.update(cells_bar, description=f"[bold]{cell.label}")
                yield cell

        def collect(outcomes: Iterator[Outcome]) -> None:
            for o in outcomes:
                try:
                    if o.result is None:
                        failed.append(o.cell.label)
                        bars.console.print(f"[red]failed[/red] {o.cell.label}: {o.error} (epoch checkpoint kept: the "
                                           f"next run resumes it)", highlight=False, soft_wrap=True)
                    else:
                        store.write(o.result, o.cell)
                        bars.console.print(_result_line(o.result, o.cell.label), highlight=False, soft_wrap=True)
                finally:
                    held.pop(o.cell.key).release()
                    for task in inner.values():
                        bars.remove_task(task)  # type: ignore[arg-type]
                    inner.clear()
                bars.advance(cells_bar)

        try:  # cells that start from another cell's model go after every cell that does not
            for wave in ([c for c in todo if not c.init_from], [c for c in todo if c.init_from]):
                collect(executor.map(fn, claimed(wave, wait=False)))
            if deferred:
                waiting, deferred[:] = list(deferred), []
                bars.console.print(f"{len(waiting)} cell(s) are being computed by another run on this store: "
                                   f"waiting for them (and running any it leaves unfinished)", highlight=False)
                collect(executor.map(fn, claimed(waiting, wait=True)))
        finally:  # an error that stops the run frees the cells this run still holds
            for lock in held.values():
                lock.release()
    _write_board(suite.name, store, args.out_dir)
    if failed:
        raise MedzooError(f"{len(failed)} of {len(todo)} cells failed: {'; '.join(failed)}. The board holds the rest; "
                          f"`medzoo run` again retries the failed cells")


def _run_keeping(cell: Cell, keep: bool | frozenset[str], **kwargs: Any) -> Result:
    """`run_cell`, keeping the model when asked to (`--save-checkpoints`) or when another cell starts from it."""
    from benchmarks.cells import run_cell

    return run_cell(cell, keep_model=keep is True or cell.key in keep, **kwargs)


def _result_line(result: Result, label: str) -> str:
    if result.status != "ok":
        return f"[yellow]{result.status}[/yellow] {label}: {result.reason}"
    test = {k: v for k, v in result.test.items() if v is not None}
    headline = next((f"{k} {test[k]:.3f}" for k in ("f1", "dice") if k in test), "")
    auc = f"test AUC {test['auc']:.3f}" if "auc" in test else "test AUC undefined"
    return (f"[green]ok[/green] {label}: {auc}" + (f", {headline}" if headline else "")
            + f" ({result.provenance.duration_s or 0:.0f} s)")


def _executor(args: argparse.Namespace) -> Executor:
    from benchmarks.executors import LocalExecutor, RayExecutor

    if args.executor == "local":
        if args.address:
            raise MedzooError("--address is for --executor ray")
        return LocalExecutor()
    try:
        return RayExecutor(address=args.address or None, cpus=args.cpus_per_cell, gpus=args.gpus_per_cell,
                           retries=args.retries)
    except ValueError as e:
        raise MedzooError(str(e)) from None


def _cmd_cache(args: argparse.Namespace) -> None:
    from datetime import datetime, timezone

    from benchmarks.cells.feature_cache import FeatureCache

    cache = FeatureCache(args.cache_dir)
    if args.action == "clear":
        n = cache.clear(args.pattern)
        out.print(f"removed {n} feature cache entr{'y' if n == 1 else 'ies'} from {cache.root}", highlight=False)
        return
    rows = cache.entries()
    table = Table(title=f"feature cache {cache.root}: {len(rows)} entries, {sum(r['mb'] for r in rows):.1f} MB")
    for col in ("arch", "dataset", "split", "input", "features", "MB", "created (UTC)"):
        table.add_column(col, justify="right" if col in ("input", "MB") else "left")
    for r in rows:
        created = datetime.fromtimestamp(r["created"], timezone.utc).strftime("%Y-%m-%d %H:%M") if r["created"] else "?"
        table.add_row(r["arch"], r["dataset"], r["split"], str(r["input_size"]), r["shape"], f"{r['mb']:.2f}", created)
    out.print(table)


def _cmd_export(args: argparse.Namespace) -> None:
    from benchmarks.export import export

    folder = export(args.source, args.out, repo=args.repo, results_dir=args.results_dir)
    config = json.loads((folder / "config.json").read_text())
    out.print(f"wrote {folder}: {config['architecture']}, {config['num_classes']} classes "
              f"({', '.join(config['label_names'])}); load with zoo.load_pretrained('{folder}')", highlight=False)


def _cmd_push(args: argparse.Namespace) -> None:
    from benchmarks.export import push

    with err.status(f"uploading {args.folder} to {args.repo}"):
        url = push(args.folder, args.repo, token=args.token, private=args.private)
    out.print(f"pushed {args.folder} → {url}", highlight=False)


def _cmd_speed(args: argparse.Namespace) -> None:
    import time
    from pathlib import Path

    from benchmarks import speed
    from benchmarks.results import write_text

    t0 = time.perf_counter()
    info = speed.machine()
    rows: list[speed.Row] = []
    with err.status("") as status:
        status.update("machine peak: fp32 matmul")
        peak = speed.peak_gflops()
        rows.append(speed.Row("peak", "fp32 matmul 2048x2048", f"{peak:.1f} GFLOP/s", "best of 5",
                              {"gflops": peak}))
        for size in (64, 224):
            for name in speed.FEATURE_MODELS:
                status.update(f"feature extraction: {name} @ {size} px")
                rows.append(speed.feature_throughput(name, size, peak, batch=64 if size == 64 else 16))
        status.update("linear probe: medzoo cell vs frozen backbone every epoch (BreastMNIST, EfficientNet-Lite0)")
        rows += speed.linear_probe(args.data_dir)
        status.update("fine-tune step: medzoo path vs medmnist DataLoader (PneumoniaMNIST, resnet18_28)")
        rows += speed.finetune_path(args.data_dir)
        if not args.skip_quick:
            status.update("quick suite: empty vs warm feature cache (~8 min)")
            rows += speed.quick_cold_warm(args.data_dir)
    table = Table(title=f"medzoo speed — {info['cpu']}, {info['torch_threads']} threads, "
                        f"load {info['load_average_at_start']}")
    for col in ("section", "what", "result", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.section, r.what, r.value, r.detail)
    out.print(table)
    path = Path(args.out)
    write_text(path, speed.report_markdown(rows, info, time.perf_counter() - t0))
    err.print(f"wrote {path}", highlight=False)


def _write_board(suite: str, store: object, out_dir: str) -> None:
    from pathlib import Path

    from benchmarks import boards
    from benchmarks.results import write_bytes, write_text

    board = boards.suite_board(store, suite)  # type: ignore[arg-type]
    files = boards.generate(store, suite, board)  # type: ignore[arg-type]
    for name, content in files.items():
        path = Path(out_dir) / name
        (write_bytes if isinstance(content, bytes) else write_text)(path, content)  # type: ignore[operator]
        err.print(f"wrote {path}", highlight=False)
    out.print(boards.rich_table(store, suite, board))  # type: ignore[arg-type]


def _cmd_leaderboard(args: argparse.Namespace) -> None:
    from pathlib import Path

    from benchmarks import boards
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES

    store = ResultStore(args.results_dir)
    suites = [args.suite] if args.suite else [
        s.name for s in SUITES if (Path(args.out_dir) / f"{s.name}.md").is_file() or any(store.results(s.name))]
    if not suites:
        raise MedzooError(f"no results in {store.root} and no boards in {args.out_dir}: nothing to generate or check")
    for name in suites:
        SUITES.get(name)
        if not args.check:
            _write_board(name, store, args.out_dir)
            continue
        diffs = boards.check(store, name, args.out_dir)
        if diffs:
            raise MedzooError(f"{name}: the committed board differs from what the results store generates "
                              f"({'; '.join(diffs)}). Run `medzoo leaderboard --suite {name}` and commit the output.")
        out.print(f"[green]ok[/green] {name}: {args.out_dir}/{name}.md and .csv match the results store")


def _cmd_audit(args: argparse.Namespace) -> None:
    """Re-score every result with outputs from those outputs and compare with what it stores."""
    from rich.progress import Progress

    from benchmarks.audit import rescore
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES

    store = ResultStore(args.results_dir)
    if args.suite:
        SUITES.get(args.suite)
    results = list(store.results(args.suite))
    if not results:
        raise MedzooError(f"no results in {store.root}" + (f"/{args.suite}" if args.suite else ""))
    counts = dict.fromkeys(("lossless", "migrated", "no outputs", "mismatch"), 0)
    bad: list[str] = []
    with Progress(console=err, transient=True) as bars:
        for r in bars.track(results, description="re-scoring from stored outputs"):
            if r.outputs is None:
                counts["no outputs"] += 1
                continue
            if rescore(r, store.outputs(r)).model_dump() != (r.metrics.model_dump() if r.metrics else None):
                counts["mismatch"] += 1
                bad.append(f"{r.suite}/{r.key}")
                continue
            counts["lossless" if r.outputs.lossless else "migrated"] += 1
    table = Table(title=f"audit of {store.root}: metrics re-scored from the stored outputs")
    for col in ("results", "re-scored exactly, lossless", "re-scored exactly, schema-1 rounded scores",
                "no outputs (skipped, failed, schema-1 segmentation)", "mismatch"):
        table.add_column(col, justify="right")
    table.add_row(str(len(results)), *(str(counts[k]) for k in ("lossless", "migrated", "no outputs", "mismatch")))
    out.print(table)
    if bad:
        raise MedzooError(f"{len(bad)} result(s) do not re-score to their stored metrics: {', '.join(bad[:5])}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medzoo", description="medzoo: medical-imaging model zoo and benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("ls", help="list models (default), datasets or suites")
    ls.add_argument("what", nargs="?", default="models", help="models | datasets | suites, or a model pattern")
    ls.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    ls.add_argument("--pretrained", action="store_true", help="list weights (arch.tag) instead of architectures")
    ls.add_argument("--task", choices=["classification", "segmentation"])
    ls.set_defaults(func=_cmd_ls)
    info = sub.add_parser("info", help="spec, weights and preprocessing of a model")
    info.add_argument("name", help="NAME or NAME.TAG")
    info.set_defaults(func=_cmd_info)
    pull = sub.add_parser("pull", help="download and verify pretrained weights into the cache")
    pull.add_argument("name", help="NAME or NAME.TAG (default weights when no tag)")
    pull.add_argument("--cache-dir", help="cache folder (default: the HF hub cache or the torch.hub cache)")
    pull.set_defaults(func=_cmd_pull)
    pr = sub.add_parser("probe", help="frozen features + scikit-learn head on a MedMNIST dataset (features mode)")
    pr.add_argument("models", nargs="+", help="NAME or NAME.TAG, one or more")
    pr.add_argument("--dataset", default="breastmnist", help="a single-label MedMNIST dataset (default breastmnist)")
    pr.add_argument("--size", type=int, default=64, help="input size the 28 px images are resized to (default 64)")
    pr.add_argument("--head", default="logistic", help="logistic | linear_svm | knn (default logistic)")
    pr.add_argument("--random", action="store_true", help="also run each model with random weights, as a baseline")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--data-dir", help="folder with the MedMNIST .npz files (default: $MEDZOO_DATA_DIR, ~/.medmnist)")
    pr.set_defaults(func=_cmd_probe)
    run = sub.add_parser("run", help="run a benchmark suite (resumable) and write its leaderboard")
    run.add_argument("--suite", default="quick", help="suite name (`medzoo ls suites`; default quick)")
    run.add_argument("--models", nargs="+", help="only these models (fnmatch on arch or arch.tag)")
    run.add_argument("--datasets", nargs="+", help="only these datasets")
    run.add_argument("--modes", nargs="+", choices=["features", "linear_probe", "finetune", "scratch"])
    run.add_argument("--sizes", nargs="+", type=int, help="only cells whose data or input size is one of these")
    run.add_argument("--seeds", nargs="+", type=int, help="run these seeds instead of the suite's")
    run.add_argument("--epochs", type=int, help="override the protocol's epochs (recorded; a different cell)")
    run.add_argument("--data-dir", help="dataset folder (default: $MEDZOO_DATA_DIR, then ~/.medmnist)")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    run.add_argument("--force", action="store_true", help="re-run cells that already have a result")
    run.add_argument("--save-checkpoints", action="store_true",
                     help="keep the best model of every finetune/scratch cell (outside git; the result JSON "
                          "references it by path and sha256; `medzoo export` makes a Hub-style folder of it)")
    run.add_argument("--no-feature-cache", action="store_true",
                     help="compute frozen-backbone features afresh instead of reading/writing the feature cache")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: in this process (default); ray: each cell a Ray task")
    run.add_argument("--address", help="Ray cluster address HOST:PORT, or auto (default with --executor ray: a "
                                       "Ray started for this run)")
    run.add_argument("--cpus-per-cell", type=float, default=1.0, help="Ray: CPUs per cell (and torch threads)")
    run.add_argument("--gpus-per-cell", type=float, default=0.0, help="Ray: GPUs per cell (use with --device cuda)")
    run.add_argument("--retries", type=int, default=2, help="Ray: retries of a cell whose worker died (default 2)")
    run.add_argument("--results-dir", default="leaderboards/results", help="results store (default %(default)s)")
    run.add_argument("--out-dir", default="leaderboards", help="where boards are written (default %(default)s)")
    run.set_defaults(func=_cmd_run)
    pd_ = sub.add_parser("predict", help="segment images with a trained model: probability maps and masks as PNG")
    pd_.add_argument("checkpoint", help="a .safetensors model written by `medzoo run` (result: model.checkpoint)")
    pd_.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, GIF)")
    pd_.add_argument("--out", required=True, help="folder for <image>_prob.png and <image>_mask.png")
    pd_.add_argument("--truth", nargs="+", help="ground-truth masks, one per image: adds Dice and <image>_panel.png")
    pd_.add_argument("--invert-truth", action="store_true", help="dark pixels of --truth are positive (ISBI labels)")
    pd_.add_argument("--threshold", type=float, help="probability threshold (default: the model's, 0.5)")
    pd_.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    pd_.set_defaults(func=_cmd_predict)
    sp = sub.add_parser("speed", help="measure medzoo against the reference pipelines; writes docs/performance.md")
    sp.add_argument("--data-dir", help="MedMNIST folder (default: $MEDZOO_DATA_DIR, then ~/.medmnist)")
    sp.add_argument("--out", default="docs/performance.md", help="report file (default %(default)s)")
    sp.add_argument("--skip-quick", action="store_true", help="skip the quick suite cold/warm cache run (~8 min)")
    sp.set_defaults(func=_cmd_speed)
    ca = sub.add_parser("cache", help="list or clear the frozen-feature cache")
    ca.add_argument("action", choices=["ls", "clear"])
    ca.add_argument("pattern", nargs="?", default="*", help="clear: fnmatch on entry file names (default all)")
    ca.add_argument("--cache-dir", help="default $MEDZOO_CACHE_DIR/features or ~/.cache/medzoo/features")
    ca.set_defaults(func=_cmd_cache)
    ex = sub.add_parser("export", help="write a kept model as a Hugging Face Hub-style folder with a model card")
    ex.add_argument("source", help="a result JSON of a cell run with --save-checkpoints, or the .safetensors it names")
    ex.add_argument("--out", required=True, help="folder to write (model.safetensors, config.json, README.md)")
    ex.add_argument("--repo", help="the Hub repo ORG/NAME the card's loading example names (default: the folder)")
    ex.add_argument("--results-dir", default="leaderboards/results",
                    help="store to look up a model file's result in (default %(default)s)")
    ex.set_defaults(func=_cmd_export)

    pu = sub.add_parser("push", help="upload an exported folder to the Hugging Face Hub (needs internet)")
    pu.add_argument("folder", help="a folder written by `medzoo export`")
    pu.add_argument("--repo", required=True, help="ORG/NAME on the Hub (created if missing)")
    pu.add_argument("--token", help="Hub token (default: the one `hf auth login` stored, or $HF_TOKEN)")
    pu.add_argument("--private", action="store_true", help="create the repo as private")
    pu.set_defaults(func=_cmd_push)

    au = sub.add_parser("audit", help="re-score stored results from their outputs; non-zero exit on any mismatch")
    au.add_argument("--suite", help="one suite (default: every suite in the store)")
    au.add_argument("--results-dir", default="leaderboards/results", help="results store (default %(default)s)")
    au.set_defaults(func=_cmd_audit)
    lb = sub.add_parser("leaderboard", help="generate boards from the results store, or --check the committed ones")
    lb.add_argument("--suite", help="one suite (default: every suite with results)")
    lb.add_argument("--check", action="store_true", help="exit non-zero if the committed .md/.csv differ")
    lb.add_argument("--results-dir", default="leaderboards/results", help="results store (default %(default)s)")
    lb.add_argument("--out-dir", default="leaderboards", help="boards folder (default %(default)s)")
    lb.set_defaults(func=_cmd_leaderboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MedzooError as e:
        err.print(f"[bold red]error:[/bold red] {e}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
