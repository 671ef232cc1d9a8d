"""The result contract (schema 2): one typed record per cell, validated on every load.

A result is a JSON file (`<suite>/<cell key>.json`) plus, for an `ok` cell, a sidecar of the very arrays its metrics
came from (`<cell key>.outputs.safetensors`, sha256 in the JSON): per-sample ids, labels and float32 logits of the
validation and test splits for classification; per-image histograms of uint16-quantised probabilities (split by
ground truth and field of view) for segmentation. The metrics a cell stores are computed from exactly those arrays
(`probabilities` below for classification, `benchmarks.metrics.segmentation.histogram_metrics` for segmentation), so anyone
can re-score a result and get its numbers back to the last bit.

The JSON Schema shipped with the package (`benchmarks/results/schemas/result-2.schema.json`) is generated from these
models (`python -m benchmarks.results.schema > benchmarks/results/schemas/result-2.schema.json`; a test checks it is
current).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from benchmarks.suites import config_hash
from zoo import MedzooError

SCHEMA_VERSION = 2
Number = int | float  # a JSON number kept as written: 120 stays 120 (the cell key hashes the JSON text)
Status = Literal["ok", "skipped", "failed"]
TaskName = Literal["binary", "multiclass", "multilabel", "ordinal", "segmentation"]


class ResultValidationError(MedzooError):
    """A stored result that does not follow the schema: names the file and the field."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the cell: everything that decides its numbers (its key is a hash of this section) ----------------------------
class ProtocolRecord(_Record):
    """`benchmarks.suites.Protocol` (and `SegProtocol`'s extra fields), as the cell key hashes it."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: Number
    weight_decay: Number
    schedule: str
    milestones: list[Number]
    gamma: Number
    monitor: str
    patience: int | None
    augment: bool
    backbone_lr_scale: Number
    head: str
    time_budget_s: Number | None
    precision: Literal["fp32", "bf16"] = "fp32"  # absent in results written before precision was a protocol field
    train_subset: int | None = None
    patch_size: int | None = None
    patches_per_epoch: int | None = None
    val_patches: int | None = None
    val_full_every: int | None = None
    overlap: Number | None = None


class Versions(_Record):
    """Explicit code versions, part of the cell key: a changed builder, cell kind or protocol makes new cells."""

    model: int
    cell: int
    protocol: int
    autocast: int | None = None  # bf16 cells only: what stays fp32 (`benchmarks.versions.AUTOCAST_VERSION`)


class CellRecord(_Record):
    suite: str
    version: str
    model: str  # arch.tag (arch.random: random initial weights)
    dataset: str
    data_size: int
    policy: Literal["native", "resize-nearest", "resize-bilinear", "resize-bicubic", "pad"]
    input_size: int
    mode: Literal["features", "linear_probe", "finetune", "scratch"]
    seed: int
    protocol: ProtocolRecord
    overrides: list[tuple[str, Number | str]]  # (field, value): epochs=120, precision="fp32"
    init_from: str | None = None  # absent unless the cell starts from another cell's kept model
    versions: Versions

    @property
    def arch(self) -> str:
        return self.model.partition(".")[0]

    @property
    def tag(self) -> str:
        return self.model.partition(".")[2]

    @property
    def kind(self) -> str:
        """The cell kind (`benchmarks.versions.CELL_VERSIONS`): patch-trained cells are segmentation cells."""
        return "segmentation" if self.protocol.patch_size is not None else "classification"

    def config(self) -> dict[str, Any]:
        """The section as the cell key hashes it (the same dict `Cell.config()` makes)."""
        return self.model_dump(mode="json", exclude_unset=True)


# --- what ran, on what --------------------------------------------------------------------------------------------
class Preprocessing(_Record):
    mean: list[float]
    std: list[float]


class Checkpoint(_Record):
    path: str
    sha256: str


class ModelRecord(_Record):
    name: str
    arch: str
    family: str
    tag: str
    source: str | None
    num_params: int
    preprocessing: Preprocessing
    width: int | None = None  # U-Nets: base channels
    checkpoint: Checkpoint | None = None  # the kept model (finetune/scratch with --save-checkpoints, segmentation)
    init_sha256: str | None = None  # cells that start from another cell's kept model


class DataRecord(_Record):
    dataset: str
    task: TaskName
    fingerprint: str  # md5 of the dataset files (MedMNIST's INFO) or of the folder's files
    license: str
    citation: str
    n: dict[str, int]  # samples (segmentation: images) per split
    data_size: int | None = None
    policy: str | None = None
    requested_size: int | None = None
    input_size: int | None = None
    bumped_to_min_size: bool | None = None
    interpolation: str | None = None
    positive_class: str | None = None
    test_images: list[str] | None = None
    second_observer: dict[str, float | None] | None = None  # the human baseline (depends on the test images only)
    reading: str | None = None  # a user's own images: how the files became arrays (bits, window, channels, resize)


class TrainingRecord(_Record):
    epochs_run: int | None = None
    best_epoch: int | None = None
    stop_reason: str | None = None
    resumed_from_epoch: int | None = None
    history: list[dict[str, float]] = []
    head: str | None = None
    feature_dim: int | None = None
    feature_cache_hits: dict[str, bool] | None = None
    features_cached_in_cell: bool | None = None
    features_standardised: bool | None = None
    time_budget_s: Number | None = None
    patches_seen: int | None = None
    threads: int | None = None


class GitRecord(_Record):
    """`dirty` is about the *code* (`paths`), not the results, boards or figures a run writes."""

    sha: str | None
    dirty: bool | None
    diff_sha256: str | None = None  # sha256 of the code's diff against `sha` (untracked code files included)
    paths: list[str] = []


class Bf16Record(_Record):
    """The device's bf16 units (`zoo.bf16_support`): a bf16 cell on a device without them ran emulated (slowly)."""

    device: str
    units: list[str]
    source: str
    native: bool


