"""Save and load trained networks: ``.npz`` arrays plus JSON metadata, never pickle.

The file holds ``W0, b0, W1, b1, ...`` and ``meta``, a JSON string with the layer sizes,
activations, cost, dtype, class labels and sgdlab version. Loading uses
``allow_pickle=False`` and checks every array's shape and dtype against the metadata, so
a truncated, tampered or foreign file is a clear :class:`SgdlabError`, never code execution.

``preprocess`` in the metadata is the feature scaling fitted on the training part
(:class:`sgdlab.data.scale.Scaler` as ``{"kind", "shift", "scale"}``). :func:`load` checks
it and returns it, rebuilt, as ``meta["scaler"]``; predict from raw features with::

    net, meta = sgdlab.load("model.npz")
    labels = net.predict(meta["scaler"].transform(X_raw))   # class indices into meta["classes"]

A file written before ``preprocess`` existed loads with a one-line warning
(:class:`NoPreprocessingWarning`) and an identity ``meta["scaler"]``: it expects features
already scaled as in its training.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .data.scale import Scaler
from .errors import SgdlabError
from .nn.network import Network

FORMAT = "sgdlab-network"
FORMAT_VERSION = 1


class NoPreprocessingWarning(UserWarning):
    """A model file from before ``preprocess`` was saved: features are used as given."""


def save(network: Network, path, classes=None, extra: dict | None = None, features=None,
         scaler: Scaler | None = None) -> Path:
    """Write ``network`` to ``path`` (``.npz`` appended if missing), atomically, with the
    permissions the umask gives a new file.

    ``features`` names the input columns in order (a CSV's header without the label);
    ``predict`` then matches a CSV's columns by these names. ``scaler`` is the feature
    scaling the network was trained behind (``Dataset.scaler``); None saves an identity
    scaling (features used as given)."""
    from ._version import __version__

    if not isinstance(network, Network):
        raise SgdlabError(f"save: network must be an sgdlab Network, got {type(network).__name__}")
    network.check_parameters()
    if not network.finite():
        raise SgdlabError("save: the network holds NaN or infinity (a diverged network); load would refuse it")
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise SgdlabError(f"save: path must be a file path, got {path!r}")
    if classes is not None:
        classes = list(classes)
        if len(classes) != network.sizes[-1]:
            raise SgdlabError(f"save: {len(classes)} class labels for a network of {network.sizes[-1]} outputs")
    if features is not None:
        features = [str(f) for f in features]
        if len(features) != network.sizes[0]:
            raise SgdlabError(f"save: {len(features)} feature names for a network of {network.sizes[0]} inputs")
    if scaler is not None and not isinstance(scaler, Scaler):
        raise SgdlabError(f"save: scaler must be a sgdlab.data.scale.Scaler (Dataset.scaler) or None, "
                          f"got {type(scaler).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "sgdlab_version": __version__,
            "sizes": network.sizes, "activation": network.activation, "output": network.output,
            "cost": network.cost, "dtype": network.dtype, "ce_outside": network.ce_outside,
            "classes": None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes],
            "extra": extra or {}}
    if scaler is None:
        scaler = Scaler.identity(network.sizes[0])
    if scaler.n_features != network.sizes[0]:
        raise SgdlabError(f"scaler: {scaler.n_features} features, the network has {network.sizes[0]} inputs")
    meta["preprocess"] = scaler.to_dict()
    if features is not None:
        meta["features"] = features
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SgdlabError(f"save: classes and extra must be JSON values (text, numbers, lists, dicts): {e}") from None
    arrays = {f"{'W' if i % 2 == 0 else 'b'}{i // 2}": p for i, p in enumerate(network.params)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(text), **arrays)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a saved model is an ordinary file
        os.replace(tmp, path)
    except OSError as e:
        raise SgdlabError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _bad(path, why):
    return SgdlabError(f"{path}: not a valid sgdlab model file ({why})")


def _shapes(sizes) -> dict[str, tuple[int, ...]]:
    """The shape of every array of a network of layer ``sizes``: ``W0, ..., b0, ...``."""
    shapes = {f"W{l}": (a, b) for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}
    return shapes | {f"b{l}": (b,) for l, b in enumerate(sizes[1:])}


def _check_declared(path, meta, heads) -> None:
    """The arrays' declared shapes against the layer sizes in ``meta``, before reading them."""
    sizes = meta.get("sizes")
    if not (isinstance(sizes, list) and len(sizes) >= 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes)):
        raise _bad(path, f"layer sizes {sizes!r} are not a list of positive integers")
    expected = _shapes(sizes)
    declared = {k: v[0] for k, v in heads.items() if k != "meta"}
    if declared != expected:
        bad = sorted(set(declared) ^ set(expected)) or [k for k in expected if declared[k] != expected[k]]
        raise _bad(path, f"arrays {bad[:4]} do not match the layer sizes {sizes}")


