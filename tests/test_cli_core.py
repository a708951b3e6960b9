"""The core CLI: sgdlab train / predict / gradcheck. In-process through sgdlab.cli.main
(fast), plus two runs of the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sgdlab import load
from sgdlab.cli import main


def cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err):
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err and "error" in err


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    header = "a,b,c,label\n"
    good = d / "good.csv"
    good.write_text(header + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X, y)))
    nan = d / "nan.csv"
    nan.write_text(header + "".join(f"{r[0]},{'nan' if i == 3 else r[1]},{r[2]},{t}\n"
                                    for i, (r, t) in enumerate(zip(X, y))))
    text = d / "text.csv"
    text.write_text(header + "".join(f"{r[0]},{r[1]},{'oops' if i == 5 else r[2]},{t}\n"
                                     for i, (r, t) in enumerate(zip(X, y))))
    return {"good": good, "nan": nan, "text": text}


BAD_TRAIN = {
    "unknown activation": ["--activation", "softplus"],
    "unknown cost": ["--cost", "hinge"],
    "lr zero": ["--lr", "0"],
    "lr negative": ["--lr", "-0.5"],
    "lr not a number": ["--lr", "fast"],
    "batch size zero": ["--batch-size", "0"],
    "epochs zero": ["--epochs", "0"],
    "layers not integers": ["--layers", "32,x"],
    "layers zero": ["--layers", "32,0"],
    "layers negative": ["--layers=-3"],
    "layers fractional": ["--layers", "2.5"],
    "cce without softmax": ["--cost", "cce"],
    "cce with tanh output": ["--cost", "cce", "--output", "tanh"],
    "missing dataset file": ["--dataset", "no/such/file.csv"],
    "unknown dataset": ["--dataset", "mnist"],
    "momentum >= 1": ["--momentum", "1.5"],
    "nesterov without momentum": ["--nesterov"],
    "bad split": ["--split", "0.5,0.5,0.5"],
}


@pytest.mark.parametrize("argv", list(BAD_TRAIN.values()), ids=list(BAD_TRAIN))
def test_train_bad_input_is_one_line_exit_2(capsys, argv):
    code, out, err = cli(capsys, "train", "--epochs", "1", *argv)
    assert_one_line_error(code, err)
    assert out == ""


@pytest.mark.parametrize("kind,extra,match", [("nan", [], "'b'"), ("text", [], "'c'"),
                                              ("good", ["--label", "species"], "species")])
def test_train_bad_csv_is_one_line_exit_2(capsys, csv_files, kind, extra, match):
    code, out, err = cli(capsys, "train", "--dataset", str(csv_files[kind]), "--epochs", "1", *extra)
    assert_one_line_error(code, err)
    assert match in err


def test_error_messages_name_what_is_valid(capsys):
    _, _, err = cli(capsys, "train", "--activation", "softplus")
    assert "softplus" in err and "sigmoid" in err
    _, _, err = cli(capsys, "train", "--cost", "cce")
    assert "softmax" in err


def test_train_json_parses(capsys):
    code, out, err = cli(capsys, "train", "--epochs", "2", "--layers", "8", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["final"]["status"] == "done" and doc["final"]["epochs"] == 2
    assert len(doc["history"]["val_acc"]) == 2
    assert doc["config"]["hidden"] == [8] and doc["saved"] is None
    assert 0 <= doc["final"]["val_acc"] <= 1


def test_train_summary_table(capsys):
    code, out, err = cli(capsys, "train", "--epochs", "1", "--layers", "8")
    assert code == 0, err
    assert "val (360)" in out and "train (1078)" in out and "status: done" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_train_csv_with_named_label(capsys, csv_files):
    code, out, err = cli(capsys, "train", "--dataset", str(csv_files["good"]), "--label", "label",
                         "--layers", "4", "--epochs", "3", "--json")
    assert code == 0, err
    assert json.loads(out)["final"]["status"] in ("done", "chance")


def test_save_load_predict_gives_the_same_predictions(capsys, tmp_path, digits):
    model = tmp_path / "m.npz"
    code, out, err = cli(capsys, "train", "--epochs", "3", "--layers", "16", "--save", str(model), "--json")
    assert code == 0, err
    assert json.loads(out)["saved"] == str(model)
    net, meta = load(model)
    X = digits.X_test[:25]
    raw = X * 16  # predict takes raw 0-16 pixels: the model file carries its divide:16
    features = tmp_path / "x.csv"
    features.write_text(",".join(f"p{i}" for i in range(64)) + "\n"
                        + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in raw))
    code, out, err = cli(capsys, "predict", str(model), "--input", str(features))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction"
    assert [int(v) for v in lines[1:]] == net.predict(X).tolist()
    # the same from an NPZ, with probabilities
    np.savez(tmp_path / "x.npz", X=raw)
    code, out, err = cli(capsys, "predict", str(model), "--input", str(tmp_path / "x.npz"), "--proba")
    assert code == 0, err
    rows = [line.split(",") for line in out.splitlines()[1:]]
    assert [int(r[0]) for r in rows] == net.predict(X).tolist()
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows], net.predict_proba(X), rtol=1e-5)


def test_predict_bad_inputs(capsys, tmp_path, csv_files):
    assert_one_line_error(*cli(capsys, "predict", str(tmp_path / "none.npz"), "--input", "x.csv")[::2])
    model = tmp_path / "m.npz"
    assert cli(capsys, "train", "--epochs", "1", "--layers", "4", "--save", str(model), "--json")[0] == 0
    # 3 feature columns (+ label) for a 64-input model
    assert_one_line_error(*cli(capsys, "predict", str(model), "--input", str(csv_files["good"]))[::2])
    assert_one_line_error(*cli(capsys, "predict", str(model), "--input", str(tmp_path / "nope.csv"))[::2])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 definitely not a model")
    assert_one_line_error(*cli(capsys, "predict", str(junk), "--input", str(csv_files["good"]))[::2])


def test_unwritable_save_path_fails_before_training(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where --save wants a directory
    code, out, err = cli(capsys, "train", "--epochs", "1", "--save", str(blocker / "sub" / "m.npz"))
    assert_one_line_error(code, err)
    assert "--save: cannot create" in err and out == ""  # refused by the check made before training


def test_gradcheck_command(capsys):
    code, out, err = cli(capsys, "gradcheck", "--layers", "5", "--samples", "4", "--activation", "tanh",
                         "--output", "softmax", "--cost", "cce")
    assert code == 0, out + err
    assert "PASS" in out and "relative error" in out and "W0" in out
    assert_one_line_error(*cli(capsys, "gradcheck", "--cost", "cce")[::2])
    assert_one_line_error(*cli(capsys, "gradcheck", "--eps", "0")[::2])
    # a tolerance no finite-difference check can meet: exit 1, the verdict on stdout
    code, out, _ = cli(capsys, "gradcheck", "--layers", "3", "--samples", "2", "--tol", "1e-300")
    assert code == 1 and "FAIL" in out


# -- the real console script -----------------------------------------------------------------
def _console_script():
    exe = Path(sys.executable).parent / ("sgdlab.exe" if os.name == "nt" else "sgdlab")
    if not exe.exists():
        pytest.skip(f"the sgdlab console script is not installed next to {sys.executable}")
    return str(exe)


def test_console_script_trains_and_prints_json():
    r = subprocess.run([_console_script(), "train", "--epochs", "1", "--layers", "8", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["final"]["epochs"] == 1


def test_console_script_bad_input():
    r = subprocess.run([_console_script(), "train", "--lr", "0"], capture_output=True, text=True, timeout=120)
    assert_one_line_error(r.returncode, r.stderr)
    assert r.stdout == ""