class Provenance(_Record):
    git: GitRecord
    packages: dict[str, str]  # every distribution the process had imported when the cell ended, with its version
    python: str
    platform: str
    device: str
    cpu: str
    cpu_isa: list[str] | None = None  # the vector/matrix extensions torch and /proc/cpuinfo report
    gpu: str | None = None
    autocast: str | None = None  # the autocast dtype, None for fp32
    bf16: Bf16Record | None = None  # what bf16 hardware the device has (absent in older results)
    torch_threads: int
    deterministic: dict[str, bool]
    load_average_at_start: list[float]
    started: str
    duration_s: float | None = None


class PerImage(_Record):
    id: str
    metrics: dict[str, float | None]


class MetricsRecord(_Record):
    """Test and validation metrics, computed from the stored outputs. None: undefined (e.g. a ratio over zero)."""

    test: dict[str, float | None]
    val: dict[str, float | None]
    ci: dict[str, tuple[float | None, float | None]] = {}  # 95% bootstrap CIs on test (None: undefined)
    per_class_auc: list[float | None] = []
    per_image: list[PerImage] = []  # segmentation: each test image


class Outputs(_Record):
    """Where the arrays are and how to read them. `lossless`: the metrics re-score from them exactly. Per-sample
    `ids` are positions in the dataset's split (MedMNIST's order), not file names."""

    file: str  # beside the JSON
    sha256: str
    kind: Literal["classification-logits", "segmentation-histograms", "rounded-probabilities"]
    lossless: bool
    splits: list[str]
    arrays: dict[str, list[int]]  # name → shape
    note: str = ""


class Migration(_Record):
    """A schema-1 result converted by `scripts/migrate_results.py`: where it came from and what was lost."""

    from_schema: int
    source_path: str
    source_sha256: str
    source_key: str
    note: str
    original_metrics: dict[str, float | None] = {}  # as schema 1 stored them (from unrounded scores)
    original_val_metrics: dict[str, float | None] = {}
    original_ci: dict[str, tuple[float, float]] = {}
    original_git_dirty: bool | None = None  # schema 1's flag: it also counted the results store as dirty


