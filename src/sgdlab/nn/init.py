"""Weight initialisers: named functions of ``(fan_in, fan_out, rng)`` returning ``W``.

``xavier`` is the paper's: a standard normal divided by sqrt(fan_in). ``glorot`` is
Glorot & Bengio's normal form (variance 2/(fan_in+fan_out)); ``he`` has variance 2/fan_in.
Biases: ``normal`` (N(0,1), the paper's) or ``zeros``.
"""

from __future__ import annotations

import numpy as np

from ..errors import choose


def gaussian(fan_in, fan_out, rng):
    return rng.standard_normal((fan_in, fan_out))


def xavier(fan_in, fan_out, rng):
    return rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)


def glorot(fan_in, fan_out, rng):
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / (fan_in + fan_out))


def he(fan_in, fan_out, rng):
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)


INITS = {"gaussian": gaussian, "xavier": xavier, "glorot": glorot, "he": he}
BIAS_INITS = {
    "normal": lambda fan_out, rng: rng.standard_normal(fan_out),
    "zeros": lambda fan_out, rng: np.zeros(fan_out),
}


def init_params(sizes, init="xavier", bias_init="normal", rng=None, dtype=np.float64):
    """Initial ``(weights, biases)`` for layer sizes ``sizes``, drawn layer by layer from ``rng``.

    Each layer draws its weights, then its biases, so the same rng gives the same network
    whichever engine asks for it.
    """
    wfn = choose("init", init, INITS)
    bfn = choose("bias init", bias_init, BIAS_INITS)
    rng = np.random.default_rng(rng)
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weights.append(np.asarray(wfn(fan_in, fan_out, rng), dtype=dtype))
        biases.append(np.asarray(bfn(fan_out, rng), dtype=dtype))
    return weights, biases
