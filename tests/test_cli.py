"""The `medzoo` entry point, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _medzoo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("medzoo")
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_ls_lists_models_with_params_and_gflops() -> None:
    r = _medzoo("ls")
    assert r.returncode == 0, r.stderr
    assert "GFLOPs (2×MAC)" in r.stdout and "params" in r.stdout
    for name in ("alexnet", "vgg16_bn", "googlenet", "inception_v3", "resnet18_28", "legacy_xception", "unet2015"):
        assert name in r.stdout
    assert "11.7M" in r.stdout and "3.63" in r.stdout  # resnet18


def test_ls_filters_by_pattern_task_and_pretrained() -> None:
    r = _medzoo("ls", "models", "vgg*", "--pretrained")
    assert r.returncode == 0 and "vgg16.tv_in1k" in r.stdout and "resnet" not in r.stdout
    r = _medzoo("ls", "--task", "segmentation")
    assert r.returncode == 0 and "unetpp_resnet18" in r.stdout and "alexnet" not in r.stdout
    r = _medzoo("ls", "datasets")
    assert r.returncode == 0 and "breastmnist" in r.stdout and "CC BY 4.0" in r.stdout


def test_unknown_name_answers_did_you_mean_without_traceback() -> None:
    for args in (("info", "resnet5"), ("ls", "xceptoin"), ("pull", "resnet18.tvin1k")):
        r = _medzoo(*args)
        assert r.returncode == 2
        assert "Did you mean" in r.stderr and "Traceback" not in r.stderr


def test_version_and_user_text_shown_as_typed() -> None:
    """`--version` answers (it was a usage error); an error quoting user text prints it as typed, never as rich
    markup (`info 'x[/red]'` crashed with a MarkupError traceback; issue 15)."""
    r = _medzoo("--version")
    assert r.returncode == 0 and r.stdout.startswith("medzoo ")
    r = _medzoo("info", "x[/red]")
    assert r.returncode == 2 and "x[/red]" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [("ls", "datasets", "nosuch"), ("ls", "suites", "x*"), ("ls", "suites", "quik")])
def test_a_listing_that_matches_nothing_exits_2_everywhere(args: tuple[str, ...]) -> None:
    """As `ls nosuch` does: one error, exit 2, not an empty table with exit 0 (issue 15)."""
    r = _medzoo(*args)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr and not r.stdout.strip()
    assert "Did you mean: quick" in r.stderr if args[-1] == "quik" else args[-1] in r.stderr


def test_info_shows_weights_sources_and_preprocessing() -> None:
    r = _medzoo("info", "resnet50")
    assert r.returncode == 0, r.stderr
    for text in ("tv_in1k (default)", "a1_in1k", "download.pytorch.org", "hf-hub:timm/resnet50.a1_in1k", "unpinned",
                 "bicubic", "0.485", "25,557,032", "32 px"):
        assert text in r.stdout, text


@pytest.mark.parametrize("offline_flag", [True, False])
def test_pull_offline_fails_fast_with_an_actionable_message(tmp_path: Path, offline_flag: bool) -> None:
    env = {"TORCH_HOME": str(tmp_path / "torch"), "HF_HUB_CACHE": str(tmp_path / "hf")}
    if offline_flag:
        env["HF_HUB_OFFLINE"] = "1"
    t0 = time.monotonic()
    r = _medzoo("pull", "resnet18", env=env)
    assert time.monotonic() - t0 < 30
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "medzoo pull resnet18.tv_in1k" in r.stderr and str(tmp_path / "torch") in r.stderr


def test_pull_verifies_the_packaged_weights() -> None:
    r = _medzoo("pull", "tf_efficientnet_lite0")
    assert r.returncode == 0, r.stderr
    assert "efficientnet-lite0-57934424.pth" in r.stdout


def test_ls_suites_and_datasets_hide_test_only_sets() -> None:
    r = _medzoo("ls", "suites")
    assert r.returncode == 0 and all(s in r.stdout for s in ("quick@2", "medmnist-v2@2", "transfer@1"))
    r = _medzoo("ls", "datasets")
    assert r.returncode == 0 and "synthetic" not in r.stdout


def test_run_with_an_unknown_suite_or_empty_filter_is_one_clear_error() -> None:
    r = _medzoo("run", "--suite", "quik")
    assert r.returncode == 2 and "Did you mean: quick" in r.stderr and "Traceback" not in r.stderr
    r = _medzoo("run", "--suite", "quick", "--datasets", "nosuchmnist")
    assert r.returncode == 2 and "quick@2 has no such dataset" in r.stderr
    r = _medzoo("run", "--suite", "quick", "--datasets", "breastmnist", "--sizes", "28", "--modes", "linear_probe")
    assert r.returncode == 2 and "no cell of quick@2 matches" in r.stderr  # each filter fits, together none


def test_committed_leaderboards_match_the_results_store() -> None:
    """`medzoo leaderboard --check` in the repository: boards are generated from the store, never hand-edited."""
    root = Path(__file__).resolve().parent.parent
    exe = Path(sys.executable).with_name("medzoo")
    r = subprocess.run([str(exe), "leaderboard", "--committed", "--check"], capture_output=True, text=True, cwd=root, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "quick: leaderboards/quick.md and .csv match" in r.stdout
    assert "README.md: the headline block matches the boards" in r.stdout


STORE_COMMANDS = {"run": (), "leaderboard": (), "audit": (), "export": ("cell.json", "--out", "exported")}


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_results_and_boards_default_to_the_user_folder_unless_committed(command: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """./medzoo-runs (or $MEDZOO_RUNS_DIR) by default; --committed only inside a checkout, and alone."""
    from benchmarks.cli import build_parser
    from benchmarks.cli.folders import store_dirs
    from zoo import MedzooError

    def dirs(*args: str) -> tuple[Path, Path]:
        return store_dirs(build_parser().parse_args([command, *STORE_COMMANDS[command], *args]))

    root = Path(__file__).resolve().parent.parent
    monkeypatch.delenv("MEDZOO_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert dirs() == (Path("medzoo-runs/results"), Path("medzoo-runs"))
    with pytest.raises(MedzooError, match="is not inside one"):
        dirs("--committed")
    monkeypatch.setenv("MEDZOO_RUNS_DIR", str(tmp_path / "runs"))
    assert dirs() == (tmp_path / "runs" / "results", tmp_path / "runs")
    monkeypatch.chdir(root / "docs")  # anywhere inside the checkout
    assert [p.resolve() for p in dirs("--committed")] == [root / "leaderboards" / "results", root / "leaderboards"]
    with pytest.raises(MedzooError, match="leave out --results-dir"):
        dirs("--committed", "--results-dir", "elsewhere")


def test_help_imports_no_heavy_library() -> None:
    """Building the parser and printing help imports none of torch, timm, zoo's models, pandas, matplotlib, monai,
    scikit-learn or scipy (checked in a fresh interpreter, by `sys.modules`)."""
    code = ("import contextlib, io, sys\n"
            "from benchmarks.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "for command in ('run', 'probe', 'predict'):\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        main([command, '--help'])\n"
            "heavy = {'torch', 'pandas', 'matplotlib', 'monai', 'sklearn', 'scipy', 'timm', 'zoo'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_probe_runs_one_features_cell_per_weights_and_leaves_nothing_behind(tmp_path: Path,
                                                                             medmnist_dir: Path) -> None:
    env = {"MEDZOO_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "MEDZOO_CACHE_DIR": str(tmp_path / "cache"),
           "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    r = _medzoo("probe", "resnet18_28", "--dataset", "synthetic_binary", "--size", "28", "--data-dir",
                str(medmnist_dir), env=env)
    assert r.returncode == 0, r.stderr
    assert "synthetic_binary: frozen features + logistic head" in r.stdout
    assert "resnet18_28.random" in r.stdout and "512" in r.stdout  # no weights: the random row; feature dim
    assert not list((tmp_path / "tmp").glob("medzoo-*")) and not (tmp_path / "ckpt").exists()  # temp store gone
    assert not (tmp_path / "cache").exists()
    r = _medzoo("probe", "resnet18_28", "--dataset", "synthetic_binary", "--size", "28", "--head", "logstic",
                "--results-dir", str(tmp_path / "kept"), env=env)
    assert r.returncode == 2 and "Did you mean" in r.stderr and not (tmp_path / "kept").exists()
    r = _medzoo("probe", "resnet18_28", "--dataset", "synthetic_binary", "--size", "28", "--results-dir",
                str(tmp_path / "kept"), env=env)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "kept" / "probe").glob("*.json"))) == 1


def test_piped_listings_are_full_width_plain_text() -> None:
    """Piped (not a terminal) the default is aligned plain text: whole names, no box, no `…` (issue 15: rich fell
    back to 80 columns and printed `resne…`)."""
    r = _medzoo("ls", env={"COLUMNS": "40"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{len(lines) - 2} models"  # the title, the header, one line per model
    assert lines[1].split()[:3] == ["name", "family", "task"]
    assert "…" not in r.stdout and "│" not in r.stdout and "━" not in r.stdout
    assert any(line.split()[0] == "inception_resnet_v2" for line in lines)
    r = _medzoo("ls", "--format", "table", env={"COLUMNS": "40"})  # asked for the table when piped: widened
    assert r.returncode == 0 and "inception_resnet_v2" in r.stdout and "│" in r.stdout


@pytest.mark.parametrize("args", [("ls",), ("ls", "--pretrained"), ("ls", "datasets"), ("ls", "suites"),
                                  ("info", "inception_v3")])
def test_listings_as_tsv_and_json(args: tuple[str, ...]) -> None:
    """Scripts get tab-separated rows with snake_case headers, or JSON whose names match the table's."""
    tsv = _medzoo(*args, "--format", "tsv")
    js = _medzoo(*args, "--format", "json")
    assert tsv.returncode == 0 and js.returncode == 0, tsv.stderr + js.stderr
    data = json.loads(js.stdout)
    rows = [line.split("\t") for line in tsv.stdout.splitlines() if "\t" in line]
    if args[0] == "info":
        assert data["name"] == "inception_v3" and data["params"] > 20_000_000
        assert ["name", "inception_v3"] in rows and ["parameters", f"{data['params']:,}"] in rows
        weights = rows[rows.index(["tag", "source", "pinned", "data", "license", "classes", "preprocessing"]) + 1:]
        assert [r[0].removesuffix(" (default)") for r in weights] == [w["tag"] for w in data["weights"]]
        return
    header, body = rows[0], rows[1:]
    assert all(h == h.lower() and " " not in h for h in header)
    assert len({len(r) for r in rows}) == 1 and len(body) == len(data)
    first = next(iter(data[0].values()))
    assert body[0][0].removesuffix(" (default)") == first


