"""The speed benchmark (`medzoo speed`): ratios and fractions of the machine's own peaks, measured in one run, so
they mean something on a noisy or shared machine. Pure: returns rows; the CLI prints them and writes the report.

1. machine — the CPU's vector/matrix extensions and bf16 units; fp32 and bf16 peak GFLOP/s (the faster of a BLAS
   matmul and the same product as a oneDNN 1x1 convolution, best of several), the yardsticks for the rest (on a CPU
   with AMX or AVX512-BF16 the bf16 peak is several times the fp32 one);
2. feature extraction — images/s of frozen backbones in fp32 and bf16, the ratio, and the fraction of the bf16 peak
   (model FLOPs counted by `torch.utils.flop_counter`, 2 per multiply-add);
3. training step — images/s of a full step (forward, backward, Adam) of the 28 px ResNet-18 and the plain U-Net in
   fp32 and bf16, and whether `torch.compile` pays for its compile time on a cell's worth of steps;
4. linear probe — medzoo's cell (features once, head on cached features; cold and with a warm feature cache) against
   the MedMNIST+ way (frozen backbone forwarded on train and validation every epoch), same epochs, seed, precision
   and head init: wall time, ratio, test AUC;
5. fine-tune data path — images/s of a training step fed by medzoo's batched uint8 → float path against the
   MedMNIST experiments' pipeline (the `medmnist` Dataset, per-sample ToTensor + Normalize, a DataLoader);
6. optionally the `quick` suite with an empty and a warm feature cache.
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
from benchmarks.cells.provenance import cpu_isa, cpu_name
from benchmarks.cells.train import seed_everything, train, training_record
from benchmarks.data import DATASETS, Split
from benchmarks.results.schema import probabilities
from benchmarks.suites import SUITES, Cell, Policy, Protocol
from zoo import TransferMode
from zoo.extras import require

FEATURE_MODELS = ("resnet18", "resnet50", "vgg16", "inception_v3", "legacy_xception")
PROBE = Protocol(epochs=30, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="cosine",
                 monitor="val_loss", patience=None, precision="bf16")
PRECISIONS = ("fp32", "bf16")
CELL_STEPS = 500  # training steps of a medmnist-v2 BreastMNIST cell (100 epochs x 5 batches): compile must pay here
CELL_IMAGES = 5856  # PneumoniaMNIST's images, every split: what a features cell on it extracts


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


def peak_gflops(n: int = 2048, repeats: int = 5, precision: str = "fp32") -> dict[str, float]:
    """GFLOP/s of one `n` x `n` x `n` product in `precision`, two ways: `torch.mm` (BLAS: MKL for fp32, which may
    take a slow path on AMD CPUs) and the same product as a 1x1 convolution (oneDNN, the library that runs the
    networks' convolutions); the peak is the faster, so no network row can exceed its "100% of peak"."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    x = torch.randn(1, n, 32, n // 32, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(n, n, 1, 1, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        mm = 2 * n**3 / min(_times(lambda: a @ b, repeats)) / 1e9
        conv = 2 * n**3 / min(_times(lambda: torch.nn.functional.conv2d(x, w), repeats)) / 1e9
    return {"matmul": mm, "conv1x1": conv, "peak": max(mm, conv)}


def machine_rows(repeats: int = 5) -> tuple[list[Row], dict[str, float]]:
    """The ISA and bf16 units, and the fp32 and bf16 peaks (returned as {precision: GFLOP/s} too)."""
    support = zoo.bf16_support("cpu")
    both = {p: peak_gflops(repeats=repeats, precision=p) for p in PRECISIONS}
    peaks = {p: both[p]["peak"] for p in PRECISIONS}
    units = ", ".join(support.units) or "none (bf16 is emulated: slower than fp32)"
    return [Row("machine", "ISA", " ".join(cpu_isa()), f"bf16 units: {units} (from {support.source})"),
            Row("machine", "peak 2048x2048x2048", f"fp32 {peaks['fp32']:.0f} · bf16 {peaks['bf16']:.0f} GFLOP/s",
                f"bf16 / fp32 {peaks['bf16'] / peaks['fp32']:.1f}x; the faster of torch.mm (fp32 "
                f"{both['fp32']['matmul']:.0f}, bf16 {both['bf16']['matmul']:.0f}) and a 1x1 convolution (fp32 "
                f"{both['fp32']['conv1x1']:.0f}, bf16 {both['bf16']['conv1x1']:.0f}); best of {repeats}",
                {"fp32_gflops": peaks["fp32"], "bf16_gflops": peaks["bf16"],
                 **{f"{p}_{k}_gflops": both[p][k] for p in PRECISIONS for k in ("matmul", "conv1x1")}})], peaks


def feature_flops(net: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net.forward_head(net.forward_features(x), pre_logits=True)
    return counter.get_total_flops()


def _both(section: str, what: str, per_s: dict[str, list[float]], n: int, flops: float, peaks: dict[str, float],
          detail: str) -> Row:
    """One row: images/s in fp32 and bf16 (best of the repeats), their ratio, the fraction of the bf16 peak."""
    best = {p: n / min(ts) for p, ts in per_s.items()}
    med = {p: n / statistics.median(ts) for p, ts in per_s.items()}
    ratio, frac = best["bf16"] / best["fp32"], flops * best["bf16"] / (peaks["bf16"] * 1e9)
    return Row(section, what, f"fp32 {best['fp32']:.1f} · bf16 {best['bf16']:.1f} img/s: {ratio:.2f}x",
               f"bf16 at {frac:.0%} of the bf16 peak (fp32 at {flops * best['fp32'] / (peaks['fp32'] * 1e9):.0%} of "
               f"the fp32 peak); median fp32 {med['fp32']:.1f} · bf16 {med['bf16']:.1f}; {detail}",
               {"fp32_images_per_s": best["fp32"], "bf16_images_per_s": best["bf16"], "ratio": ratio,
                "fraction_of_bf16_peak": frac, "gflop": flops / 1e9})


def feature_throughput(name: str, size: int, peaks: dict[str, float], batch: int, repeats: int = 3) -> Row:
    spec = zoo.get_spec(name)
    size_run = max(size, spec.min_size)
    net = zoo.create_model(name, num_classes=2).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size_run, size_run).contiguous(memory_format=torch.channels_last)
    flops = feature_flops(net, x[:1])

    def run(precision: str) -> Callable[[], None]:
        def go() -> None:
            with torch.inference_mode(), zoo.autocast(net, "cpu", precision):
                net.forward_head(net.forward_features(x), pre_logits=True)
        return go

    per_s = {p: _times(run(p), repeats) for p in PRECISIONS}
    return _both("feature extraction", f"{name} @ {size_run} px", per_s, batch, flops, peaks,
                 f"{flops / 1e9:.2f} GFLOP/img; batch {batch}")


def _step(name: str, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor], precision: str,
          compiled: bool = False) -> tuple[Callable[[], None], torch.nn.Module]:
    torch.manual_seed(0)
    net = zoo.create_model(name, num_classes=2 if x.shape[-1] == 28 else 1, in_chans=x.shape[1])
    net = net.train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    forward = torch.compile(net) if compiled else net

    def step() -> None:
        with zoo.autocast(net, "cpu", precision):
            out = forward(x)
        loss = loss_fn(out.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, net


def train_step(name: str, size: int, batch: int, peaks: dict[str, float], repeats: int = 5) -> Row:
    """Images/s of one training step (forward, loss, backward, Adam) in fp32 and bf16 (FLOPs counted once)."""
    channels = 1 if size == 28 else 3
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 2, (batch,)) if size == 28 else (torch.rand(batch, 1, size, size) > 0.9).float()

    def loss_fn(z: torch.Tensor) -> torch.Tensor:
        if size == 28:
            return torch.nn.functional.cross_entropy(z, target)
        return torch.nn.functional.binary_cross_entropy_with_logits(z, target)

    steps = {p: _step(name, x, loss_fn, p)[0] for p in PRECISIONS}
    with FlopCounterMode(display=False) as counter:
        steps["fp32"]()
    per_s = {p: _times(steps[p], repeats) for p in PRECISIONS}
    return _both("training step", f"{name} @ {size} px, batch {batch}", per_s, batch,
                 counter.get_total_flops() / batch, peaks, "forward + backward + Adam, channels_last")