class Result(_Record):
    """One cell's outcome. `ok` results carry model, data, training, metrics and outputs; `skipped` (weights or data
    not available here: tried again by the next run) and `failed` carry the reason."""

    schema_version: Literal[2] = SCHEMA_VERSION
    key: str
    suite: str  # name@version
    status: Status
    reason: str = ""
    cell: CellRecord
    model: ModelRecord | None = None
    data: DataRecord | None = None
    training: TrainingRecord | None = None
    metrics: MetricsRecord | None = None
    outputs: Outputs | None = None
    provenance: Provenance
    migration: Migration | None = None
    _blob: bytes | None = PrivateAttr(default=None)  # the outputs sidecar, until the store writes it

    @property
    def test(self) -> dict[str, float | None]:
        """Test metrics (`{}` unless ok)."""
        return self.metrics.test if self.metrics else {}

    def to_json(self) -> str:
        data = self.model_dump(mode="json", exclude_unset=True) | {"schema_version": SCHEMA_VERSION}
        return json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"

    def with_outputs(self, arrays: dict[str, np.ndarray], kind: str, lossless: bool = True, note: str = "") -> Result:
        """This result with its outputs sidecar attached (serialised now, so the sha256 is known before writing)."""
        from safetensors.numpy import save

        blob = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
        out = Outputs(file=f"{self.key}.outputs.safetensors", sha256=hashlib.sha256(blob).hexdigest(), kind=kind,
                      lossless=lossless, splits=sorted({k.split("/")[0] for k in arrays}),
                      arrays={k: list(v.shape) for k, v in sorted(arrays.items())}, note=note)
        new = self.model_copy(update={"outputs": out})
        new._blob = blob
        return new

    @property
    def blob(self) -> bytes | None:
        return self._blob


def finite(x: float | np.floating[Any]) -> float | None:
    """A metric value for the record: NaN (undefined) becomes None; JSON has no NaN."""
    x = float(x)
    return None if math.isnan(x) else x


def finite_dict(d: dict[str, Any]) -> dict[str, float | None]:
    return {k: finite(v) for k, v in d.items()}


def parse(data: Any, where: str) -> Result:
    """Validate one result's JSON data; `ResultValidationError` names `where` (a file) and every bad field."""
    if isinstance(data, dict) and data.get("schema") == 1:
        raise ResultValidationError(f"{where}: a schema-1 result; convert the store with `python "
                                    f"scripts/migrate_results.py` (its history stays in git)")
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise ResultValidationError(f"{where}: field schema_version: expected {SCHEMA_VERSION}, found {found!r}")
    try:
        result = Result.model_validate(data)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                           for err in e.errors()[:5])
        raise ResultValidationError(f"{where} is not a valid medzoo result (schema {SCHEMA_VERSION}): {fields}") \
            from None
    expected = config_hash(result.cell.config())
    if not result.key.endswith(f"__{expected}"):
        raise ResultValidationError(f"{where}: field key: {result.key} does not end in the hash of its cell section "
                                    f"({expected}): the cell was edited after the run")
    return result


def load(path: Path | str) -> Result:
    """Read and validate a result file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ResultValidationError(f"{p} is not a readable JSON result ({e}); delete it and re-run the cell") from e
    return parse(data, str(p))


def read_outputs(result: Result, folder: Path | str) -> dict[str, np.ndarray]:
    """The arrays of `result`'s outputs sidecar in `folder`, sha256-verified."""
    from safetensors.numpy import load as load_arrays

    if result.outputs is None:
        raise ResultValidationError(f"{result.key} has no outputs (status {result.status})")
    path = Path(folder) / result.outputs.file
    if not path.is_file():
        raise ResultValidationError(f"{path} is missing: the outputs of {result.key} (re-run the cell)")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != result.outputs.sha256:
        raise ResultValidationError(f"{path}: sha256 does not match the result's outputs.sha256 (damaged or "
                                    f"replaced): re-run the cell")
    return load_arrays(blob)


# --- the one function from stored logits to the probabilities every metric reads ---------------------------------
def probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    """float32 logits `(n, C)` → float64 probabilities: per-label sigmoid for multi-label, else softmax over classes
    (binary tasks store two logits, [negative, positive]). Computed in float64 so the result is one exact function
    of the stored float32 values."""
    z = np.asarray(logits, dtype=np.float64)
    if task == "multilabel":
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def json_schema() -> dict[str, Any]:
    schema = Result.model_json_schema(mode="serialization")
    schema["$id"] = "urn:medzoo:result:2"
    schema["title"] = "medzoo result, schema 2"
    schema["required"] = sorted({*schema["required"], "schema_version"})
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=1, sort_keys=True))
