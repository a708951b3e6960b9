"""User mistakes found by a systematic audit of the CLI (every subcommand, every file argument,
every numeric flag): each is one line on stderr and exit code 2, never a traceback, a silently
ignored flag, or a result computed from non-finite numbers. In-process through sgdlab.cli.main."""

from __future__ import annotations

import shutil
import sqlite3
import time

import numpy as np
import pytest

from sgdlab import load
from sgdlab.cli import main

from test_cli_core import assert_one_line_error, cli

TRAIN = ("train", "--epochs", "1", "--layers", "3")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    rows = "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X, y))
    (d / "good.csv").write_text("a,b,c,label\n" + rows, encoding="utf-8")
    (d / "bom.csv").write_text("\ufeffa,b,c,label\n" + rows, encoding="utf-8")  # as a spreadsheet saves it
    np.savez(d / "complex.npz", X=X + 1j, y=y)
    np.savez(d / "data.npz", X=X, y=y)
    # a label column with a class per row: scikit-learn's split error lists every class
    (d / "many_classes.csv").write_text("a,label\n" + "".join(f"{i},{i}\n" for i in range(2000)))
    (d / "huge_values.csv").write_text("a,b,c,label\n1e308,1,1,0\n-1e308,1,1,1\n1,1,1,0\n2,1,1,1\n")
    spec = d / "tiny.toml"
    spec.write_text('dataset = "iris"\nhidden = [3]\nepochs = 1\nseeds = 1\ncost = "mse"\nactivation = "sigmoid"\n'
                    'init = "xavier"\nlr = [0.5]\n')
    return d


@pytest.fixture(scope="module")
def study(files, tmp_path_factory):
    """A stored one-run study (iris, 1 epoch) and its run key."""
    out = tmp_path_factory.mktemp("study") / "st"
    assert main(["study", str(files / "tiny.toml"), "--out", str(out), "--jobs", "1", "--quiet", "--no-report"]) == 0
    with sqlite3.connect(out / "results.sqlite") as con:
        key = con.execute("SELECT key FROM runs").fetchone()[0]
    return out, key


# ------------------------------------------------------------------ flags: the arguments alone are wrong

BAD_FLAGS = {
    # a NaN fraction passed the range checks (every comparison with NaN is false)
    "split NaN": [*TRAIN, "--dataset", "iris", "--split", "nan,0.5,0.5"],
    # scikit-learn's random_state is 32-bit: it failed inside the split with sklearn's message
    "split seed above 2^32-1": [*TRAIN, "--dataset", "iris", "--split-seed", "4294967296"],
    # a study store keeps a seed as a 64-bit SQLite INTEGER
    "seed above 2^63-1": [*TRAIN, "--dataset", "iris", "--seed", str(2**63)],
    # an empty path (an unset shell variable) silently meant "do not save" or "the default folder"
    "train --save empty": [*TRAIN, "--dataset", "iris", "--save", ""],
    "study --out empty": ["study", "SPEC", "--out", ""],
    # each with a second bad flag after it, so that a regression fails fast instead of running the paper's study
    "reproduce --out empty": ["reproduce", "--out", "", "--seeds", "0"],
    "compare --out empty": ["compare", "--out", "", "--seeds", "0"],
    "rerun --save empty": ["rerun", "DIR", "RUN", "--save", ""],
    "lab --store empty": ["lab", "--store", "", "--workers", "0"],
    # --label was ignored: a bundled or NPZ dataset has no label column to choose
    "train --label with a bundled dataset": [*TRAIN, "--dataset", "iris", "--label", "species"],
    "train --label with an NPZ dataset": [*TRAIN, "--dataset", "FILES/data.npz", "--label", "y"],
    "gradcheck --label with a bundled dataset": ["gradcheck", "--dataset", "wine", "--label", "x", "--layers", "3"],
    "compare --label with a bundled dataset": ["compare", "--dataset", "iris", "--label", "x", "--frameworks",
                                               "sgdlab", "--seeds", "1", "--epochs", "1", "--quiet"],
}
EXPECTED = {
    "split NaN": "--split: expected three fractions",
    "split seed above 2^32-1": "split_seed: must be below 4294967296, got 4294967296",
    "seed above 2^63-1": f"seed: must be below {2**63}",
    "train --save empty": "--save: expected a path, got ''",
    "study --out empty": "--out: expected a path, got ''",
    "reproduce --out empty": "--out: expected a path, got ''",
    "compare --out empty": "--out: expected a path, got ''",
    "rerun --save empty": "--save: expected a path, got ''",
    "lab --store empty": "--store: expected a path, got ''",
    "train --label with a bundled dataset": "--label: 'species' given, but iris is a bundled dataset",
    "train --label with an NPZ dataset": "--label: 'y' given, but an NPZ dataset's labels are its array 'y'",
    "gradcheck --label with a bundled dataset": "--label: 'x' given, but wine is a bundled dataset",
    "compare --label with a bundled dataset": "--label: 'x' given, but iris is a bundled dataset",
}


