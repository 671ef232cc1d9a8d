"""`medzoo speed`: measure medzoo against the reference pipelines and write the report (the committed one is
docs/performance.md)."""

from __future__ import annotations

import argparse

from rich.table import Table

from benchmarks.cli.console import add_format_argument, err, show


def cmd_speed(args: argparse.Namespace) -> None:
    import time
    from pathlib import Path

    from benchmarks import paths, speed
    from benchmarks.results.store import atomic_write
    from zoo import MedzooError

    if args.committed and args.out:
        raise MedzooError("--committed writes the checkout's docs/performance.md: leave out --out, or --committed")
    path = paths.checkout().performance if args.committed else Path(args.out or paths.runs_dir() / "performance.md")

    t0 = time.perf_counter()
    info = speed.machine()
    rows: list[speed.Row] = []
    with err.status("") as status:
        status.update("machine: ISA, fp32 and bf16 peaks")
        machine_rows, peaks = speed.machine_rows()
        rows += machine_rows
        for size in (64, 224):
            for name in speed.FEATURE_MODELS:
                status.update(f"feature extraction: {name} @ {size} px, fp32 and bf16")
                rows.append(speed.feature_throughput(name, size, peaks, batch=64 if size == 64 else 16))
        status.update("training step: resnet18_28 and the plain U-Net, fp32 and bf16")
        rows.append(speed.train_step("resnet18_28", 28, 128, peaks))
        rows.append(speed.train_step("unet2015_w32", 96, 8, peaks))
        status.update("training step: torch.compile against eager (compiling takes a minute or more)")
        rows.append(speed.compile_step())
        status.update("feature extraction: torch.compile against eager")
        rows.append(speed.compile_features())
        status.update("linear probe: medzoo cell cold and warm vs frozen backbone every epoch (BreastMNIST)")
        rows += speed.linear_probe(args.data_dir)
        status.update("fine-tune step: medzoo path vs medmnist DataLoader (PneumoniaMNIST, resnet18_28)")
        rows += speed.finetune_path(args.data_dir)
        if not args.skip_quick:
            status.update("quick suite: empty vs warm feature cache (~5 min)")
            rows += speed.quick_cold_warm(args.data_dir)
    table = Table(title=f"medzoo speed — {info['cpu']}, {info['torch_threads']} threads, "
                        f"load {info['load_average_at_start']}")
    for col in ("section", "what", "result", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.section, r.what, r.value, r.detail)
    show(table, args.format)
    atomic_write(path, speed.report_markdown(rows, info, time.perf_counter() - t0).encode())
    err.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sp = sub.add_parser("speed", help="measure medzoo against the reference pipelines and write a markdown report")
    sp.add_argument("--data-dir", help="MedMNIST folder (default: $MEDZOO_DATA_DIR, then ~/.medmnist)")
    sp.add_argument("--out", help="report file (default ./medzoo-runs/performance.md, or $MEDZOO_RUNS_DIR)")
    sp.add_argument("--committed", action="store_true",
                    help="write the committed docs/performance.md of the medzoo checkout this runs inside")
    sp.add_argument("--skip-quick", action="store_true", help="skip the quick suite cold/warm cache run (~5 min)")
    add_format_argument(sp)
    sp.set_defaults(func=cmd_speed)