def test_leaderboard_and_cache_listings_take_format(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    r = _medzoo("leaderboard", "--suite", "quick", "--format", "json", "--results-dir",
                str(root / "leaderboards" / "results"), "--out-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and {"model", "weights", "auc_mean", "auc_ci_low"} <= set(rows[0])
    assert (tmp_path / "quick.md").is_file()
    r = _medzoo("cache", "ls", "--cache-dir", str(tmp_path / "empty"), "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_quiet_hides_progress_lines_and_keeps_errors(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    args = ("leaderboard", "--suite", "quick", "--results-dir", str(root / "leaderboards" / "results"),
            "--out-dir", str(tmp_path))
    loud, quiet = _medzoo(*args), _medzoo(*args, "-q")
    assert "wrote" in loud.stderr and quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == loud.stdout
    r = _medzoo("-q", "info", "resnet5")
    assert r.returncode == 2 and "Did you mean" in r.stderr


def test_zoo_info_logs_are_shown_and_follow_q_and_v() -> None:
    """zoo's INFO logs (e.g. a classifier left randomly initialised) reach stderr by default; -q keeps warnings,
    -v adds debug."""
    import logging

    from benchmarks.cli.console import err, set_verbosity

    log = logging.getLogger("zoo")
    try:
        for quiet, verbose, shown in ((False, False, {"info", "warning"}), (True, False, set()),
                                      (False, True, {"debug", "info", "warning"})):
            set_verbosity(quiet, verbose)
            err.quiet = False  # capture what the handler emits (-q also mutes the console itself)
            with err.capture() as cap:
                log.debug("line debug")
                log.info("line info")
                log.warning("line warning")
            text = cap.get()
            assert {k for k in ("debug", "info", "warning") if f"line {k}" in text} == shown | (
                {"warning"} if quiet else set())
    finally:
        set_verbosity(False, False)
