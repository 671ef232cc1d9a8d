"""Boards follow the registries: a suite's board kind picks its module, a registered metric gets its column, and
rows are ranked in each metric's registered direction."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks import boards, metrics, versions
from benchmarks.boards import segmentation as seg_board
from benchmarks.cells import run_cell
from benchmarks.data import DATASETS
from benchmarks.results import ResultStore
from benchmarks.suites import SUITES, Grid, Policy, Suite
from zoo import Task, TransferMode, UnknownNameError

PAIR = Suite(name="boards-pair", version="1", description="Two random-feature rows, for the board tests.", grids=(
    Grid(models=("resnet18_28.random", "alexnet.random"), datasets=("breastmnist",),
         modes=(TransferMode.FEATURES,), policy=Policy.RESIZE_BILINEAR, input_size=32),
))


def _brier(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    return float(np.mean((s[:, 1] - y) ** 2))


@pytest.fixture(scope="module")
def brier_store(tmp_path_factory: pytest.TempPathFactory, medmnist_dir: Path) -> Iterator[ResultStore]:
    """A metric registered before the cells run: one `register_metric` call is the whole change."""
    metrics.register_metric(metrics.Metric("brier", False, frozenset({Task.BINARY}), _brier, column="Brier"))
    root = tmp_path_factory.mktemp("boards")
    store = ResultStore(root / "results", root / "ckpt")
    try:
        for cell in PAIR.cells():
            store.write(run_cell(cell, data_dir=medmnist_dir, store=store), cell)
        yield store
    finally:
        del metrics.METRICS["brier"]


def test_a_registered_metric_is_computed_and_gets_its_column(brier_store: ResultStore) -> None:
    [r] = [r for r in brier_store.results(PAIR.name) if r.cell.arch == "alexnet"]
    labels, scores = brier_store.scores(r)
    assert r.test["brier"] == pytest.approx(np.mean((scores[:, 1] - labels.ravel()) ** 2))
    files = boards.generate(brier_store, PAIR)
    header = next(line for line in files["boards-pair.md"].splitlines() if line.startswith("| rank |"))
    assert "| ECE | Brier | params |" in header
    table = pd.read_csv(io.StringIO(str(files["boards-pair.csv"])))
    assert list(table.columns).index("brier") == list(table.columns).index("ece") + 1
    ours = table[table["source"] == "medzoo (this run)"]
    assert len(ours) == 2 and ours["brier"].between(0, 1).all()


def test_an_unregistered_metric_has_no_column_and_names_are_registered_once(brier_store: ResultStore) -> None:
    with pytest.raises(ValueError, match="already registered"):
        metrics.register_metric(metrics.Metric("auc", False, frozenset({Task.BINARY})))
    csv_header = boards.generate(brier_store, PAIR)["boards-pair.csv"].splitlines()[0].split(",")
    assert "sensitivity" not in csv_header and "kappa" not in csv_header  # registered without a column


def test_rows_are_ranked_in_the_metrics_direction(brier_store: ResultStore, monkeypatch: pytest.MonkeyPatch) -> None:
    up = boards.suite_board(brier_store, PAIR)
    assert up["auc_mean"].nunique() == 2 and list(up["auc_mean"]) == sorted(up["auc_mean"], reverse=True)
    monkeypatch.setitem(metrics.METRICS, "auc", replace(metrics.METRICS["auc"], higher_is_better=False))
    down = boards.suite_board(brier_store, PAIR)
    assert list(down["model"]) == list(up["model"])[::-1]
    assert list(down["auc_mean"]) == sorted(up["auc_mean"])


def test_the_suites_board_kind_picks_the_board() -> None:
    assert {s.board for s in SUITES} <= set(boards.BOARDS)
    assert boards.board_of(SUITES.get("segmentation")) is boards.segmentation
    assert boards.board_of(SUITES.get("transfer-matrix")) is boards.transfer_matrix
    assert boards.board_of(PAIR) is boards.classification
    with pytest.raises(UnknownNameError, match="segmentation"):
        boards.board_of(replace(PAIR, board="segmentaton"))


def test_segmentation_columns_take_their_direction_from_the_registry() -> None:
    assert ("pixel_error", "pixel error", False) in seg_board._columns("isbi2012")
    assert ("f1", "F1 (Dice)", True) in seg_board._columns("chase_db1")
    assert all(key in metrics.METRICS for name in ("chase_db1", "isbi2012", "drive")
               for key, _, _ in seg_board._columns(name))


def test_a_board_reads_the_suite_object_not_the_global_registry(brier_store: ResultStore, tmp_path: Path) -> None:
    assert PAIR.name not in SUITES  # never registered: boards take the object
    renamed = replace(PAIR, description="Renamed description.")
    assert "Renamed description." in boards.generate(brier_store, renamed)["boards-pair.md"]
    files = boards.generate(brier_store, PAIR)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    assert boards.check(brier_store, PAIR, tmp_path) == []
    assert boards.check(brier_store, renamed, tmp_path) == [f"{tmp_path / 'boards-pair.md'} is out of date"]


def test_a_single_run_has_no_spread_and_says_so(brier_store: ResultStore) -> None:
    files = boards.generate(brier_store, PAIR)
    table = pd.read_csv(io.StringIO(str(files["boards-pair.csv"])))
    ours = table[table["source"] == "medzoo (this run)"]
    assert (ours["seeds"] == 1).all() and ours["auc_std"].isna().all() and ours["acc_std"].isna().all()  # not 0.0
    rows = [line for line in str(files["boards-pair.md"]).splitlines() if "logistic head" in line]
    assert len(rows) == 2 and all("| 1 run |" in line and " ± " not in line for line in rows)
    assert list(ours["rank"]) == sorted(ours["rank"])  # ordered by rank, then by AUC


def test_a_segmentation_row_gives_each_seeds_epochs_not_their_mean() -> None:
    """One seed stopped early, two ran to the cap: a mean (98) with the first stop reason would hide that."""
    seeds = pd.DataFrame({"run": [93, 100, 100], "best": [73, 86, 86],
                          "stop": ["early stop (patience)", "epochs", "epochs"]})
    row = {"epochs_run": seg_board._per_seed(seeds["run"]), "best_epoch": seg_board._per_seed(seeds["best"]),
           "stop": seg_board._per_seed(seeds["stop"])}
    assert row == {"epochs_run": "93; 100; 100", "best_epoch": "73; 86; 86",
                   "stop": "early stop (patience); epochs; epochs"}
    assert seg_board._epochs(row) == "93/73 (early stop (patience)), 100/86 (epochs), 100/86 (epochs)"
    same_stop = {"epochs_run": "100", "best_epoch": "86; 90", "stop": "epochs"}
    assert seg_board._epochs(same_stop) == "100/86, 100/90 (epochs)"
    assert seg_board._epochs({"epochs_run": "46", "best_epoch": "26", "stop": "early stop"}) == "46/26 (early stop)"


@pytest.mark.parametrize("suite", ["quick", "medmnist-v2", "segmentation"])
def test_no_legend_covers_a_point_on_the_committed_boards(suite: str) -> None:
    from benchmarks.boards.render import forest_figure

    store, s = ResultStore(Path(__file__).parents[1] / "leaderboards" / "results"), SUITES.get(suite)
    by = boards.board_of(s).panels(store, s)
    fig = forest_figure(s.id, {n: points for n, (_, points) in by.items()}, "metric")
    assert sum(len(ax.get_lines()) for ax in fig.axes) > 0  # it drew the store's rows
    assert _overlaps(fig) == []


def test_the_overlap_check_sees_a_legend_over_a_point() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], "o", label="a point")
    ax.plot([0.98], [0.98], "o", label="under the legend")
    ax.legend(loc="upper right")
    assert _overlaps(fig) and "under a legend" in _overlaps(fig)[0]
    plt.close(fig)


def test_coverage_lists_what_did_not_run_with_why_and_an_estimate(brier_store: ResultStore) -> None:
    from benchmarks.boards import coverage

    bigger = replace(PAIR, grids=(*PAIR.grids, replace(PAIR.grids[0], datasets=("pneumoniamnist",)),
                                  replace(PAIR.grids[0], models=("resnet18.tv_in1k",))))
    total, ok, groups = coverage.missing(brier_store, bigger)
    assert (total, ok) == (5, 2)
    ran = {r.cell.model: r for r in brier_store.results(PAIR.name)}
    n_breast, n_pneumonia = (sum(DATASETS.get(d).n_samples.values()) for d in ("breastmnist", "pneumoniamnist"))
    for model in ("resnet18_28.random", "alexnet.random"):  # features cells: seconds per image, every split
        g = groups[model, 32, "features", "not run"]
        assert g.datasets == {"pneumoniamnist"} and g.cells == 1
        assert g.seconds == pytest.approx(ran[model].provenance.duration_s / n_breast * n_pneumonia)
    net = groups["resnet18.tv_in1k", 32, "features", "needs the network for its pretrained weights"]
    assert net.seconds is None and net.datasets == {"breastmnist"}
    text = "\n".join(coverage.markdown(brier_store, bigger))
    assert "2 of the suite's 5 cells have a result" in text and "no estimate" in text


def test_coverage_says_a_dataset_that_may_not_be_redistributed_needs_the_users_copy(tmp_path: Path) -> None:
    from benchmarks.boards import coverage

    _, _, groups = coverage.missing(ResultStore(tmp_path), SUITES.get("segmentation"))
    own = {k[0]: g.datasets for k, g in groups.items() if k[3].startswith("needs the user's own copy")}
    assert own == {"unet2015_w32.random": {"drive"}}  # DRIVE's terms forbid copies; CHASE_DB1/ISBI-2012 ship
    assert not DATASETS.get("drive").redistributable and DATASETS.get("chase_db1").redistributable


def test_results_of_older_code_leave_the_board_and_are_listed_to_re_run(brier_store: ResultStore,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.boards import coverage

    def ours() -> int:
        table = pd.read_csv(io.StringIO(str(boards.generate(brier_store, PAIR)["boards-pair.csv"])))
        return int((table["source"] == "medzoo (this run)").sum())

    assert ours() == 2
    monkeypatch.setattr(versions, "PROTOCOL_VERSION", versions.PROTOCOL_VERSION + 1)  # the code moved on
    assert ours() == 0  # no row from the old code
    files = boards.generate(brier_store, PAIR)
    total, ok, groups = coverage.missing(brier_store, PAIR)
    assert (total, ok) == (2, 0)
    assert {k[3] for k in groups} == {"to re-run: its result is from older code"}
    assert "to re-run: its result is from older code" in str(files["boards-pair.md"])


def _overlaps(fig: Any) -> list[str]:
    """Points that a legend or a panel's title/labels cover, in display coordinates (what a test asserts empty)."""
    fig.canvas.draw()
    boxes = [leg.get_window_extent() for leg in fig.legends] + [
        ax.get_legend().get_window_extent() for ax in fig.axes if ax.get_legend() is not None]
    found = []
    for ax in fig.axes:
        for line in ax.get_lines():
            for x, y in ax.transData.transform(line.get_xydata()):
                found += [f"{ax.get_title()}: point at ({x:.0f}, {y:.0f}) px under a legend"
                          for b in boxes if b.contains(x, y)]
    return found


