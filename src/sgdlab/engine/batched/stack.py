"""A stack of ``K`` networks of one group: their parameters and optimiser state in one flat
array, with views per layer, and the preallocated buffers of a minibatch."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Iterable, Sequence

import numpy as np

from ...config import RunConfig, rng_streams
from ...nn.costs import cost_rule
from ...nn.init import init_params
from ...nn.network import Network
from ..kernels import forward_into, times_derivative
from .grouping import GroupKey, n_params

MIN_SHARED = 4  # a stack whose seed blocks average fewer models than this gathers each minibatch


@dataclass
class Segment:
    """Models ``start:stop`` of a stack share a cost rule (cost and ce convention, see
    :data:`sgdlab.nn.costs.RULES`), and so an output-delta rule."""

    start: int
    stop: int
    cost: str


def _runs(values: Iterable) -> list[tuple[int, int, object]]:
    """``(start, stop, value)`` for each run of equal consecutive ``values``."""
    out, start = [], 0
    for value, run in groupby(values):
        stop = start + len(list(run))
        out.append((start, stop, value))
        start = stop
    return out


def models_first(x):
    """``(b, K, u) -> (K, b, u)``: the model axis first (a view)."""
    return x.swapaxes(0, 1)


class StepBuffers:
    """Preallocated arrays for ``K`` models and minibatches of ``n`` rows, ``(n, K, units)``;
    hidden activations have a trailing column of ones (``hidden[l]``, ``a[l]`` is the view
    without it). A gathered stack also has the minibatch ``X`` ``(K, n, n_in + 1)``; every
    stack with more than one seed the targets ``Y`` ``(n, K, n_out)``. The ``*models_first`` lists are
    the same arrays with the model axis first, and ``z0_by_seed`` / ``d0_by_seed`` the first
    layer's columns of each seed block (views made once, to keep a step's Python overhead low).
    """

    def __init__(self, sizes, K, n, dtype, gathered, seed_blocks):
        self.n = n
        self.X = np.empty((K, n, sizes[0] + 1), dtype=dtype) if gathered else None
        self.Y = np.empty((n, K, sizes[-1]), dtype=dtype) if len(seed_blocks) > 1 else None
        self.hidden = []
        for size in sizes[1:-1]:
            h = np.empty((n, K, size + 1), dtype=dtype)
            h[..., -1] = 1
            self.hidden.append(h)
        self.z = [np.empty((n, K, s), dtype=dtype) for s in sizes[1:]]
        self.a = [h[..., :-1] for h in self.hidden] + [np.empty((n, K, sizes[-1]), dtype=dtype)]
        self.delta = [np.empty((n, K, s), dtype=dtype) for s in sizes[1:]]
        self.tmp = [np.empty((n, K, s), dtype=dtype) for s in sizes[1:]]
        self.hidden_models_first = [models_first(h) for h in self.hidden]  # (K, n, units + 1)
        self.hidden_samples_last = [h.transpose(1, 2, 0) for h in self.hidden]  # (K, units + 1, n)
        self.z_models_first = [models_first(z) for z in self.z]
        self.delta_models_first = [models_first(d) for d in self.delta]
        h1 = sizes[1]
        z0, d0 = self.z[0].reshape(n, -1), self.delta[0].reshape(n, -1)
        self.z0_by_seed = [z0[:, k0 * h1:k1 * h1] for k0, k1, _ in seed_blocks]
        self.d0_by_seed = [d0[:, k0 * h1:k1 * h1] for k0, k1, _ in seed_blocks]


class Stack:
    """The parameters and optimiser state of ``K`` networks of one group, in the layout that
    :mod:`sgdlab.engine.batched` describes: ``theta`` and ``grad`` flat; ``first`` the first
    layer's view ``(K * fan_out, n_in + 1)``, ``blocks[l]`` (``l >= 1``) a later layer's
    ``(K, fan_in + 1, fan_out)``, ``layer(l)`` any layer as the latter; ``seed_blocks``
    ``(k0, k1, seed)`` per block of consecutive models with one seed; ``shared``: the first
    layer is one GEMM per seed block. ``scale(n)`` ``(1, K, 1)`` multiplies the output delta:
    ``lr / n`` when the learning rate is folded into the gradient (``lr_folded``: no momentum
    and no L2 in the stack), ``1 / n`` otherwise.
    """

    def __init__(self, key: GroupKey, configs: Sequence[RunConfig], indices: Sequence[int]):
        self.key = key
        self.sizes = list(key.sizes)
        self.dtype = np.dtype(key.dtype)
        self.layers = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.configs = list(configs)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.lr_folded = not any(c.momentum or c.l2 for c in configs)
        self.hidden_into = forward_into(key.activation)
        self.out_into = forward_into(key.output)
        self.hidden_times = times_derivative(key.activation)
        self.velocity: np.ndarray | None = None
        self._eval: dict[tuple[int, int], tuple] = {}
        params = [init_params(self.sizes, c.init, c.bias_init, rng_streams(c.seed)[0], self.dtype)
                  for c in configs]
        self._allocate(len(configs))
        for j, (ws, bs) in enumerate(params):
            for l, (w, b) in enumerate(zip(ws, bs)):
                blk = self.layer(l)[j]
                blk[:-1], blk[-1] = w, b
        self._coefficients()

    # layout ---------------------------------------------------------------------------------
    def _allocate(self, K: int) -> None:
        self.K = K
        self.theta = np.empty(K * n_params(self.sizes), dtype=self.dtype)
        self.grad = np.zeros_like(self.theta)
        self.first, self.blocks = self._views(self.theta)
        self.grad_first, self.grad_blocks = self._views(self.grad)
        self.weights_T = [None] + [b[:, :-1].swapaxes(1, 2) for b in self.blocks[1:]]  # (K, fan_out, fan_in)
        self.segments = [Segment(*r) for r in _runs(cost_rule(c.cost, c.ce_outside) for c in self.configs)]
        self.seed_blocks = _runs(c.seed for c in self.configs)
        self.shared = len(self.seed_blocks) * MIN_SHARED <= K or len(self.seed_blocks) == 1
        h1 = self.layers[0][1]
        self.first_by_seed = [self.first[k0 * h1:k1 * h1].T for k0, k1, _ in self.seed_blocks]  # (n_in + 1, k * h1)
        self.grad_first_by_seed = [self.grad_first[k0 * h1:k1 * h1] for k0, k1, _ in self.seed_blocks]  # (k * h1, n_in + 1)
        self.buffers: dict[int, StepBuffers] = {}

    def _views(self, flat):
        K, (fan_in, fan_out) = self.K, self.layers[0]
        o = (fan_in + 1) * fan_out * K
        first = flat[:o].reshape(K * fan_out, fan_in + 1)
        blocks = [None]
        for fan_in, fan_out in self.layers[1:]:
            size = (fan_in + 1) * fan_out * K
            blocks.append(flat[o:o + size].reshape(K, fan_in + 1, fan_out))
            o += size
        return first, blocks

    def layer(self, l: int, flat: np.ndarray | None = None) -> np.ndarray:
        """Layer ``l`` of every model as ``(K, fan_in + 1, fan_out)`` (a view of ``theta``, or of
        ``flat`` in the same layout)."""
        first, blocks = (self.first, self.blocks) if flat is None else self._views(flat)
        if l:
            return blocks[l]
        fan_in, fan_out = self.layers[0]
        return first.reshape(self.K, fan_out, fan_in + 1).swapaxes(1, 2)

    def per_param(self, values, weights_only: bool = False) -> np.ndarray:
        """A flat array in ``theta``'s layout holding each model's value on each of its
        parameters (0 on biases with ``weights_only``)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.empty(self.theta.size, dtype=np.float64)
        for l in range(len(self.layers)):
            blk = self.layer(l, out)
            blk[...] = v[:, None, None]
            if weights_only:
                blk[:, -1] = 0
        return out.astype(self.dtype)

    def _coefficients(self) -> None:
        cs = self.configs
        lr = np.asarray([c.lr for c in cs], dtype=np.float64)
        # the output delta's factor (see scale): lr / n folded in when the update is theta -= grad
        self._factor = (lr if self.lr_folded else np.ones(self.K)).reshape(1, -1, 1)
        self._scales: dict[int, np.ndarray] = {}
        if self.lr_folded:
            self.lr = self.momentum = self.decay = self.nesterov = self.scratch = None  # theta -= grad
            return
        # the single engine's optimiser in float64 scalars, here per parameter in the dtype
        self.lr = self.per_param(lr)
        self.momentum = self.per_param([c.momentum for c in cs]) if any(c.momentum for c in cs) else None
        self.nesterov = (self.per_param([c.nesterov for c in cs]).astype(bool)
                         if any(c.nesterov for c in cs) else None)
        self.decay = self.per_param([c.l2 for c in cs], weights_only=True) if any(c.l2 for c in cs) else None
        self.scratch = np.empty_like(self.theta)

    def scale(self, n: int) -> np.ndarray:
        """The output delta's factor for a minibatch of ``n`` rows, ``(1, K, 1)``: ``lr / n``
        when the update is ``theta -= grad``, else ``1 / n``."""
        s = self._scales.get(n)
        if s is None:
            s = self._scales[n] = (self._factor / n).astype(self.dtype)
        return s

    def keep(self, mask: np.ndarray) -> None:
        """Drop the models where ``mask`` is False (they have finished)."""
        flats = [f for f in (self.theta, self.velocity) if f is not None]
        kept = [[self.layer(l, f)[mask] for l in range(len(self.layers))] for f in flats]  # copies
        self.indices = self.indices[mask]
        self.configs = [c for c, m in zip(self.configs, mask) if m]
        self._allocate(len(self.configs))
        if self.velocity is not None:
            self.velocity = np.empty_like(self.theta)
        for flat, layers in zip((self.theta, self.velocity), kept):
            for l, blk in enumerate(layers):
                self.layer(l, flat)[...] = blk
        self._coefficients()

    def finite(self) -> np.ndarray:
        """Per model: are all its parameters finite? Shape ``(K,)``."""
        return np.all([np.isfinite(self.layer(l)).all(axis=(1, 2)) for l in range(len(self.layers))], axis=0)

    def buffers_for(self, n: int) -> StepBuffers:
        buf = self.buffers.get(n)
        if buf is None:
            buf = self.buffers[n] = StepBuffers(self.sizes, self.K, n, self.dtype, not self.shared, self.seed_blocks)
        return buf

    def eval_buffers(self, rows: int, k: int) -> tuple[list, np.ndarray, np.ndarray]:
        """Arrays for a forward pass of ``k`` models on ``rows`` rows: the pre-activations of
        each layer ``(rows, k, units)`` (the hidden ones then hold the activations), the
        outputs and a scratch array of their shape. Kept across epochs."""
        bufs = self._eval.get((rows, k))
        if bufs is None:
            zs = [np.empty((rows, k, s), dtype=self.dtype) for s in self.sizes[1:]]
            bufs = self._eval[(rows, k)] = (zs, np.empty_like(zs[-1]), np.empty_like(zs[-1]))
        return bufs

    def network(self, j: int) -> Network:
        """Model ``j`` as a :class:`Network` (copies of its parameters)."""
        c = self.configs[j]
        net = Network(self.sizes, c.activation, c.output, c.cost, c.dtype, c.ce_outside)
        blocks = [self.layer(l)[j] for l in range(len(self.layers))]
        net.weights = [blk[:-1].copy() for blk in blocks]
        net.biases = [blk[-1].copy() for blk in blocks]
        return net
