"""The README's commands and examples work: CI runs its test command, its Python example runs, its CLI examples
parse."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import build_parser
from benchmarks.metrics import METRICS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))}  # recipes: own tests


def _blocks(lang: str, pages: tuple[str, ...] = (README, *DOCS.values())) -> list[str]:
    """Code blocks of the README and the docs pages it links (the README alone: `pages=(README,)`)."""
    return [b for page in pages for b in re.findall(rf"```{lang}\n(.*?)```", page, flags=re.DOTALL)]


def test_ci_runs_the_readme_test_command() -> None:
    commands = [b.strip() for b in _blocks("bash", (README,)) if "pytest" in b and "\n" not in b.strip()]
    assert len(commands) == 1, "README must give exactly one test command"
    assert commands[0] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_main_job_command_uses_existing_scripts_and_commands() -> None:
    main = [b.strip() for b in _blocks("bash", (README,)) if "medzoo run --suite quick" in b and "setup.sh" in b]
    assert len(main) == 1
    args = shlex.split(main[0].split("&&", 1)[1])
    assert args[0] == ".venv/bin/medzoo"
    build_parser().parse_args(args[1:])
    assert (ROOT / "scripts" / "setup.sh").is_file()


@pytest.mark.parametrize("code", _blocks("python"), ids=lambda c: c.splitlines()[0][:40])
def test_python_examples_run(code: str, medmnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDZOO_DATA_DIR", str(medmnist_dir))
    monkeypatch.setenv("MEDZOO_CHECKPOINT_DIR", str(ROOT / ".pytest_cache" / "readme-ckpt"))
    registered = dict(METRICS)  # an example may register a metric: the other tests see the registry as shipped
    try:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own documentation
    finally:
        METRICS.clear()
        METRICS.update(registered)


@pytest.mark.parametrize("line", [ln for b in _blocks("bash") for ln in b.splitlines()
                                  if ln.startswith("medzoo ")])
def test_cli_examples_parse(line: str) -> None:
    build_parser().parse_args(shlex.split(line.split("#")[0])[1:])


def test_front_page_is_short_and_its_links_resolve() -> None:
    assert len(README.encode()) < 10_000
    for page, text in (("README.md", README), *((f"docs/{n}", t) for n, t in DOCS.items())):
        base = (ROOT / page).parent
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):  # relative links, anchors dropped
            assert (base / target).exists(), f"{page} links {target}, which does not exist"


def test_readme_counts_are_the_registries() -> None:
    """Every "the `SUITE` suite (N cells" in the README is that suite's cell count."""
    from benchmarks.suites import SUITES

    claims = re.findall(r"the `([\w-]+)` suite \((\d+) cells", README.replace("\n", " "))
    assert claims
    for name, n in claims:
        assert len(SUITES.get(name).cells()) == int(n), name


def test_suites_page_lists_every_suite() -> None:
    """The shipped suites, read in a fresh interpreter (other tests register suites of their own)."""
    code = "from benchmarks.suites import SUITES; print(' '.join(s.name for s in SUITES))"
    shipped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    table = DOCS["suites.md"].split("| suite | what it answers | board |")[1].split("\n\n")[0]
    assert sorted(re.findall(r"^\| `([\w-]+)` \|", table, flags=re.MULTILINE)) == sorted(shipped)
