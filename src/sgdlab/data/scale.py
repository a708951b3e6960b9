"""Feature scaling that travels with the model: a named choice, fitted on the training part.

Every scaling is ``(X - shift) / scale`` per feature:

``none``
    features as read (shift 0, scale 1).
``standard``
    shift the training part's mean, scale its standard deviation (1 where it is 0).
``minmax``
    shift the training part's minimum, scale its range (1 where it is 0), so the training
    features lie in [0, 1].
``divide:K``
    shift 0, scale ``K`` (K > 0), e.g. ``divide:16`` for digits' 0-16 pixels.
``auto``
    the dataset's default (:data:`DEFAULTS`): ``divide:16`` for digits, ``standard`` for
    iris, wine and breast_cancer, ``none`` for a CSV/NPZ/IDX file (an IDX file's
    unsigned-byte pixels are already divided by 255 when read).

The fitted :class:`Scaler` (kind, shift, scale) is saved in the model file's metadata
(:mod:`sgdlab.io`) and applied by ``sgdlab predict``, so a saved model predicts from the
same raw features it was trained from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SgdlabError

KINDS = ("none", "standard", "minmax", "divide:K")
#: ``scale="auto"`` per bundled dataset; anything else (a file) is ``none``
DEFAULTS = {"digits": "divide:16", "iris": "standard", "wine": "standard", "breast_cancer": "standard"}
VALID = "auto, none, standard, minmax or divide:K (K > 0)"


def check_scale(text) -> str:
    """Validate a scaling name; returns it (``divide:K`` with K as written)."""
    if not isinstance(text, str):
        raise SgdlabError(f"scale: expected one of {VALID}, got {text!r}")
    if text in ("auto", "none", "standard", "minmax"):
        return text
    if text.startswith("divide:"):
        try:
            k = float(text[len("divide:"):])
        except ValueError:
            k = float("nan")
        if math.isfinite(k) and k > 0:
            return text
    raise SgdlabError(f"scale: unknown value {text!r}; valid: {VALID}")


def resolve(scale: str, dataset: str) -> str:
    """``auto`` -> the dataset's default (:data:`DEFAULTS`); anything else as given."""
    scale = check_scale(scale)
    return DEFAULTS.get(str(dataset), "none") if scale == "auto" else scale


@dataclass(frozen=True)
class Scaler:
    """A fitted per-feature scaling ``(X - shift) / scale``.

    ``kind`` is the resolved name (never ``auto``); ``shift`` and ``scale`` have one entry
    per feature, scale > 0.
    """

    kind: str
    shift: np.ndarray
    scale: np.ndarray

    @property
    def n_features(self) -> int:
        return len(self.shift)

    def transform(self, X) -> np.ndarray:
        """``(X - shift) / scale``, shape ``(n, n_features)`` -> same, float64."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise SgdlabError(f"features: expected {self.n_features} columns, got shape {X.shape}")
        return (X - self.shift) / self.scale

    def to_dict(self) -> dict:
        """JSON-able form (floats written with repr, so they read back bit for bit)."""
        return {"kind": self.kind, "shift": [float(x) for x in self.shift],
                "scale": [float(x) for x in self.scale]}

    @classmethod
    def from_dict(cls, d, n_features: int) -> "Scaler":
        """Rebuild and check a saved scaler: ``n_features`` finite shifts, finite scales > 0."""
        if not isinstance(d, dict) or set(d) != {"kind", "shift", "scale"}:
            raise SgdlabError("preprocess: expected an object with kind, shift and scale")
        kind = d["kind"]
        if kind == "auto" or check_scale(kind) != kind:
            raise SgdlabError(f"preprocess: unknown kind {kind!r}")
        out = []
        for name in ("shift", "scale"):
            v = d[name]
            if not isinstance(v, list) or len(v) != n_features or \
                    any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                raise SgdlabError(f"preprocess: {name} must be a list of {n_features} numbers (one per feature)")
            a = np.asarray(v, dtype=np.float64)
            if not np.all(np.isfinite(a)):
                raise SgdlabError(f"preprocess: {name} holds non-finite values")
            out.append(a)
        if np.any(out[1] <= 0):
            raise SgdlabError("preprocess: scale must be > 0 for every feature")
        return cls(kind, out[0], out[1])

    @classmethod
    def identity(cls, n_features: int) -> "Scaler":
        return cls("none", np.zeros(n_features), np.ones(n_features))


def fit(scale: str, X_train, dataset: str = "") -> Scaler:
    """Fit ``scale`` (``auto`` resolved for ``dataset``) on the training rows ``X_train``."""
    kind = resolve(scale, dataset)
    X = np.asarray(X_train, dtype=np.float64)
    d = X.shape[1]
    if kind == "none":
        return Scaler.identity(d)
    if kind.startswith("divide:"):
        return Scaler(kind, np.zeros(d), np.full(d, float(kind[len("divide:"):])))
    if len(X) == 0:
        raise SgdlabError(f"scale {kind}: no training rows to fit it on")
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "standard":
            shift, spread = X.mean(axis=0), X.std(axis=0)
        else:  # minmax
            shift, spread = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(spread))):  # the model file could not be loaded
        raise SgdlabError(f"scale {kind}: the training features are too large for it (their "
                          f"{'mean or standard deviation' if kind == 'standard' else 'range'} overflows); "
                          "use scale none or divide:K")
    return Scaler(kind, shift, np.where(spread > 0, spread, 1.0))
