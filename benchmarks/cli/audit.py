"""`medzoo audit`: re-score every stored result from its outputs and compare with what it stores."""

from __future__ import annotations

import argparse

from rich.table import Table

from benchmarks.cli.console import add_format_argument, err, show
from benchmarks.cli.folders import add_store_arguments, store_dirs


def cmd_audit(args: argparse.Namespace) -> None:
    from rich.progress import Progress

    from benchmarks.audit import rescore
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES
    from zoo import MedzooError

    store = ResultStore(store_dirs(args)[0])
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
    show(table, args.format)
    if bad:
        raise MedzooError(f"{len(bad)} result(s) do not re-score to their stored metrics: {', '.join(bad[:5])}")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    au = sub.add_parser("audit", help="re-score stored results from their outputs; non-zero exit on any mismatch")
    au.add_argument("--suite", help="one suite (default: every suite in the store)")
    add_store_arguments(au, boards=False)
    add_format_argument(au)
    au.set_defaults(func=cmd_audit)