@pytest.mark.parametrize("case", list(BAD_FLAGS))
def test_bad_flag_is_one_line_exit_2(capsys, files, case):
    argv = [a.replace("FILES", str(files)) for a in BAD_FLAGS[case]]
    code, out, err = cli(capsys, *argv)
    assert_one_line_error(code, err)
    assert EXPECTED[case] in err, err
    assert out == ""


# ------------------------------------------------------------------ files: the flags are fine, a file is not


def test_complex_npz_features_are_refused_not_cast(capsys, files):
    # numpy dropped the imaginary part with a ComplexWarning and trained on the rest
    code, _, err = cli(capsys, *TRAIN, "--dataset", str(files / "complex.npz"))
    assert_one_line_error(code, err)
    assert "'X' must hold real numbers, it has dtype complex128" in err


@pytest.mark.parametrize("scale, expected", [
    ("divide:1e-320", "the features scaled by divide:1e-320 are not all finite"),  # trained on inf
    ("standard", "scale standard: the training features are too large for it"),  # saved a model load() refuses
    ("minmax", "scale minmax: the training features are too large for it"),
])
def test_a_scaling_that_overflows_is_one_line(capsys, files, scale, expected):
    code, out, err = cli(capsys, *TRAIN, "--dataset", str(files / "huge_values.csv"), "--split", "1,0,0",
                         "--scale", scale)
    assert_one_line_error(code, err)  # and no numpy RuntimeWarning lines before it
    assert expected in err
    assert out == ""


def test_predict_refuses_features_its_scaling_overflows(capsys, files, tmp_path):
    model = tmp_path / "m.npz"
    assert cli(capsys, *TRAIN, "--dataset", str(files / "good.csv"), "--scale", "divide:1e-300",
               "--save", str(model))[0] == 0
    code, out, err = cli(capsys, "predict", str(model), "--input", str(files / "huge_values.csv"))
    assert_one_line_error(code, err)  # it printed a prediction computed from NaN outputs
    assert "are not all finite" in err and out == ""


def test_split_error_of_a_label_with_a_class_per_row_stays_short(capsys, files):
    code, _, err = cli(capsys, *TRAIN, "--dataset", str(files / "many_classes.csv"))
    assert_one_line_error(code, err)
    assert "cannot split 2000 samples" in err and len(err) < 500, len(err)  # was every one of 2000 classes


def test_a_csv_with_a_byte_order_mark(capsys, files, tmp_path):
    # the BOM became part of the first column's name: '\ufeffa' in the model, so predict on the
    # same columns without a BOM (and --label a) failed
    model = tmp_path / "bom.npz"
    assert cli(capsys, *TRAIN, "--dataset", str(files / "bom.csv"), "--save", str(model))[0] == 0
    assert load(model)[1]["features"] == ["a", "b", "c"]
    for data in ("good.csv", "bom.csv"):
        code, out, err = cli(capsys, "predict", str(model), "--input", str(files / data))
        assert code == 0, err
        assert out.splitlines()[0] == "prediction" and len(out.splitlines()) == 41
    code, _, err = cli(capsys, *TRAIN, "--dataset", str(files / "bom.csv"), "--label", "zzz")
    assert_one_line_error(code, err)
    assert "columns: a, b, c, label" in err


def test_an_unreadable_model_file_says_so(capsys, files, tmp_path, monkeypatch):
    # zipfile.is_zipfile says False for a file it cannot open, so this read "not an .npz archive"
    model = tmp_path / "m.npz"
    assert cli(capsys, *TRAIN, "--dataset", str(files / "good.csv"), "--save", str(model))[0] == 0
    import builtins

    import sgdlab.io

    real_open = builtins.open

    def deny(path, *a, **k):
        if str(path) == str(model):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(sgdlab.io, "open", deny, raising=False)
    code, _, err = cli(capsys, "predict", str(model), "--input", str(files / "good.csv"))
    assert_one_line_error(code, err)
    assert f"cannot read the model file {model}: Permission denied" in err


