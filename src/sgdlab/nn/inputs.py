"""Checks of the arrays handed to a network at the public boundary: features, class labels,
one-hot targets.

A wrong shape, a NaN or a label out of range would otherwise fail deep inside numpy (a
broadcasting error naming no argument) or, worse, pass silently: a label of ``-1`` indexes the
last class, ``NaN`` features train a network to NaN and call it diverged. Each check raises
:class:`~sgdlab.errors.SgdlabError` naming the argument, what it is and what would be valid.
"""

from __future__ import annotations

import numpy as np

from ..errors import SgdlabError


def _array(values, name: str) -> np.ndarray:
    """``values`` as a numeric numpy array (lists, ints and bools are fine; text is not)."""
    a = np.asarray(values)
    if a.dtype.kind in "biuf":
        return a
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError):
        example = f" (e.g. {a.ravel()[0].item()!r})" if a.size else ""
        raise SgdlabError(f"{name}: expected numbers, got an array of {a.dtype}{example}") from None


def check_features(X, n_features: int | None = None, name: str = "X",
                   source: str = "the network takes") -> np.ndarray:
    """``X`` as a 2-D numeric array ``(n_samples, n_features)`` of finite numbers.

    ``n_features``: the count required (None: any); ``source`` says who requires it."""
    a = _array(X, name)
    if a.ndim != 2:
        raise SgdlabError(f"{name}: expected a 2-D array (n_samples, n_features), got shape {a.shape}"
                          + ("; one sample is X.reshape(1, -1)" if a.ndim == 1 else ""))
    if n_features is not None and a.shape[1] != n_features:
        raise SgdlabError(f"{name}: {a.shape[1]} features per row, {source} {n_features}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        row = int(np.argmax(~np.isfinite(a).all(axis=1)))
        raise SgdlabError(f"{name}: row {row} holds NaN or infinity; features must be finite numbers")
    return a


def check_labels(y, n_classes: int, n_samples: int | None = None, name: str = "y") -> np.ndarray:
    """``y`` as a 1-D integer array of class indices ``0..n_classes-1``, one per sample.

    Whole numbers stored as floats (``1.0``) are taken; anything else is an error."""
    a = _array(y, name)
    if a.ndim != 1:
        raise SgdlabError(f"{name}: expected a 1-D array of class indices, got shape {a.shape}"
                          + ("; one-hot rows become indices with Y.argmax(axis=1)" if a.ndim == 2 else ""))
    if n_samples is not None and len(a) != n_samples:
        raise SgdlabError(f"{name}: {len(a)} labels for {n_samples} samples; give one label per row")
    if a.dtype.kind == "f":
        whole = np.isfinite(a) & (a == np.round(a))
        if not whole.all():
            raise SgdlabError(f"{name}: labels must be class indices 0..{n_classes - 1}, got "
                              f"{a[~whole][0].item()!r}")
    if a.dtype.kind == "b":
        raise SgdlabError(f"{name}: labels must be class indices 0..{n_classes - 1}, got booleans")
    a = a.astype(np.intp, copy=False)
    bad = (a < 0) | (a >= n_classes)
    if bad.any():
        raise SgdlabError(f"{name}: label {int(a[bad][0])} is not a class index; valid: 0..{n_classes - 1} "
                          f"({n_classes} classes)")
    return a


def check_targets(Y, n_outputs: int, n_samples: int | None = None, name: str = "Y") -> np.ndarray:
    """``Y`` as a 2-D array ``(n_samples, n_outputs)`` of finite targets (one-hot rows, usually)."""
    a = _array(Y, name)
    if a.ndim != 2 or a.shape[1] != n_outputs or (n_samples is not None and a.shape[0] != n_samples):
        rows = "n_samples" if n_samples is None else n_samples
        hint = "; class labels become targets with sgdlab.nn.one_hot(y, n_classes)" if a.ndim == 1 else ""
        raise SgdlabError(f"{name}: expected shape ({rows}, {n_outputs}) (one row per sample, one column per "
                          f"output), got {a.shape}{hint}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise SgdlabError(f"{name}: holds NaN or infinity; targets must be finite numbers")
    return a
