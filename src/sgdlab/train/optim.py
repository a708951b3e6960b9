"""Stochastic gradient descent with optional momentum (classical or Nesterov) and L2.

The update follows PyTorch's ``torch.optim.SGD`` (dampening 0) so trajectories can be
compared with it exactly:

    g = grad + l2 * W          (L2 on weights only, not on biases)
    v = momentum * v + g       (velocity kept here, not in the network)
    step = g + momentum * v    if nesterov else v
    p = p - lr * step
"""

from __future__ import annotations

import numpy as np


class SGD:
    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, l2: float = 0.0):
        self.lr, self.momentum, self.nesterov, self.l2 = lr, momentum, nesterov, l2
        self.velocity: list[np.ndarray] | None = None

    def step(self, weights, biases, grads) -> None:
        """Update ``weights`` and ``biases`` in place from a :class:`Gradients`."""
        params = [*weights, *biases]
        gs = list(grads.weights) + list(grads.biases)
        if self.l2:
            for i, W in enumerate(weights):
                gs[i] = gs[i] + self.l2 * W
        if self.momentum:
            if self.velocity is None:
                self.velocity = [g.copy() for g in gs]
            else:
                for v, g in zip(self.velocity, gs):
                    v *= self.momentum
                    v += g
            if self.nesterov:
                gs = [g + self.momentum * v for g, v in zip(gs, self.velocity)]
            else:
                gs = self.velocity
        lr = self.lr
        for p, g in zip(params, gs):
            p -= lr * g
