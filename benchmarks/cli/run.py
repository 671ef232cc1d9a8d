"""`medzoo run`: a suite's missing cells through the runner (`benchmarks.runner`), drawn as progress bars, then
its board. `draw` renders any run's events (`medzoo probe` uses it too)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from benchmarks.cli.console import add_format_argument, err
from benchmarks.cli.folders import COMMITTED_HELP, store_dirs

if TYPE_CHECKING:
    from benchmarks.results.schema import Result
    from benchmarks.runner import Event


def result_line(result: Result, label: str) -> str:
    if result.status != "ok":
        return f"[yellow]{result.status}[/yellow] {escape(label)}: {escape(str(result.reason))}"
    test = {k: v for k, v in result.test.items() if v is not None}
    headline = next((f"{k} {test[k]:.3f}" for k in ("f1", "dice") if k in test), "")
    auc = f"test AUC {test['auc']:.3f}" if "auc" in test else "test AUC undefined"
    return (f"[green]ok[/green] {label}: {auc}" + (f", {headline}" if headline else "")
            + f" ({result.provenance.duration_s or 0:.0f} s)")


def draw(events: Iterator[Event], todo: int) -> list[str]:
    """Draw the events after `Planned` (`todo` cells to run): a bar over the cells, one per progress kind of the
    running cell, a line per finished or failed cell. The labels of the failed cells."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from benchmarks import runner as r

    failed: list[str] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bars:
        cells_bar = bars.add_task("cells", total=todo)
        inner: dict[str, TaskID] = {}
        for e in events:
            if isinstance(e, r.Progress):
                if e.kind not in inner:
                    inner[e.kind] = bars.add_task(e.kind, total=e.total)
                bars.update(inner[e.kind], completed=e.completed, total=e.total, description=f"  {e.text}")
            elif isinstance(e, r.Started):
                bars.update(cells_bar, description=f"[bold]{e.cell.label}")
            elif isinstance(e, r.AlreadyDone):
                bars.advance(cells_bar)
            elif isinstance(e, r.Waiting):
                bars.console.print(f"{e.n} cell(s) are being computed by another run on this store: waiting for them "
                                   f"(and running any it leaves unfinished)", highlight=False)
            elif isinstance(e, r.Failed | r.Finished):
                if isinstance(e, r.Failed):
                    failed.append(e.cell.label)
                    bars.console.print(f"[red]failed[/red] {escape(e.cell.label)}: {escape(str(e.error))} (epoch "
                                       f"checkpoint kept: the "
                                       f"next run resumes it)", highlight=False, soft_wrap=True)
                else:
                    bars.console.print(result_line(e.result, e.cell.label), highlight=False, soft_wrap=True)
                for task in inner.values():
                    bars.remove_task(task)
                inner.clear()
                bars.advance(cells_bar)
    return failed


