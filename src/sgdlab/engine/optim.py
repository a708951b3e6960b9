"""Stochastic gradient descent with optional momentum (classical or Nesterov) and L2.

The update follows PyTorch's ``torch.optim.SGD`` (dampening 0) so trajectories can be
compared with it exactly:

    g = grad + l2 * W          (L2 on weights only, not on biases)
    v = momentum * v + g       (velocity kept here, not in the network)
    step = g + momentum * v    if nesterov else v
    p = p - lr * step

It is written once, :func:`sgd_update`, applied per array: to each of the reference
network's weight and bias arrays (:meth:`SGD.step`), to the single engine's one flat array
(:meth:`SGD.step_flat`) and to the batched engine's stack of models (per-model settings as
arrays).
"""

from __future__ import annotations

import numpy as np


def sgd_update(theta, grad, tmp, lr, *, decay=None, momentum=None, nesterov=False, velocity=None):
    """``theta -= lr * step`` in place, the update of :class:`SGD` on one array; returns the
    velocity (None without momentum).

    ``g = grad + decay * theta``; ``v = momentum * v + g`` (``v = g`` on the first step);
    ``step = g + momentum * v`` (Nesterov) or ``v``. ``lr``, ``decay``, ``momentum`` and
    ``nesterov`` are scalars, or arrays broadcasting against ``theta`` (the batched engine
    passes one value per model; ``nesterov`` then a boolean column). ``lr=None``: ``grad``
    already carries the learning rate (the batched engine folds it into the output delta),
    so the step is ``theta -= grad``. ``grad`` and ``tmp`` (scratch of ``theta``'s shape) are
    overwritten.
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
    if lr is None:
        theta -= g
        return velocity
    np.multiply(g, lr, out=tmp)
    theta -= tmp
    return velocity


class SGD:
    """SGD's settings and state; :meth:`step` and :meth:`step_flat` update parameters in place
    with :func:`sgd_update`, one array at a time.

    ``velocity`` holds one array per parameter array updated (None before the first step
    with momentum): the reference network's ``W0, ..., b0, ...`` under :meth:`step`, the
    single flat array under :meth:`step_flat`; an optimizer follows one layout.
    """

    _lr_of = None  # the value ``_lr`` was built from (a class default for SGDs pickled without it)

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, l2: float = 0.0):
        self.lr, self.momentum, self.nesterov, self.l2 = lr, momentum, nesterov, l2
        self.velocity: list[np.ndarray | None] | None = None
        self._scratch: list[np.ndarray] = []
        self._decay: np.ndarray | None = None
        self._lr: np.ndarray | None = None

    def _apply(self, params, grads, decays) -> None:
        if len(self._scratch) != len(params) or any(t.shape != p.shape or t.dtype != p.dtype
                                                    for t, p in zip(self._scratch, params)):
            self._scratch = [np.empty_like(p) for p in params]
        lr = self._lr
        # checked against the value it was built from, not its own value: in float32,
        # float32(0.1) != 0.1, and the array would be rebuilt on every step
        if lr is None or lr.dtype != params[0].dtype or self._lr_of != self.lr:
            lr = self._lr = np.array(self.lr, dtype=params[0].dtype)  # 0-d: cheaper than a float here
            self._lr_of = self.lr
        velocity = self.velocity or [None] * len(params)
        momentum = self.momentum or None
        self.velocity = [sgd_update(p, g, tmp, lr, decay=d, momentum=momentum, nesterov=self.nesterov, velocity=v)
                         for p, g, tmp, d, v in zip(params, grads, self._scratch, decays, velocity)]
        if momentum is None:
            self.velocity = None

    def step(self, weights, biases, grads) -> None:
        """Update ``weights`` and ``biases`` in place from a :class:`~sgdlab.nn.network.Gradients`
        (its arrays are used as scratch and overwritten)."""
        decay = self.l2 or None
        self._apply([*weights, *biases], [*grads.weights, *grads.biases],
                    [decay] * len(weights) + [None] * len(biases))

    def step_flat(self, theta: np.ndarray, grad: np.ndarray, weight_mask: np.ndarray | None = None) -> None:
        """Update the flat parameters ``theta`` in place from the flat gradient ``grad``.

        The same update as :meth:`step`, element for element. ``weight_mask`` is 1 where a
        parameter is a weight and 0 where it is a bias (L2 decays weights only); it is
        needed only when ``l2 > 0``. ``grad`` is used as scratch and overwritten.
        """
        decay = None
        if self.l2:
            if self._decay is None or self._decay.shape != theta.shape:
                if weight_mask is None:
                    raise ValueError("step_flat with l2 > 0 needs weight_mask")
                self._decay = (self.l2 * np.asarray(weight_mask)).astype(theta.dtype)
            decay = self._decay
        self._apply([theta], [grad], [decay])
