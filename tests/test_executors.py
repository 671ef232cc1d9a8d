"""Running cells elsewhere: two `medzoo run` processes on one store compute and store every cell once; the Ray
executor (a real local Ray head on 127.0.0.1) gives the local executor's metrics; a Ray worker killed mid-cell is
retried, and one that dies every time is reported as failed with no file in the store."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from benchmarks.cells import run_cell
from benchmarks.cli import main
from benchmarks.executors import RayExecutor
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result, load
from benchmarks.suites import SUITES, Grid, Policy, Suite
from zoo import TransferMode

BIN = Path(sys.executable).parent
FEATURES = Suite(name="execs", version="1", description="Cheap BreastMNIST feature cells, for the tests.", grids=(
    Grid(models=("resnet18_28.random", "resnet50_28.random"), datasets=("breastmnist",),
         modes=(TransferMode.FEATURES,), seeds=(0, 1)),
))
SYNTH = Suite(name="execs-synth", version="1", description="Synthetic feature cells, for the tests.", grids=(
    Grid(models=("resnet18_28.random", "alexnet.random"), datasets=("synthetic_binary", "synthetic_multiclass"),
         modes=(TransferMode.FEATURES,), policy=Policy.RESIZE_BILINEAR, input_size=64),
))


def test_two_runs_on_one_store_compute_and_store_every_cell_once(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from benchmarks.suites import SUITES, Grid, Policy, Suite
        from benchmarks.cli import main
        from zoo import TransferMode
        SUITES.add(Suite(name="twice", version="1", description="test", grids=(
            Grid(models=("resnet18_28.random", "alexnet.random", "vgg11.random"),
                 datasets=("synthetic_binary", "synthetic_multiclass"), modes=(TransferMode.FEATURES,),
                 policy=Policy.RESIZE_BILINEAR, input_size=64),
        )))
        sys.exit(main(["run", "--suite", "twice", "--results-dir", sys.argv[1], "--out-dir", sys.argv[2]]))
    """)
    env = {**os.environ, "MEDZOO_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", script, str(tmp_path / "results"), str(tmp_path / "boards")]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    computed = [re.findall(r"^ok (.+?): test AUC", o[1], flags=re.M) for o in outs]
    assert len(computed[0]) + len(computed[1]) == 6 and not set(computed[0]) & set(computed[1])
    files = sorted(f for f in (tmp_path / "results" / "twice").iterdir() if f.suffix == ".json")
    others = sorted(f.name for f in (tmp_path / "results" / "twice").iterdir() if f.suffix != ".json")
    assert len(files) == 6 and others == sorted(f"{f.stem}.outputs.safetensors" for f in files)  # no temp, lock, dup
    assert all(load(f).status == "ok" for f in files)


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head on loopback, stopped afterwards; the test process joins it as a driver."""
    import ray  # the ray extra: scripts/setup.sh installs it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                            f"--temp-dir={tmp}"], env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-2000:]
    address = f"127.0.0.1:{port}"
    try:
        yield address
    finally:
        ray.shutdown()
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_run_on_ray_gives_the_local_metrics(ray_head: str, medmnist_dir: Path, tmp_path: Path) -> None:
    """`medzoo run --executor ray` on 4 BreastMNIST feature cells (1 CPU and 1 torch thread per task) against the
    local executor with 1 thread: the same AUC and ACC to 1e-6 (same data, weights, threads and head)."""
    import torch

    if "execs" not in SUITES:
        SUITES.add(FEATURES)
    common = ["run", "--suite", "execs", "--data-dir", str(medmnist_dir), "--no-feature-cache"]  # both compute
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*common, "--results-dir", str(tmp_path / "local"), "--out-dir", str(tmp_path / "lb")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main([*common, "--executor", "ray", "--address", ray_head, "--cpus-per-cell", "1",
                 "--results-dir", str(tmp_path / "ray"), "--out-dir", str(tmp_path / "rb")]) == 0
    local = {r.key: r for r in ResultStore(tmp_path / "local").results("execs")}
    remote = {r.key: r for r in ResultStore(tmp_path / "ray").results("execs")}
    assert set(remote) == set(local) and len(local) == 4
    for key, r in remote.items():
        assert r.status == "ok" and r.provenance.torch_threads == 1
        assert r.provenance.load_average_at_start is not None
        for m in ("auc", "acc"):
            assert r.test[m] == pytest.approx(local[key].test[m], abs=1e-6)


def _die_once(marker_dir: str, fn: object, cell: object) -> Result:
    """Kill the worker process on a cell's first attempt; compute it on the next."""
    marker = Path(marker_dir) / cell.key  # type: ignore[attr-defined]
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return fn(cell)  # type: ignore[operator]


def _die_always(cell: object) -> Result:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def test_a_killed_ray_worker_is_retried_and_a_hopeless_cell_fails_cleanly(ray_head: str, tmp_path: Path) -> None:
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    cells = SYNTH.cells()
    store = ResultStore(tmp_path / "results", tmp_path / "ckpt")
    (tmp_path / "markers").mkdir()
    fn = partial(_die_once, str(tmp_path / "markers"), partial(run_cell, store=store))
    outcomes = list(RayExecutor(ray_head, cpus=1, retries=1).map(fn, cells[:2]))
    assert len(outcomes) == 2 and all(o.result is not None and o.result.status == "ok" for o in outcomes)
    assert len(list((tmp_path / "markers").iterdir())) == 2  # each cell's first worker died
    [hopeless] = list(RayExecutor(ray_head, cpus=1, retries=1).map(_die_always, cells[2:3]))
    assert hopeless.result is None and "after 2 attempts" in hopeless.error
    for o in outcomes:
        store.write(o.result, o.cell)  # type: ignore[arg-type]
    files = sorted((tmp_path / "results" / "execs-synth").glob("*.json"))
    assert len(files) == 2 and all(json.loads(f.read_text())["status"] == "ok" for f in files)


def test_ddp_fine_tune_with_two_gloo_processes_keeps_replicas_in_sync(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.safetensors"
    cmd = [str(BIN / "torchrun"), "--nproc-per-node=2", "--master-addr=127.0.0.1", f"--master-port={port}",
           str(Path(__file__).resolve().parents[1] / "scripts" / "ddp_finetune.py"), "--model", "resnet18_28",
           "--dataset", "synthetic_binary", "--cpu", "--max-steps", "3", "--batch-size", "8", "--out", str(out)]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas identical: True" in done.stdout and "(2 processes)" in done.stdout
    assert out.is_file() and out.stat().st_size > 1e6
