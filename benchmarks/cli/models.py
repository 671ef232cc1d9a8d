"""`medzoo ls` (models, datasets, suites), `medzoo info` and `medzoo pull`."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.table import Table

from benchmarks.cli.console import err, out

if TYPE_CHECKING:
    from zoo import ModelSpec, WeightsSpec


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.1f}M"


def _source_kind(w: WeightsSpec) -> str:
    if w.source.startswith("hf-hub:"):
        return "hf-hub" + (" (unpinned)" if w.unpinned else "")
    return w.source.split(":", 1)[0]


def _ls_models(args: argparse.Namespace) -> None:
    import zoo

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
        raise zoo.MedzooError(f"no model matches {args.pattern!r}" + (f" with task {args.task}" if args.task else ""))
    out.print(table)


def _ls_datasets(args: argparse.Namespace) -> None:
    from benchmarks.data import DATASETS

    table = Table(title="datasets")
    for col in ("name", "task", "channels", "classes", "train / val / test", "sizes", "license"):
        table.add_column(col)
    for d in DATASETS:
        if d.test_only or not fnmatch.fnmatchcase(d.name, args.pattern):
            continue
        if args.task and (d.task.value == "segmentation") != (args.task == "segmentation"):
            continue
        n = d.n_samples
        table.add_row(d.name, d.task.value, str(d.n_channels), str(d.num_classes),
                      f"{n['train']} / {n['val']} / {n['test']}", ", ".join(map(str, d.sizes)), d.license)
    _print_or_none(table, "dataset", args.pattern, DATASETS.get)


def _ls_suites(args: argparse.Namespace) -> None:
    from benchmarks.suites import SUITES

    table = Table(title="benchmark suites")
    for col in ("suite", "cells", "cost", "what it runs"):
        table.add_column(col, overflow="fold")
    for s in SUITES:
        if fnmatch.fnmatchcase(s.name, args.pattern):
            table.add_row(s.id, str(len(s.cells())), s.minutes, s.description)
    _print_or_none(table, "suite", args.pattern, SUITES.get)


def _print_or_none(table: Table, what: str, pattern: str, lookup: Callable[[str], object]) -> None:
    """Print `table`; an empty one is an error (exit 2) as for models: a plain name gets the registry's
    did-you-mean."""
    if table.row_count:
        out.print(table)
        return
    if not any(c in pattern for c in "*?["):
        lookup(pattern)  # raises UnknownNameError with close names
    from zoo import MedzooError

    raise MedzooError(f"no {what} matches {pattern!r}; `medzoo ls {what}s` lists them")


LISTINGS: dict[str, Callable[[argparse.Namespace], None]] = {"models": _ls_models, "datasets": _ls_datasets,
                                                              "suites": _ls_suites}


def cmd_ls(args: argparse.Namespace) -> None:
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


def cmd_info(args: argparse.Namespace) -> None:
    import zoo

    spec, _ = zoo.resolve(args.name)
    tag = args.name.partition(".")[2] or None
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: tuple[tuple[str, Any], ...] = (
        ("name", spec.name), ("family", spec.family), ("task", spec.task.value), ("paper", spec.paper),
        ("description", spec.description), ("default input", f"{spec.default_size} px"),
        ("minimum input", f"{spec.min_size} px" + (f" (multiple of {spec.size_divisor})"
                                                   if spec.size_divisor > 1 else "")),
        ("feature dim", str(spec.feature_dim)), ("parameters", f"{spec.num_params:,}"),
        ("GFLOPs (2×MAC)", f"{spec.gflops} at {spec.default_size} px"),
        ("default weights", f"{spec.name}.{spec.default_tag}" if spec.default_tag else
         "none: name a tag below" if spec.weights else "none (random init)"))
    for k, v in rows:
        facts.add_row(k, v)
    out.print(facts)
    if spec.weights:
        out.print(_weights_table(spec, tag))


def cmd_pull(args: argparse.Namespace) -> None:
    import zoo

    spec, weights = zoo.resolve(args.name)
    if weights is None:
        raise zoo.MedzooError(f"{spec.name} has no default weights to pull: " + (
            f"name one, e.g. {', '.join(f'{spec.name}.{t}' for t in spec.weights)}" if spec.weights else
            f"it has no pretrained weights (`medzoo info {spec.name}`)"))
    with err.status(f"fetching {spec.name}.{weights.tag} from {weights.source}"):
        path = zoo.fetch(weights, args.cache_dir, name=f"{spec.name}.{weights.tag}")
    out.print(f"[green]ok[/green] {spec.name}.{weights.tag} → {path}", soft_wrap=True, highlight=False)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ls = sub.add_parser("ls", help="list models (default), datasets or suites")
    ls.add_argument("what", nargs="?", default="models", help="models | datasets | suites, or a model pattern")
    ls.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    ls.add_argument("--pretrained", action="store_true", help="list weights (arch.tag) instead of architectures")
    ls.add_argument("--task", choices=["classification", "segmentation"])
    ls.set_defaults(func=cmd_ls)
    info = sub.add_parser("info", help="spec, weights and preprocessing of a model")
    info.add_argument("name", help="NAME or NAME.TAG")
    info.set_defaults(func=cmd_info)
    pull = sub.add_parser("pull", help="download and verify pretrained weights into the cache")
    pull.add_argument("name", help="NAME or NAME.TAG (default weights when no tag)")
    pull.add_argument("--cache-dir", help="cache folder (default: the HF hub cache or the torch.hub cache)")
    pull.set_defaults(func=cmd_pull)
