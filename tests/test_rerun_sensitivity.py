"""sgdlab rerun (one stored run, bit for bit, with the engine that produced it) and the
rounding-sensitivity measurement stored at study time."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import numpy as np
import pytest

from sgdlab import load
from sgdlab.study import Store
from sgdlab.study.rerun import find_run, rerun
from sgdlab.study.sensitivity import CRITERION, measure, perturbed, targets

from test_cli_core import assert_one_line_error, cli

# 2 activations x 2 inits x 2 lrs x 2 seeds, 3 epochs: 16 runs, 4 cells; tanh/tanh + mse at lr 1
# with Gaussian weights is chaotic
SPEC = """\
name = "rr"
epochs = 3
seeds = 2
lr = [1.0, 0.1]
cost = "mse"
init = ["gaussian", "xavier"]

[[grid]]
mode = "paper"
activation = ["sigmoid", "tanh"]
"""


def _study(tmp_path_factory, engine):
    d = tmp_path_factory.mktemp(engine)
    (d / "rr.toml").write_text(SPEC)
    rc = __import__("sgdlab.cli").cli.main(["study", str(d / "rr.toml"), "--out", str(d / "out"), "--jobs", "1",
                                            "--quiet", "--no-report", "--engine", engine])
    assert rc == 0
    return d / "out"


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    return _study(tmp_path_factory, "batched")


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _study(tmp_path_factory, "single")


@pytest.mark.parametrize("which", ["batched", "single"])
def test_rerun_reproduces_a_stored_run_bit_for_bit(request, capsys, tmp_path, which):
    out = request.getfixturevalue(which)
    with Store(out) as st:
        records = st.records()
    assert {r.engine for r in records} == {which}
    for r in (records[0], records[-1]):
        model = tmp_path / f"{r.key.split(':')[1]}.npz"
        code, text, err = cli(capsys, "rerun", str(out), r.key.split(":")[1][:8], "--save", str(model))
        assert code == 0, err
        assert "identical:" in text and "differs" not in text
        assert f"{which} engine" in text
        res = rerun(out, r.key)
        assert res.identical and res.new.final["val_acc"] == r.final["val_acc"]
        assert res.new.history.val_loss == r.history.val_loss  # floats compared exactly
        net, meta = load(model)  # the saved model predicts the stored test predictions
        from sgdlab import load_dataset

        d = load_dataset()
        assert net.predict(d.X_test).tolist() == r.test_predictions
        assert meta["preprocess"]["kind"] == "divide:16"


def test_rerun_says_when_the_numbers_differ(capsys, tmp_path, single):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(single, out)
    with Store(out) as st:
        r = st.records()[3]
    con = sqlite3.connect(out / "results.sqlite")
    final = dict(r.final, val_acc=r.final["val_acc"] + 1 / 360)
    with con:
        con.execute("UPDATE runs SET final = ? WHERE key = ?", (json.dumps(final), r.key))
    con.close()
    code, text, err = cli(capsys, "rerun", str(out), r.key)
    assert code == 0, err
    assert "val_acc" in text.split("different:")[1] and "<- differs" in text


def test_rerun_mistakes_are_one_line(capsys, tmp_path, single):
    assert_one_line_error(*cli(capsys, "rerun", str(single), "zzzz")[::2])
    assert_one_line_error(*cli(capsys, "rerun", str(single), "paper:")[::2])  # ambiguous
    code, _, err = cli(capsys, "rerun", str(tmp_path), "paper:")
    assert_one_line_error(code, err)
    assert "not a study directory" in err
    with Store(single) as st:
        records = st.records()
    with pytest.raises(Exception, match="no run ''"):
        find_run(records, "")


def test_sensitivity_is_stored_per_selected_cell_and_not_remeasured(batched):
    with Store(batched) as st:
        records, rows = st.records(), st.sensitivity()
    tg = targets(records)
    assert len(tg) == 4 and set(rows) == {r.key for r in tg}
    for r in tg:
        row = rows[r.key]
        assert row["stored_val_acc"] == r.final["val_acc"] and row["n_val"] == 360
        assert row["sensitive"] == (row["status"] != row["stored_status"]
                                    or abs(row["val_acc"] - row["stored_val_acc"]) * 360 > 1 + 1e-9)
    from sgdlab.study.runner import execute
    from sgdlab.study.spec import load_spec

    logs = []
    execute(load_spec(batched.parent / "rr.toml"), batched, jobs=1, resume=True, progress=True, log=logs.append)
    assert not any("rounding sensitivity" in m for m in logs)  # measured once


def test_the_criterion_marks_a_changed_outcome(single, digits):
    with Store(single) as st:
        r = next(t for t in targets(st.records()) if t.config.activation == "sigmoid")
    same = measure(r)  # a stable cell: the perturbed run ends where the stored one did
    assert same["stored_val_acc"] == r.final["val_acc"] and same["sensitive"] is False

    def stored_at(acc):
        return dataclasses.replace(r, history=dataclasses.replace(r.history, val_acc=[*r.history.val_acc[:-1], acc]))

    assert measure(stored_at(same["val_acc"] + 1 / 360))["sensitive"] is False  # one image: tolerated
    assert measure(stored_at(same["val_acc"] + 2 / 360))["sensitive"] is True
    assert measure(dataclasses.replace(r, status="diverged"))["sensitive"] is True
    p = perturbed(digits)
    assert np.all(p.X_train[digits.X_train > 0] != digits.X_train[digits.X_train > 0])
    np.testing.assert_array_equal(p.X_val, digits.X_val)
    assert "1 + 2^-52" in CRITERION


def test_an_old_store_without_the_table_reads_as_not_measured(tmp_path, single):
    import shutil

    out = tmp_path / "old"
    shutil.copytree(single, out)
    con = sqlite3.connect(out / "results.sqlite")
    with con:
        con.execute("DROP TABLE sensitivity")
    con.close()
    with Store(out) as st:
        assert st.sensitivity() == {}
        assert len(st.records()) == 16


def test_report_lists_every_run_key_that_rerun_takes(capsys, tmp_path, single):
    """The report's tables/runs.csv names every run by the key `sgdlab rerun` takes."""
    import csv
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(single, out)
    assert __import__("sgdlab.cli").cli.main(["report", str(out)]) == 0
    capsys.readouterr()
    with open(out / "tables" / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    with Store(out) as st:
        keys = {r.key for r in st.records()}
    assert {r["key"] for r in rows} == keys
    code, text, err = cli(capsys, "rerun", str(out), rows[0]["key"])
    assert code == 0 and "identical:" in text, err
