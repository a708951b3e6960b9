"""In-place chain-rule kernels shared by the single engine's fast path and the batched engine.

``TIMES_DERIVATIVE[name](delta, z, a, tmp)`` does ``delta *= f'(z)`` for an elementwise
activation, from the output ``a`` where that is cheaper (``a (1 - a)``, ``1 - a^2``), with
``tmp`` as scratch of ``delta``'s shape and no allocation; ``None`` for the identity (f' = 1).
Any layout works (samples as rows or columns, with or without a model axis): the kernels are
elementwise. Same values as :mod:`sgdlab.nn.activations` up to float rounding.
"""

from __future__ import annotations

import numpy as np

from .activations import LEAKY_SLOPE

# A Python number in a ufunc call costs about as much as the operation itself on these
# small arrays (dtype discovery and promotion); 0-d arrays of the right dtype do not.
ONES = {np.dtype(t): np.ones((), dtype=t) for t in (np.float64, np.float32)}


def sigmoid_times(delta, z, a, tmp):
    np.subtract(ONES[tmp.dtype], a, out=tmp)
    tmp *= a
    delta *= tmp


def tanh_times(delta, z, a, tmp):
    np.multiply(a, a, out=tmp)
    np.subtract(ONES[tmp.dtype], tmp, out=tmp)
    delta *= tmp


def relu_times(delta, z, a, tmp):
    np.greater(z, 0, out=tmp)  # 1.0 or 0.0
    delta *= tmp


def leaky_relu_times(delta, z, a, tmp):
    np.greater(z, 0, out=tmp)
    tmp *= 1 - LEAKY_SLOPE
    tmp += LEAKY_SLOPE  # 1.0 where z > 0, LEAKY_SLOPE elsewhere
    delta *= tmp


TIMES_DERIVATIVE = {
    "sigmoid": sigmoid_times,
    "tanh": tanh_times,
    "relu": relu_times,
    "leaky_relu": leaky_relu_times,
    "identity": None,  # f' = 1
}
