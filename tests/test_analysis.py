"""Analysis of a study: lr selection on validation, statistics over seeds, diverged runs.

Records are made by hand (histories written out), so every expected answer is known.
"""

import math

import numpy as np
import pytest

from sgdlab import RunConfig, SgdlabError
from sgdlab.study.analysis import (GRID_COLUMNS, confusion_matrix, curve, grid_rows, representative_run,
                                   run_accuracy, select, select_records, summarize, summarize_cells, t_quantile)
from sgdlab.study.records import Cell, RunRecord, run_key
from sgdlab.engine.loop import History


def rec(val, test=None, *, lr=0.1, seed=0, init="xavier", activation="sigmoid", output="same", cost="ce",
        mode="paper", status="done"):
    """A record whose per-epoch validation accuracy is ``val`` (test: ``test`` or val - 0.01)."""
    test = [v - 0.01 for v in val] if test is None else test
    h = History(train_loss=[1.0] * len(val), train_acc=list(val), val_loss=[1.0] * len(val), val_acc=list(val),
                test_loss=[1.0] * len(val), test_acc=list(test), seconds=[0.1] * len(val), status="done")
    if status == "diverged":
        h.status, h.diverged_epoch = "diverged", len(val) + 1
    c = RunConfig(activation=activation, output=output, cost=cost, init=init, lr=lr, seed=seed, epochs=5)
    return RunRecord(run_key(mode, c), mode, c, status, h.final() if status != "failed" else {}, h,
                     error="boom" if status == "failed" else None)


# --------------------------------------------------------------------------- t quantile and intervals

# Two-sided 95 % t critical values from any statistics table.
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 19: 2.093, 29: 2.045, 120: 1.980}


@pytest.mark.parametrize("df,expected", sorted(T_TABLE.items()))
def test_t_quantile_matches_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_t_quantile_tends_to_normal_and_is_symmetric():
    assert t_quantile(0.975, 1e6) == pytest.approx(1.959964, abs=1e-4)
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))
    assert t_quantile(0.5, 3) == 0.0
    assert t_quantile(0.995, 4) == pytest.approx(4.604, abs=1e-3)


def test_summarize_interval_uses_sample_std_and_t():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0], bounds=None)
    assert s.n == 5 and s.mean == 3.0 and s.min == 1.0 and s.max == 5.0
    assert s.std == pytest.approx(math.sqrt(2.5))
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert s.ci == pytest.approx((3 - half, 3 + half), abs=1e-6)


def test_summarize_clips_interval_to_accuracy_range():
    s = summarize([0.99, 0.5])  # a raw 2-seed interval reaches far past [0, 1]
    lo, hi = s.ci
    assert lo == 0.0 and hi == 1.0
    assert s.half_width > 1  # the unclipped half-width is kept


def test_summarize_one_and_zero_values():
    one = summarize([0.7])
    assert one.n == 1 and one.mean == 0.7 and one.std == 0.0 and one.ci is None
    assert "[" not in one.format()
    none = summarize([])
    assert none.n == 0 and none.ci is None and none.format() == "n/a"


# --------------------------------------------------------------------------- selection


def test_selection_picks_best_mean_validation_not_best_single_run():
    records = [
        rec([0.5, 0.90], lr=1.0, seed=0), rec([0.5, 0.50], lr=1.0, seed=1),    # mean 0.70, best single run
        rec([0.6, 0.80], lr=0.1, seed=0), rec([0.6, 0.82], lr=0.1, seed=1),    # mean 0.81
        rec([0.2, 0.30], lr=0.01, seed=0), rec([0.2, 0.32], lr=0.01, seed=1),  # mean 0.31
    ]
    [sel] = select_records(records)
    assert sel.lr == 0.1
    assert sel.best.val.mean == pytest.approx(0.81)
    assert sel.best.test.mean == pytest.approx(0.80)  # test reported at the selected lr
    assert [c.lr for c in sel.candidates] == [0.01, 0.1, 1.0]


def test_selection_uses_final_epoch_not_best_epoch():
    records = [rec([0.99, 0.40], lr=1.0), rec([0.5, 0.6], lr=0.1)]
    [sel] = select_records(records)
    assert sel.lr == 0.1


def test_selection_is_per_cell():
    records = [rec([0.9], lr=1.0, init="xavier"), rec([0.5], lr=0.1, init="xavier"),
               rec([0.4], lr=1.0, init="gaussian"), rec([0.7], lr=0.1, init="gaussian")]
    sels = {s.cell.init: s.lr for s in select_records(records)}
    assert sels == {"xavier": 1.0, "gaussian": 0.1}


def test_modes_are_separate_cells():
    records = [rec([0.9], mode="paper"), rec([0.8], mode="corrected")]
    cells = {s.cell.mode for s in select_records(records)}
    assert cells == {"paper", "corrected"}


