"""IDX files (MNIST's format): reading, label discovery, validation, the CLI and study specs.

The files are written here, byte by byte, by :func:`write_idx` (struct + numpy), not by
sgdlab, so a reader that gets the byte order or the header wrong fails these tests.
"""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from sgdlab import SgdlabError, load_dataset
from sgdlab.cli import main
from sgdlab.data import read_features
from sgdlab.data.datasets import read_idx
from sgdlab.study.spec import load_spec

CODES = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype("int16"): 0x0B, np.dtype("int32"): 0x0C,
         np.dtype("float32"): 0x0D, np.dtype("float64"): 0x0E}


def idx_bytes(a, code=None) -> bytes:
    a = np.asarray(a)
    code = CODES[a.dtype] if code is None else code
    header = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path, a, gz=False, code=None):
    blob = idx_bytes(a, code)
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def mnist_like(n=40, rows=3, cols=4, k=4, seed=0):
    """uint8 images (n, rows, cols) whose first pixel is the class * 50, and int labels."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % k).astype(np.uint8)
    imgs = rng.integers(0, 256, (n, rows, cols), dtype=np.uint8)
    imgs[:, 0, 0] = y * 50
    return imgs, y


def write_pair(d, gz=False, n=40, prefix="train"):
    imgs, y = mnist_like(n)
    sfx = ".gz" if gz else ""
    write_idx(d / f"{prefix}-images-idx3-ubyte{sfx}", imgs, gz)
    write_idx(d / f"{prefix}-labels-idx1-ubyte{sfx}", y, gz)
    return d / f"{prefix}-images-idx3-ubyte{sfx}", imgs, y


def all_rows(d):
    return np.vstack([d.X_train, d.X_val, d.X_test]), np.concatenate([d.y_train, d.y_val, d.y_test])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    base = np.arange(30).reshape(2, 3, 5)
    scale = {"uint8": 8, "int8": -4, "int16": -1000, "int32": 70000, "float32": 1.5, "float64": -1e300}[dtype]
    a = ((base - (7 if dtype != "uint8" else 0)) * scale).astype(dtype)  # negative and multi-byte values
    # a name without "idx" or ".gz": gzip is recognised by its magic bytes
    got = read_idx(write_idx(tmp_path / "blob", a, gz))
    assert got.shape == a.shape and got.dtype == a.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_big_endian_values_are_read_as_such(tmp_path):
    (tmp_path / "x").write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), [258, -2])


@pytest.mark.parametrize("gz", [False, True])
def test_labels_found_by_mnist_naming_and_pixels_scaled(tmp_path, gz):
    images, imgs, y = write_pair(tmp_path, gz)
    d = load_dataset(str(images))
    X, yy = all_rows(d)
    assert d.n_features == 12 and d.feature_names[:2] == ["px0", "px1"] and d.feature_names[-1] == "px11"
    assert list(d.classes) == [0, 1, 2, 3] and len(yy) == 40
    assert X.min() >= 0 and X.max() <= 1
    # every row is one image divided by 255, with its own label (the first pixel is the class * 50)
    flat = imgs.reshape(40, -1) / 255.0
    for row, label in zip(X, yy):
        i = int(np.flatnonzero(np.all(flat == row, axis=1))[0])
        assert y[i] == label and row[0] * 255 == 50 * label
    assert d.images is not None and d.images.shape == (40, 3, 4)
    np.testing.assert_array_equal(d.images, imgs)


def test_labels_found_across_gz_and_dotted_names(tmp_path):
    imgs, y = mnist_like()
    write_idx(tmp_path / "t10k-images.idx3-ubyte", imgs)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte.gz", y, gz=True)  # plain images, gzipped labels
    d = load_dataset(str(tmp_path / "t10k-images.idx3-ubyte"))
    assert d.n_classes == 4 and d.n_features == 12


def test_explicit_label_path_wins(tmp_path):
    images, imgs, y = write_pair(tmp_path)
    other = write_idx(tmp_path / "other-labels.idx1", (y % 2).astype(np.int32))
    d = load_dataset(str(images), label=str(other))
    assert list(d.classes) == [0, 1]
    with pytest.raises(SgdlabError, match="no such IDX labels file: label"):
        load_dataset(str(images), label="label")  # a CSV-style column name is not a file


def test_missing_labels_names_what_was_tried(tmp_path):
    imgs, _ = mnist_like()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, gz=True)
    with pytest.raises(SgdlabError) as e:
        load_dataset(str(tmp_path / "train-images-idx3-ubyte.gz"))
    msg = str(e.value)
    assert "tried: train-labels-idx1-ubyte.gz, train-labels-idx1-ubyte)" in msg and "--label PATH" in msg


def test_counts_must_match(tmp_path):
    imgs, y = mnist_like()
    images = write_idx(tmp_path / "a-images-idx3-ubyte", imgs)
    write_idx(tmp_path / "a-labels-idx1-ubyte", y[:-1])
    with pytest.raises(SgdlabError, match="has 40 images but .* has 39 labels"):
        load_dataset(str(images))


def test_labels_must_be_1d(tmp_path):
    imgs, y = mnist_like()
    images = write_idx(tmp_path / "a-images-idx3-ubyte", imgs)
    write_idx(tmp_path / "a-labels-idx1-ubyte", y.reshape(20, 2))
    with pytest.raises(SgdlabError, match="must be 1-D"):
        load_dataset(str(images))


@pytest.mark.parametrize("delta,what", [(-1, "truncated"), (3, "padded")])
def test_truncated_or_padded_file(tmp_path, delta, what):
    blob = idx_bytes(np.zeros((5, 2, 2), np.int16))  # payload 5 * 4 * 2 = 40 bytes
    blob = blob[:delta] if delta < 0 else blob + b"\0" * delta
    (tmp_path / "x-idx3").write_bytes(gzip.compress(blob))
    with pytest.raises(SgdlabError) as e:
        read_idx(tmp_path / "x-idx3")
    msg = str(e.value)
    assert "x-idx3" in msg and "expected 40" in msg and f"is {40 + delta} bytes" in msg and what in msg


def test_truncated_header(tmp_path):
    (tmp_path / "h").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 9]))
    with pytest.raises(SgdlabError, match="truncated IDX header"):
        read_idx(tmp_path / "h")


def test_bad_magic_and_unknown_type(tmp_path):
    (tmp_path / "m").write_bytes(b"a,b\n1,2\n")
    with pytest.raises(SgdlabError, match="not an IDX file"):
        read_idx(tmp_path / "m")
    write_idx(tmp_path / "t", np.zeros(4, np.uint8), code=0x0A)
    with pytest.raises(SgdlabError, match=r"unknown IDX type code 0x0A; valid: 0x08 \(uint8\)"):
        read_idx(tmp_path / "t")
    (tmp_path / "g").write_bytes(b"\x1f\x8b" + b"not gzip at all")
    with pytest.raises(SgdlabError, match="not a readable gzip file"):
        read_idx(tmp_path / "g")


def test_float64_images_are_loaded_as_is(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.standard_normal((30, 2, 2)) * 300  # far outside [0, 1]: nothing may rescale it
    images = write_idx(tmp_path / "f-images-idx3-float", imgs)
    write_idx(tmp_path / "f-labels-idx1-float", (np.arange(30) % 3).astype(np.int32))
    d = load_dataset(str(images))
    X, _ = all_rows(d)
    np.testing.assert_array_equal(np.sort(X, axis=0), np.sort(imgs.reshape(30, 4), axis=0))


def test_split_seed_and_stratification_as_for_csv(tmp_path):
    images, _, _ = write_pair(tmp_path, n=100)
    a, b, c = (load_dataset(str(images), split_seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)
    assert list(a.split_counts()["train"]) == [15, 15, 15, 15]


def test_read_features_scales_idx_like_training(tmp_path):
    images, imgs, _ = write_pair(tmp_path)
    np.testing.assert_array_equal(read_features(images, n_features=12), imgs.reshape(40, 12) / 255.0)


def test_cli_train_on_idx(tmp_path, capsys):
    images, _, _ = write_pair(tmp_path, gz=True)
    code = main(["train", "--dataset", str(images), "--epochs", "1", "--layers", "8", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert res["config"]["dataset"] == str(images) and res["final"]["status"] in ("done", "chance")


def test_cli_predict_on_idx_matches_the_network(tmp_path, capsys):
    from sgdlab import load

    images, imgs, _ = write_pair(tmp_path)
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", str(images), "--epochs", "2", "--layers", "4", "--save", str(model),
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), "--input", str(images)]) == 0
    lines = capsys.readouterr().out.split()
    net, meta = load(model)
    expected = np.asarray(meta["classes"])[net.predict(imgs.reshape(40, 12) / 255.0)]
    assert lines[0] == "prediction" and lines[1:] == [str(c) for c in expected]


def test_cli_bad_idx_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-2])
    code = main(["train", "--dataset", str(bad), "--epochs", "1", "--layers", "8"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and "truncated" in err


SPEC = """\
epochs = 1
lr = 0.1
init = "xavier"
cost = "ce"
activation = "sigmoid"
"""


def test_study_spec_resolves_idx_files_beside_it(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    images, _, y = write_pair(data)
    write_idx(data / "alt-labels", (y % 2).astype(np.uint8))
    (tmp_path / "s.toml").write_text('dataset = "data/train-images-idx3-ubyte"\n' + SPEC)
    (tmp_path / "t.toml").write_text('dataset = "data/train-images-idx3-ubyte"\nlabel = "data/alt-labels"\n' + SPEC)
    (tmp_path / "u.toml").write_text('dataset = "data/train-images-idx3-ubyte"\nlabel = "data/nope"\n' + SPEC)
    monkeypatch.chdir(data)  # not where the spec is
    s = load_spec(tmp_path / "s.toml")
    assert s.dataset == str(images.resolve()) and s.label is None
    t = load_spec(tmp_path / "t.toml")
    assert t.label == str((data / "alt-labels").resolve())
    assert load_dataset(t.dataset, label=t.label).n_classes == 2
    with pytest.raises(SgdlabError, match="u.toml: label: no such IDX labels file 'data/nope'"):
        load_spec(tmp_path / "u.toml")
