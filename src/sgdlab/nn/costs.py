"""Cost functions: value averaged over samples, and gradient with respect to the output.

``value(a, y)`` is the cost of a minibatch, ``1/n sum_s C_s``; ``grad(a, y)`` is the
per-sample ``dC_s/da`` (rows are samples), *not* divided by ``n``: the network averages
the parameter gradients over the minibatch (paper, step 6).

The shortcut ``dC/dz = a - y`` is exact for three output/cost pairs only
(``SHORTCUTS``): sigmoid + ce, softmax + cce and identity + mse. Every other pair, the
paper's tanh or relu output under ce among them, goes through the chain rule of eq. 5-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import SgdlabError, choose


def _eps(a):
    return np.finfo(a.dtype).eps


def _clip01(a):
    eps = _eps(a)
    return np.clip(a, eps, 1 - eps)


def mse_value(a, y):
    """MSE = 1/(2n) sum_s ||y_s - a_s||^2 (paper)."""
    d = a - y
    return 0.5 * np.sum(d * d, axis=-1).mean(axis=-1)


def mse_grad(a, y):
    return a - y


def ce_value(a, y):
    """CE = -1/n sum_s sum_j [y log a + (1-y) log(1-a)] (paper), outputs clipped to [eps, 1-eps]."""
    a = _clip01(a)
    return -np.sum(y * np.log(a) + (1 - y) * np.log1p(-a), axis=-1).mean(axis=-1)


def ce_grad(a, y):
    # Outside (0, 1) (a tanh or relu output) the clipped value is used: the gradient
    # then becomes huge and the run is allowed to diverge honestly.
    a = _clip01(a)
    return (a - y) / (a * (1 - a))


def cce_value(a, y):
    """CCE = -1/n sum_s sum_j y log a (softmax output), outputs clipped below at eps."""
    return -np.sum(y * np.log(np.maximum(a, _eps(a))), axis=-1).mean(axis=-1)


def cce_grad(a, y):
    return -y / np.maximum(a, _eps(a))


@dataclass(frozen=True)
class Cost:
    name: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]


COSTS: dict[str, Cost] = {
    "mse": Cost("mse", mse_value, mse_grad),
    "ce": Cost("ce", ce_value, ce_grad),
    "cce": Cost("cce", cce_value, cce_grad),
}

# (output activation, cost) pairs for which dC/dz = a - y exactly.
SHORTCUTS = {("sigmoid", "ce"), ("softmax", "cce"), ("identity", "mse")}


def get_cost(name: str) -> Cost:
    return choose("cost", name, COSTS)


def check_pairing(output: str, cost: str) -> None:
    """Raise for output/cost pairs that are undefined (cce needs a softmax output)."""
    if cost == "cce" and output != "softmax":
        raise SgdlabError(
            f"cost 'cce' needs a softmax output layer, not {output!r}; "
            "use --output softmax, or cost 'ce' or 'mse'"
        )
