"""`medzoo probe`: are a model's frozen features any good on a MedMNIST dataset, against the same network at random
initialisation? One `features` cell per (model, weights), run through the runner into a results store (a temporary
one unless `--results-dir` names a store to keep them in), printed as a table."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.table import Table

from benchmarks.cli.console import add_format_argument, show

if TYPE_CHECKING:
    from benchmarks.suites import Cell

SUITE, VERSION = "probe", "1"  # the suite name the probe's cells are stored under


def _cells(args: argparse.Namespace) -> list[Cell]:
    from benchmarks.data import DATASETS, Task
    from benchmarks.suites import Cell, Policy, Protocol
    from zoo import MedzooError, TransferMode, make_head, resolve

    ds = DATASETS.get(args.dataset)
    if ds.task is Task.SEGMENTATION:
        raise MedzooError(f"{args.dataset} is a segmentation dataset; `medzoo probe` takes classification datasets")
    make_head(args.head, seed=args.seed)  # an unknown head: did-you-mean, before any feature is computed
    cells: dict[str, Cell] = {}
    for name in args.models:
        spec, weights = resolve(name)
        interpolation = weights.preprocess.interpolation if weights else "bicubic"
        policy = Policy.NATIVE if args.size == 28 else Policy(f"resize-{interpolation}")
        models = ([f"{spec.name}.{weights.tag}"] if weights else []) + \
            ([f"{spec.name}.random"] if args.random or not weights else [])
        for model in models:
            c = Cell(suite=SUITE, version=VERSION, model=model, dataset=args.dataset, data_size=28, policy=policy,
                     input_size=args.size, mode=TransferMode.FEATURES, seed=args.seed,
                     protocol=Protocol(head=args.head))
            cells[c.key] = c
    return list(cells.values())


def cmd_probe(args: argparse.Namespace) -> None:
    import tempfile
    from contextlib import ExitStack

    from benchmarks import runner
    from benchmarks.cli.run import draw
    from benchmarks.results import ResultStore
    from zoo import MedzooError

    cells = _cells(args)
    with ExitStack() as stack:
        root = args.results_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="medzoo-probe-"))
        store = ResultStore(root)
        events = runner.run(cells, store, data_dir=args.data_dir, feature_cache=False)
        planned = next(events)
        failed = draw(events, planned.todo) if planned.todo else []
        if failed:
            raise MedzooError(f"probe failed: {'; '.join(failed)}")
        results = [store.result(c.suite, c.key) for c in cells]
    table = Table(title=f"{args.dataset}: frozen features + {args.head} head (fit on train, seed {args.seed})")
    for col in ("model", "size", "dim", "val AUC", "test AUC", "s"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for c, r in zip(cells, results, strict=True):
        if r is None or r.status != "ok" or r.metrics is None:
            raise MedzooError(f"{c.model}: {r.status if r else 'no result'}" + (f" ({r.reason})" if r else ""))
        table.add_row(c.model, str(r.data.input_size if r.data else c.input_size),
                      str(r.training.feature_dim if r.training else "?"), _auc(r.metrics.val.get("auc")),
                      _auc(r.test.get("auc")), f"{r.provenance.duration_s or 0:.1f}")
    show(table, args.format)


def _auc(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pr = sub.add_parser("probe", help="frozen features + scikit-learn head on a MedMNIST dataset (features mode)",
                        description="One `features` cell per model (and per random-weight control with --random), "
                                    "run like `medzoo run` runs cells. Results go to a temporary store that is "
                                    "deleted afterwards (probe leaves nothing behind) unless --results-dir names a "
                                    "store to keep them in (a re-run then reads them back).")
    pr.add_argument("models", nargs="+", help="NAME or NAME.TAG, one or more")
    pr.add_argument("--dataset", default="breastmnist", help="a MedMNIST classification dataset (default breastmnist)")
    pr.add_argument("--size", type=int, default=64, help="input size the 28 px images are resized to (default 64)")
    pr.add_argument("--head", default="logistic", help="logistic | linear_svm | knn (default logistic)")
    pr.add_argument("--random", action="store_true", help="also run each model with random weights, as a baseline")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--data-dir", help="folder with the MedMNIST .npz files (default: $MEDZOO_DATA_DIR, ~/.medmnist)")
    pr.add_argument("--results-dir", help="keep the cells' results in this store (default: a temporary store, "
                                          "deleted when probe ends)")
    add_format_argument(pr)
    pr.set_defaults(func=cmd_probe)
