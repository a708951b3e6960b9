"""A small study end to end: store rows, the report hook, --jobs invariance, --out checks,
failed runs, the store API and the Python API."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from sgdlab.cli import main
from sgdlab.errors import SgdlabError
from sgdlab import run_study
from sgdlab.study import Store, open_study
from sgdlab.study.spec import parse_spec
from _helpers import comparable

# 2 cells x 2 lrs x 2 seeds, 3 epochs = 8 runs in 4 groups (activation x seed)
SMALL = """\
name = "small"
epochs = 3
seeds = 2
lr = [0.1, 1.0]
init = "xavier"
cost = "ce"

[[grid]]
mode = "corrected"
activation = ["sigmoid", "tanh"]
output = "sigmoid"
"""


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """The small study via the CLI in one process, report included."""
    d = tmp_path_factory.mktemp("small")
    spec = d / "small.toml"
    spec.write_text(SMALL)
    out = d / "out"
    rc = main(["study", str(spec), "--out", str(out), "--jobs", "1", "--quiet"])
    return spec, out, rc


def test_small_study_stores_every_run(small_study, capsys):
    spec, out, rc = small_study
    assert rc == 0
    with Store(out / "results.sqlite") as st:
        records = st.records()
        s = st.spec()
        assert st.count() == 8 and st.count("failed") == 0
    for k in ("name", "dataset", "label", "split", "split_seed", "hidden", "epochs", "batch_size", "dtype",
              "seeds", "grid", "modes"):
        assert k in s
    assert s["name"] == "small" and s["seeds"] == [0, 1] and len(s["split"]) == 3
    assert len(records) == 8 and len({r.key for r in records}) == 8
    # expansion order: activation, then lr, then seed innermost
    assert [(r.config.activation, r.config.lr, r.config.seed) for r in records][:4] == \
        [("sigmoid", 0.1, 0), ("sigmoid", 0.1, 1), ("sigmoid", 1.0, 0), ("sigmoid", 1.0, 1)]
    cells = {(r.config.activation, r.config.output_activation, r.config.cost, r.config.init) for r in records}
    assert cells == {("sigmoid", "sigmoid", "ce", "xavier"), ("tanh", "sigmoid", "ce", "xavier")}
    for r in records:
        assert r.status in ("done", "chance") and r.mode == "corrected"
        assert r.history.epochs == 3 and len(r.history.val_acc) == 3
        assert r.final["val_acc"] == r.history.val_acc[-1]
        assert 0 <= r.final["val_acc"] <= 1
        assert len(r.test_predictions) == 359 and set(r.test_predictions) <= set(range(10))
        assert r.engine in ("single", "batched")
    assert max(r.final["val_acc"] for r in records) > 0.6  # 3 epochs of a sane network learn something
    # the test predictions are the final network's: their accuracy is the stored test accuracy
    from sgdlab.data import load_dataset

    y = load_dataset().y_test
    for r in records:
        acc = sum(int(p == t) for p, t in zip(r.test_predictions, y)) / len(y)
        assert acc == pytest.approx(r.final["test_acc"], abs=1e-12)


def test_store_is_plain_sqlite_with_queryable_columns(small_study):
    _, out, _ = small_study
    con = sqlite3.connect(out / "results.sqlite")
    rows = con.execute("SELECT activation, lr, seed, status, val_acc, history FROM runs ORDER BY idx").fetchall()
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert len(rows) == 8 and {r[0] for r in rows} == {"sigmoid", "tanh"}
    assert all(len(json.loads(r[5])["val_acc"]) == 3 for r in rows)
    assert not (out / "results.sqlite-wal").exists()  # a closed store is one self-contained file


def test_report_hook_renders_tables_figures_and_html(small_study):
    _, out, _ = small_study
    html = out / "report.html"
    assert html.is_file() and html.stat().st_size > 0
    tables = list((out / "tables").iterdir())
    figures = list((out / "figures").iterdir())
    assert tables and figures
    assert all(p.stat().st_size > 0 for p in tables + figures)


def test_api_runs_then_renders_through_the_workflow(small_study, tmp_path, monkeypatch):
    import shutil

    import sgdlab.report
    from sgdlab import workflow

    _, out, _ = small_study
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(out / "results.sqlite", copy / "results.sqlite")
    res = run_study(SMALL, copy, resume=True, jobs=1, progress=False, report=True)  # nothing to train
    assert len(res) == 8 and (copy / "report.html").is_file()

    def broken(*a, **k):
        raise RuntimeError("a figure failed")

    monkeypatch.setattr(sgdlab.report, "build", broken)
    with pytest.raises(RuntimeError) as info:
        workflow.run_and_render(parse_spec(SMALL), copy, resume=True, jobs=1, progress=False)
    assert any("results are stored; retry with: sgdlab report" in n for n in info.value.__notes__)
    assert open_study(copy).records and len(open_study(copy)) == 8


def test_jobs_1_and_2_give_identical_stores(small_study, tmp_path):
    spec, out1, _ = small_study
    out2 = tmp_path / "j2"
    assert main(["study", str(spec), "--out", str(out2), "--jobs", "2", "--quiet", "--no-report"]) == 0
    with Store(out1) as a, Store(out2) as b:
        ra, rb = a.records(), b.records()
    assert comparable(ra) == comparable(rb)
    assert [r.key for r in ra] == [r.key for r in rb]


def test_out_holding_this_or_another_study_is_refused(small_study, tmp_path, capsys):
    spec, out, _ = small_study
    capsys.readouterr()
    assert main(["study", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "already holds this study (8 runs stored)" in err and "--resume" in err and "--force" in err
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace("epochs = 3", "epochs = 2"))
    assert main(["study", str(other), "--out", str(out), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "epochs = 3, this spec 2; changing epochs changes what every stored run means" in err
    assert "--force" in err and "\n" not in err.strip()
    with Store(out) as st:
        assert st.count() == 8  # untouched


def test_resume_of_a_finished_study_runs_nothing(small_study, capsys):
    spec, out, _ = small_study
    with Store(out) as st:
        before = comparable(st.records())
    assert main(["study", str(spec), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 0
    assert "nothing left to run; 8 were already stored" in capsys.readouterr().out
    with Store(out) as st:
        assert comparable(st.records()) == before


def test_force_replaces_another_study(tmp_path, capsys):
    spec = tmp_path / "a.toml"
    spec.write_text(SMALL.replace("seeds = 2", "seeds = 1").replace("lr = [0.1, 1.0]", "lr = 1.0"))
    out = tmp_path / "out"
    assert main(["study", str(spec), "--out", str(out), "--quiet", "--no-report", "--jobs", "1"]) == 0
    other = tmp_path / "b.toml"
    other.write_text(SMALL.replace("seeds = 2", "seeds = [5]").replace("lr = [0.1, 1.0]", "lr = 0.5")
                     .replace('"tanh"]', '"relu"]'))
    assert main(["study", str(other), "--out", str(out), "--quiet", "--no-report", "--jobs", "1", "--force"]) == 0
    res = open_study(out)
    assert res.spec["name"] == "small" and res.spec["seeds"] == [5]
    assert {(r.config.activation, r.config.lr, r.config.seed) for r in res.records} == \
        {("sigmoid", 0.5, 5), ("relu", 0.5, 5)}


def test_a_run_that_raises_is_recorded_failed_and_resume_retries_it(tmp_path, monkeypatch):
    import sys

    train_pkg = sys.modules["sgdlab.engine"]  # (the name sgdlab.train is the function)

    real_train = train_pkg.train

    def flaky(config, data=None, **kw):
        if config.lr == 1.0 and config.seed == 0:
            raise FloatingPointError("boom")
        return real_train(config, data, **kw)

    monkeypatch.setattr(train_pkg, "train", flaky)
    out = tmp_path / "out"
    res = run_study(SMALL, out, jobs=1, engine="single", progress=False)
    failed = [r for r in res.records if r.status == "failed"]
    assert len(res.records) == 8 and len(failed) == 2  # lr 1 seed 0, for each activation
    assert all(r.error.startswith("FloatingPointError: boom") for r in failed)
    assert all(math.isnan(r.final["val_acc"]) and r.test_predictions is None for r in failed)
    row = [x for x in res.rows() if x["status"] == "failed"][0]
    assert row["lr"] == 1.0 and row["seed"] == 0 and "boom" in row["error"]

    monkeypatch.setattr(train_pkg, "train", real_train)
    done_before = {r.key: r for r in res.records if r.status in ("done", "chance")}
    res2 = run_study(SMALL, out, jobs=1, resume=True, engine="single", progress=False)
    assert all(r.status in ("done", "chance") for r in res2.records) and len(res2.records) == 8
    for r in res2.records:  # finished runs were kept, not retrained
        if r.key in done_before:
            assert r.history.seconds == done_before[r.key].history.seconds


def test_python_api_rows_and_dataframe(small_study):
    _, out, _ = small_study
    res = open_study(out)
    assert len(res) == 8 and res.spec["name"] == "small"
    rows = res.rows()
    assert set(rows[0]) >= {"mode", "cost", "activation", "output", "init", "lr", "seed", "status", "val_acc",
                            "test_acc", "train_loss"}
    df = res.to_dataframe()
    assert len(df) == 8
    means = df.groupby(["activation", "lr"]).val_acc.mean()
    assert len(means) == 4
    assert "8 runs" in repr(res)


def test_python_api_to_dataframe_without_pandas(small_study, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *a, **kw):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(SgdlabError, match=r"pip install \"sgdlab\[pandas\]\""):
        open_study(small_study[1]).to_dataframe()


def test_store_open_errors(tmp_path):
    with pytest.raises(SgdlabError, match="no study store"):
        Store(tmp_path / "results.sqlite")
    assert not (tmp_path / "results.sqlite").exists()  # opening read-only created nothing
    junk = tmp_path / "junk" / "results.sqlite"
    junk.parent.mkdir()
    junk.write_text("not a database")
    with pytest.raises(SgdlabError, match="not a readable sgdlab study store|not an sgdlab study store"):
        Store(junk)
    with pytest.raises(SgdlabError, match="another --out|--force"):
        run_study(SMALL, junk.parent, jobs=1, progress=False)


def test_read_only_store_refuses_writes(small_study):
    with Store(small_study[1]) as st:
        with pytest.raises(SgdlabError, match="read-only"):
            st.write_schedule_group([], "g", {})


def test_bad_api_arguments(tmp_path):
    with pytest.raises(SgdlabError, match="jobs"):
        run_study(SMALL, tmp_path / "o", jobs=0, progress=False)
    with pytest.raises(SgdlabError, match="engine"):
        run_study(SMALL, tmp_path / "o", engine="gpu", progress=False)
    with pytest.raises(SgdlabError, match="--scheduler"):
        run_study(SMALL, tmp_path / "o", backend="dask", progress=False)
    assert not (tmp_path / "o").exists()


def test_spec_from_dict_and_text_in_the_api():
    import tomllib

    s1 = parse_spec(SMALL)
    from sgdlab.study.api import as_spec

    assert as_spec(tomllib.loads(SMALL)).digest() == s1.digest()
    assert as_spec(SMALL).digest() == s1.digest()


def test_same_computation_in_two_modes_is_trained_once(tmp_path, monkeypatch):
    import sys

    train_pkg = sys.modules["sgdlab.engine"]
    real_train, calls = train_pkg.train, []

    def counting(config, data=None, **kw):
        calls.append(config)
        return real_train(config, data, **kw)

    monkeypatch.setattr(train_pkg, "train", counting)
    spec = """epochs = 2\nlr = 1.0\ninit = "xavier"\ncost = "ce"\nactivation = ["sigmoid", "tanh"]