def _compiled_against_eager(section: str, what: str, eager: Callable[[], None], compiled: Callable[[], None],
                            calls: int, unit: str, repeats: int) -> Row:
    """Compile time, one call eager vs compiled, and a cell's `calls` calls including the compile (adopted only at
    >= 1.2x). Any compiler failure is a finding to report, not a crash."""
    t_eager = min(_times(eager, repeats))
    try:
        t = time.perf_counter()
        compiled()
        compiled()  # the second call may recompile (autograd, optimiser state, a new batch size)
        t_compile = time.perf_counter() - t
        t_compiled = min(_times(compiled, repeats))
    except Exception as e:  # noqa: BLE001
        return Row(section, f"torch.compile {what}", "failed", f"{type(e).__name__}: {e}"[:200])
    gain = calls * t_eager / (t_compile + calls * t_compiled)
    return Row(section, f"torch.compile {what}", f"{t_eager / t_compiled:.2f}x per {unit}; {gain:.2f}x on a "
               f"{calls}-{unit} cell", f"compile {t_compile:.0f} s; {unit} eager {t_eager * 1e3:.0f} ms, compiled "
               f"{t_compiled * 1e3:.0f} ms; "
               f"{'adopted' if gain >= 1.2 else 'not adopted (< 1.2x with the compile time): cells run eager'}",
               {f"{unit}_ratio": t_eager / t_compiled, "cell_ratio": gain, "compile_s": t_compile})


