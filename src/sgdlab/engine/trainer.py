"""One network's training state and its epoch: the :class:`Trainer` that :func:`sgdlab.train`
and the estimator's ``fit`` / ``partial_fit`` share."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..config import RunConfig
from ..nn.costs import get_cost
from ..nn.network import Network
from .blas import for_network
from .diagnostics import flat_sq_norms, flat_starts
from .optim import SGD
from .packed import PackedNetwork
from .schedule import epoch_order, minibatches


class Trainer:
    """A network's parameters (packed, :class:`~sgdlab.engine.packed.PackedNetwork`), its
    optimizer state (:class:`~sgdlab.engine.optim.SGD`) and its shuffle stream; :meth:`epoch`
    runs one epoch of minibatch SGD on the fast path.

    The packed parameters are a copy of the network's: :meth:`unpack` writes them back. A
    Trainer pickles (the packed copy is rebuilt from the network on load, so unpack first).
    """

    def __init__(self, network: Network, config: RunConfig, shuffle_rng: np.random.Generator):
        self.network, self.shuffle_rng, self.batch_size = network, shuffle_rng, config.batch_size
        self.optimizer = SGD(config.lr, config.momentum, config.nesterov, config.l2)
        self.cost = get_cost(network.cost, network.ce_outside)
        self.packed = PackedNetwork(network)
        self._starts = self._scratch = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["packed"] = state["_starts"] = state["_scratch"] = None  # the kernels are functions
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.packed = PackedNetwork(self.network)

    @contextmanager
    def running(self, rows: int):
        """The context :meth:`epoch` and :meth:`evaluate` run in: float warnings off (a sigmoid
        of a very negative input overflows ``exp`` on the way to an exact 0), BLAS threads as
        suit the network for ``rows`` rows at a time."""
        with np.errstate(all="ignore"), for_network(self.packed.sizes, rows):
            yield

    def epoch(self, Xa: np.ndarray, Y: np.ndarray, grad_norms=None) -> None:
        """One epoch: a fresh order from the shuffle stream, its minibatches of the rows of
        ``Xa`` (inputs with a column of ones, :func:`~sgdlab.engine.kernels.augment`) and their
        one-hot targets ``Y``, one SGD step each. ``grad_norms``: the diagnostics' per-minibatch
        norms (:class:`~sgdlab.engine.diagnostics.GradNorms`), recorded before each step."""
        packed, n = self.packed, len(Y)
        theta, mask, gradient, step = packed.theta, packed.weight_mask, packed.gradient, self.optimizer.step_flat
        perm = epoch_order(self.shuffle_rng, n)
        Xs, Ys = Xa[perm], Y[perm]
        if grad_norms is not None and self._starts is None:
            self._starts, self._scratch = flat_starts(packed.sizes), np.empty(packed.grad.shape)  # float64 squares
        for s in minibatches(n, self.batch_size):
            g = gradient(Xs[s], Ys[s])
            if grad_norms is not None:  # before the step, which uses the gradient as scratch
                flat_sq_norms(g, self._starts, self._scratch, grad_norms.next())
            step(theta, g, mask)

    def evaluate(self, Xa: np.ndarray, y: np.ndarray, Y: np.ndarray, outputs: np.ndarray | None = None):
        """``(loss, accuracy)`` on inputs ``Xa`` (with the column of ones), labels ``y`` and their
        one-hot ``Y``; ``outputs``: the network's outputs for ``Xa`` if already computed."""
        if not len(y):
            return float("nan"), float("nan")
        out = self.packed.predict_proba(Xa) if outputs is None else outputs
        return float(self.cost.value(out, Y)), float(np.mean(np.argmax(out, axis=1) == y))

    def finite(self) -> bool:
        """Are all parameters finite?"""
        return bool(np.isfinite(self.packed.theta).all())

    def unpack(self) -> Network:
        """Write the packed parameters back into the network's arrays; returns the network."""
        return self.packed.unpack()
