"""The results store, the only writer of files: per cell, the outputs sidecar and then the JSON result (schema 2,
`benchmarks.results.schema`) under `<root>/<suite>/` (default root: `benchmarks.paths.results_dir()`), each written
atomically (temp file + rename), so a killed run leaves either a whole result or none; per-epoch training
checkpoints and kept models (outside the repository) so an interrupted cell resumes and `medzoo predict` / `export`
find the model. Every read validates.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

import zoo
from benchmarks import paths
from benchmarks.results.schema import Result, load, probabilities, read_outputs
from benchmarks.suites import Cell


def checkpoint_dir() -> Path:
    """`$MEDZOO_CHECKPOINT_DIR`, else `~/.cache/medzoo/checkpoints` (large files: never in the repository)."""
    return Path(os.environ.get("MEDZOO_CHECKPOINT_DIR") or Path.home() / ".cache" / "medzoo" / "checkpoints")


class ResultStore:
    """Results under `root/<suite>/<cell key>.json`; checkpoints under `ckpt_root/<cell key>.pt`."""

    def __init__(self, root: Path | str | None = None, ckpt_root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else paths.results_dir()
        # one checkpoint folder per results store: a run into another store never resumes from (or deletes) this one's
        store_id = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:10]
        self.ckpt_root = Path(ckpt_root) if ckpt_root else checkpoint_dir() / store_id
        self._scores: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}

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
        return p.is_file() and load(p).status != "skipped"

    def write(self, result: Result, cell: Cell | None = None) -> Path:
        """The outputs sidecar first, then the JSON that names it: a result file is never without its arrays. With
        the `cell`, its epoch checkpoint is dropped (the cell is done)."""
        path = self.root / result.suite.partition("@")[0] / f"{result.key}.json"
        if result.outputs is not None:
            if result.blob is None:
                raise ValueError(f"{result.key}: the result names outputs but carries no arrays to write")
            atomic_write(path.parent / result.outputs.file, result.blob)
        atomic_write(path, result.to_json().encode())
        if cell is not None:
            self.clear_checkpoint(cell)
        return path

    def result(self, suite: str, key: str) -> Result | None:
        """The stored result of cell `key` of `suite`, or None."""
        p = self.root / suite / f"{key}.json"
        return load(p) if p.is_file() else None

    def results(self, suite: str | None = None) -> Iterator[Result]:
        """Every stored result (of `suite`), in file-name order, each validated (`ResultValidationError` names the
        file and the field)."""
        folders = [self.root / suite] if suite else sorted(
            p for p in self.root.glob("*") if p.is_dir() and not p.name.startswith("."))
        for folder in folders:
            for p in sorted(folder.glob("*.json")):
                yield load(p)

    def outputs(self, result: Result) -> dict[str, np.ndarray]:
        """The arrays `result`'s metrics were computed from (sha256-verified)."""
        return read_outputs(result, self.root / result.suite.partition("@")[0])

    def scores(self, result: Result, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) of a classification result's `split`, from its stored outputs: what boards
        bootstrap and compare (cached: a board reads each result many times)."""
        cache_key = (result.suite, result.key, split)
        if cache_key not in self._scores:
            arrays = self.outputs(result)
            if f"{split}/logits" in arrays:
                assert result.data is not None
                probs = probabilities(arrays[f"{split}/logits"], result.data.task)
            else:  # a migrated schema-1 result: its rounded probabilities are all there is
                probs = arrays[f"{split}/probabilities"]
            self._scores[cache_key] = (arrays[f"{split}/labels"], probs)
        return self._scores[cache_key]

    # --- per-epoch checkpoints --------------------------------------------------------------------------------
    def checkpoint_path(self, cell: Cell) -> Path:
        return self.ckpt_root / f"{cell.key}.pt"

    def save_checkpoint(self, cell: Cell, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write(self.checkpoint_path(cell), buf.getvalue())

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

    def keep_model(self, cell: Cell, net: torch.nn.Module, meta: dict[str, Any]) -> dict[str, str]:
        """Keep `net` (with medzoo's metadata) at `model_path(cell)`; the result's `model.checkpoint` entry."""
        data = zoo.trained_bytes(net, meta)
        atomic_write(self.model_path(cell), data)
        return {"path": str(self.model_path(cell)), "sha256": hashlib.sha256(data).hexdigest()}

    def clear_checkpoint(self, cell: Cell) -> None:
        self.checkpoint_path(cell).unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see the old file or the new one. The
    one writer of results, boards, checkpoints, kept models and the feature cache."""
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
