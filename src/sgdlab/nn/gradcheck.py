"""Central finite differences against backpropagation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    out = []
    for p in net.params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = net.loss(X, Y)
            flat[i] = old - eps
            down = net.loss(X, Y)
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        out.append(g)
    return out


def _rel(a, b):
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def gradcheck(net: Network, X, Y, eps=1e-6) -> GradcheckResult:
    """Compare backprop's gradients with central differences (use float64)."""
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
