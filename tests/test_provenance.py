"""Provenance that means something: a run from a clean commit is clean however much its store grows, a run from
edited code is dirty and carries the diff's hash; the package list is what the process imported."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks.cells.provenance import CODE_PATHS, cpu_isa, imported_packages
from benchmarks.results import ResultStore

ROOT = Path(__file__).resolve().parent.parent
RUN = textwrap.dedent("""
    import sys
    from benchmarks.suites import SUITES, Grid, Policy, Suite
    from zoo import TransferMode
    seeds = tuple(int(s) for s in sys.argv[1].split(","))
    SUITES.add(Suite("prov", "1", "provenance test", (Grid(models=("resnet18_28.random",),
        datasets=("synthetic_binary",), modes=(TransferMode.FEATURES,), seeds=seeds),)))
    from benchmarks.cli import main
    sys.exit(main(["run", "--suite", "prov", "--results-dir", "leaderboards/results", "--out-dir", "leaderboards"]))
""")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, check=True)


def _run(repo: Path, seeds: str, tmp: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(repo), "MEDZOO_CHECKPOINT_DIR": str(tmp / "ckpt")}
    done = subprocess.run([sys.executable, "-c", RUN, seeds], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_clean_commit_gives_clean_results_and_an_edited_model_file_is_recorded(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *CODE_PATHS],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, repo / name)
    (repo / "leaderboards" / "results").mkdir(parents=True)
    (repo / "leaderboards" / "prov.md").write_text("a board the run rewrites\n")  # tracked, like the real boards
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "clean")
    sha = _git(repo, "rev-parse", "HEAD").stdout.decode().strip()

    _run(repo, ",".join(str(s) for s in range(21)), tmp_path)
    store = ResultStore(repo / "leaderboards" / "results")
    results = list(store.results("prov"))
    assert len(results) == 21 and all(r.status == "ok" for r in results)
    assert _git(repo, "status", "--porcelain").stdout  # the run grew the store and rewrote a tracked board ...
    for r in results:  # ... and still every result says the code was the commit's
        assert r.provenance.git.sha == sha and r.provenance.git.dirty is False and r.provenance.git.diff_sha256 is None

    model_file = repo / "zoo" / "models" / "resnet.py"
    model_file.write_text(model_file.read_text() + "\n# an edit\n")
    _run(repo, "21", tmp_path)
    edited = next(r for r in store.results("prov") if r.cell.seed == 21)
    diff = _git(repo, "diff", "HEAD", "--binary", "--", *CODE_PATHS).stdout
    assert diff and edited.provenance.git.dirty is True
    assert edited.provenance.git.diff_sha256 == hashlib.sha256(diff).hexdigest()
    assert "uncommitted code" in (repo / "leaderboards" / "prov.md").read_text()  # the board marks it


def test_packages_are_what_was_imported_and_the_cpu_isa_is_recorded() -> None:
    import skimage  # noqa: F401  (a cell that scores ISBI imports it)

    packages = imported_packages()
    assert {"torch", "numpy", "scikit-image", "medzoo"} <= set(packages)
    assert all(v and v != "not installed" for v in packages.values())
    isa = cpu_isa()
    assert isa[0].startswith("torch:") and (not Path("/proc/cpuinfo").is_file() or
                                           ("avx2" in Path("/proc/cpuinfo").read_text()) == ("avx2" in isa))


def test_a_checkout_of_another_project_says_nothing_about_medzoos_code(tmp_path: Path) -> None:
    """medzoo installed in a venv inside some other repository: that repository's state is not medzoo's."""
    from benchmarks.cells.provenance import git_state

    other = tmp_path / "other"
    (other / "site-packages").mkdir(parents=True)
    (other / "README").write_text("x")
    _git(other, "init", "-q")
    _git(other, "add", "-A")
    _git(other, "commit", "-qm", "other")
    (other / "README").write_text("edited")
    assert git_state(other / "site-packages") == {"sha": None, "dirty": None, "paths": list(CODE_PATHS)}
    assert git_state()["sha"] is not None  # this checkout is medzoo's own