def compile_step(name: str = "resnet18_28", batch: int = 128, repeats: int = 10) -> Row:
    """`torch.compile` on the bf16 training step, projected on a cell's `CELL_STEPS` steps."""
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 2, (batch,))

    def loss_fn(z: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(z, target)

    return _compiled_against_eager("training step", f"{name} @ 28 px bf16, batch {batch}",
                                   _step(name, x, loss_fn, "bf16")[0],
                                   _step(name, x, loss_fn, "bf16", compiled=True)[0], CELL_STEPS, "step", repeats)


def compile_features(name: str = "resnet18", size: int = 224, batch: int = 16, repeats: int = 5) -> Row:
    """`torch.compile` on bf16 frozen feature extraction, projected on PneumoniaMNIST's `CELL_IMAGES` images (the
    largest dataset here; a features cell extracts every split once)."""
    net = zoo.create_model(name, num_classes=2).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)

    def features(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def go() -> None:
            with torch.inference_mode(), zoo.autocast(net, "cpu", "bf16"):
                forward(x)
        return go

    def eager(t: torch.Tensor) -> torch.Tensor:
        return net.forward_head(net.forward_features(t), pre_logits=True)

    return _compiled_against_eager("feature extraction", f"{name} @ {size} px bf16, batch {batch}",
                                   features(eager), features(torch.compile(eager)), -(-CELL_IMAGES // batch),
                                   "batch", repeats)


def linear_probe(data_dir: Path | str | None, seed: int = 0) -> list[Row]:
    """medzoo's linear-probe cell, cold (an empty feature cache) and warm (the features a previous cell cached),
    against forwarding the frozen backbone every epoch; same epochs, seed, precision (bf16) and head init."""
    cell = Cell(suite="speed", version="1", model="tf_efficientnet_lite0.pypi_in1k", dataset="breastmnist",
                data_size=28, policy=Policy.RESIZE_BICUBIC, input_size=64, mode=TransferMode.LINEAR_PROBE, seed=seed,
                protocol=PROBE)
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp) / "features")
        runs = []
        for _ in range(2):  # cold: the features are computed inside the timing; warm: read from the cache
            t = time.perf_counter()
            runs.append((run_cell(cell, data_dir=data_dir, cache=cache), time.perf_counter() - t))
    (ours, t_cold), (warm, t_warm) = runs

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
    logits, _ = predict(out.net, data[Split.TEST], transform, ds.task, PROBE.batch_size, dev, PROBE.precision)
    ref_auc = metrics.evaluate(data[Split.TEST].y, probabilities(logits, ds.task.value), ds.task)["auc"]
    t_ref = time.perf_counter() - t
    epochs = PROBE.epochs
    assert ours.training is not None and training_record(out)["epochs_run"] == epochs == ours.training.epochs_run
    auc, auc_warm = ours.test["auc"], warm.test["auc"]
    assert auc is not None and auc_warm is not None
    d_auc = auc_warm - ref_auc
    return [Row("linear probe", "medzoo cell, empty feature cache (features once + head)", f"{t_cold:.1f} s",
                f"{epochs} epochs, bf16; test AUC {auc:.4f}", {"seconds": t_cold, "auc": auc}),
            Row("linear probe", "medzoo cell, warm feature cache (head only)", f"{t_warm:.1f} s",
                f"{epochs} epochs; test AUC {auc_warm:.4f}", {"seconds": t_warm, "auc": auc_warm}),
            Row("linear probe", "frozen backbone forwarded every epoch", f"{t_ref:.1f} s",
                f"{epochs} epochs, bf16; test AUC {ref_auc:.4f}", {"seconds": t_ref, "auc": ref_auc}),
            Row("linear probe", "ratio (reference / medzoo)",
                f"cold {t_ref / t_cold:.1f}x · warm {t_ref / t_warm:.1f}x",
                f"ΔAUC (warm medzoo − reference) {d_auc:+.4f}; medzoo standardises the cached features, the "
                f"reference trains on raw features", {"ratio_cold": t_ref / t_cold, "ratio_warm": t_ref / t_warm,
                                                      "delta_auc": d_auc})]


def finetune_path(data_dir: Path | str | None, batches: int = 5, repeats: int = 3) -> list[Row]:
    """Training images/s of resnet18_28 on PneumoniaMNIST: medzoo's batched path against the medmnist Dataset with
    per-sample ToTensor + Normalize through a DataLoader (batch 128); same model, optimiser and batch size."""
    medmnist = require("medmnist", "the data-path speed rows")
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
    lines = ["# Performance", "",
             "<!-- written by `medzoo speed` (docs/performance.md: `medzoo speed --committed`); numbers from one "
             "run on the machine below -->", "",
             "| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()] + [
             f"| benchmark wall time | {seconds / 60:.1f} min |", "",
             "Each row is a ratio or a fraction of the machine's own peaks (fp32 and bf16: the faster of a matmul and "
             "the same product as a 1x1 convolution), measured in the same run, so it carries over to other machines "
             "better than raw times do. Min (best) and median over repeats. "
             "bf16 rows run under `zoo.autocast` (the classifier in fp32), as bf16 cells do.", "",
             "| section | what | result | detail |", "|---|---|---|---|"]
    lines += [f"| {r.section} | {r.what} | {r.value} | {r.detail} |" for r in rows]
    return "\n".join(lines) + "\n"
