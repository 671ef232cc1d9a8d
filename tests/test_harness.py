"""The harness end to end on the synthetic datasets: every mode runs and learns, results carry their provenance,
the store resumes a killed run without duplicates or half-written files, boards are generated and checked."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from benchmarks import boards
from benchmarks.cells import run_cell
from benchmarks.cells.prep import Resolution, to_input
from benchmarks.cli import main
from benchmarks.results import ResultStore
from benchmarks.results.schema import load
from benchmarks.suites import SUITES, Grid, Policy, Protocol, Suite, select
from zoo import MedzooError, TransferMode

F, LP, FT, SC = TransferMode.FEATURES, TransferMode.LINEAR_PROBE, TransferMode.FINETUNE, TransferMode.SCRATCH
SHORT = Protocol(epochs=3, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant")
SMOKE = Suite(name="smoke", version="1", description="Synthetic data, for the tests.", grids=(
    Grid(models=("resnet18_28.random", "alexnet.random"), datasets=("synthetic_binary",), modes=(F,),
         policy=Policy.RESIZE_BILINEAR, input_size=32),
    Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",), modes=(SC, LP), protocol=SHORT),
))
if "smoke" not in SUITES:
    SUITES.add(SMOKE)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultStore:
    root = tmp_path_factory.mktemp("store")
    s = ResultStore(root / "results", root / "ckpt")
    for cell in SMOKE.cells():
        s.write(run_cell(cell, store=s), cell)
    return s


def test_every_mode_runs_and_records_its_provenance(store: ResultStore) -> None:
    results = list(store.results("smoke"))
    assert {r.cell.mode for r in results} == {"features", "scratch", "linear_probe"}
    for r in results:
        assert r.status == "ok" and r.suite == "smoke@1"
        assert 0.0 <= r.test["auc"] <= 1.0 and r.metrics.ci["auc"][0] <= r.test["auc"] <= r.metrics.ci["auc"][1]
        assert r.data.n == {"train": 64, "val": 32, "test": 32} or sum(r.data.n.values()) > 0
        assert r.outputs.arrays["test/logits"][0] == r.data.n["test"] == r.outputs.arrays["test/labels"][0]
        assert r.data.fingerprint and r.data.policy and r.data.input_size >= r.cell.input_size
        assert r.provenance.packages["torch"] and r.provenance.torch_threads and r.provenance.duration_s is not None
        assert "sensitivity" in r.test and "threshold" in r.test  # binary: threshold chosen on validation
    trained = [r for r in results if r.cell.mode != "features"]
    assert all(r.training.epochs_run == 3 and len(r.training.history) == 3 for r in trained)


def test_synthetic_signal_is_learned(store: ResultStore) -> None:
    """Not a tautology: random-feature heads must still find the synthetic signal."""
    feats = [r for r in store.results("smoke") if r.cell.mode == "features"]
    assert max(r.test["auc"] for r in feats) > 0.8


def test_size_is_bumped_to_the_model_minimum_and_recorded() -> None:
    cell = next(c for c in SMOKE.cells() if c.arch == "alexnet")
    assert zoo.get_spec("alexnet").min_size > cell.input_size
    min_size = zoo.get_spec("alexnet").min_size
    res = Resolution(cell.data_size, cell.policy, cell.input_size, max(cell.input_size, min_size))
    assert res.bumped and res.input_size == zoo.get_spec("alexnet").min_size


@pytest.mark.parametrize("policy", list(Policy))
def test_resolution_policies(policy: Policy) -> None:
    images = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    res = Resolution(28, policy, 64 if policy is not Policy.NATIVE else 28, 64 if policy is not Policy.NATIVE else 28)
    x = to_input(images, res, (0.0,), (1.0,))
    assert x.shape == (2, 1, res.input_size, res.input_size)
    if policy is Policy.PAD:  # zero border, image centred
        assert float(x[0, 0, 0, 0]) == 0.0 and float(x[0, 0, 32, 32]) == pytest.approx(1.0)
    else:
        assert float(x.min()) == pytest.approx(1.0, abs=1e-5)


def test_linear_probe_on_cached_features_equals_the_full_forward() -> None:
    """The harness trains probe heads on features computed once; that is only right if head(features) is the
    model's own output in eval mode."""
    for name in ("resnet18_28", "tf_efficientnet_lite0", "googlenet", "vgg11"):
        torch.manual_seed(0)
        net = zoo.prepare(zoo.create_model(name, num_classes=3, in_chans=1), "linear_probe").eval()
        size = zoo.get_spec(name).min_size
        x = torch.randn(4, 1, size, size)
        feats = zoo.extract_features(net, x)
        with torch.no_grad():
            torch.testing.assert_close(net.get_classifier()(feats), net(x), atol=1e-4, rtol=1e-4)


