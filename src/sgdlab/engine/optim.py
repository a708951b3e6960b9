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
    """SGD's settings and state (the velocities); :meth:`step` updates parameters in place.

    ``step`` works on the network's lists of arrays; ``step_flat`` does the same update on
    one flat parameter array (the training loop's fast path, see
    :class:`sgdlab.engine.packed.PackedNetwork`). Each keeps its own velocity: use one or
    the other on a given optimizer.
    """

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, l2: float = 0.0):
        self.lr, self.momentum, self.nesterov, self.l2 = lr, momentum, nesterov, l2
        self.velocity: list[np.ndarray] | None = None
        self.flat_velocity: np.ndarray | None = None
        self._scratch: np.ndarray | None = None
        self._decay: np.ndarray | None = None
        self._lr: np.ndarray | None = None

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

    def step_flat(self, theta: np.ndarray, grad: np.ndarray, weight_mask: np.ndarray | None = None) -> None:
        """Update the flat parameters ``theta`` in place from the flat gradient ``grad``.

        The same update as :meth:`step`, element for element. ``weight_mask`` is 1 where a
        parameter is a weight and 0 where it is a bias (L2 decays weights only); it is
        needed only when ``l2 > 0``. ``grad`` is used as scratch and overwritten.
        """
        tmp = self._scratch
        if tmp is None or tmp.shape != theta.shape or tmp.dtype != theta.dtype:
            tmp = self._scratch = np.empty_like(theta)
        decay = None
        if self.l2:
            if self._decay is None or self._decay.shape != theta.shape:
                if weight_mask is None:
                    raise ValueError("step_flat with l2 > 0 needs weight_mask")
                self._decay = (self.l2 * np.asarray(weight_mask)).astype(theta.dtype)
            decay = self._decay
        lr = self._lr
        if lr is None or lr.dtype != theta.dtype or lr != self.lr:
            lr = self._lr = np.array(self.lr, dtype=theta.dtype)  # 0-d: cheaper than a float here
        self.flat_velocity = flat_update(theta, grad, tmp, lr, decay=decay, momentum=self.momentum or None,
                                         nesterov=self.nesterov, velocity=self.flat_velocity)


def flat_update(theta, grad, tmp, lr, *, decay=None, momentum=None, nesterov=False, velocity=None):
    """``theta -= lr * step`` in place, the update of :class:`SGD` on flat arrays; returns the
    velocity (None without momentum).

    ``g = grad + decay * theta``; ``v = momentum * v + g`` (``v = g`` on the first step);
    ``step = g + momentum * v`` (Nesterov) or ``v``. ``lr``, ``decay``, ``momentum`` and
    ``nesterov`` are scalars, or arrays broadcasting against ``theta`` (the batched engine
    passes one value per model; ``nesterov`` then a boolean column). ``grad`` and ``tmp``
    (scratch of ``theta``'s shape) are overwritten. Shared by the single engine's fast path
    and the batched engine, so both follow the same rule.
    """
    g = grad
    if decay is not None:
        np.multiply(theta, decay, out=tmp)  # l2 * W (exactly; 0 for biases)
        g += tmp
    if momentum is not None:
        if velocity is None:
            velocity = g.copy()
        else:
            velocity *= momentum
            velocity += g
        if nesterov is True:
            np.multiply(velocity, momentum, out=tmp)
            g += tmp
        elif nesterov is False or nesterov is None:
            g = velocity
        else:  # per-model choice
            np.multiply(velocity, momentum, out=tmp)
            g = np.where(nesterov, np.add(g, tmp), velocity)
    np.multiply(g, lr, out=tmp)
    theta -= tmp
    return velocity