def cmd_run(args: argparse.Namespace) -> None:
    from benchmarks import paths, runner
    from benchmarks.cli.leaderboard import readme_headline, write_board
    from benchmarks.executors import make_executor
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES
    from zoo import MedzooError

    executor = make_executor(args.executor, args.address, args.cpus_per_cell, args.gpus_per_cell, args.retries)
    runner.check_device(args.device, executor, args.gpus_per_cell)
    if args.images:
        if args.suite or args.datasets or args.data_dir or args.committed:
            raise MedzooError("--images runs your own images: leave out --suite, --datasets and --data-dir (they "
                              "choose a suite's public datasets) and --committed (your results never go into "
                              "medzoo's committed boards)")
        if executor.name != "local":
            raise MedzooError("--images runs with the local executor: the dataset lives in this process")
        suite, reading = runner.images_run(args.images, task=args.task, resize=args.resize or "pad", models=args.models,
                                           modes=args.modes, sizes=args.sizes, seeds=args.seeds,
                                           allow_duplicates=args.allow_duplicates)
        err.print(f"{args.images}: {reading}", markup=False, highlight=False, soft_wrap=True)
        cells = runner.select_cells(suite, epochs=args.epochs, precision=args.precision)
        home = paths.runs_dir() / suite.name
        results_dir, out_dir = Path(args.results_dir or home / "results"), Path(args.out_dir or home)
    else:
        if args.task or args.resize or args.allow_duplicates:
            raise MedzooError("--task, --resize and --allow-duplicates go with --images (a suite's datasets define "
                              "their own)")
        suite = SUITES.get(args.suite or "quick")
        runner.check_paths(args.data_dir)
        cells = runner.select_cells(suite, models=args.models, datasets=args.datasets, modes=args.modes,
                                    sizes=args.sizes, seeds=args.seeds, epochs=args.epochs,
                                    precision=args.precision)
        results_dir, out_dir = store_dirs(args)
    store = ResultStore(results_dir)
    events = runner.run(cells, store, executor, force=args.force, save_checkpoints=args.save_checkpoints,
                        suite=suite, data_dir=args.data_dir, device=args.device,
                        feature_cache=not args.no_feature_cache)
    planned = next(events)
    assert isinstance(planned, runner.Planned)
    failed: list[str] = []
    if not planned.todo:
        err.print(f"{suite.id}: all {planned.total} cells are already in {store.root}", markup=False, highlight=False,
                  soft_wrap=True)
    else:
        err.print(f"{suite.id}: {planned.total} cells, {planned.done} already in {store.root}, {planned.todo} to run"
                  + (f" on Ray ({args.cpus_per_cell:g} CPU, {args.gpus_per_cell:g} GPU per cell)"
                     if executor.name == "ray" else ""), markup=False, highlight=False, soft_wrap=True)
        failed = draw(events, planned.todo)
    write_board(suite, store, out_dir, args.format)
    if args.committed:
        readme_headline(out_dir, check=False)
    if failed:
        raise MedzooError(f"{len(failed)} of {planned.todo} cells failed: {'; '.join(failed)}. The board holds the "
                          f"rest; `medzoo run` again retries the failed cells")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run a benchmark suite (resumable) and write its leaderboard")
    run.add_argument("--suite", help="suite name (`medzoo ls suites`; default quick)")
    run.add_argument("--images", metavar="PATH",
                     help="your own images instead of a suite: a folder with one subfolder per class, or a CSV "
                          "path,label[,patient_id][,split] (`a|b` labels: multi-label); runs --models x --modes x "
                          "--sizes x --seeds (default: ImageNet EfficientNet-Lite0 features and linear probe at 224 "
                          "px, seed 0: benchmarks.suites.IMAGES_DEFAULTS) with each mode's default protocol; results "
                          "and board under ./medzoo-runs/images-<name>-<hash>/ ($MEDZOO_RUNS_DIR)")
    run.add_argument("--task", choices=["binary", "multiclass", "multilabel", "ordinal"],
                     help="with --images: the task, when not the inferred one (ordinal is never inferred)")
    run.add_argument("--resize", choices=["pad", "squash"],
                     help="with --images: images not all of one square size are padded (aspect kept; default) or "
                          "squashed to the largest --sizes")
    run.add_argument("--allow-duplicates", action="store_true",
                     help="with --images and a split column: keep identical images that the given split puts in two "
                          "splits (a published split kept as it is; recorded) instead of refusing them")
    run.add_argument("--models", nargs="+",
                     help="only these models (fnmatch on arch or arch.tag); with --images: the models to run")
    run.add_argument("--datasets", nargs="+", help="only these datasets")
    run.add_argument("--modes", nargs="+", metavar="MODE",
                     help="only these transfer modes: features, linear_probe, finetune, scratch")
    run.add_argument("--sizes", nargs="+", type=int, help="only cells whose data or input size is one of these")
    run.add_argument("--seeds", nargs="+", type=int,
                     help="run these seeds instead of the suite's (a transfer target of seed s starts from "
                          "the source of seed s)")
    run.add_argument("--epochs", type=int, help="override the protocol's epochs (recorded; a different cell)")
    run.add_argument("--precision", choices=["fp32", "bf16"],
                     help="override the protocol's precision: bf16 (fast on CPUs with AMX/AVX512-BF16 and on GPUs) or "
                          "fp32 (recorded; a different cell)")
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
    run.add_argument("--committed", action="store_true",
                     help=COMMITTED_HELP.replace("read and write", "write into") + ": to update the committed boards")
    run.add_argument("--results-dir", help="results store (default ./medzoo-runs/results, or $MEDZOO_RUNS_DIR/results; "
                                           "with --images ./medzoo-runs/<run>/results)")
    run.add_argument("--out-dir", help="where boards are written (default ./medzoo-runs, or $MEDZOO_RUNS_DIR; with "
                                       "--images ./medzoo-runs/<run>)")
    add_format_argument(run)
    run.set_defaults(func=cmd_run)
