"""`medzoo predict`: segment images with a trained model; probability maps, masks and (with ground truth) Dice and
a comparison panel, as PNG files."""

from __future__ import annotations

import argparse
import io
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from benchmarks.cli.console import add_format_argument, err, show

if TYPE_CHECKING:
    import numpy as np


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
    import matplotlib
    import numpy as np

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


def cmd_predict(args: argparse.Namespace) -> None:
    from pathlib import Path

    import numpy as np
    from rich.progress import Progress

    import zoo
    from benchmarks.metrics.segmentation import dice
    from benchmarks.results.store import atomic_write

    if args.truth and len(args.truth) != len(args.images):
        raise zoo.MedzooError(f"--truth gives {len(args.truth)} masks for {len(args.images)} images: one per image, "
                              f"in order")
    net, meta = zoo.load_trained(args.checkpoint)
    if any(k not in meta for k in zoo.SEGMENTATION_META):
        raise zoo.MedzooError(f"{args.checkpoint} is a {meta.get('task', 'classification')} model ({meta['arch']} "
                              f"trained on {meta.get('trained_on', '?')}): `medzoo predict` segments images; export "
                              f"it with `medzoo export` and load it with zoo.load_pretrained instead")
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
    pd_ = sub.add_parser("predict", help="segment images with a trained model: probability maps and masks as PNG")
    pd_.add_argument("checkpoint", help="a .safetensors model written by `medzoo run` (result: model.checkpoint)")
    pd_.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, GIF)")
    pd_.add_argument("--out", required=True, help="folder for <image>_prob.png and <image>_mask.png")
    pd_.add_argument("--truth", nargs="+", help="ground-truth masks, one per image: adds Dice and <image>_panel.png")
    pd_.add_argument("--invert-truth", action="store_true", help="dark pixels of --truth are positive (ISBI labels)")
    pd_.add_argument("--threshold", type=float, help="probability threshold (default: the model's, 0.5)")
    pd_.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    add_format_argument(pd_)
    pd_.set_defaults(func=cmd_predict)
