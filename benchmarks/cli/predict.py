"""`medzoo predict`: label or segment images with a model a run kept. A classifier writes `predictions.csv` (path,
predicted label, one probability per class; a binary model labels at its validation-chosen threshold); a
segmentation model writes probability maps, masks and (with ground truth) Dice and a comparison panel, as PNG
files."""

from __future__ import annotations

import argparse
import io
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from benchmarks.cli.console import add_format_argument, err, show

if TYPE_CHECKING:
    import numpy as np
    import torch


def _read_image(path: str, channels: int) -> np.ndarray:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from zoo import MedzooError

    try:
        with Image.open(path) as img:
            return np.array(img.convert("L" if channels == 1 else "RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise MedzooError(f"cannot read {path} as an image ({e})") from None


def _png(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _panel(image: np.ndarray, truth: np.ndarray, mask: np.ndarray, title: str) -> bytes:
    """image | ground truth | prediction, as a PNG."""
    import numpy as np

    from zoo.extras import require

    require("matplotlib", "the --truth panel").use("Agg")
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


def _cmd_classify(args: argparse.Namespace, net: torch.nn.Module, meta: dict[str, Any]) -> None:
    import csv
    import io as _io
    from pathlib import Path

    from benchmarks.predict import classify
    from benchmarks.results.store import atomic_write

    labels, probs, names = classify(net, meta, args.images, args.device, args.threshold)
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "predicted", *[f"p_{n}" for n in names]])
    for path, label, row in zip(args.images, labels, probs, strict=True):
        writer.writerow([path, label, *[f"{p:.9g}" for p in row]])
    out = Path(args.out) / "predictions.csv"
    atomic_write(out, buf.getvalue().encode())
    threshold = meta.get("threshold")
    table = Table(title=f"{meta['arch']} trained on {meta.get('trained_on', '?')} ({meta['task']}"
                        + (f", threshold {args.threshold:g} (--threshold)" if args.threshold is not None else
                           f", threshold {threshold:.3f} chosen on validation" if threshold is not None else "")
                        + f") — written: {out}")
    for col in ("image", "predicted", *names):
        table.add_column(col)
    for path, label, row in zip(args.images, labels, probs, strict=True):
        table.add_row(Text(path), Text(label), *[f"{p:.3f}" for p in row])
    show(table, args.format, [{"path": p, "predicted": lab, **{n: float(v) for n, v in zip(names, row, strict=True)}}
                              for p, lab, row in zip(args.images, labels, probs, strict=True)])


def cmd_predict(args: argparse.Namespace) -> None:
    from pathlib import Path

    import numpy as np
    from rich.progress import Progress

    import zoo
    from benchmarks.metrics.segmentation import dice
    from benchmarks.predict import load_model
    from benchmarks.results.store import atomic_write
    from zoo.extras import require

    net, meta = load_model(args.checkpoint)
    net = net.to(args.device)
    if any(k not in meta for k in zoo.SEGMENTATION_META):
        if args.truth or args.invert_truth:
            raise zoo.MedzooError(f"--truth and --invert-truth give masks, but {args.checkpoint} is a "
                                  f"{meta.get('task')} classifier: leave them out")
        _cmd_classify(args, net, meta)
        return
    if args.truth and len(args.truth) != len(args.images):
        raise zoo.MedzooError(f"--truth gives {len(args.truth)} masks for {len(args.images)} images: one per image, "
                              f"in order")
    if args.truth:  # before any image is predicted, not at the first panel
        require("matplotlib", "the --truth panel")
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
            shown, written = "–", list(files)
            for name, a in files.items():
                atomic_write(out_dir / name, _png(a))
            if args.truth:
                truth = _read_image(args.truth[i], 1) > 127
                truth = ~truth if args.invert_truth else truth
                if truth.shape != mask.shape:
                    raise zoo.MedzooError(f"{args.truth[i]} is {truth.shape[1]}x{truth.shape[0]} but {path} is "
                                          f"{mask.shape[1]}x{mask.shape[0]}")
                d = dice(mask, truth, empty=float("nan"))  # both empty: no number to show
                shown = "–" if np.isnan(d) else f"{d:.3f}"
                atomic_write(out_dir / f"{stem}_panel.png", _panel(image, truth, mask, f"{stem}: {meta['arch']} "
                                                                    f"({meta.get('trained_on', '?')}), Dice {shown}"))
                written.append(f"{stem}_panel.png")
            table.add_row(Text(path), f"{mask.shape[1]}x{mask.shape[0]}", f"{mask.mean():.1%}", shown,
                          Text(", ".join(str(out_dir / n) for n in written)))  # paths as typed, not markup
            bar.advance(task)
    show(table, args.format)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pd_ = sub.add_parser("predict", help="label images with a kept classifier (predictions.csv) or segment them "
                                         "(probability maps and masks as PNG)")
    pd_.add_argument("checkpoint", metavar="model",
                     help="a .safetensors model kept by `medzoo run` (result: model.checkpoint; --save-checkpoints "
                          "keeps every finetune/scratch cell's), or a folder `medzoo export` wrote, or hf-hub:ORG/NAME")
    pd_.add_argument("images", nargs="+", help="image files: PNG, JPEG, TIFF, BMP, and DICOM for classifiers")
    pd_.add_argument("--out", required=True, help="folder for predictions.csv (a classifier) or <image>_prob.png "
                                                  "and <image>_mask.png (a segmentation model)")
    pd_.add_argument("--truth", nargs="+", help="ground-truth masks, one per image: adds Dice and <image>_panel.png")
    pd_.add_argument("--invert-truth", action="store_true", help="dark pixels of --truth are positive (ISBI labels)")
    pd_.add_argument("--threshold", type=float,
                     help="probability threshold (default: the model's: a binary classifier's chosen on validation, "
                          "0.5 for multi-label labels and segmentation)")
    pd_.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    add_format_argument(pd_)
    pd_.set_defaults(func=cmd_predict)