def test_cell_keys_change_with_overrides_and_filters_select() -> None:
    quick = SUITES.get("quick")
    cells = quick.cells()
    assert len({c.key for c in cells}) == len(cells)
    short = select(quick, models=["resnet18_28"], epochs=2)
    assert len(short) == 1 and short[0].protocol.epochs == 2 and short[0].overrides == (("epochs", 2),)
    full = next(c for c in cells if c.arch == "resnet18_28")
    assert short[0].key != full.key
    assert {c.seed for c in select(quick, datasets=["breastmnist"], seeds=[1, 2])} == {1, 2}
    with pytest.raises(ValueError, match="overridable"):
        select(quick, momentum=0.9)


@pytest.mark.parametrize("suite", [s.name for s in SUITES])
def test_every_suite_cell_names_a_registered_model_weights_and_dataset(suite: str) -> None:
    from benchmarks.data import DATASETS

    cells = SUITES.get(suite).cells()
    keys = {c.key: c for c in cells}
    for cell in cells:
        if cell.init_from:  # weights from a cell of the same suite, trained on the dataset its tag names
            source = keys[cell.init_from]
            assert source.dataset == cell.tag != cell.dataset and source.arch == cell.arch and source.keeps_model
            assert cells.index(source) < cells.index(cell)
        spec, weights = zoo.resolve(cell.arch if cell.init_from or not cell.pretrained else cell.model)
        assert cell.pretrained == (cell.mode is not SC) or not cell.pretrained
        assert not cell.pretrained or weights is not None or cell.init_from
        assert (DATASETS.get(cell.dataset).task.value == "segmentation") == (spec.task.value == "segmentation")


def test_leaderboard_is_generated_and_checked(store: ResultStore, tmp_path: Path) -> None:
    md = boards.classification.markdown(store, SMOKE)
    assert "not a medical device" in md and "do not edit" in md and "synthetic_binary" in md
    assert "random init (no pretraining)" in md
    board = boards.classification.board(store, SMOKE)
    assert len(board) == 4 and board["rank"].min() == 1 and (board["auc_mean"].diff().dropna() <= 0).all()
    files = boards.generate(store, SMOKE)
    assert files["smoke.png"][:4] == b"\x89PNG"
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    assert boards.check(store, SMOKE, tmp_path) == []
    assert main(["leaderboard", "--suite", "smoke", "--check", "--results-dir", str(store.root),
                 "--out-dir", str(tmp_path)]) == 0
    (tmp_path / "smoke.csv").write_text((tmp_path / "smoke.csv").read_text().replace("0.", "0.9", 1))
    assert main(["leaderboard", "--suite", "smoke", "--check", "--results-dir", str(store.root),
                 "--out-dir", str(tmp_path)]) == 2


