"""`medzoo cache`: list or clear the frozen-feature cache."""

from __future__ import annotations

import argparse

from rich.table import Table

from benchmarks.cli.console import add_format_argument, out, show


def cmd_cache(args: argparse.Namespace) -> None:
    from datetime import datetime, timezone

    from benchmarks.cells.feature_cache import FeatureCache

    cache = FeatureCache(args.cache_dir)
    if args.action == "clear":
        n = cache.clear(args.pattern)
        out.print(f"removed {n} feature cache entr{'y' if n == 1 else 'ies'} from {cache.root}", markup=False, highlight=False,
                  soft_wrap=True)
        return
    rows = cache.entries()
    table = Table(title=f"feature cache {cache.root}: {len(rows)} entries, {sum(r['mb'] for r in rows):.1f} MB")
    for col in ("arch", "dataset", "split", "input", "features", "MB", "created (UTC)"):
        table.add_column(col, justify="right" if col in ("input", "MB") else "left")
    for r in rows:
        created = datetime.fromtimestamp(r["created"], timezone.utc).strftime("%Y-%m-%d %H:%M") if r["created"] else "?"
        table.add_row(r["arch"], r["dataset"], r["split"], str(r["input_size"]), r["shape"], f"{r['mb']:.2f}", created)
    show(table, args.format, rows)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ca = sub.add_parser("cache", help="list or clear the frozen-feature cache")
    ca.add_argument("action", choices=["ls", "clear"])
    ca.add_argument("pattern", nargs="?", default="*", help="clear: fnmatch on entry file names (default all)")
    ca.add_argument("--cache-dir", help="default $MEDZOO_CACHE_DIR/features or ~/.cache/medzoo/features")
    add_format_argument(ca)
    ca.set_defaults(func=cmd_cache)
