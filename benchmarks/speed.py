"""The speed benchmark (`medzoo speed`): ratios and fractions of the machine's own peak, measured in one run, so
they mean something on a noisy or shared machine. Pure: returns rows; the CLI prints them and writes the report.

1. peak — fp32 matmul GFLOP/s (best of several), the yardstick for the rest;
2. feature extraction — images/s of frozen backbones and the fraction of peak they reach (model FLOPs counted by
   `torch.utils.flop_counter`, 2 per multiply-add);
3. linear probe — medzoo's cell (features once, head on cached features) against the MedMNIST+ way (frozen backbone
   forwarded on train and validation every epoch), same epochs, seed and head init: wall time, ratio, test AUC;
4. fine-tune data path — images/s of a training step fed by medzoo's batched uint8 → float path against the
   MedMNIST experiments' pipeline (the `medmnist` Dataset, per-sample ToTensor + Normalize, a DataLoader);
5. optionally the `quick` suite with an empty and a warm feature cache.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import zoo
from benchmarks import metrics
from benchmarks.cells import run_cell
from benchmarks.cells.classification import classification_loop, fresh_head, predict
from benchmarks.cells.feature_cache import FeatureCache
from benchmarks.cells.prep import Resolution, SplitData, to_input
from benchmarks.cells.provenance import cpu_name
from benchmarks.cells.train import seed_everything, train, training_record
from benchmarks.data import DATASETS, Split
from benchmarks.results.schema import probabilities
from benchmarks.suites import SUITES, Cell, Policy, Protocol
from zoo import TransferMode

FEATURE_MODELS = ("resnet18", "resnet50", "vgg16", "inception_v3", "legacy_xception")
PROBE = Protocol(epochs=30, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine",
                 monitor="val_loss", patience=None)


@dataclass
class Row:
    section: str
    what: str
    value: str
    detail: str = ""
    numbers: dict[str, float] = field(default_factory=dict)


def _times(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: allocations, oneDNN kernel selection
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / min(_times(lambda: a @ b, repeats)) / 1e9


def feature_flops(net: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net.forward_head(net.forward_features(x), pre_logits=True)
    return counter.get_total_flops()


def feature_throughput(name: str, size: int, peak: float, batch: int, repeats: int = 3) -> Row:
    spec = zoo.get_spec(name)
    size_run = max(size, spec.min_size)
    net = zoo.create_model(name, num_classes=2).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size_run, size_run).contiguous(memory_format=torch.channels_last)
    flops = feature_flops(net, x[:1])

    def run() -> None:
        with torch.inference_mode():
            net.forward_head(net.forward_features(x), pre_logits=True)

    ts = _times(run, repeats)
    best, med = batch / min(ts), batch / statistics.median(ts)
    frac = flops * best / (peak * 1e9)
    return Row("feature extraction", f"{name} @ {size_run} px", f"{best:.1f} img/s ({frac:.0%} of peak)",
               f"median {med:.1f} img/s; {flops / 1e9:.2f} GFLOP/img; batch {batch}",
               {"images_per_s": best, "median_images_per_s": med, "fraction_of_peak": frac, "gflop": flops / 1e9})


def linear_probe(data_dir: Path | str | None, seed: int = 0) -> list[Row]:
    """medzoo's linear-probe cell against forwarding the frozen backbone every epoch; same epochs, seed, head init."""
    cell = Cell(suite="speed", version="1", model="tf_efficientnet_lite0.pypi_in1k", dataset="breastmnist",
                data_size=28, policy=Policy.RESIZE_BICUBIC, input_size=64, mode=TransferMode.LINEAR_PROBE, seed=seed,
                protocol=PROBE)
    t = time.perf_counter()
    ours = run_cell(cell, data_dir=data_dir, cache=None)  # cold: the features are computed inside the timing
    t_ours = time.perf_counter() - t

    t = time.perf_counter()
    ds = DATASETS.get("breastmnist")
    seed_everything(seed)
    net = zoo.create_model(cell.model, pretrained=True, num_classes=ds.num_classes, in_chans=ds.n_channels)
    pre = zoo.preprocess_of(net)
    res = Resolution(28, Policy.RESIZE_BICUBIC, 64, 64)
    data = {s: SplitData(*ds.load(s, 28, data_dir)) for s in Split}
    zoo.prepare(net, TransferMode.LINEAR_PROBE, ds.num_classes)
    fresh_head(net)

    def transform(b: torch.Tensor) -> torch.Tensor:
        return to_input(b, res, pre.mean, pre.std)

    dev = torch.device("cpu")
    loop = classification_loop(data[Split.TRAIN], data[Split.VAL], transform, ds.task, PROBE, dev)
    out = train(net.to(memory_format=torch.channels_last), TransferMode.LINEAR_PROBE, loop, PROBE, seed, dev)
    logits, _ = predict(out.net, data[Split.TEST], transform, ds.task, PROBE.batch_size, dev)
    ref_auc = metrics.evaluate(data[Split.TEST].y, probabilities(logits, ds.task.value), ds.task)["auc"]
    t_ref = time.perf_counter() - t
    epochs = PROBE.epochs
    assert ours.training is not None and training_record(out)["epochs_run"] == epochs == ours.training.epochs_run
    auc = ours.test["auc"]
    assert auc is not None
    d_auc = auc - ref_auc
    return [Row("linear probe", "medzoo cell (features once + head)", f"{t_ours:.1f} s",
                f"{epochs} epochs; test AUC {auc:.4f}", {"seconds": t_ours, "auc": auc}),
            Row("linear probe", "frozen backbone forwarded every epoch", f"{t_ref:.1f} s",
                f"{epochs} epochs; test AUC {ref_auc:.4f}", {"seconds": t_ref, "auc": ref_auc}),
            Row("linear probe", "ratio (reference / medzoo)", f"{t_ref / t_ours:.1f}x",
                f"ΔAUC (medzoo − reference) {d_auc:+.4f}; medzoo standardises the cached features, the reference "
                f"trains on raw features", {"ratio": t_ref / t_ours, "delta_auc": d_auc})]


