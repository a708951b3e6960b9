"""Load a dataset and split it (stratified, seeded) into train / validation / test.

``digits`` is the paper's: 1797 8x8 images, pixels 0-16 (divided by 16 by default). The default 60/20/20
split gives train 1078, validation 360, test 359. (The paper's Table 1 labels its columns
Test/Train/Validation = 1078/360/359; the 60 % part is the training set, and since every
accuracy the paper reports is a multiple of 1/360, its validation set had 360 images.)
Scaling is a separate, named step (:mod:`.scale`), fitted on the training part only and
applied the same way to bundled datasets and files: by default (``scale="auto"``) digits
is divided by 16, ``iris``, ``wine`` and ``breast_cancer`` are standardised with the
training part's mean and standard deviation, and a CSV or NPZ file is used as is (see
:func:`read_table`), so ``iris.csv`` with ``scale="standard"`` is ``iris``.
An IDX images file (MNIST's format, plain or gzipped) is flattened to one row per image,
with unsigned-byte pixels divided by 255 (see :func:`read_idx` and :func:`read_idx_dataset`).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..bounded import bounded_lines, data_cap, npz_headers, short
from ..memory import human
from ..errors import SgdlabError
from .scale import Scaler
from .scale import fit as fit_scaler

BUNDLED = ("digits", "iris", "wine", "breast_cancer")


@dataclass
class Dataset:
    """A split dataset. Labels are class indices ``0..n_classes-1``; ``classes`` maps them back."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    images: np.ndarray | None = None  # digits, IDX: the (n, rows, cols) images of the whole set, for figures
    scaler: Scaler | None = None  # the scaling fitted on the training part and applied to every part

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def astype(self, dtype) -> "Dataset":
        c = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
        return replace(self, X_train=c(self.X_train), X_val=c(self.X_val), X_test=c(self.X_test))

    def split_counts(self) -> dict[str, np.ndarray]:
        """Images per class in each part (the paper's Table 1 / Fig. 4)."""
        k = self.n_classes
        return {part: np.bincount(y, minlength=k)
                for part, y in (("train", self.y_train), ("validation", self.y_val), ("test", self.y_test))}


def _bundled(name):
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "iris": datasets.load_iris, "wine": datasets.load_wine,
              "breast_cancer": datasets.load_breast_cancer}[name]
    b = loader()
    X = np.asarray(b.data, dtype=np.float64)  # raw: scaling is load_dataset's (see .scale)
    names = [str(n) for n in getattr(b, "feature_names", [])] or [f"x{i}" for i in range(X.shape[1])]
    return X, np.asarray(b.target), names, getattr(b, "images", None)


def _float_column(values, name, path):
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except ValueError:
            raise SgdlabError(f"{path}: column {short(name)} row {i + 2} is not a number: {short(v)}") from None
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.argmax(bad))
        raise SgdlabError(f"{path}: column {short(name)} row {i + 2} is {short(values[i])}; features must be finite "
                          "numbers")
    return out


