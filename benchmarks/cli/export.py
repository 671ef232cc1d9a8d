"""`medzoo export` (a kept model as a Hub-style folder with a model card) and `medzoo push` (upload it)."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape

from benchmarks.cli.console import err, out
from benchmarks.cli.folders import add_store_arguments, store_dirs


def cmd_export(args: argparse.Namespace) -> None:
    from benchmarks.export import export

    folder = export(args.source, args.out, repo=args.repo, results_dir=store_dirs(args)[0])
    config = json.loads((folder / "config.json").read_text())
    out.print(f"wrote {folder}: {config['architecture']}, {config['num_classes']} classes "
              f"({', '.join(config['label_names'])}); load with zoo.load_pretrained('{folder}')", markup=False, highlight=False, soft_wrap=True)


def cmd_push(args: argparse.Namespace) -> None:
    from benchmarks.export import push

    with err.status(escape(f"uploading {args.folder} to {args.repo}")):
        url = push(args.folder, args.repo, token=args.token, private=args.private)
    out.print(f"pushed {args.folder} → {url}", markup=False, highlight=False, soft_wrap=True)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ex = sub.add_parser("export", help="write a kept model as a Hugging Face Hub-style folder with a model card")
    ex.add_argument("source", help="a result JSON of a cell run with --save-checkpoints, or the .safetensors it names")
    ex.add_argument("--out", required=True, help="folder to write (model.safetensors, config.json, README.md)")
    ex.add_argument("--repo", help="the Hub repo ORG/NAME the card's loading example names (default: the folder)")
    add_store_arguments(ex, boards=False)  # the store a .safetensors file's result is looked up in
    ex.set_defaults(func=cmd_export)
    pu = sub.add_parser("push", help="upload an exported folder to the Hugging Face Hub (needs internet)")
    pu.add_argument("folder", help="a folder written by `medzoo export`")
    pu.add_argument("--repo", required=True, help="ORG/NAME on the Hub (created if missing)")
    pu.add_argument("--token", help="Hub token (default: the one `hf auth login` stored, or $HF_TOKEN)")
    pu.add_argument("--private", action="store_true", help="create the repo as private")
    pu.set_defaults(func=cmd_push)