def finetune_path(data_dir: Path | str | None, batches: int = 5, repeats: int = 3) -> list[Row]:
    """Training images/s of resnet18_28 on PneumoniaMNIST: medzoo's batched path against the medmnist Dataset with
    per-sample ToTensor + Normalize through a DataLoader (batch 128); same model, optimiser and batch size."""
    import medmnist
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from benchmarks.data.medmnist import data_root

    ds = DATASETS.get("pneumoniamnist")
    x, y = ds.load(Split.TRAIN, 28, data_dir)
    res = Resolution(28, Policy.NATIVE, 28, 28)
    ref_ds = medmnist.PneumoniaMNIST(split="train", root=str(data_root(data_dir)), transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(mean=[0.5], std=[0.5])]))
    bs = 128

    def step_fn() -> Callable[[torch.Tensor, torch.Tensor], None]:
        torch.manual_seed(0)
        net = zoo.create_model("resnet18_28", num_classes=2, in_chans=1).train()
        net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
            loss = loss_fn(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    ours_step, ref_step = step_fn(), step_fn()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.ravel()).long()
    gen = torch.Generator().manual_seed(0)

    def ours() -> None:
        order = torch.randperm(len(xt), generator=gen)[: bs * batches]
        for idx in order.split(bs):
            ours_step(to_input(xt[idx], res, (0.5,), (0.5,)), yt[idx])

    loader = DataLoader(ref_ds, batch_size=bs, shuffle=True, num_workers=0)

    def reference() -> None:
        for i, (xb, yb) in enumerate(loader):
            ref_step(xb, yb.ravel().long())
            if i + 1 == batches:
                break

    t_ours, t_ref = _times(ours, repeats), _times(reference, repeats)
    ips = {k: bs * batches / min(v) for k, v in (("ours", t_ours), ("ref", t_ref))}
    med = {k: bs * batches / statistics.median(v) for k, v in (("ours", t_ours), ("ref", t_ref))}
    return [Row("fine-tune step", "medzoo batched uint8 path", f"{ips['ours']:.0f} img/s",
                f"median {med['ours']:.0f}; {batches} batches of {bs}", {"images_per_s": ips["ours"]}),
            Row("fine-tune step", "medmnist Dataset + ToTensor/Normalize + DataLoader", f"{ips['ref']:.0f} img/s",
                f"median {med['ref']:.0f}", {"images_per_s": ips["ref"]}),
            Row("fine-tune step", "ratio (medzoo / reference)", f"{ips['ours'] / ips['ref']:.2f}x",
                "at 28 px the CPU is compute-bound: the data path is a small share of a step",
                {"ratio": ips["ours"] / ips["ref"], "median_ratio": med["ours"] / med["ref"]})]


def quick_cold_warm(data_dir: Path | str | None) -> list[Row]:
    """Every cell of the `quick` suite with an empty feature cache, then again with the cache it filled."""
    cells = SUITES.get("quick").cells()
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp) / "features")
        times = []
        for _ in range(2):
            t = time.perf_counter()
            for c in cells:
                run_cell(replace(c), data_dir=data_dir, cache=cache)
            times.append(time.perf_counter() - t)
    cold, warm = times
    return [Row("quick suite", "empty feature cache", f"{cold:.0f} s", f"{len(cells)} cells", {"seconds": cold}),
            Row("quick suite", "warm feature cache", f"{warm:.0f} s", "same cells, results recomputed",
                {"seconds": warm}),
            Row("quick suite", "ratio (cold / warm)", f"{cold / warm:.1f}x",
                "bounded by what cannot be cached: the scratch cell trains from images, heads are refit",
                {"ratio": cold / warm})]


def machine() -> dict[str, str]:
    return {"cpu": cpu_name(), "cores": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()),
            "torch": torch.__version__, "load_average_at_start": " ".join(f"{v:.2f}" for v in os.getloadavg())}


def report_markdown(rows: list[Row], info: dict[str, str], seconds: float) -> str:
    lines = ["# Performance", "", "<!-- written by `medzoo speed`; numbers from one run on the machine below -->", "",
             "| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()] + [
             f"| benchmark wall time | {seconds / 60:.1f} min |", "",
             "Each row is a ratio or a fraction of the machine's own matmul peak, measured in the same run, so it "
             "carries over to other machines better than raw times do. Min (best) and median over repeats.", "",
             "| section | what | result | detail |", "|---|---|---|---|"]
    lines += [f"| {r.section} | {r.what} | {r.value} | {r.detail} |" for r in rows]
    return "\n".join(lines) + "\n"
