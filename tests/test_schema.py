"""The result contract: the committed store follows schema 2 (pydantic and the shipped JSON Schema agree), every
lossless result re-scores to its stored metrics with MedMNIST's own evaluator and with medzoo's, and a damaged
result fails with its file and field named."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from medmnist import INFO, evaluator

from benchmarks.audit import rescore
from benchmarks.results import ResultStore
from benchmarks.results.schema import ResultValidationError, json_schema, load, probabilities, read_outputs

ROOT = Path(__file__).resolve().parent.parent
STORE = ResultStore(ROOT / "leaderboards" / "results")
RESULTS = list(STORE.results())
MEDMNIST_TASK = {"binary": "binary-class", "multiclass": "multi-class", "multilabel": "multi-label, binary-class",
                 "ordinal": "ordinal-regression"}
LOSSLESS_NOW = 17  # the quick suite, re-run under schema 2


def test_the_shipped_json_schema_is_generated_from_the_models() -> None:
    shipped = json.loads(resources.files("benchmarks").joinpath("results/schemas/result-2.schema.json").read_text())
    assert shipped == json_schema(), ("regenerate: python -m benchmarks.results.schema > "
                                      "benchmarks/results/schemas/result-2.schema.json")


def test_the_whole_committed_store_is_schema_2() -> None:
    files = sorted((ROOT / "leaderboards" / "results").glob("*/*.json"))
    assert len(files) == len(RESULTS) >= 162
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in files:
        data = json.loads(path.read_text())
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
        assert not errors, f"{path}: {errors[:3]}"
        assert data["schema_version"] == 2
    outputs = {p.name for p in (ROOT / "leaderboards" / "results").glob("*/*.outputs.safetensors")}
    assert outputs == {r.outputs.file for r in RESULTS if r.outputs is not None}  # no orphans, none missing


def _lossless_classification() -> list:
    return [r for r in RESULTS if r.outputs is not None and r.outputs.kind == "classification-logits"]


def test_every_lossless_result_rescores_exactly() -> None:
    """Classification with medzoo's metrics (bit for bit) and MedMNIST's evaluator (to 1e-9); segmentation from
    its histograms (none in the committed store yet: the segmentation smoke test re-scores one in CI)."""
    checked = 0
    for r in (r for r in RESULTS if r.outputs is not None and r.outputs.lossless):
        arrays = STORE.outputs(r)
        assert rescore(r, arrays).model_dump() == r.metrics.model_dump(), r.key
        if r.outputs.kind != "classification-logits":
            continue
        assert arrays["test/logits"].dtype == np.float32 and len(arrays["test/ids"]) == r.data.n["test"]
        if r.data.dataset in INFO:  # a MedMNIST set: its own evaluator agrees to 1e-9
            task, y = MEDMNIST_TASK[r.data.task], arrays["test/labels"]
            p = probabilities(arrays["test/logits"], r.data.task)
            assert evaluator.getAUC(y, p, task) == pytest.approx(r.test["auc"], abs=1e-9), r.key
            assert evaluator.getACC(y, p, task) == pytest.approx(r.test["acc"], abs=1e-9), r.key
            checked += 1
    assert checked >= LOSSLESS_NOW, f"only {checked} lossless MedMNIST results checked"


def test_migrated_results_show_numbers_rescored_from_their_rounded_scores() -> None:
    migrated = [r for r in RESULTS if r.migration is not None and r.outputs is not None]
    assert migrated, "no migrated classification result left to check"
    for r in migrated:
        assert not r.outputs.lossless and r.migration.note == "scores rounded (schema 1)"
        assert rescore(r, STORE.outputs(r)).model_dump() == r.metrics.model_dump(), r.key
        assert len(r.migration.source_sha256) == 64 and r.migration.original_metrics


def _copy(result_path: Path, tmp: Path) -> Path:
    out = tmp / result_path.parent.name
    out.mkdir()
    shutil.copy(result_path, out)
    r = load(result_path)
    if r.outputs is not None:
        shutil.copy(result_path.parent / r.outputs.file, out)
    return out / result_path.name


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["metrics"]["test"].pop("auc") and d["metrics"].pop("test"), "metrics.test"),
    (lambda d: d["data"].update(n="many"), "data.n"),
    (lambda d: d["cell"].update(seed="zero"), "cell.seed"),
    (lambda d: d["provenance"].pop("git"), "provenance.git"),
    (lambda d: d["cell"].update(seed=d["cell"]["seed"] + 1), "key"),  # well-typed, but not the cell that ran
])
def test_a_damaged_result_fails_naming_its_file_and_field(tmp_path: Path, change, field: str) -> None:  # type: ignore[no-untyped-def]
    r = _lossless_classification()[0]
    path = _copy(ROOT / "leaderboards" / "results" / r.suite.partition("@")[0] / f"{r.key}.json", tmp_path)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ResultValidationError) as e:
        list(ResultStore(tmp_path).results())
    assert str(path) in str(e.value) and field in str(e.value)


def test_damaged_outputs_and_schema_1_files_are_refused(tmp_path: Path) -> None:
    r = _lossless_classification()[0]
    path = _copy(ROOT / "leaderboards" / "results" / r.suite.partition("@")[0] / f"{r.key}.json", tmp_path)
    sidecar = path.parent / r.outputs.file
    sidecar.write_bytes(sidecar.read_bytes()[:-1] + b"\0")
    with pytest.raises(ResultValidationError, match="sha256"):
        read_outputs(load(path), path.parent)
    path.write_text(json.dumps({"schema": 1, "key": r.key}))
    with pytest.raises(ResultValidationError, match="migrate_results.py"):
        load(path)


def test_medzoo_audit_rescores_a_store_and_catches_an_edited_number(tmp_path: Path) -> None:
    from benchmarks.cli import main

    r = _lossless_classification()[0]
    path = _copy(ROOT / "leaderboards" / "results" / r.suite.partition("@")[0] / f"{r.key}.json", tmp_path)
    assert main(["audit", "--results-dir", str(tmp_path)]) == 0
    data = json.loads(path.read_text())
    data["metrics"]["test"]["auc"] += 0.01  # a well-formed result whose number was edited by hand
    path.write_text(json.dumps(data))
    assert main(["audit", "--results-dir", str(tmp_path)]) == 2


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_stored_logits_give_the_heads_probabilities(kind: str) -> None:
    """`head_logits` is what a features cell stores: its probabilities must be the head's own, also where a
    one-vs-rest label never varies in training (scikit-learn then fits a constant predictor, not a logistic)."""
    from sklearn.multiclass import OneVsRestClassifier

    import zoo
    from benchmarks.cells.classification import head_logits
    from benchmarks.data import Task

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5))
    if kind == "multilabel":
        y = np.stack([x[:, 0] > 0, x[:, 1] > 0.3, np.zeros(90, bool)], axis=1).astype(int)  # label 3: constant
        clf = OneVsRestClassifier(zoo.make_head("logistic")).fit(x, y)
    else:
        y = (x[:, 0] > 0).astype(int) + ((x[:, 1] > 0).astype(int) if kind == "multiclass" else 0)
        clf = zoo.make_head("logistic").fit(x, y)
    logits = head_logits(clf, x, Task(kind))
    assert logits.dtype == np.float32
    np.testing.assert_allclose(probabilities(logits, kind), clf.predict_proba(x), atol=1e-6)
