"""The result schema and the store. The store is the only writer of files: one JSON per cell under
`leaderboards/results/<suite>/`, written atomically (temp file + rename), so a killed run leaves either the whole
file or none; and per-epoch training checkpoints (outside the repository) so an interrupted cell resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from benchmarks.suites import Cell

SCHEMA_VERSION = 1
RESULTS_DIR = Path("leaderboards") / "results"


def checkpoint_dir() -> Path:
    """`$MEDZOO_CHECKPOINT_DIR`, else `~/.cache/medzoo/checkpoints` (large files: never in the repository)."""
    return Path(os.environ.get("MEDZOO_CHECKPOINT_DIR") or Path.home() / ".cache" / "medzoo" / "checkpoints")


@dataclass(frozen=True)
class Result:
    """One cell's outcome with its provenance. `status` is `ok`, `skipped` (e.g. weights unavailable; retried on
    the next run) or `failed`; only `ok` results carry metrics, and a board shows only those."""

    key: str
    suite: str  # name@version
    cell: dict[str, Any]  # the cell's full config (model, dataset, sizes, mode, seed, protocol, overrides)
    status: str
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # test split
    val_metrics: dict[str, float] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)  # 95% bootstrap CIs on test
    per_class_auc: list[float] = field(default_factory=list)
    n: dict[str, int] = field(default_factory=dict)
    test_scores: list[list[float]] = field(default_factory=list)  # for paired bootstraps between rows
    test_labels: list[list[int]] = field(default_factory=list)
    per_image: list[dict[str, Any]] = field(default_factory=list)  # segmentation: metrics of each test image
    training: dict[str, Any] = field(default_factory=dict)  # epochs run, best epoch, stop reason, history
    data: dict[str, Any] = field(default_factory=dict)  # fingerprint, license, citation, resolution policy
    model: dict[str, Any] = field(default_factory=dict)  # arch, tag, source, params, preprocessing
    provenance: dict[str, Any] = field(default_factory=dict)  # git, packages, device, threads, load, times
    schema: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Result:
        return cls(**json.loads(text))


class ResultStore:
    """Results under `root/<suite>/<cell key>.json`; checkpoints under `ckpt_root/<cell key>.pt`."""

    def __init__(self, root: Path | str = RESULTS_DIR, ckpt_root: Path | str | None = None) -> None:
        self.root = Path(root)
        # one checkpoint folder per results store: a run into another store never resumes from (or deletes) this one's
        store_id = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:10]
        self.ckpt_root = Path(ckpt_root) if ckpt_root else checkpoint_dir() / store_id

    def path(self, cell: Cell) -> Path:
        return self.root / cell.suite / f"{cell.key}.json"

    def lock(self, cell: Cell) -> FileLock:
        """A per-cell inter-process lock (`root/.locks/<key>.lock`, beside the results so every process and node
        sharing the store sees it): whoever holds it computes the cell; the others skip or wait. An OS lock (fcntl):
        released when its holder dies, so a killed run never leaves a cell claimed."""
        path = self.root / ".locks" / f"{cell.key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path)

    def done(self, cell: Cell) -> bool:
        """A finished cell (status ok or failed); a skipped one is tried again."""
        p = self.path(cell)
        return p.is_file() and Result.from_json(p.read_text()).status != "skipped"

    def write(self, result: Result, cell: Cell) -> Path:
        path = self.path(cell)
        _atomic_write(path, result.to_json().encode() + b"\n")
        self.clear_checkpoint(cell)
        return path

    def result(self, suite: str, key: str) -> Result | None:
        """The stored result of cell `key` of `suite`, or None."""
        p = self.root / suite / f"{key}.json"
        return Result.from_json(p.read_text()) if p.is_file() else None

    def results(self, suite: str | None = None) -> Iterator[Result]:
        """Every stored result (of `suite`), in file-name order; a file that does not parse is an error."""
        folders = [self.root / suite] if suite else sorted(
            p for p in self.root.glob("*") if p.is_dir() and not p.name.startswith("."))
        for folder in folders:
            for p in sorted(folder.glob("*.json")):
                try:
                    yield Result.from_json(p.read_text())
                except (json.JSONDecodeError, TypeError) as e:
                    raise ValueError(f"{p} is not a valid medzoo result ({e}); delete it and re-run the cell") from e

    # --- per-epoch checkpoints --------------------------------------------------------------------------------
    def checkpoint_path(self, cell: Cell) -> Path:
        return self.ckpt_root / f"{cell.key}.pt"

    def save_checkpoint(self, cell: Cell, state: dict[str, Any]) -> None:
        path = self.checkpoint_path(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def load_checkpoint(self, cell: Cell) -> dict[str, Any] | None:
        """The last epoch's state, or None; an unreadable file (a crash mid-save on a full disk) is discarded."""
        path = self.checkpoint_path(cell)
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except (RuntimeError, EOFError, OSError, ValueError):
            path.unlink(missing_ok=True)
            return None

    def model_path(self, cell: Cell) -> Path:
        """Where a cell's trained model is kept (safetensors with medzoo metadata: `medzoo predict`, `medzoo export`,
        and the cells that start from it read it)."""
        return self.ckpt_root / "models" / f"{cell.key}.safetensors"

    def clear_checkpoint(self, cell: Cell) -> None:
        self.checkpoint_path(cell).unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; results and boards are for everyone to read
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Atomic text write (leaderboard files go through here too)."""
    _atomic_write(path, text.encode())


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, data)