def test_leaderboard_defaults_to_the_user_runs_folder(store: ResultStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a checkout and without flags, boards are read from and written to ./medzoo-runs/, and --check there
    passes; a checkout's committed boards are never touched."""
    monkeypatch.delenv("MEDZOO_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(store.root, tmp_path / "medzoo-runs" / "results")
    assert main(["leaderboard", "--suite", "smoke"]) == 0
    assert "smoke" in (tmp_path / "medzoo-runs" / "smoke.md").read_text()
    assert main(["leaderboard", "--suite", "smoke", "--check"]) == 0
    assert main(["leaderboard", "--suite", "smoke", "--committed"]) == 2  # not inside a checkout


def test_committed_boards_carry_the_readme_headline_block(store: ResultStore, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """In a checkout, `leaderboard --committed` copies each board's Headline section into README.md between the
    markers, and `--check` fails when the block and the boards disagree."""
    from benchmarks.boards import readme

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "medzoo"\n')
    shutil.copytree(store.root, tmp_path / "leaderboards" / "results")
    (tmp_path / "README.md").write_text(f"# medzoo\n\n{readme.BEGIN}\n{readme.END}\n\nmore text\n")
    monkeypatch.chdir(tmp_path / "leaderboards")  # anywhere inside the checkout
    assert main(["leaderboard", "--suite", "smoke", "--committed"]) == 0
    text = (tmp_path / "README.md").read_text()
    bullets = readme.headline_of((tmp_path / "leaderboards" / "smoke.md").read_text())
    assert bullets and all(b in text for b in bullets) and "(leaderboards/smoke.md)" in text
    assert text.startswith("# medzoo\n\n") and text.endswith(f"{readme.END}\n\nmore text\n")
    assert main(["leaderboard", "--suite", "smoke", "--committed", "--check"]) == 0
    (tmp_path / "README.md").write_text(text.replace(bullets[0], bullets[0] + " (edited by hand)"))
    assert main(["leaderboard", "--suite", "smoke", "--committed", "--check"]) == 2
    (tmp_path / "README.md").write_text("# medzoo\n")  # no markers: one clear error, README untouched
    assert main(["leaderboard", "--suite", "smoke", "--committed", "--check"]) == 2
    with pytest.raises(MedzooError, match="has no headline block"):
        readme.with_block("# medzoo\n", "x", tmp_path / "README.md")
    assert (tmp_path / "README.md").read_text() == "# medzoo\n"


def test_reported_rows_are_marked_and_never_in_the_store(store: ResultStore) -> None:
    rep = boards.classification.reported()
    assert {"breastmnist", "retinamnist"} <= set(rep["dataset"])
    assert float(rep[(rep["dataset"] == "breastmnist") & (rep["method"] == "ResNet-18 (28)")]["test_auc"].iloc[0]) \
        == pytest.approx(0.901)
    assert all("reported" not in json.dumps(r.cell.config()) for r in store.results())


def test_a_killed_run_resumes_without_duplicates_or_partial_files(tmp_path: Path) -> None:
    """Kill `medzoo run` (SIGKILL) while a cell trains, then run again: the finished cells are not re-run, the
    interrupted one continues from its last epoch checkpoint, and every file in the store is whole."""
    script = textwrap.dedent("""
        import sys
        from benchmarks.suites import SUITES, Grid, Protocol, Suite
        from benchmarks.cli import main
        from zoo import TransferMode
        SUITES.add(Suite(name="resume", version="1", description="test", grids=(
            Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",), modes=(TransferMode.FEATURES,)),
            Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",), modes=(TransferMode.SCRATCH,),
                 protocol=Protocol(epochs=8, batch_size=16, schedule="constant")),
        )))
        sys.exit(main(["run", "--suite", "resume", "--results-dir", sys.argv[1], "--out-dir", sys.argv[2]]))
    """)
    results, boards, ckpt = tmp_path / "results", tmp_path / "boards", tmp_path / "ckpt"
    env = {**os.environ, "MEDZOO_CHECKPOINT_DIR": str(ckpt)}
    cmd = [sys.executable, "-c", script, str(results), str(boards)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(ckpt.rglob("*.pt")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(ckpt.rglob("*.pt")), "the scratch cell never wrote an epoch checkpoint"
    first = list((results / "resume").glob("*.json"))
    assert len(first) == 1 and "features" in first[0].name  # the finished cell, and nothing else
    before = first[0].read_bytes()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 already in" in done.stderr
    files = sorted(f for f in (results / "resume").iterdir() if f.suffix == ".json")
    sidecars = sorted(f for f in (results / "resume").iterdir() if f.suffix != ".json")
    assert len(files) == 2 and len(sidecars) == 2  # one result and one outputs file per cell: no temp or duplicate
    assert all(f.name.endswith(".outputs.safetensors") for f in sidecars)
    assert first[0].read_bytes() == before
    scratch = load(next(f for f in files if "scratch" in f.name))
    assert scratch.training.resumed_from_epoch >= 1 and scratch.training.epochs_run == 8
    assert [h["epoch"] for h in scratch.training.history] == list(range(1, 9))
    assert not list(ckpt.rglob("*.pt"))  # a finished cell's checkpoint is removed
    assert (boards / "resume.md").is_file() and (boards / "resume.csv").is_file()


def test_skipped_cell_records_the_reason_and_is_retried(tmp_path: Path, offline_env: Path) -> None:
    """Weights that cannot be fetched give a `skipped` result with the reason — never other weights."""
    cell = replace(next(c for c in SUITES.get("transfer").cells() if c.arch == "resnet50"), dataset="synthetic_binary",
                   data_size=28)
    s = ResultStore(tmp_path / "r", tmp_path / "c")
    r = run_cell(cell, store=s)
    assert r.status == "skipped" and "resnet50" in r.reason and r.metrics is None
    s.write(r, cell)
    assert not s.done(cell)


def test_results_are_valid_json_without_nan(store: ResultStore) -> None:
    for p in store.root.rglob("*.json"):
        data = json.loads(p.read_text())
        assert data["schema_version"] == 2 and np.isfinite(data["metrics"]["test"]["auc"])


def test_resume_after_the_final_checkpoint_trains_no_further(tmp_path: Path) -> None:
    """A process killed between its last checkpoint and writing the result must not train an extra epoch."""
    cell = replace(next(c for c in SMOKE.cells() if c.mode is SC),
                   protocol=replace(SHORT, epochs=6, time_budget_s=1e-3))  # stops after its first epoch
    s = ResultStore(tmp_path / "r", tmp_path / "c")
    saved: list[dict] = []
    first = run_cell(cell, store=s)
    assert first.training.epochs_run == 1 and first.training.stop_reason.startswith("time budget")
    import benchmarks.results as results_mod  # the last checkpoint, as if the process died before writing
    s2 = ResultStore(tmp_path / "r2", tmp_path / "c2")
    orig = results_mod.ResultStore.save_checkpoint

    def keep(self: ResultStore, c: object, state: dict) -> None:
        saved.append(state)
        orig(self, c, state)  # type: ignore[arg-type]

    results_mod.ResultStore.save_checkpoint = keep  # type: ignore[method-assign]
    try:
        run_cell(cell, store=s2)
    finally:
        results_mod.ResultStore.save_checkpoint = orig  # type: ignore[method-assign]
    s2.save_checkpoint(cell, saved[-1])
    resumed = run_cell(cell, store=s2)
    assert resumed.training.epochs_run == first.training.epochs_run
    assert resumed.training.resumed_from_epoch == first.training.epochs_run
    assert resumed.test["auc"] == pytest.approx(first.test["auc"])


def test_overrides_leave_features_cells_alone_and_sizes_follow_the_row_name() -> None:
    quick = SUITES.get("quick")
    cells = select(quick, epochs=3)
    assert all(c.overrides == () for c in cells if c.mode is F)
    assert all(c.protocol.epochs == 3 for c in cells if c.mode is not F)
    assert {c.arch for c in select(quick, sizes=[28])} == {"resnet18_28"}
    v2 = SUITES.get("medmnist-v2")
    assert {c.arch for c in select(v2, sizes=[224])} == {"resnet18", "resnet50"}
    with pytest.raises(ValueError, match="positive"):
        select(quick, epochs=0)


@pytest.mark.parametrize(("args", "says"), [(["--device", "tpu9"], "cpu, cuda or cuda:N"),
                                            (["--device", "cuda:x"], "cpu, cuda or cuda:N"),
                                            (["--seeds", "0", "-3"], "seeds are whole numbers >= 0"),
                                            (["--epochs", "0"], "at least 1 epoch"),
                                            (["--sizes", "999"], "quick@2 has sizes 28, 64"),
                                            (["--datasets", "breastmnst"], "Did you mean: breastmnist?"),
                                            (["--models", "resnt18*"], "no model of quick@2 matches"),
                                            (["--data-dir", "/nonexistent/medmnist"], "no such folder")])
def test_bad_run_arguments_stop_before_any_cell(args: list[str], says: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before work starts (issue 15: `--device tpu9` or `--seeds -3` ran and failed every cell)."""
    assert main(["run", "--suite", "quick", *args, "--results-dir", str(tmp_path / "r"), "--out-dir",
                 str(tmp_path / "b")]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_run_on_a_missing_cuda_device_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", "--suite", "quick", "--device", "cuda"]) == 2
    assert "--device cpu" in capsys.readouterr().err
