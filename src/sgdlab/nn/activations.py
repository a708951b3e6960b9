"""Activation functions: value ``fn(z)`` and vector-Jacobian product ``backward``.

Every function works on arrays of any shape whose last axis holds the units of a layer,
so the single engine (``(n, units)``) and the batched engine (``(models, n, units)``)
share them. Derivatives are written from the activation's *output* ``a`` where that is
cheaper (sigmoid, tanh), as scikit-learn does.

``backward(z, a, grad_a)`` returns ``dC/dz`` given ``dC/da``: for the elementwise
functions that is ``grad_a * f'(z)`` (paper eq. 6); softmax couples the units of a row,
so it takes the full Jacobian-vector product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import choose

LEAKY_SLOPE = 0.01


def sigmoid(z):
    """sigma(z) = 1 / (1 + exp(-z)), without overflow for any finite z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def softmax(z):
    """softmax(z)_i = exp(z_i) / sum_j exp(z_j) over the last axis, shifted by the row max."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def relu(z):
    return np.maximum(z, 0)


def leaky_relu(z):
    return np.where(z > 0, z, LEAKY_SLOPE * z)


@dataclass(frozen=True)
class Activation:
    """An activation: ``fn(z) -> a`` and ``backward(z, a, grad_a) -> grad_z``."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray] | None  # f'(z) elementwise; None for softmax

    def __call__(self, z):
        return self.fn(z)


def _elementwise(name, fn, deriv):
    return Activation(name, fn, lambda z, a, g: g * deriv(z, a), deriv)


def _softmax_backward(z, a, g):
    # J^T g for J = diag(a) - a a^T, row by row.
    return a * (g - (g * a).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": _elementwise("sigmoid", sigmoid, lambda z, a: a * (1 - a)),
    "tanh": _elementwise("tanh", np.tanh, lambda z, a: 1 - a * a),
    "relu": _elementwise("relu", relu, lambda z, a: (z > 0).astype(z.dtype)),
    "leaky_relu": _elementwise(
        "leaky_relu", leaky_relu, lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)
    ),
    "identity": Activation("identity", lambda z: z, lambda z, a, g: g, lambda z, a: np.ones_like(z)),
    "softmax": Activation("softmax", softmax, _softmax_backward, None),
}

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")


def get_activation(name: str) -> Activation:
    return choose("activation", name, ACTIVATIONS)
