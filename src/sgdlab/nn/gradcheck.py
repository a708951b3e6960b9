"""Central finite differences against backpropagation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SgdlabError
from .network import Network


@dataclass
class GradcheckResult:
    """Norm-wise relative error ``||g - g_fd|| / (||g|| + ||g_fd||)`` and the largest |g - g_fd|."""

    relative_error: float
    max_abs_diff: float
    n_params: int
    per_layer: list[dict]

    def passed(self, tol=1e-6) -> bool:
        return self.relative_error < tol


def numerical_gradients(net: Network, X, Y, eps=1e-6):
    """dC/dp for every parameter by (C(p+eps) - C(p-eps)) / 2eps, in the network's dtype."""
    X, Y, _ = net._checked(X, Y)  # once, not at each of the 2 * n_params evaluations
    loss = lambda: float(net._cost.value(net.forward(X)[1][-1], Y))  # noqa: E731
    out = []
    for p in net.params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        out.append(g)
    return out


def _rel(a, b):
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def gradcheck(net: Network, X, Y, eps=1e-6) -> GradcheckResult:
    """Compare backprop's gradients with central differences (use float64).

    ``X``: ``(n_samples, sizes[0])`` inputs, at least one row; ``Y``: ``(n_samples, sizes[-1])``
    targets (one-hot rows: :func:`sgdlab.nn.one_hot`); ``eps``: the finite-difference step, > 0."""
    if not isinstance(net, Network):
        raise SgdlabError(f"net: expected an sgdlab.Network, got {type(net).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not math.isfinite(eps) or eps <= 0:
        raise SgdlabError(f"eps: the finite-difference step must be a number > 0, got {eps!r}")
    if len(np.shape(X)) and not np.shape(X)[0]:
        raise SgdlabError("X: no samples; gradcheck needs at least one row")
    g = net.gradients(X, Y)
    analytic = [p for wb in zip(g.weights, g.biases) for p in wb]
    numeric = numerical_gradients(net, X, Y, eps)
    a = np.concatenate([p.ravel() for p in analytic])
    n = np.concatenate([p.ravel() for p in numeric])
    per_layer = []
    for i, (pa, pn) in enumerate(zip(analytic, numeric)):
        per_layer.append({"param": f"{'Wb'[i % 2]}{i // 2}", "relative_error": _rel(pa, pn),
                          "max_abs_diff": float(np.max(np.abs(pa - pn)))})
    return GradcheckResult(_rel(a, n), float(np.max(np.abs(a - n))), int(a.size), per_layer)
