"""Preprocessing that travels with the model: --scale, fitted on the training part, saved in
the model file, applied by predict / load / the estimator."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris

from sgdlab import RunConfig, SGDNetClassifier, SgdlabError, load, load_dataset, save
from sgdlab.data.datasets import split_indices
from sgdlab.io import NoPreprocessingWarning
from sgdlab.study.spec import parse_spec

from test_cli_core import assert_one_line_error, cli


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    b = load_iris()
    p = tmp_path_factory.mktemp("iris") / "iris.csv"
    p.write_text("sl,sw,pl,pw,species\n" + "".join(
        ",".join(repr(float(v)) for v in x) + f",{t}\n" for x, t in zip(b.data, b.target)))
    return p, b.data, b.target


def _predict(capsys, model, X, tmp_path):
    f = tmp_path / "raw.csv"
    # iris.csv's own header (a model trained on a CSV matches columns by name)
    names = ["sl", "sw", "pl", "pw"] if X.shape[1] == 4 else [f"x{i}" for i in range(X.shape[1])]
    f.write_text(",".join(names) + "\n"
                 + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X))
    code, out, err = cli(capsys, "predict", str(model), "--input", str(f))
    assert code == 0, err
    return np.array([int(v) for v in out.splitlines()[1:]]), err


@pytest.mark.parametrize("source", ["bundled", "csv"])
def test_iris_predicted_from_raw_features_scores_what_training_reported(capsys, tmp_path, iris_csv, source):
    path, X_raw, y = iris_csv
    args = ["--dataset", "iris"] if source == "bundled" else ["--dataset", str(path), "--scale", "standard"]
    model = tmp_path / "iris.npz"
    code, out, err = cli(capsys, "train", *args, "--lr", "0.1", "--epochs", "10", "--save", str(model), "--json")
    assert code == 0, err
    final = json.loads(out)["final"]
    tr, va, te = split_indices(y, (0.6, 0.2, 0.2), 0)
    for part, idx in (("train", tr), ("val", va), ("test", te)):
        pred, err = _predict(capsys, model, X_raw[idx], tmp_path)
        assert err == ""
        assert np.mean(pred == y[idx]) == final[f"{part}_acc"], part
    assert final["test_acc"] > 0.5  # a model that learned: raw features unscaled would score ~1/3


def test_iris_csv_with_standard_scale_is_bundled_iris(iris_csv):
    path, _, _ = iris_csv
    a, b = load_dataset("iris"), load_dataset(str(path), scale="standard")
    for part in ("X_train", "X_val", "X_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    np.testing.assert_array_equal(a.scaler.shift, b.scaler.shift)


def test_digits_predicted_from_raw_pixels(capsys, tmp_path):
    model = tmp_path / "d.npz"
    code, out, err = cli(capsys, "train", "--epochs", "2", "--layers", "16", "--save", str(model), "--json")
    assert code == 0, err
    raw = load_digits().data  # 0..16
    _, _, te = split_indices(load_digits().target, (0.6, 0.2, 0.2), 0)
    pred, _ = _predict(capsys, model, raw[te], tmp_path)
    assert np.mean(pred == load_digits().target[te]) == json.loads(out)["final"]["test_acc"]
    _, meta = load(model)
    assert meta["preprocess"] == {"kind": "divide:16", "shift": [0.0] * 64, "scale": [16.0] * 64}


def test_scalings_are_fitted_on_the_training_part_only(iris_csv):
    path, X, _ = iris_csv
    d = load_dataset(str(path), scale="minmax")
    assert d.X_train.min() == 0 and d.X_train.max() == 1
    assert d.X_val.min() != 0 or d.X_val.max() != 1 or d.X_test.min() < 0 or d.X_test.max() > 1
    d = load_dataset(str(path), scale="divide:2")
    np.testing.assert_array_equal(np.sort(np.concatenate([d.X_train, d.X_val, d.X_test]), axis=0),
                                  np.sort(X / 2, axis=0))
    assert load_dataset(str(path)).scaler.kind == "none"  # a file's default: as read
    with pytest.raises(SgdlabError, match="scale: unknown value 'divide:-1'"):
        load_dataset("iris", scale="divide:-1")


def _tamper(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta["preprocess"][k] = v
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize("change, message", [
    ({"shift": [0.0, 1.0]}, "shift must be a list of 4 numbers"),
    ({"scale": [1.0, float("nan"), 1.0, 1.0]}, "scale holds non-finite values"),
    ({"shift": [0.0, float("nan"), 1.0, 1.0]}, "shift holds non-finite values"),
    ({"scale": [1.0, 0.0, 1.0, 1.0]}, "scale must be > 0"),
    ({"kind": "auto"}, "unknown kind"),
])
def test_a_tampered_scaler_is_refused_in_one_line(capsys, tmp_path, iris_csv, change, message):
    model = tmp_path / "m.npz"
    code, _, err = cli(capsys, "train", "--dataset", "iris", "--epochs", "1", "--save", str(model), "--json")
    assert code == 0, err
    _tamper(model, **change)
    with pytest.raises(SgdlabError, match=message):
        load(model)
    code, _, err = cli(capsys, "predict", str(model), "--input", str(iris_csv[0]))
    assert_one_line_error(code, err)
    assert message in err


def test_an_old_model_file_loads_with_a_one_line_warning(capsys, tmp_path, iris_csv):
    model = tmp_path / "old.npz"
    code, _, err = cli(capsys, "train", "--dataset", "iris", "--epochs", "1", "--save", str(model), "--json")
    _tamper(model, preprocess=None)  # as written before preprocess existed
    with pytest.warns(NoPreprocessingWarning, match="carries no preprocessing"):
        net, meta = load(model)
    assert meta["scaler"].kind == "none"
    code, out, err = cli(capsys, "predict", str(model), "--input", str(iris_csv[0]))
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("sgdlab: warning:") and "no preprocessing" in err
    assert len(out.splitlines()) == 151


def test_load_users_apply_the_scaler(tmp_path, iris_csv):
    _, X_raw, y = iris_csv
    d = load_dataset("iris")
    from sgdlab import train

    res = train(RunConfig(dataset="iris", epochs=5, lr=0.1), d)
    path = save(res.network, tmp_path / "m.npz", classes=d.classes, scaler=d.scaler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net, meta = load(path)
    _, _, te = split_indices(y, (0.6, 0.2, 0.2), 0)
    np.testing.assert_array_equal(net.predict(meta["scaler"].transform(X_raw[te])), res.network.predict(d.X_test))


def test_estimator_scale_travels_with_its_saved_model(capsys, tmp_path, iris_csv):
    _, X_raw, y = iris_csv
    clf = SGDNetClassifier(scale="standard", random_state=0, max_iter=30).fit(X_raw, y)
    np.testing.assert_allclose(clf.scaler_.shift, X_raw.mean(axis=0))
    expected = clf.predict(X_raw)
    assert np.mean(expected == y) > 0.8
    pred, _ = _predict(capsys, clf.save(tmp_path / "clf.npz"), X_raw, tmp_path)
    np.testing.assert_array_equal(pred, expected)
    with pytest.raises(SgdlabError, match="scale"):
        SGDNetClassifier(scale="zscore").fit(X_raw, y)
    with pytest.raises(SgdlabError, match="needs fit"):
        SGDNetClassifier(scale="standard").partial_fit(X_raw, y, classes=[0, 1, 2])


def test_run_keys_and_spec_digests_are_unchanged_at_the_default():
    base = RunConfig()
    assert base.key() == RunConfig(scale="auto").key() != RunConfig(scale="none").key()
    text = 'lr = 0.1\ncost = "ce"\nactivation = "sigmoid"\ninit = "xavier"\n'
    a, b = parse_spec(text), parse_spec(text + 'scale = "minmax"\n')
    assert "scale" not in a.to_dict() and b.to_dict()["scale"] == "minmax" and a.digest() != b.digest()
    with pytest.raises(SgdlabError, match="spec: scale: unknown value 'z'"):
        parse_spec(text + 'scale = "z"\n')