def test_matched_pretraining_pairs_each_pretrained_row_with_its_random_twin(medmnist_dir: Path,
                                                                           tmp_path: Path) -> None:
    suite = Suite(name="boards-matched", version="1", description="Pretrained against random, same network.", grids=(
        Grid(models=("tf_efficientnet_lite0.pypi_in1k", "tf_efficientnet_lite0.random", "alexnet.random"),
             datasets=("breastmnist",), modes=(TransferMode.FEATURES,), policy=Policy.RESIZE_BILINEAR,
             input_size=32),))
    store = ResultStore(tmp_path / "results", tmp_path / "ckpt")
    for cell in suite.cells():
        store.write(run_cell(cell, data_dir=medmnist_dir, store=store), cell)
    auc = {r.cell.model: r.test["auc"] for r in store.results(suite.name)}
    text = "\n".join(boards.classification.matched_pretraining(
        store, boards.classification.results_frame(store, suite)[0]))
    row = next(line for line in text.splitlines() if "pypi_in1k − random" in line).split(" | ")
    delta, (low, high) = float(row[6]), (float(x) for x in row[7].strip("[] |").split(", "))
    assert delta == pytest.approx(auc["tf_efficientnet_lite0.pypi_in1k"] - auc["tf_efficientnet_lite0.random"],
                                  abs=5e-4)
    assert low <= delta <= high and row[5] == "1 run"
    assert "alexnet − random" not in text and "Random-init rows only for alexnet:" in text  # its weights need the net