def load(path) -> tuple[Network, dict]:
    """Read a network saved by :func:`save`; returns ``(network, metadata)``."""
    from .bounded import MAX_MODEL_BYTES, npz_headers

    if not isinstance(path, (str, os.PathLike)):
        raise SgdlabError(f"load: path must be a file path, got {path!r}")
    p = Path(path)
    if not p.is_file():
        raise SgdlabError(f"no such model file: {path}")
    try:  # is_zipfile alone says False for a file it cannot open: "not an .npz" would mislead
        with open(p, "rb") as f:
            is_zip = zipfile.is_zipfile(f)
    except OSError as e:
        raise SgdlabError(f"cannot read the model file {path}: {e.strerror or e}") from None
    if is_zip:
        # Sizes declared in the headers are checked before numpy allocates anything.
        try:
            heads = npz_headers(p, MAX_MODEL_BYTES, "model file")
        except SgdlabError as e:
            raise _bad(path, str(e).split(": ", 1)[-1]) from None
        if "meta" in heads and (heads["meta"][0] != () or heads["meta"][1].itemsize > (4 << 20)):
            raise _bad(path, "its metadata is not a short JSON string")
    else:
        # A bare .npy array or a pickle: np.load would hand back an array (read whole) or
        # need pickle; neither is a model file.
        raise _bad(path, "not an .npz archive; sgdlab never unpickles files")
    try:
        with np.load(p, allow_pickle=False) as z:
            files = set(z.files)
            if "meta" not in files:
                raise _bad(path, "no metadata")
            meta = json.loads(str(z["meta"][()]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise _bad(path, "wrong format tag")
            _check_declared(path, meta, heads)
            arrays = {k: z[k] for k in files if k != "meta"}
    except SgdlabError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, json.JSONDecodeError) as e:
        raise _bad(path, f"{type(e).__name__}: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"format version {meta.get('format_version')!r}, this sgdlab reads {FORMAT_VERSION}")
    try:
        net = Network(meta["sizes"], meta["activation"], meta["output"], meta["cost"], meta["dtype"],
                      meta.get("ce_outside", "clip"))
    except (KeyError, TypeError) as e:
        raise _bad(path, f"incomplete metadata: {e}") from None
    except SgdlabError as e:
        raise _bad(path, str(e)) from None
    expected = _shapes(net.sizes)
    if set(arrays) != set(expected):
        raise _bad(path, f"arrays {sorted(arrays)} do not match the layer sizes {net.sizes}")
    for k, shape in expected.items():
        a = arrays[k]
        if a.shape != shape or a.dtype != np.dtype(net.dtype):
            raise _bad(path, f"{k} has shape {a.shape} and dtype {a.dtype}, expected {shape} {net.dtype}")
        if not np.all(np.isfinite(a)):
            raise _bad(path, f"{k} holds non-finite values")
    net.weights = [arrays[f"W{l}"] for l in range(len(net.sizes) - 1)]
    net.biases = [arrays[f"b{l}"] for l in range(len(net.sizes) - 1)]
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) != net.sizes[-1]):
        raise _bad(path, "class labels do not match the output size")
    if "preprocess" in meta:
        try:
            meta["scaler"] = Scaler.from_dict(meta["preprocess"], net.sizes[0])
        except SgdlabError as e:
            raise _bad(path, str(e)) from None
    else:
        import warnings

        warnings.warn(f"{path}: saved by an older sgdlab, it carries no preprocessing; features are used as "
                      "given (scale them as in its training)", NoPreprocessingWarning, stacklevel=2)
        meta["scaler"] = Scaler.identity(net.sizes[0])
    return net, meta