[[grid]]\nmode = "paper"\noutput = "same"\n[[grid]]\nmode = "corrected"\noutput = "sigmoid"\n"""
    res = run_study(spec, tmp_path / "o", jobs=1, engine="single", progress=False)
    # sigmoid/"same" == sigmoid/"sigmoid": 3 trainings for the grid, then one rounding-sensitivity
    # run per cell (4 cells, see sgdlab.study.sensitivity)
    assert len(res.records) == 4 and len(calls) == 3 + 4
    by = {(r.mode, r.config.activation): r for r in res.records}
    a, b = by[("paper", "sigmoid")], by[("corrected", "sigmoid")]
    assert a.key != b.key and a.config.output == "same" and b.config.output == "sigmoid"
    assert a.history.to_dict() == b.history.to_dict() and a.test_predictions == b.test_predictions
    assert by[("paper", "tanh")].history.val_acc != by[("corrected", "tanh")].history.val_acc


# --------------------------------------------------------------------------- studies that grow


def _keys_and_finished(out):
    with sqlite3.connect(out / "results.sqlite") as con:
        return dict(con.execute("SELECT key, finished || '|' || history FROM runs"))


def test_growing_by_a_seed_and_an_lr_trains_only_the_new_runs(small_study, tmp_path, capsys):
    """One more seed and one more lr on --resume: exactly the new runs are trained, the
    stored ones keep their keys and rows, the store describes the grown spec, the report
    covers it; without --resume it is refused with a hint."""
    import shutil

    spec, out0, _ = small_study
    out = tmp_path / "grow"
    shutil.copytree(out0, out)
    before = _keys_and_finished(out)
    grown = tmp_path / "grown.toml"
    grown.write_text(SMALL.replace("seeds = 2", "seeds = 3"))
    capsys.readouterr()
    assert main(["study", str(grown), "--out", str(out), "--quiet", "--no-report"]) == 2
    assert "add --resume to grow it" in capsys.readouterr().err
    assert main(["study", str(grown), "--out", str(out), "--jobs", "1", "--resume", "--quiet", "--no-report"]) == 0
    assert "12/12 runs" in capsys.readouterr().out
    after = _keys_and_finished(out)
    assert len(after) == 12 and all(after[k] == v for k, v in before.items())  # old rows untouched
    with Store(out) as st:
        new = [r for r in st.records() if r.key not in before]
        assert {r.config.seed for r in new} == {2} and len(new) == 4
        assert st.spec()["seeds"] == [0, 1, 2]
    grown.write_text(SMALL.replace("seeds = 2", "seeds = 3").replace("lr = [0.1, 1.0]", "lr = [0.1, 1.0, 0.01]"))
    assert main(["study", str(grown), "--out", str(out), "--jobs", "1", "--resume", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "6 trained now" in printed and "12 were already stored" in printed and "Answers:" in printed
    rows = list(csv_rows(out / "tables" / "grid.csv"))
    assert len(rows) == 6 and {float(r["lr"]) for r in rows} == {0.1, 1.0, 0.01}


def test_growing_cannot_change_meaning_or_shrink(small_study, tmp_path, capsys):
    spec, out, _ = small_study
    for text, key in (("batch_size = 32\n" + SMALL, "batch_size"), ('dataset = "iris"\n' + SMALL, "dataset")):
        other = tmp_path / "other.toml"
        other.write_text(text)
        capsys.readouterr()
        assert main(["study", str(other), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 2
        err = capsys.readouterr().err.strip()
        assert f"changing {key} changes what every stored run means" in err and "\n" not in err
    smaller = tmp_path / "smaller.toml"
    smaller.write_text(SMALL.replace("seeds = 2", "seeds = [0]"))
    assert main(["study", str(smaller), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 2
    assert "drops 4 stored runs" in capsys.readouterr().err
    with Store(out) as st:
        assert st.count() == 8


def csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_summary_counts_runs_at_chance_apart_from_done(tmp_path, capsys):
    """The summary line counts runs per status as the store's records give them: lr 1e-6
    learns nothing in 2 epochs, so those runs are "chance", not "done"."""
    spec = tmp_path / "chance.toml"
    spec.write_text('name = "chance"\nepochs = 2\nseeds = 2\nlr = [0.5, 1e-6]\ninit = "xavier"\ncost = "ce"\n'
                    'activation = "sigmoid"\noutput = "sigmoid"\n')
    assert main(["study", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1", "--quiet", "--no-report"]) == 0
    summary = [line for line in capsys.readouterr().out.splitlines() if line.startswith("study chance:")]
    with Store(tmp_path / "out") as st:
        statuses = [r.status for r in st.records()]
    n_done, n_chance = statuses.count("done"), statuses.count("chance")
    assert n_done and n_chance and n_done + n_chance == 4
    assert len(summary) == 1 and "4/4 runs in" in summary[0] and f"({n_done} done, {n_chance} at chance)" in summary[0]