def read_table(path, label: str | None = None, need_label: bool = True):
    """Read features (and labels) from a CSV (header row) or NPZ (arrays ``X`` and ``y``) file.

    The label column is ``label`` if given, else the last column. Returns ``(X, y, names)``;
    ``y`` is None when ``need_label`` is false and no label column was asked for.
    """
    p = Path(path)
    if not p.is_file():
        raise SgdlabError(f"no such file: {path}")
    if p.suffix.lower() == ".npz":
        npz_headers(p, data_cap(), "dataset")  # declared sizes, before allocating them
        try:
            with np.load(p, allow_pickle=False) as z:
                if "X" not in z.files:
                    raise SgdlabError(f"{path}: an NPZ dataset needs an array 'X' (and 'y'); it has {z.files}")
                if z["X"].dtype.kind not in "biuf":  # complex would lose its imaginary part; text cannot be cast
                    raise SgdlabError(f"{path}: 'X' must hold real numbers, it has dtype {z['X'].dtype}")
                X = np.asarray(z["X"], dtype=np.float64)
                y = z["y"] if "y" in z.files else None
        except SgdlabError:
            raise
        except Exception as e:  # zipfile/format errors
            raise SgdlabError(f"{path}: not a readable NPZ file ({e})") from None
        if X.ndim != 2 or not np.all(np.isfinite(X)):
            raise SgdlabError(f"{path}: 'X' must be a 2-D array of finite numbers")
        if need_label:
            if y is None:
                raise SgdlabError(f"{path}: no array 'y' with the labels")
            if y.ndim != 1:
                raise SgdlabError(f"{path}: 'y' must be 1-D (one label per row of X), it has shape {y.shape}")
            if len(y) != len(X):
                raise SgdlabError(f"{path}: 'y' has {len(y)} labels but 'X' has {len(X)} rows; they must match")
        return X, y, [f"x{i}" for i in range(X.shape[1])]
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM is not part of the first name
            rows = [r for r in csv.reader(bounded_lines(f, path)) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SgdlabError(f"{path}: cannot read as CSV ({e})") from None
    if len(rows) < 2:
        raise SgdlabError(f"{path}: a CSV needs a header row and at least one data row")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise SgdlabError(f"{path}: row {i + 2} has {len(r)} fields, the header has {len(header)}")
    cols = list(zip(*body))
    y = None
    if label is not None:
        if label not in header:
            raise SgdlabError(f"{path}: no label column {label!r}; columns: {', '.join(header)}")
        li = header.index(label)
    elif need_label:
        li = len(header) - 1
    else:
        li = None
    if li is not None:
        y = np.array([v.strip() for v in cols[li]])
        for i, v in enumerate(y):
            if v == "" or v.lower() in ("nan", "-nan", "+nan"):
                raise SgdlabError(f"{path}: label column {short(header[li])} row {i + 2} is {v!r}; every row needs a "
                                  "label (a missing label is not a class)")
    names = [h for i, h in enumerate(header) if i != li]
    if not names:
        raise SgdlabError(f"{path}: no feature columns besides the label")
    X = np.column_stack([_float_column([v.strip() for v in cols[i]], h, path)
                         for i, h in enumerate(header) if i != li])
    return X, y, names


def csv_header(path) -> list[str] | None:
    """A CSV's header row, stripped (None if unreadable; read_table then says why)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(bounded_lines(f, path)):
                if row:
                    return [h.strip() for h in row]
    except (OSError, UnicodeDecodeError, csv.Error, SgdlabError):
        return None
    return None


def read_features(path, n_features: int | None = None, names=None, label: str | None = None) -> np.ndarray:
    """Features only (for ``predict``); a CSV may or may not hold a label column.

    ``names`` (the feature columns a model was trained on, from a CSV) makes a CSV's columns
    be taken by name, in that order: a missing one, or a column that is neither one of them
    nor the training ``label`` column, is an :class:`SgdlabError`.
    An IDX images file is flattened and scaled as :func:`read_idx_dataset` does in training.
    """
    p = Path(path)
    if names is not None and p.suffix.lower() == ".csv":
        return _named_features(path, list(names), label)
    if is_idx_path(p):
        X = _idx_features(read_idx(p), path)
    elif p.suffix.lower() == ".npz":
        X, _, _ = read_table(path, need_label=False)
    else:
        # one column more than the model's inputs: the last is a label (maybe text); drop it
        with_label = n_features is not None and len(csv_header(p) or ()) == n_features + 1
        X, _, _ = read_table(path, need_label=with_label)
    if n_features is not None and X.shape[1] != n_features:
        raise SgdlabError(f"{path}: {X.shape[1]} feature columns, the model expects {n_features}")
    return X


def _named_features(path, names, label):
    header = csv_header(path)
    if header is None:
        read_table(path, need_label=False)  # says why it cannot be read
        raise SgdlabError(f"{path}: cannot read as CSV")
    missing = [n for n in names if n not in header]
    extra = [h for h in header if h not in names and h != label]
    dup = sorted({h for h in header if header.count(h) > 1})
    if missing or extra or dup:
        what = "; ".join(x for x in (
            f"missing {', '.join(map(short, missing[:5]))}" if missing else "",
            f"not a feature of the model: {', '.join(map(short, extra[:5]))}" if extra else "",
            f"repeated: {', '.join(map(short, dup[:5]))}" if dup else "") if x)
        raise SgdlabError(f"{path}: its columns do not match the {len(names)} features the model was trained on "
                          f"({what}); expected the columns {', '.join(map(short, names[:8]))}"
                          f"{', ...' if len(names) > 8 else ''}" + (f" (and optionally {short(label)})" if label else ""))
    X, _, got = read_table(path, label=label if label in header else None, need_label=False)
    return X[:, [got.index(n) for n in names]]


# --------------------------------------------------------------------------- IDX (MNIST's format)

#: IDX element type code -> big-endian numpy dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def is_idx_path(name) -> bool:
    """True if ``name`` is to be read as an IDX file: its file name contains ``idx``
    (``train-images-idx3-ubyte``, ``t10k-images.idx3-ubyte.gz``) and it is not a .csv/.npz."""
    base = Path(str(name)).name.lower()
    return "idx" in base and not base.endswith((".csv", ".npz"))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain, or gzipped: detected by its magic bytes ``1f 8b``).

    Layout, all big-endian: ``00 00 TT DD``, with ``TT`` the element type (0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and ``DD`` the number
    of dimensions; then ``DD`` uint32 sizes; then the elements in C order.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    numpy.ndarray
        Shape the ``DD`` sizes, the file's element type in native byte order.

    Raises
    ------
    SgdlabError
        Missing or unreadable file, damaged gzip stream, bad magic, unknown type code, no
        dimensions, or a payload that is not exactly ``prod(sizes) * itemsize`` bytes
        (a truncated or padded file).
    """
    p = Path(path)
    if not p.is_file():
        raise SgdlabError(f"no such file: {path}")
    gz = False
    try:
        with open(p, "rb") as f:
            gz = f.read(2) == _GZIP_MAGIC
        f = gzip.open(p, "rb") if gz else open(p, "rb")
        with f:
            raw, shape, dtype = _read_idx_stream(f, path)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise SgdlabError(f"{path}: not a readable {'gzip' if gz else 'IDX'} file ({e})") from None
    data = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _read_idx_stream(f, path):
    """(payload bytes, shape, dtype) from an open IDX stream; the header's declared size is
    checked against :func:`~sgdlab.bounded.data_cap` before the payload is read."""
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00":
        raise SgdlabError(f"{path}: not an IDX file (it must start with bytes 00 00, then the type code "
                          f"and the number of dimensions; it starts with {head[:4].hex(' ') or 'nothing'})")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        valid = ", ".join(f"0x{c:02X} ({np.dtype(t).name})" for c, t in IDX_TYPES.items())
        raise SgdlabError(f"{path}: unknown IDX type code 0x{code:02X}; valid: {valid}")
    if ndim == 0:
        raise SgdlabError(f"{path}: an IDX file needs at least one dimension, the header says 0")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise SgdlabError(f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
                          f"the file has {4 + len(dims)}")
    shape = tuple(int(n) for n in np.frombuffer(dims, dtype=">u4", count=ndim))
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    cap = data_cap()
    if expected > cap:
        raise SgdlabError(f"{path}: the IDX header declares shape {shape} of {dtype.name}, {human(expected)}; more "
                          f"than the {human(cap)} sgdlab reads (set SGDLAB_MAX_FILE_BYTES to raise it)")
    raw = f.read(expected + 1)  # one byte more tells a padded file, without reading the rest
    actual = len(raw)
    if actual > expected:  # count the padding in chunks, never holding it
        while actual <= 2 * cap and (chunk := f.read(1 << 20)):
            actual += len(chunk)
    if actual != expected:
        what = "truncated" if actual < expected else "padded"
        shown = f"{actual}" if actual <= 2 * cap else f"more than {2 * cap}"
        raise SgdlabError(f"{path}: IDX payload is {shown} bytes, expected {expected} for shape "
                          f"{shape} of {dtype.name} ({what} file?)")
    return raw, shape, dtype


def idx_label_candidates(images_path) -> list[Path]:
    """Where MNIST's naming convention puts the labels of ``images_path``: ``images`` ->
    ``labels`` and ``idx3`` -> ``idx1`` in the file name, with and without ``.gz``."""
    p = Path(str(images_path))
    base = p.name.replace("images", "labels").replace("idx3", "idx1")
    if base == p.name:
        return []
    stem = base[:-3] if base.endswith(".gz") else base
    return [p.with_name(n) for n in (base, stem if base != stem else stem + ".gz")]


def _idx_features(raw, path) -> np.ndarray:
    """IDX images ``(n, d1, d2, ...)`` as float64 rows ``(n, d1 * d2 * ...)``; uint8 / 255."""
    if raw.ndim < 2:
        raise SgdlabError(f"{path}: an IDX images file needs 2 or more dimensions (n, ...), "
                          f"this one has shape {raw.shape}")
    X = raw.reshape(raw.shape[0], int(np.prod(raw.shape[1:]))).astype(np.float64)
    if raw.dtype == np.uint8:
        X /= 255.0  # unsigned bytes are pixel intensities 0..255, as in MNIST
    elif not np.all(np.isfinite(X)):
        raise SgdlabError(f"{path}: features must be finite numbers (found NaN or infinity)")
    return X


def read_idx_dataset(images, labels=None):
    """Features and labels from an IDX images file and its IDX labels file.

    Images ``(n, d1, d2, ...)`` become ``X`` of shape ``(n, d1 * d2 * ...)``, features
    named ``px0, px1, ...``. Unsigned-byte pixels are divided by 255 (so they lie in
    [0, 1], as digits' are divided by 16); other element types are loaded as is, as
    float64. ``labels`` is the labels file's path; if None it is looked for beside the
    images (:func:`idx_label_candidates`). Returns ``(X, y, names, imgs)``; ``imgs`` is the
    ``(n, rows, cols)`` array as read when the images are 3-D, else None.
    """
    raw = read_idx(images)
    X = _idx_features(raw, images)
    if labels is None:
        tried = idx_label_candidates(images)
        found = [t for t in tried if t.is_file()]
        if not found:
            names = ", ".join(t.name for t in tried) or "none (the name has neither 'images' nor 'idx3')"
            raise SgdlabError(f"{images}: no IDX labels file found beside it (tried: {names}); "
                              "name it with --label PATH (a study spec: label = \"PATH\")")
        labels = found[0]
    elif not Path(str(labels)).is_file():
        raise SgdlabError(f"no such IDX labels file: {labels} (for an IDX dataset the label is the path "
                          "of the labels file, not a column name)")
    y = read_idx(labels)
    if y.ndim != 1:
        raise SgdlabError(f"{labels}: IDX labels must be 1-D (n,), this file has shape {y.shape}")
    if len(y) != len(raw):
        raise SgdlabError(f"{images} has {len(raw)} images but {labels} has {len(y)} labels; they must match")
    names = [f"px{i}" for i in range(X.shape[1])]
    return X, y, names, raw if raw.ndim == 3 else None


def check_label(dataset, label) -> str | None:
    """Why ``label`` cannot go with ``dataset`` (None if it can): only a CSV (its label column)
    or an IDX dataset (its labels file) takes one; a bundled or NPZ dataset would ignore it."""
    if label is None:
        return None
    if dataset in BUNDLED:
        kind = f"{dataset} is a bundled dataset with its own labels"
    elif str(dataset).lower().endswith(".npz"):
        kind = "an NPZ dataset's labels are its array 'y'"
    else:
        return None
    return (f"{short(label)} given, but {kind}; a label names a CSV file's label column or an IDX dataset's "
            "labels file")


def scale_finite(scaler, X, name) -> np.ndarray:
    """``scaler.transform(X)``, or an :class:`SgdlabError` if the scaling overflowed
    (divide:1e-320, features near the float limit) instead of numpy's warnings."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        X = scaler.transform(X)
    if not np.all(np.isfinite(X)):
        raise SgdlabError(f"{name}: the features scaled by {scaler.kind} are not all finite (they overflow); "
                          "use another scaling (--scale none, standard, minmax or divide:K with a larger K)")
    return X


def _encode_labels(y, path):
    y = np.asarray(y)
    if y.dtype.kind in "fc":
        if not np.all(np.isfinite(y)):
            raise SgdlabError(f"{path}: labels must not be NaN or infinite")
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
    classes, idx = np.unique(y, return_inverse=True)
    return classes, idx.astype(np.int64)


def split_indices(y, split=(0.6, 0.2, 0.2), seed=0):
    """Stratified train / validation / test indices; train gets floor(frac * n) rows."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    idx = np.arange(n)
    train_frac, val_frac, test_frac = split
    try:
        if train_frac >= 1:
            return idx, idx[:0], idx[:0]
        tr, rest = train_test_split(idx, train_size=int(np.floor(train_frac * n)), stratify=y, random_state=seed)
        if test_frac == 0:
            return tr, rest, idx[:0]
        if val_frac == 0:
            return tr, idx[:0], rest
        # The validation part gets the rounding up: digits -> 360 validation, 359 test.
        te, va = train_test_split(rest, test_size=val_frac / (val_frac + test_frac), stratify=y[rest],
                                  random_state=seed)
    except ValueError as e:
        why = str(e) if len(str(e)) <= 300 else str(e)[:300] + "..."  # sklearn lists every too-small class
        raise SgdlabError(f"cannot split {n} samples {split} with stratification: {why}") from None
    return tr, va, te


def load_dataset(name="digits", split=(0.6, 0.2, 0.2), split_seed=0, label=None, scale="auto") -> Dataset:
    """Load a bundled dataset by name, or a CSV/NPZ/IDX file by path, split it and scale it.

    ``scale`` (:mod:`.scale`: ``auto``, ``none``, ``standard``, ``minmax``, ``divide:K``) is
    fitted on the training part and applied to all three; the fitted scaler is
    ``Dataset.scaler``.

    For a CSV, ``label`` names the label column (default: the last). For an IDX images
    file (a name containing ``idx``), ``label`` is the path of the IDX labels file
    (default: found beside the images by MNIST's naming, see :func:`read_idx_dataset`);
    unsigned-byte pixels are divided by 255.
    """
    images = None
    if name in BUNDLED:
        X, y, names, images = _bundled(name)
    elif is_idx_path(name):
        X, y, names, images = read_idx_dataset(name, label)
    elif str(name).lower().endswith((".csv", ".npz")) or Path(str(name)).exists():
        X, y, names = read_table(name, label)
    else:
        raise SgdlabError(f"unknown dataset {name!r}; valid: {', '.join(BUNDLED)}, "
                           "or a .csv/.npz file, or an IDX images file (a name containing 'idx')")
    classes, y = _encode_labels(y, name)
    if len(classes) < 2:
        raise SgdlabError(f"{name}: needs at least two classes, found {len(classes)}")
    tr, va, te = split_indices(y, split, split_seed)
    scaler = fit_scaler(scale, X[tr], str(name))
    X = scale_finite(scaler, X, name)
    return Dataset(str(name), X[tr], y[tr], X[va], y[va], X[te], y[te], classes, names, images, scaler)
