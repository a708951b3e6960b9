"""Datasets: the bundled ones, CSV/NPZ files, stratified seeded splits."""

from __future__ import annotations

import numpy as np
import pytest

from sgdlab import SgdlabError, load_dataset
from sgdlab.data import read_features
from sgdlab.data.datasets import split_indices


def test_digits_split_sizes_are_the_papers(digits):
    """Train 1078, validation 360, test 359 (the paper's Table 1 mislabels its columns)."""
    assert (len(digits.y_train), len(digits.y_val), len(digits.y_test)) == (1078, 360, 359)
    assert digits.X_train.shape == (1078, 64) and digits.n_classes == 10
    assert list(digits.classes) == list(range(10))
    assert digits.images is not None and digits.images.shape == (1797, 8, 8)


def test_digits_pixels_are_divided_by_16(digits):
    X = np.vstack([digits.X_train, digits.X_val, digits.X_test])
    assert X.min() == 0 and X.max() == 1
    assert np.all(np.isclose(X * 16, np.round(X * 16)))


def test_split_is_stratified_and_disjoint(digits):
    counts = digits.split_counts()
    total = counts["train"] + counts["validation"] + counts["test"]
    assert np.all(np.abs(counts["train"] - 0.6 * total) <= 1)
    assert np.all(np.abs(counts["validation"] - 0.2 * total) <= 1)
    rows = [tuple(r) for part in (digits.X_train, digits.X_val, digits.X_test) for r in part]
    assert len(rows) == 1797


def test_split_seed_decides_the_split():
    a, b, c = (load_dataset("iris", split_seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_bundled_tables_are_standardised_on_the_training_part(name):
    d = load_dataset(name)
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(d.X_train.std(axis=0), 1, atol=1e-12)
    assert not np.allclose(d.X_val.mean(axis=0), 0, atol=1e-6)  # not re-fitted on validation


def test_custom_split_fractions():
    d = load_dataset("iris", split=(0.5, 0.5, 0.0))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (75, 75, 0)


def _write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _table(n=30):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 2))
    y = np.array(["cat", "dog", "eel"])[np.arange(n) % 3]
    return X, y


def test_csv_label_last_column_or_named(tmp_path):
    X, y = _table()
    last = _write_csv(tmp_path / "last.csv", ["a", "b", "kind"], [[*x, t] for x, t in zip(X, y)])
    named = _write_csv(tmp_path / "named.csv", ["kind", "a", "b"], [[t, *x] for x, t in zip(X, y)])
    d1, d2 = load_dataset(str(last)), load_dataset(str(named), label="kind")
    assert list(d1.classes) == ["cat", "dog", "eel"] == list(d2.classes)
    assert d1.feature_names == ["a", "b"] == d2.feature_names
    np.testing.assert_array_equal(d1.X_train, d2.X_train)
    assert len(d1.y_train) + len(d1.y_val) + len(d1.y_test) == 30


def test_npz_dataset(tmp_path):
    X, y = _table()
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(30) % 3)
    d = load_dataset(str(tmp_path / "d.npz"))
    assert d.n_features == 2 and d.n_classes == 3


@pytest.mark.parametrize("bad,match", [("nan", "finite"), ("inf", "finite"), ("hello", "not a number"),
                                       ("", "not a number")])
def test_csv_bad_feature_value(tmp_path, bad, match):
    X, y = _table()
    rows = [[*x, t] for x, t in zip(X, y)]
    rows[4][1] = bad
    path = _write_csv(tmp_path / "bad.csv", ["a", "b", "kind"], rows)
    with pytest.raises(SgdlabError, match=match) as e:
        load_dataset(str(path))
    assert "'b'" in str(e.value) and "row 6" in str(e.value)  # names the column and the line


def test_csv_missing_label_column(tmp_path):
    X, y = _table()
    path = _write_csv(tmp_path / "d.csv", ["a", "b", "kind"], [[*x, t] for x, t in zip(X, y)])
    with pytest.raises(SgdlabError, match="no label column 'species'; columns: a, b, kind"):
        load_dataset(str(path), label="species")


def test_csv_ragged_rows_and_missing_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1,2,x\n1,2\n")
    with pytest.raises(SgdlabError, match="row 3"):
        load_dataset(str(path))
    with pytest.raises(SgdlabError, match="no such file"):
        load_dataset(str(tmp_path / "missing.csv"))


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(SgdlabError, match="digits, iris, wine, breast_cancer"):
        load_dataset("mnist")


def test_single_class_is_an_error(tmp_path):
    path = _write_csv(tmp_path / "one.csv", ["a", "y"], [[i, "same"] for i in range(10)])
    with pytest.raises(SgdlabError, match="two classes"):
        load_dataset(str(path))


def test_read_features_drops_a_label_column(tmp_path):
    X, y = _table(6)
    with_label = _write_csv(tmp_path / "l.csv", ["a", "b", "kind"], [[*x, t] for x, t in zip(X, y)])
    without = _write_csv(tmp_path / "f.csv", ["a", "b"], X.tolist())
    np.testing.assert_array_equal(read_features(with_label, n_features=2), read_features(without, n_features=2))
    with pytest.raises(SgdlabError, match="expects 3"):
        read_features(without, n_features=3)


def test_split_indices_cover_everything_once():
    y = np.arange(100) % 4
    tr, va, te = split_indices(y, (0.6, 0.2, 0.2), seed=3)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    assert len(tr) == 60
