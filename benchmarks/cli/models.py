"""`medzoo ls` (models, datasets, suites), `medzoo info` and `medzoo pull`."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from benchmarks.cli.console import add_format_argument, chosen_format, err, out, print_json, show, show_facts

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
    records: list[dict[str, Any]] = []
    if args.pretrained:
        table = Table(title="pretrained weights (arch.tag)")
        for col in ("name", "source", "pretrain data", "license", "classes", "input"):
            table.add_column(col)
        for s in specs:
            for w in s.weights.values():
                default = " (default)" if w.tag == s.default_tag else ""
                table.add_row(f"{s.name}.{w.tag}{default}", _source_kind(w), w.pretrain_data, w.license,
                              str(w.num_classes or "-"), str(w.preprocess.input_size))
                records.append({"name": f"{s.name}.{w.tag}", "default": w.tag == s.default_tag, "source": w.source,
                                "unpinned": w.unpinned, "pretrain_data": w.pretrain_data, "license": w.license,
                                "num_classes": w.num_classes, "input_size": w.preprocess.input_size})
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
            records.append({"name": s.name, "family": s.family, "task": s.task.value, "params": s.num_params,
                            "gflops": s.gflops, "default_size": s.default_size, "min_size": s.min_size,
                            "feature_dim": s.feature_dim, "weights": tags, "default_weights": s.default_tag})
    if not table.rows:
        raise zoo.MedzooError(f"no model matches {args.pattern!r}" + (f" with task {args.task}" if args.task else ""))
    show(table, args.format, records)


def _ls_datasets(args: argparse.Namespace) -> None:
    from benchmarks.data import DATASETS

    table = Table(title="datasets", caption=Text("; ".join(DATASETS.absent.values())) if DATASETS.absent else None)
    records: list[dict[str, Any]] = []
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
        records.append({"name": d.name, "task": d.task.value, "channels": d.n_channels, "classes": d.num_classes,
                        "n_samples": dict(n), "sizes": list(d.sizes), "license": d.license})
    _print_or_none(table, "dataset", args.pattern, DATASETS.get, args.format, records)


def _ls_suites(args: argparse.Namespace) -> None:
    from benchmarks.suites import SUITES

    table = Table(title="benchmark suites")
    records: list[dict[str, Any]] = []
    for col in ("suite", "cells", "cost", "what it runs"):
        table.add_column(col, overflow="fold")
    for s in SUITES:
        if fnmatch.fnmatchcase(s.name, args.pattern):
            table.add_row(s.id, str(len(s.cells())), s.minutes, s.description)
            records.append({"suite": s.id, "cells": len(s.cells()), "cost": s.minutes, "description": s.description})
    _print_or_none(table, "suite", args.pattern, SUITES.get, args.format, records)


def _print_or_none(table: Table, what: str, pattern: str, lookup: Callable[[str], object], fmt: str | None,
                   records: list[dict[str, Any]]) -> None:
    """Print `table`; an empty one is an error (exit 2) as for models: a plain name gets the registry's
    did-you-mean."""
    if table.row_count:
        show(table, fmt, records)
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


def _weights(spec: ModelSpec, only: str | None) -> tuple[Table, list[dict[str, Any]]]:
    table = Table(title=f"{spec.name}: weights")
    records: list[dict[str, Any]] = []
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
        records.append({"tag": w.tag, "default": w.tag == spec.default_tag, "source": w.source,
                        "revision": w.revision, "sha256": w.sha256, "unpinned": w.unpinned,
                        "pretrain_data": w.pretrain_data, "license": w.license, "num_classes": w.num_classes,
                        "preprocess": {"input_size": p.input_size, "interpolation": p.interpolation,
                                       "crop_pct": p.crop_pct, "mean": list(p.mean), "std": list(p.std)},
                        "notes": w.notes})
    return table, records


def cmd_info(args: argparse.Namespace) -> None:
    import zoo

    spec, _ = zoo.resolve(args.name)
    tag = args.name.partition(".")[2] or None
    facts = {
        "name": spec.name, "family": spec.family, "task": spec.task.value, "paper": spec.paper,
        "description": spec.description, "default input": f"{spec.default_size} px",
        "minimum input": f"{spec.min_size} px" + (f" (multiple of {spec.size_divisor})" if spec.size_divisor > 1
                                                  else ""),
        "feature dim": str(spec.feature_dim), "parameters": f"{spec.num_params:,}",
        "GFLOPs (2×MAC)": f"{spec.gflops} at {spec.default_size} px",
        "default weights": f"{spec.name}.{spec.default_tag}" if spec.default_tag else
        "none: name a tag below" if spec.weights else "none (random init)"}
    table, records = _weights(spec, tag)
    fmt = chosen_format(args.format)
    if fmt == "json":
        print_json({"name": spec.name, "family": spec.family, "task": spec.task.value, "paper": spec.paper,
                    "description": spec.description, "default_size": spec.default_size, "min_size": spec.min_size,
                    "size_divisor": spec.size_divisor, "feature_dim": spec.feature_dim,
                    "params": spec.num_params, "gflops": spec.gflops, "default_weights": spec.default_tag,
                    "weights": records})
        return
    show_facts(facts, fmt)
    if spec.weights:
        if fmt != "table":
            print()
        show(table, fmt)


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
    add_format_argument(ls)
    ls.set_defaults(func=cmd_ls)
    info = sub.add_parser("info", help="spec, weights and preprocessing of a model")
    info.add_argument("name", help="NAME or NAME.TAG")
    add_format_argument(info)
    info.set_defaults(func=cmd_info)
    pull = sub.add_parser("pull", help="download and verify pretrained weights into the cache")
    pull.add_argument("name", help="NAME or NAME.TAG (default weights when no tag)")
    pull.add_argument("--cache-dir", help="cache folder (default: the HF hub cache or the torch.hub cache)")
    pull.set_defaults(func=cmd_pull)
