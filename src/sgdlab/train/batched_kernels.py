"""Elementwise kernels of the batched engine, written into preallocated buffers.

``forward_into(name)`` and ``times_derivative(name)`` are an activation and its chain rule
in place. They do the same floating-point operations, in the same order, as the single
engine's fast path (:class:`sgdlab.nn.network.PackedNetwork`), so a model trained in a stack
takes the same steps as alone. Samples are columns: an array of activations is
``(K, units, n)`` and softmax normalises over the units axis, ``-2``.
``tests/test_batched.py`` checks them against :mod:`sgdlab.nn.activations`.
"""

from __future__ import annotations

import numpy as np

from ..nn.activations import LEAKY_SLOPE


# -- training: in place, the single engine's fast-path arithmetic ---------------------------

def _sigmoid_into(z, out):
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)


def _leaky_relu_into(z, out):
    np.multiply(z, LEAKY_SLOPE, out=out)
    np.maximum(z, out, out=out)  # max(z, slope z) for 0 < slope < 1


def _softmax_into(z, out):
    # units on axis -2 (samples are columns)
    np.subtract(z, z.max(axis=-2, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-2, keepdims=True)


_FORWARD_INTO = {
    "sigmoid": _sigmoid_into,
    "tanh": lambda z, out: np.tanh(z, out=out),
    "relu": lambda z, out: np.maximum(z, 0, out=out),
    "leaky_relu": _leaky_relu_into,
    "identity": lambda z, out: np.copyto(out, z),
    "softmax": _softmax_into,
}


def _sigmoid_times(delta, z, a, tmp):
    np.subtract(1, a, out=tmp)
    tmp *= a
    delta *= tmp


def _tanh_times(delta, z, a, tmp):
    np.multiply(a, a, out=tmp)
    np.subtract(1, tmp, out=tmp)
    delta *= tmp


def _relu_times(delta, z, a, tmp):
    delta *= z > 0


def _leaky_relu_times(delta, z, a, tmp):
    delta *= np.where(z > 0, 1.0, LEAKY_SLOPE).astype(delta.dtype, copy=False)


_TIMES = {
    "sigmoid": _sigmoid_times,
    "tanh": _tanh_times,
    "relu": _relu_times,
    "leaky_relu": _leaky_relu_times,
    "identity": None,  # f' = 1
}


def forward_into(name: str):
    """``f(z, out)``: activation ``name`` of ``z`` written into ``out``."""
    return _FORWARD_INTO[name]


def times_derivative(name: str):
    """``g(delta, z, a, tmp)``: ``delta *= f'(z)`` in place (``tmp`` is scratch); None for
    the identity and for softmax (not elementwise)."""
    return _TIMES.get(name)
