"""Save and load: .npz + JSON metadata, allow_pickle=False, everything validated."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from sgdlab import Network, SgdlabError, load, save
from sgdlab.io import FORMAT, FORMAT_VERSION


@pytest.fixture
def net():
    rng = np.random.default_rng(0)
    return Network([4, 5, 3], "tanh", "softmax", "cce").initialize("xavier", "normal", rng)


def _rewrite(path, **changes):
    """Copy a saved model with some arrays replaced (None drops one)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


def _meta(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"][()]))


def test_save_load_predict_identical(tmp_path, net):
    path = save(net, tmp_path / "model", classes=np.array(["a", "b", "c"]), extra={"note": "x"})
    assert path.suffix == ".npz" and path.exists()
    loaded, meta = load(path)
    X = np.random.default_rng(1).standard_normal((20, 4))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert (loaded.sizes, loaded.activation, loaded.output, loaded.cost, loaded.dtype) == \
        (net.sizes, net.activation, net.output, net.cost, net.dtype)
    assert meta["classes"] == ["a", "b", "c"] and meta["extra"] == {"note": "x"}
    assert meta["format"] == FORMAT and meta["format_version"] == FORMAT_VERSION
    assert "sgdlab_version" in meta


def test_float32_round_trip(tmp_path):
    net = Network([3, 2], "sigmoid", dtype="float32").initialize("xavier", "normal", np.random.default_rng(0))
    loaded, _ = load(save(net, tmp_path / "m.npz"))
    assert loaded.dtype == "float32" and all(p.dtype == np.float32 for p in loaded.params)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.params, net.params))


def test_missing_file(tmp_path):
    with pytest.raises(SgdlabError, match="no such model file"):
        load(tmp_path / "nope.npz")


def test_truncated_file(tmp_path, net):
    path = save(net, tmp_path / "m.npz")
    blob = path.read_bytes()
    for cut in (10, len(blob) // 2, len(blob) - 5):
        path.write_bytes(blob[:cut])
        with pytest.raises(SgdlabError, match="not a valid sgdlab model file"):
            load(path)


def test_not_a_zip_at_all(tmp_path):
    path = tmp_path / "m.npz"
    path.write_text("hello, I am a text file\n")
    with pytest.raises(SgdlabError, match="not an .npz archive; sgdlab never unpickles") as e:
        load(path)
    assert "allow_pickle" not in str(e.value)  # never suggest loading it unsafely


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones((3, 3)), x=np.arange(4))
    with pytest.raises(SgdlabError, match="no metadata"):
        load(path)
    np.savez(path, meta=np.array(json.dumps({"format": "something-else"})), W0=np.ones((2, 2)))
    with pytest.raises(SgdlabError, match="format"):
        load(path)
    np.savez(path, meta=np.array("{not json"))
    with pytest.raises(SgdlabError):
        load(path)


@pytest.mark.parametrize("tamper", ["shape", "dtype", "missing", "extra", "nan", "sizes", "activation",
                                    "version", "classes"])
def test_tampered_file(tmp_path, net, tamper):
    path = save(net, tmp_path / "m.npz", classes=[0, 1, 2])
    meta = _meta(path)
    if tamper == "shape":
        _rewrite(path, W0=np.ones((5, 4)))
    elif tamper == "dtype":
        _rewrite(path, W1=np.ones((5, 3), dtype=np.float32))
    elif tamper == "missing":
        _rewrite(path, b1=None)
    elif tamper == "extra":
        _rewrite(path, W9=np.ones((2, 2)))
    elif tamper == "nan":
        w = net.weights[0].copy()
        w[0, 0] = np.nan
        _rewrite(path, W0=w)
    else:
        meta = dict(meta)
        if tamper == "sizes":
            meta["sizes"] = [4, -5, 3]
        elif tamper == "activation":
            meta["activation"] = "__import__('os').system('echo hi')"
        elif tamper == "version":
            meta["format_version"] = 99
        elif tamper == "classes":
            meta["classes"] = [0, 1]
        _rewrite(path, meta=np.array(json.dumps(meta)))
    with pytest.raises(SgdlabError, match="not a valid sgdlab model file"):
        load(path)


class _Boom:
    """Unpickling this runs code: it would create the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


@pytest.mark.parametrize("where", ["meta", "W0"])
def test_pickle_bearing_npz_is_refused_without_running_code(tmp_path, net, where):
    path = save(net, tmp_path / "m.npz")
    sentinel = tmp_path / "pwned"
    evil = np.array([_Boom(sentinel)], dtype=object)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[where] = evil
    np.savez(path, **arrays)  # object arrays are pickled inside the .npy
    with zipfile.ZipFile(path) as zf:
        assert f"{where}.npy" in zf.namelist()
    with pytest.raises(SgdlabError):
        load(path)
    assert not sentinel.exists()


def test_save_to_an_unwritable_place(tmp_path, net):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SgdlabError, match="cannot write"):
        save(net, blocker / "sub" / "m.npz")


def test_plain_npy_array_is_refused_in_one_line(tmp_path):
    # np.load returns a bare array for a .npy file, whatever its name: that is not a model
    for name in ("m.npz", "m.npy"):
        path = tmp_path / name
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
        with pytest.raises(SgdlabError, match="not an .npz archive"):
            load(path)


def _bad_saves(net, tmp_path):
    diverged = net.copy()
    diverged.weights[0][0, 0] = np.nan
    empty = Network([4, 5, 3], "tanh", "softmax", "cce")
    return {
        "not a network": (lambda: save({"W0": 1}, tmp_path / "m"), "must be an sgdlab Network"),
        "not initialised": (lambda: save(empty, tmp_path / "m"), "not initialised"),
        "diverged": (lambda: save(diverged, tmp_path / "m"), "NaN or infinity"),
        "classes of another length": (lambda: save(net, tmp_path / "m", classes=[0, 1]), "2 class labels"),
        "features of another length": (lambda: save(net, tmp_path / "m", features=["a"]), "1 feature names"),
        "scaler by name": (lambda: save(net, tmp_path / "m", scaler="standard"), "scaler must be"),
        "extra not JSON": (lambda: save(net, tmp_path / "m", extra={"f": object()}), "JSON values"),
        "path None": (lambda: save(net, None), "path must be a file path"),
    }


@pytest.mark.parametrize("case", ["not a network", "not initialised", "diverged", "classes of another length",
                                  "features of another length", "scaler by name", "extra not JSON", "path None"])
def test_save_refuses_what_load_would_refuse_and_writes_nothing(net, tmp_path, case):
    call, message = _bad_saves(net, tmp_path)[case]
    with pytest.raises(SgdlabError, match=message):
        call()
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_load_of_a_non_path_is_one_error():
    with pytest.raises(SgdlabError, match="path must be a file path"):
        load(None)