# ------------------------------------------------------------------ specs and stores


@pytest.mark.parametrize("extra, expected", [
    ("split = [nan, 0.5, 0.5]\n", "tiny.toml: split: three fractions"),
    ("split_seed = 4294967296\n", "tiny.toml: split_seed: must be below 4294967296"),
    # a seed above 2^63-1 was an OverflowError traceback from SQLite, after the store was made
    ("seeds = [9223372036854775808]\n", "tiny.toml: seeds: must be below 9223372036854775808"),
    ('label = "species"\n', "tiny.toml: label: 'species' given, but iris is a bundled dataset"),
    ('scale = "divide:1e-320"\n', "the features scaled by divide:1e-320 are not all finite"),
])
def test_bad_spec_value_is_one_line(capsys, files, tmp_path, extra, expected):
    text = (files / "tiny.toml").read_text().replace("seeds = 1\n", "")
    spec = tmp_path / "tiny.toml"
    spec.write_text(text + extra + ("" if "seeds" in extra else "seeds = 1\n"))
    code, _, err = cli(capsys, "study", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1", "--quiet",
                       "--no-report")
    assert_one_line_error(code, err)
    assert expected in err, err


def test_rerun_on_a_store_with_incomplete_spec_metadata(capsys, study, tmp_path):
    out, key = study
    damaged = tmp_path / "st"
    shutil.copytree(out, damaged)
    with sqlite3.connect(damaged / "results.sqlite") as con:
        con.execute("UPDATE meta SET value = '{\"name\": \"x\"}' WHERE key = 'spec_json'")
    code, _, err = cli(capsys, "rerun", str(damaged), key)
    assert_one_line_error(code, err)  # was a KeyError traceback
    assert "damaged study store (its spec metadata is incomplete: KeyError" in err


def test_rerun_save_writes_where_asked(capsys, study, tmp_path):
    # the healthy route still works with the --save path check
    out, key = study
    code, text, err = cli(capsys, "rerun", str(out), key, "--save", str(tmp_path / "r.npz"))
    assert code == 0, err
    assert (tmp_path / "r.npz").is_file() and "identical:" in text


# ------------------------------------------------------------------ study --backend dask, lab


def test_a_scheduler_address_without_a_port_is_refused_at_once(capsys, files, tmp_path):
    pytest.importorskip("dask.distributed")
    t0 = time.monotonic()
    code, _, err = cli(capsys, "study", str(files / "tiny.toml"), "--out", str(tmp_path / "o"), "--backend", "dask",
                       "--scheduler", "nonsense", "--quiet")
    assert_one_line_error(code, err)
    # it waited 10 s for a connection that cannot be made, then printed a traceback at exit
    assert "--scheduler: expected an address like tcp://HOST:8786, got 'nonsense' (missing port number" in err
    assert time.monotonic() - t0 < 8


def test_lab_store_that_is_a_file(capsys, files, monkeypatch):
    import sgdlab.lab.server

    monkeypatch.setattr(sgdlab.lab.server, "serve", lambda *a, **k: pytest.fail("the lab started"))
    code, out, err = cli(capsys, "lab", "--store", str(files / "good.csv"), "--port", "0")
    assert_one_line_error(code, err)  # the lab started, listing nothing
    assert "--store:" in err and "is not a folder" in err and out == ""


def test_lab_host_that_cannot_resolve_is_one_line(capsys):
    pytest.importorskip("uvicorn")
    code, out, err = cli(capsys, "lab", "--host", "999.1.1.1", "--port", "0")
    assert_one_line_error(code, err)  # the non-loopback warning came first: two lines
    assert err.startswith("sgdlab: error: --host: cannot resolve '999.1.1.1'") and out == ""


def test_a_diverged_network_is_reported_and_not_saved(capsys, tmp_path):
    # its weights are not finite: load would refuse the file, so train prints its results,
    # says why nothing was saved, and exits 1 (the training ran; the save was not possible)
    target = tmp_path / "m.npz"
    code, out, err = cli(capsys, "train", "--epochs", "2", "--lr", "1e6", "--output", "identity", "--cost", "mse",
                         "--save", str(target))
    assert code == 1 and "status: diverged" in out and "saved to" not in out
    assert err == f"sgdlab: not saved to {target}: the network diverged (its weights are not finite)\n"
    assert not target.exists()
