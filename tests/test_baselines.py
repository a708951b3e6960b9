"""Baselines: every installed framework trains both models; shared-weight rows follow sgdlab's
trajectory; a missing framework is a row, not a crash; the command rejects bad input."""

from __future__ import annotations

import builtins
import csv
import json
import math

import numpy as np
import pytest

from sgdlab.baselines import common, run_compare, write_compare
from sgdlab.baselines.compare import aggregate, runner, write_tables_and_figures
from sgdlab.cli import main
from sgdlab.config import RunConfig
from sgdlab.data import Dataset
from sgdlab.engine import train


@pytest.fixture(scope="module")
def small(digits):
    """The 1078 training rows (to rise clearly above chance in 3 epochs), 120 validation, 120 test."""
    d = digits
    return Dataset("digits", d.X_train, d.y_train, d.X_val[:120], d.y_val[:120],
                   d.X_test[:120], d.y_test[:120], d.classes)


@pytest.fixture(scope="module")
def tiny(digits):
    d = digits
    return Dataset("digits", d.X_train[:200], d.y_train[:200], d.X_val[:60], d.y_val[:60],
                   d.X_test[:60], d.y_test[:60], d.classes)


def _require(framework):
    if framework == "torch":
        pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install 'sgdlab[torch]'")
    if framework == "tensorflow":
        pytest.importorskip("tensorflow", reason="TensorFlow is an optional extra: pip install 'sgdlab[tensorflow]'")


@pytest.mark.parametrize("framework", ["sgdlab", "sklearn", "torch", "tensorflow"])
def test_each_framework_trains_both_models(framework, small):
    _require(framework)
    epochs = 3
    results = run_compare(small, frameworks=[framework], seeds=[0], epochs=epochs, progress=None,
                          sklearn_defaults=False)
    assert set(results) == {"paper", "corrected"}
    for name, mc in results.items():
        assert mc.runs, name
        for r in mc.runs:
            assert r.status == "ok", (name, r.variant, r.message)
            assert r.version
            assert 0.0 <= r.test_acc <= 1.0 and all(0.0 <= a <= 1.0 for a in r.val_acc)
            assert r.seconds > 0 and r.samples > 0 and r.samples_per_second > 0
            if r.epochs_run is None:  # per-epoch rows: one validation accuracy per epoch
                assert len(r.val_acc) == epochs and r.samples == epochs * len(small.y_train)
            if r.init == "sgdlab":
                # sgdlab's start and batches: clearly above chance (0.1) after 3 epochs,
                # and on sgdlab's trajectory up to float rounding.
                assert r.val_acc[-1] > 0.3, (name, r.variant, r.val_acc)
                assert r.deviation is not None and r.deviation < (1e-8 if r.dtype == "float64" else 1e-3)
        rows = mc.rows()
        assert {row.framework for row in rows} == {framework}
        assert all(row.status == "ok" for row in rows)


def test_sklearn_default_settings_rows(tiny):
    """MLPClassifier() as is, and with the paper's layers: fitted to the end, on the paper's table only."""
    results = run_compare(tiny, frameworks=["sklearn"], seeds=[0], epochs=2, progress=None)
    paper = {r.variant: r for r in results["paper"].runs}
    assert {"defaults", "defaults-32-16"} <= set(paper)
    assert not any(r.variant.startswith("defaults") for r in results["corrected"].runs)
    for key in ("defaults", "defaults-32-16"):
        r = paper[key]
        assert r.status == "ok" and r.epochs_run >= 1 and r.samples == r.epochs_run * len(tiny.y_train)
        assert 0.0 <= r.val_final <= 1.0 and 0.0 <= r.test_acc <= 1.0
    assert paper["defaults"].val_final > 0.5  # relu + adam learns these 200 digits
    row = next(r for r in results["paper"].rows() if r.variant == "defaults")
    assert row.curve == []  # one number, not a per-epoch curve


@pytest.mark.parametrize("framework", ["torch", "sklearn", "tensorflow"])
@pytest.mark.parametrize("model", ["paper", "corrected"])
def test_float64_trajectory_equals_sgdlab(framework, model, digits):
    """Started from sgdlab's weights and fed its minibatches, float64 lands on sgdlab's
    parameters within 1e-8 after each of 3 epochs on the full digits training set."""
    _require(framework)
    cfg = common.models(epochs=3)[model].config
    ref = runner("sgdlab").reference(cfg, digits, seed=1, dtype="float64")
    # The reference is sgdlab.train itself, not a copy of it.
    direct = train(RunConfig.from_dict({**cfg.to_dict(), "seed": 1}), digits).network
    np.testing.assert_array_equal(np.concatenate([p.ravel() for p in direct.params]),
                                  np.concatenate([p.ravel() for p in ref.params[-1]]))
    variant = next(v for v in runner(framework).VARIANTS if v.dtype == "float64" and v.init == "sgdlab")
    run = runner(framework).run(variant, cfg, digits, 1, ref)
    assert len(run.params) == 3
    per_epoch = [max(float(np.max(np.abs(a - b))) for a, b in zip(mine, theirs))
                 for mine, theirs in zip(run.params, ref.params)]
    assert max(per_epoch) < 1e-8, per_epoch
    # ...and the parameters moved: the comparison is not between two untouched starts.
    start = [p for wb in zip(ref.weights, ref.biases) for p in wb]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(run.params[-1], start)) > 0.1
    assert run.val_acc == pytest.approx(ref.run.val_acc, abs=1e-12)