def test_ties_go_to_fewer_diverged_then_smaller_lr():
    # Equal means (0.5) at lr 1 and 0.1; lr 1 has a diverged run under policy "last".
    records = [rec([0.5], lr=1.0, seed=0, status="diverged"), rec([0.5], lr=1.0, seed=1),
               rec([0.5], lr=0.1, seed=0), rec([0.5], lr=0.1, seed=1),
               rec([0.5], lr=0.01, seed=0), rec([0.5], lr=0.01, seed=1)]
    [sel] = select(summarize_cells(records, diverged="last"))
    assert sel.lr == 0.01


# --------------------------------------------------------------------------- diverged and failed runs


def test_run_accuracy_policies():
    div = rec([0.5, 0.6], status="diverged")
    assert run_accuracy(div, "val", "zero") == 0.0
    assert run_accuracy(div, "val", "last") == 0.6
    early = rec([], status="diverged")  # diverged in the first epoch: nothing recorded
    assert run_accuracy(early, "val", "last") == 0.0
    assert run_accuracy(rec([0.3, 0.7])) == 0.7
    assert run_accuracy(rec([0.3], status="failed")) is None
    with pytest.raises(SgdlabError, match="diverged"):
        run_accuracy(div, "val", "sometimes")


def test_diverged_runs_count_and_penalise_their_lr():
    records = [rec([0.95], lr=1.0, seed=0), rec([0.9], lr=1.0, seed=1, status="diverged"),
               rec([0.8], lr=0.1, seed=0), rec([0.8], lr=0.1, seed=1)]
    s = {c.lr: c for c in summarize_cells(records)}
    assert s[1.0].n_diverged == 1 and s[1.0].n == 2
    assert s[1.0].val.mean == pytest.approx(0.475)  # 0.95 and 0
    assert select(s.values())[0].lr == 0.1
    # Counting the diverged run's last finite epoch instead makes lr 1 win (0.925 > 0.8).
    assert select(summarize_cells(records, diverged="last"))[0].lr == 1.0


def test_failed_runs_are_left_out_but_counted():
    records = [rec([0.6], lr=0.1, seed=0), rec([0.99], lr=0.1, seed=1, status="failed"),
               rec([0.2], lr=1.0, seed=0, status="failed"), rec([0.2], lr=1.0, seed=1, status="failed")]
    s = {c.lr: c for c in summarize_cells(records)}
    assert s[0.1].n_failed == 1 and s[0.1].n == 1 and s[0.1].val.mean == 0.6
    assert s[1.0].val.n == 0
    [sel] = select(s.values())
    assert sel.lr == 0.1  # an lr whose runs all failed cannot be selected


def test_cell_with_only_failed_runs_has_no_selection():
    assert select_records([rec([0.5], status="failed")]) == []


# --------------------------------------------------------------------------- grid rows, curves, best run


def test_grid_rows_one_per_cell_and_lr_with_one_selected():
    records = [rec([0.9], lr=lr, seed=s, init=i) for lr in (1.0, 0.1) for s in (0, 1) for i in ("xavier", "gaussian")]
    records.append(rec([0.95], lr=0.1, seed=2, init="xavier"))
    summaries = summarize_cells(records)
    rows = grid_rows(summaries)
    assert len(rows) == 4 and all(tuple(r) == GRID_COLUMNS for r in rows)
    for init in ("xavier", "gaussian"):
        assert sum(r["selected"] for r in rows if r["init"] == init) == 1
    x01 = next(r for r in rows if r["init"] == "xavier" and r["lr"] == 0.1)
    assert x01["n_runs"] == 3 and x01["val_mean"] == pytest.approx((0.9 + 0.9 + 0.95) / 3)
    assert x01["selected"]


def test_curve_pads_diverged_runs_and_averages_the_alive_ones():
    records = [rec([0.2, 0.4, 0.6], seed=0), rec([0.4, 0.8], seed=1, status="diverged")]
    cv = curve(records, records[0].cell, 0.1)
    assert cv.values.shape == (2, 5)  # config.epochs = 5
    assert cv.n_diverged == 1
    np.testing.assert_allclose(cv.mean[:3], [0.3, 0.6, 0.6])
    np.testing.assert_allclose(cv.low[:2], [0.2, 0.4])
    np.testing.assert_allclose(cv.high[:2], [0.4, 0.8])
    assert np.isnan(cv.mean[3:]).all()


def test_representative_run_is_the_median_seed():
    records = [rec([v], seed=s) for s, v in enumerate([0.9, 0.1, 0.5, 0.7, 0.3])]
    [sel] = select_records(records)
    assert representative_run(records, sel).config.seed == 2  # 0.5 is the median
    [sel4] = select_records(records[:4])
    assert representative_run(records[:4], sel4).config.seed == 2  # lower middle of 0.1 0.5 0.7 0.9


def test_cell_of_record_uses_actual_output():
    r = rec([0.5], activation="tanh", output="sigmoid", mode="corrected")
    assert r.cell == Cell("corrected", "ce", "tanh", "sigmoid", "xavier")


def test_confusion_matrix_counts():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    with pytest.raises(SgdlabError, match="predictions"):
        confusion_matrix([0, 1], [0], 2)