def _hide(monkeypatch, *names):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_framework_is_a_row_not_a_crash(monkeypatch, small, tmp_path):
    _hide(monkeypatch, "torch", "tensorflow")
    results = run_compare(small, frameworks=["sgdlab", "torch", "tensorflow"], seeds=[0], epochs=1,
                          progress=None)
    for mc in results.values():
        rows = {row.framework: row for row in mc.rows()}
        assert rows["sgdlab"].status == "ok"
        assert rows["torch"].status == "not installed"
        assert 'pip install "sgdlab[torch]"' in rows["torch"].message
        assert 'pip install "sgdlab[tensorflow]"' in rows["tensorflow"].message
    write_compare(results, tmp_path)
    text = (tmp_path / "compare" / "paper.md").read_text()
    assert 'not installed: pip install "sgdlab[torch]"' in text


def test_cli_compare_with_a_hidden_framework(monkeypatch, tmp_path, capsys):
    _hide(monkeypatch, "torch")
    code = main(["compare", "--out", str(tmp_path), "--seeds", "1", "--epochs", "1",
                 "--frameworks", "sgdlab,torch", "--models", "corrected", "--split", "0.3,0.2,0.5"])
    assert code == 0
    captured = capsys.readouterr()
    assert "compare: torch: not installed" in captured.err
    assert "compare: corrected seed 0: sgdlab float64: val" in captured.err
    folder = tmp_path / "compare"
    assert {p.name for p in folder.iterdir()} >= {"runs.json", "corrected.md", "corrected.csv",
                                                  "corrected_val_acc.png", "corrected_val_acc.svg"}
    rows = list(csv.DictReader(open(folder / "corrected.csv")))
    by = {(r["framework"], r["variant"]): r for r in rows}
    assert by[("torch", "-")]["status"] == "not installed"
    assert 0 <= float(by[("sgdlab", "float64")]["val_acc_mean"]) <= 1
    # Rendering reads runs.json and never trains: the same tables come back.
    before = (folder / "corrected.md").read_text()
    (folder / "corrected.md").unlink()
    write_tables_and_figures(folder)
    assert (folder / "corrected.md").read_text() == before


def test_cli_compare_into_a_study_rerenders_its_report(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\nepochs = 1\nseeds = 1\nlr = 1.0\ninit = "xavier"\ncost = "ce"\n'
                    'activation = "sigmoid"\noutput = "sigmoid"\n')
    study = tmp_path / "study"
    assert main(["study", str(spec), "--out", str(study), "--jobs", "1", "--no-report"]) == 0
    assert not (study / "report.md").exists()
    assert main(["compare", "--out", str(study), "--seeds", "1", "--epochs", "1", "--frameworks", "sgdlab",
                 "--models", "paper", "--no-sklearn-defaults", "--quiet"]) == 0
    assert "report: " in capsys.readouterr().out
    assert "paper_val_acc" in (study / "report.md").read_text()  # the frameworks figure is in the report


@pytest.mark.parametrize("argv, needle", [
    (["--frameworks", "sgdlab,caffe"], "unknown framework 'caffe'"),
    (["--frameworks", ","], "give at least one"),
    (["--models", "papers"], "unknown model 'papers'"),
])
def test_cli_bad_names_exit_2(argv, needle, capsys, tmp_path):
    assert main(["compare", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "compare").exists()


def test_cli_unwritable_out_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["compare", "--out", str(blocker), "--frameworks", "sgdlab", "--seeds", "1"]) == 2
    captured = capsys.readouterr()
    assert "--out: cannot create" in captured.err and "seed 0" not in captured.err  # nothing trained


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--seeds", "two"], ["--epochs", "-3"], ["--epochs", "1.5"]])
def test_cli_bad_numbers_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "positive integer" in err


def test_aggregate_mean_and_sample_std():
    v = common.Variant("torch", "float64", "float64", "sgdlab")
    runs = [common.SeedRun("torch", "float64", s, "float64", "sgdlab", "x", val_acc=[0.1, acc], test_acc=t,
                           seconds=2.0, samples=100, deviation=d, final_deviation=d)
            for s, acc, t, d in ((0, 0.8, 0.7, 1e-15), (1, 0.9, 0.8, 3e-15), (2, 1.0, 0.9, 2e-15))]
    (row,) = aggregate(runs, [v], {})
    assert row.val_mean == pytest.approx(0.9) and row.val_std == pytest.approx(0.1)
    assert row.test_mean == pytest.approx(0.8) and row.test_std == pytest.approx(0.1)
    assert row.samples_per_second == pytest.approx(50.0) and row.deviation == 3e-15
    assert row.curve == pytest.approx([0.1, 0.9])
    # JSON round trip keeps what the tables need.
    back = [common.SeedRun.from_dict(json.loads(json.dumps(r.to_dict()))) for r in runs]
    (row2,) = aggregate(back, [v], {})
    assert row2.val_mean == row.val_mean and math.isclose(row2.deviation, row.deviation)
