"""Many networks of the same layer sizes trained together along a model axis.

A study is hundreds of small independent networks. Trained one at a time, numpy spends
its time in Python and call overhead; stacked along a model axis, one numpy call does the
work of every network. :func:`train_many` is the same algorithm as :func:`sgdlab.train`
(same initial weights, minibatch order, update rule, per-epoch metrics, divergence and early
stopping) for ``K`` models at once, equal to it within float rounding (1e-12 relative or
better on well-conditioned runs; see ``docs/batched.md``).

Layout (``K`` models, ``b`` samples in a minibatch, layer ``l`` with ``fan_in -> fan_out``
units; samples are rows, as in the single engine):

- activations, pre-activations and deltas are ``(b, K, units)``; hidden activations carry a
  trailing column of ones, ``[A, 1]``, so a layer with its bias is one product;
- the first layer's parameters of all models are one matrix ``(K * fan_out, n_in + 1)``
  (model ``k`` owns the rows ``k * fan_out : (k + 1) * fan_out``; the last column is the
  bias). The models are ordered by cost, then seed; consecutive models with one seed (a
  *seed run*) share their minibatch, so the first layer's forward pass and its gradient are
  one wide GEMM per run: ``Z = [X, 1] @ W^T`` and ``G = Delta^T @ [X, 1]``. Each seed's
  training set is permuted once per epoch and each minibatch is a view of it;
- the later layers are ``(K, fan_in + 1, fan_out)`` and go through ``np.matmul`` over the
  model axis (one small GEMM per model, inside one numpy call);
- all parameters live in one flat array ``theta`` (and the gradient in ``grad``), so the
  update is one call: without momentum and L2 the learning rate (per model) and the ``1/b``
  of the minibatch mean are folded into the output delta, and ``theta -= grad``;
- a stack whose seed runs average fewer than ``MIN_SHARED`` models gathers each model's
  minibatch into ``(K, b, n_in + 1)`` and runs the first layer per model too.

:func:`plan` cuts each group (:class:`GroupKey`) into stacks of at most ``CACHE_MODELS``
models within the memory budget. A model that diverges, stops early or reaches its last
epoch leaves its stack at the end of that epoch; the others go on. :func:`train_many` trains
the stacks one after the other, on threads or in worker processes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..config import RunConfig, rng_streams
from ..data import Dataset
from ..errors import SgdlabError
from ..nn.costs import cost_rule
from ..nn.init import init_params
from ..nn.network import Network, one_hot
from .kernels import augment, ce_terms, forward_into, loss_sums, output_delta_into, times_derivative
from .diagnostics import GradNorms, Recorder, ValidationStats, StackedNorms, append_row, conclude
from .history import EpochBook, History
from .loop import TrainResult
from .schedule import epoch_order, minibatches, shuffle_stream
from .blas import blas_threads as _blas_threads
from .optim import sgd_update

DEFAULT_MAX_BYTES = 3 << 29  # 1.5 GiB: 10,000 models of 64-32-16-10 (with momentum and L2) in one stack
EVAL_BYTES = 1 << 20  # evaluation handles about this many bytes of activations at a time
EVAL_ROWS = 360  # ... in chunks of at most this many rows
MIN_SHARED = 4  # a stack whose seed runs average fewer models than this gathers each minibatch
PERMUTED_BYTES = 256 << 20  # a stack's per-seed permuted copies of the training set stay below this
CACHE_MODELS = 64  # stacks hold at most this many models (cache-sized; two per group of the paper grid)

OnEpoch = Callable[[int, int, History], None]


@dataclass(frozen=True)
class GroupKey:
    """What the models trained in one stack must share."""

    sizes: tuple[int, ...]
    activation: str
    output: str
    batch_size: int
    dtype: str


def group_key(config: RunConfig, n_features: int, n_classes: int) -> GroupKey:
    return GroupKey((n_features, *config.hidden, n_classes), config.activation, config.output_activation,
                    config.batch_size, config.dtype)


def n_params(sizes: Sequence[int]) -> int:
    """Weights and biases of one network: ``P = sum (fan_in + 1) * fan_out``."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def bytes_per_model(sizes: Sequence[int], batch_size: int, dtype="float64", momentum: bool = False,
                    l2: bool = False) -> int:
    """Bytes one model takes in a stack while training: the unit of the chunking budget.

    ``itemsize * ((3 + momentum + l2) P + 2 * batch * (sizes[0] + 1 + sizes[-1])
    + 4 * batch * sum(sizes[1:] + 1)) + P + 16 * batch``: parameters, gradients and the
    update's scratch (plus a velocity with momentum and a decay row with L2), the gathered
    minibatch and its targets for two batch sizes (the full one and the last, smaller one),
    per layer the pre-activations, activations, deltas and scratch, the end-of-epoch
    finiteness mask and the int64 minibatch indices. Evaluation works on a fixed slice of
    ``EVAL_BYTES``; the returned networks (``itemsize * P`` each) are not counted.
    """
    item = np.dtype(dtype).itemsize
    P = n_params(sizes)
    per_batch = 2 * batch_size * (sizes[0] + 1 + sizes[-1]) + 4 * batch_size * sum(s + 1 for s in sizes[1:])
    return int(item * ((3 + bool(momentum) + bool(l2)) * P + per_batch) + P + 16 * batch_size)


def chunk_size(sizes: Sequence[int], batch_size: int, dtype="float64", momentum=False, l2=False,
               max_bytes: int | None = None) -> int:
    """How many models of a group train in one stack within ``max_bytes`` (at least one)."""
    budget = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    return max(1, budget // bytes_per_model(sizes, batch_size, dtype, momentum, l2))


# -- a stack of K networks --------------------------------------------------------------------

@dataclass
class Segment:
    """Models ``start:stop`` of a stack share a cost rule (cost and ce convention, see
    :data:`sgdlab.nn.costs.RULES`), and so an output-delta rule."""

    start: int
    stop: int
    cost: str


def _segments(costs: Sequence[str]) -> list[Segment]:
    out: list[Segment] = []
    for j, c in enumerate(costs):
        if out and out[-1].cost == c:
            out[-1].stop = j + 1
        else:
            out.append(Segment(j, j + 1, c))
    return out


def _T(x):
    """``(b, K, u) -> (K, b, u)``: the model axis first (a view)."""
    return x.swapaxes(0, 1)


class _Buffers:
    """Preallocated arrays for ``K`` models and minibatches of ``n`` rows, ``(n, K, units)``;
    hidden activations have a trailing column of ones (``hidden[l]``, ``a[l]`` is the view
    without it). A gathered stack also has the minibatch ``X`` ``(K, n, n_in + 1)``; every
    stack with more than one seed the targets ``Y`` ``(n, K, n_out)``. The ``*_T`` lists are
    the same arrays with the model axis first, and ``z0_runs`` / ``d0_runs`` the first
    layer's columns of each seed run (views made once, to keep a step's Python overhead low).
    """

    def __init__(self, sizes, K, n, dtype, gathered, runs):
        self.n = n
        self.X = np.empty((K, n, sizes[0] + 1), dtype=dtype) if gathered else None
        self.Y = np.empty((n, K, sizes[-1]), dtype=dtype) if len(runs) > 1 else None
        self.hidden = []
        for size in sizes[1:-1]:
            h = np.empty((n, K, size + 1), dtype=dtype)
            h[..., -1] = 1
            self.hidden.append(h)
        self.z = [np.empty((n, K, s), dtype=dtype) for s in sizes[1:]]
        self.a = [h[..., :-1] for h in self.hidden] + [np.empty((n, K, sizes[-1]), dtype=dtype)]
        self.delta = [np.empty((n, K, s), dtype=dtype) for s in sizes[1:]]
        self.tmp = [np.empty((n, K, s), dtype=dtype) for s in sizes[1:]]
        self.hidden_T = [_T(h) for h in self.hidden]  # (K, n, units + 1)
        self.hidden_TT = [h.transpose(1, 2, 0) for h in self.hidden]  # (K, units + 1, n)
        self.z_T = [_T(z) for z in self.z]
        self.delta_T = [_T(d) for d in self.delta]
        h1 = sizes[1]
        z0, d0 = self.z[0].reshape(n, -1), self.delta[0].reshape(n, -1)
        self.z0_runs = [z0[:, k0 * h1:k1 * h1] for k0, k1, _ in runs]
        self.d0_runs = [d0[:, k0 * h1:k1 * h1] for k0, k1, _ in runs]


class Stack:
    """The parameters and optimiser state of ``K`` networks of one group.

    ``theta`` (flat) holds every parameter; ``first`` is the first layer's view
    ``(K * fan_out, n_in + 1)`` (a row per unit: its weights, then its bias), ``blocks[l]`` (``l >= 1``) the view ``(K, fan_in + 1, fan_out)``
    of a later layer (its last row is the bias); ``layer(l)`` shows any layer as
    ``(K, fan_in + 1, fan_out)``. ``grad`` has the same layout.
    The models are ordered by cost, then seed: ``runs`` lists ``(k0, k1, seed)`` for each
    run of consecutive models that share a seed (and so a minibatch). ``shared``: the runs
    are long enough (``MIN_SHARED`` models on average) for the first layer to be one GEMM per
    run; otherwise each model's minibatch is gathered and the first layer is per model too.
    ``scale(n)`` ``(1, K, 1)`` multiplies the output delta: ``lr / n`` when the update is the
    plain ``theta -= grad`` (no momentum, no L2 in the stack), ``1 / n`` otherwise.
    """

    def __init__(self, key: GroupKey, configs: Sequence[RunConfig], indices: Sequence[int]):
        self.key = key
        self.sizes = list(key.sizes)
        self.dtype = np.dtype(key.dtype)
        self.layers = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.configs = list(configs)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.plain = not any(c.momentum or c.l2 for c in configs)
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
        self.segments = _segments([cost_rule(c.cost, c.ce_outside) for c in self.configs])
        self.runs = []
        for j, c in enumerate(self.configs):
            if self.runs and self.runs[-1][2] == c.seed:
                self.runs[-1][1] = j + 1
            else:
                self.runs.append([j, j + 1, c.seed])
        self.runs = [tuple(r) for r in self.runs]
        self.shared = len(self.runs) * MIN_SHARED <= K or len(self.runs) == 1
        h1 = self.layers[0][1]
        self.first_runs = [self.first[k0 * h1:k1 * h1].T for k0, k1, _ in self.runs]  # (n_in + 1, k * h1)
        self.grad_first_runs = [self.grad_first[k0 * h1:k1 * h1] for k0, k1, _ in self.runs]  # (k * h1, n_in + 1)
        self.buffers: dict[int, _Buffers] = {}

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
        self._factor = (lr if self.plain else np.ones(self.K)).reshape(1, -1, 1)
        self._scales: dict[int, np.ndarray] = {}
        if self.plain:
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
        old = [self.layer(l).copy() for l in range(len(self.layers))]
        velocity = None
        if self.velocity is not None:
            velocity = [self.layer(l, self.velocity)[mask] for l in range(len(self.layers))]
        self.indices = self.indices[mask]
        self.configs = [c for c, m in zip(self.configs, mask) if m]
        self._allocate(len(self.configs))
        for l, blk in enumerate(old):
            self.layer(l)[...] = blk[mask]
        if velocity is not None:
            self.velocity = np.empty_like(self.theta)
            for l, blk in enumerate(velocity):
                self.layer(l, self.velocity)[...] = blk
        self._coefficients()

    def finite(self) -> np.ndarray:
        """Per model: are all its parameters finite? Shape ``(K,)``."""
        return np.all([np.isfinite(self.layer(l)).all(axis=(1, 2)) for l in range(len(self.layers))], axis=0)

    def buffers_for(self, n: int) -> _Buffers:
        buf = self.buffers.get(n)
        if buf is None:
            buf = self.buffers[n] = _Buffers(self.sizes, self.K, n, self.dtype, not self.shared, self.runs)
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


# -- the math of one step ----------------------------------------------------------------------

def forward(stack: Stack, X, buf: _Buffers) -> None:
    """Forward pass of every model into ``buf`` (eq. 3): ``Z_l = [A_{l-1}, 1] @ [W_l; b_l]``,
    ``A_l = f(Z_l)``. ``X``: for a shared stack, one minibatch ``(b, n_in + 1)`` (with the
    column of ones) per seed run, and the first layer is one GEMM per run; for a gathered
    stack ``(K, b, n_in + 1)``, one minibatch per model."""
    zs, acts, L = buf.z, buf.a, len(stack.layers)
    if stack.shared:
        for Xr, W, Z in zip(X, stack.first_runs, buf.z0_runs):
            np.matmul(Xr, W, out=Z)
    else:
        np.matmul(X, stack.layer(0), out=buf.z_T[0])
    for l in range(1, L):
        # hidden layers: the activation in place (contiguous, fast), then copied next to the
        # column of ones; zs[l - 1] holds the activations from here on (f' comes from them)
        stack.hidden_into(zs[l - 1], zs[l - 1])
        np.copyto(acts[l - 1], zs[l - 1])
        np.matmul(buf.hidden_T[l - 1], stack.blocks[l], out=buf.z_T[l])
    stack.out_into(zs[-1], acts[-1])


def gradient(stack: Stack, X, Y, buf: _Buffers) -> np.ndarray:
    """Gradients of every model into ``stack.grad``, times ``stack.scale(b)`` (eq. 3, 5-9):
    ``grad [W_l; b_l] = [A_{l-1}, 1]^T @ Delta_l``, ``Delta_{l-1} = (Delta_l @ W_l^T) * f'(Z_{l-1})``.

    ``X`` as in :func:`forward`; ``Y``: one-hot targets ``(b, 1, n_out)`` shared by every
    model, or ``(b, K, n_out)``.
    """
    forward(stack, X, buf)
    zs, deltas, L = buf.z, buf.delta, len(stack.layers)
    output_delta(stack, zs[-1], buf.a[-1], Y, deltas[-1], buf.tmp[-1])
    deltas[-1] *= stack.scale(buf.n)
    for l in range(L - 1, 0, -1):
        np.matmul(buf.hidden_TT[l - 1], buf.delta_T[l], out=stack.grad_blocks[l])
        np.matmul(buf.delta_T[l], stack.weights_T[l], out=buf.delta_T[l - 1])
        if stack.hidden_times is not None:  # zs[l - 1] holds the activations
            stack.hidden_times(deltas[l - 1], zs[l - 1], zs[l - 1], buf.tmp[l - 1])
    if stack.shared:
        for Xr, D, G in zip(X, buf.d0_runs, stack.grad_first_runs):
            np.matmul(D.T, Xr, out=G)  # G^T = Delta^T [X, 1]: faster than [X, 1]^T Delta in OpenBLAS
    else:
        np.matmul(X.swapaxes(1, 2), buf.delta_T[0], out=stack.layer(0, stack.grad))
    return stack.grad


def output_delta(stack: Stack, z, a, Y, out, tmp) -> None:
    """dC_s/dz at the output layer of every model into ``out``, segment by segment (eq. 5-6),
    as :func:`sgdlab.nn.costs.output_delta`: ``a - y`` where that is exact (sigmoid + ce,
    softmax + cce, identity + mse; times the clip mask of ce and cce) and under ``ce:nielsen``,
    ``(a - y) f'(z)`` for mse under an elementwise output, the clipped cross-entropy's chain
    rule for ce under another elementwise output (:func:`ce_times_into`), the general chain
    rule otherwise. ``z``, ``a``, ``out``: ``(b, K, n_out)``; ``Y``: ``(b, 1, n_out)`` or
    ``(b, K, n_out)``."""
    output = stack.key.output
    for s in stack.segments:
        sl = slice(s.start, s.stop)
        output_delta_into(output, s.cost, z[:, sl], a[:, sl], Y if Y.shape[1] == 1 else Y[:, sl], out[:, sl],
                          tmp[:, sl])


def sgd_step(stack: Stack) -> None:
    """One SGD update of every model from ``stack.grad``, as :class:`sgdlab.engine.optim.SGD`
    (``torch.optim.SGD``) through :func:`~sgdlab.engine.optim.sgd_update`: ``theta -= grad``
    when the learning rate is folded into the gradient (``stack.lr`` None); otherwise ``g += l2 W`` (weights only), ``v = m v + g``, ``g += m v``
    (Nesterov) or ``g = v``, ``theta -= lr g``, each model with its own lr, momentum and l2."""
    stack.velocity = sgd_update(stack.theta, stack.grad, stack.scratch, stack.lr,  # None: lr folded in
                                decay=stack.decay, momentum=stack.momentum, nesterov=stack.nesterov,
                                velocity=stack.velocity)


# -- evaluation ---------------------------------------------------------------------------------

@dataclass
class Metrics:
    """Loss and accuracy of each model of a stack on one part of the data, shape ``(K,)``."""

    loss: np.ndarray
    acc: np.ndarray


def evaluate(stack: Stack, prep: "_Prepared", stats: ValidationStats | None = None,
             parts: Sequence[int] = (0, 1, 2)) -> list[Metrics]:
    """Loss and accuracy of every model on the train, validation and test sets, as the single
    engine computes them (the forward pass, the cost's mean value, the share of rows whose
    largest output is the label).

    The three sets are one matrix ``X_all``, cut into chunks of at most ``EVAL_ROWS`` rows
    inside each part; the models in blocks of about ``EVAL_BYTES`` of activations per chunk,
    so a block's first layer is one GEMM, ``(rows, n_in + 1) @ (n_in + 1, k * fan_out)``, and
    everything stays in cache. Later layers add their bias after the product (no column of
    ones to copy into).

    ``stats``: each layer's outputs on the validation rows are added to it (the diagnostics,
    see :mod:`sgdlab.engine.diagnostics`). ``parts``: the parts evaluated (0 train, 1
    validation, 2 test); the others' metrics are NaN."""
    K, sizes, dtype = stack.K, stack.sizes, stack.dtype
    out = [Metrics(np.zeros(K), np.zeros(K)) for _ in prep.bounds]
    rows = min(EVAL_ROWS, max(r1 - r0 for r0, r1 in prep.bounds))
    per_model = dtype.itemsize * rows * (sum(sizes[1:]) + sizes[-1])
    step = max(1, min(K, EVAL_BYTES // per_model))
    h1 = sizes[1]
    sign, offset = prep.ce_terms
    for k0 in range(0, K, step):
        k1 = min(k0 + step, K)
        segments = [(max(s.start, k0) - k0, min(s.stop, k1) - k0, s.cost) for s in stack.segments
                    if s.start < k1 and s.stop > k0]
        weights = [blk[k0:k1, :-1] for blk in stack.blocks[1:]]
        biases = [blk[k0:k1, -1][None] for blk in stack.blocks[1:]]
        first = stack.first[k0 * h1:k1 * h1].T
        for i, (p0, p1) in enumerate(prep.bounds):
            if i not in parts:
                continue
            for r0 in range(p0, p1, rows):
                r1 = min(r0 + rows, p1)
                zs, a, tmp = stack.eval_buffers(r1 - r0, k1 - k0)
                np.matmul(prep.X_all[r0:r1], first, out=zs[0].reshape(r1 - r0, -1))
                for l in range(1, len(stack.layers)):
                    stack.hidden_into(zs[l - 1], zs[l - 1])
                    np.matmul(_T(zs[l - 1]), weights[l - 1], out=_T(zs[l]))
                    zs[l] += biases[l - 1]
                stack.out_into(zs[-1], a)
                if stats is not None and i == 1:
                    for l in range(len(stack.layers) - 1):  # zs[l] holds the activations
                        stats.add(l, _T(zs[l]), k0)
                    stats.add(len(stack.layers) - 1, _T(a), k0)
                hits = np.argmax(a, axis=2) == prep.y_all[r0:r1, None]
                out[i].acc[k0:k1] += np.count_nonzero(hits, axis=0)
                for j0, j1, cost in segments:
                    out[i].loss[k0 + j0:k0 + j1] += loss_sums(cost, a[:, j0:j1], prep.Y_mask[r0:r1],
                                                             tmp[:, j0:j1], (sign[r0:r1], offset[r0:r1]))
    for i, (m, (p0, p1)) in enumerate(zip(out, prep.bounds)):
        if p1 > p0 and i in parts:
            m.loss /= p1 - p0
            m.acc /= p1 - p0
        else:
            m.loss[:] = m.acc[:] = np.nan
    return out


# -- training -----------------------------------------------------------------------------------

@dataclass
class _Prepared:
    """A group's data in its dtype: the training inputs with a column of ones ``Xa`` and
    one-hot targets ``Y``; the train, validation and test inputs as one matrix ``X_all``
    (rows ``bounds[i]`` are part ``i``), their labels and one-hot masks ``(rows, 1, n_out)``,
    and the cross-entropy's ``ce_terms`` of those masks."""

    Xa: np.ndarray
    Y: np.ndarray
    X_all: np.ndarray
    y_all: np.ndarray
    Y_mask: np.ndarray
    bounds: list
    n: int
    has_val: bool
    ce_terms: tuple = ()

    def __post_init__(self):
        self.ce_terms = ce_terms(self.Y_mask, self.X_all.dtype)


def _prepare(data: Dataset, dtype) -> _Prepared:
    d = data.astype(dtype)
    k = d.n_classes
    Xa = augment(d.X_train)
    X_all = augment(np.concatenate([d.X_train, d.X_val, d.X_test]))
    y_all = np.concatenate([d.y_train, d.y_val, d.y_test]).astype(np.int64)
    sizes = np.cumsum([0, len(d.y_train), len(d.y_val), len(d.y_test)])
    return _Prepared(Xa, one_hot(d.y_train, k, dtype), X_all, y_all,
                     one_hot(y_all, k, bool)[:, None, :], list(zip(sizes[:-1], sizes[1:])),
                     len(d.y_train), len(d.y_val) > 0)


def train_epoch(stack: Stack, prep: _Prepared, streams: dict, norms: GradNorms | None = None) -> None:
    """One epoch of minibatch SGD for every model: each seed's stream draws one permutation,
    as in the single engine. A shared stack permutes the training set once per seed and
    reads each minibatch as a view of it, unless those copies would take more than
    ``PERMUTED_BYTES`` (a large dataset, many seeds): then it gathers each run's minibatch
    (the same rows, so the same numbers). ``norms``: each minibatch's gradient norms are
    recorded there (the diagnostics)."""
    n, bs = prep.n, stack.key.batch_size
    if norms is not None:
        sq_norms = StackedNorms(stack.grad_first, stack.grad_blocks[1:], stack.K)
    seeds = sorted(streams)
    perms = {s: epoch_order(streams[s], n) for s in seeds}
    if stack.shared:
        if prep.Xa.nbytes * len(seeds) <= PERMUTED_BYTES:
            Xp = {s: prep.Xa[perms[s]] for s in seeds}
        else:
            Xp = {s: _Gathered(prep.Xa, perms[s]) for s in seeds}
        run_X = [Xp[seed] for _, _, seed in stack.runs]
        if len(stack.runs) == 1:
            Yp = prep.Y[perms[seeds[0]]][:, None, :]
    if not stack.shared or len(stack.runs) > 1:
        order = np.stack([perms[s] for s in seeds])
        rows = np.searchsorted(seeds, [c.seed for c in stack.configs])
    for mb in minibatches(n, bs):
        buf = stack.buffers_for(mb.stop - mb.start)
        if stack.shared and len(stack.runs) == 1:
            X, Y = [run_X[0][mb]], Yp[mb]
        else:
            idx = order[rows, mb]  # (K, b): each model's rows
            Y = buf.Y
            np.take(prep.Y, idx.T, axis=0, out=Y)
            if stack.shared:
                X = [Xr[mb] for Xr in run_X]
            else:
                X = buf.X
                np.take(prep.Xa, idx, axis=0, out=X)
        gradient(stack, X, Y, buf)
        if norms is not None:  # before the step, which may use the gradient as scratch
            sq_norms(norms.next())
        sgd_step(stack)


class _Gathered:
    """``X[perm]`` read by row slices without the copy: ``g[i:j]`` is ``X[perm[i:j]]``."""

    def __init__(self, X, perm):
        self.X, self.perm = X, perm

    def __getitem__(self, rows: slice):
        return self.X[self.perm[rows]]


def train_stack(stack: Stack, prep: _Prepared, results: dict, on_epoch: OnEpoch | None = None,
                diagnostics: bool = True) -> None:
    """Train one stack to the end; put each model's :class:`TrainResult` in ``results``
    under its index. ``diagnostics``: record the per-layer diagnostics
    (:mod:`sgdlab.engine.diagnostics`)."""
    streams = {s: shuffle_stream(s) for s in sorted({c.seed for c in stack.configs})}
    books = {int(i): EpochBook(c.patience if prep.has_val else None) for i, c in zip(stack.indices, stack.configs)}
    epochs = max(c.epochs for c in stack.configs)
    v0, v1 = prep.bounds[1]
    y_val = prep.y_all[v0:v1]
    L = len(stack.layers)
    recorder = Recorder(stack.configs, stack.sizes, -(-prep.n // stack.key.batch_size)) if diagnostics else None
    with np.errstate(all="ignore"):
        if recorder is not None:  # epoch 0: the initial weights
            stats = recorder.validation()
            evaluate(stack, prep, stats, parts=(1,))
            row = recorder.row([stack.layer(l) for l in range(L)], stats, initial=True)
            for j, gi in enumerate(stack.indices.tolist()):
                append_row(books[gi].history.diagnostics, row, j)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            train_epoch(stack, prep, streams, None if recorder is None else recorder.grads)
            seconds = (time.perf_counter() - t0) / stack.K
            stats = None if recorder is None else recorder.validation()
            m = evaluate(stack, prep, stats)
            row = None
            if recorder is not None:
                # a plain stack's gradients carry the learning rate (see Stack.scale)
                row = recorder.row([stack.layer(l) for l in range(L)], stats,
                                   grad_scale=1.0 / stack._factor.ravel())
            finite = np.isfinite(m[0].loss) & stack.finite()
            keep = np.ones(stack.K, dtype=bool)
            for j, (gi, c) in enumerate(zip(stack.indices.tolist(), stack.configs)):
                book = books[gi]
                h = book.history
                metrics = {part: (mp.loss[j], mp.acc[j]) for part, mp in zip(("train", "val", "test"), m)}
                if not book.record(epoch, metrics, finite[j], seconds, row, j):
                    keep[j] = False
                else:
                    if on_epoch:
                        on_epoch(gi, epoch, h)
                    if book.patience_over(epoch, m[1].acc[j]) or epoch >= c.epochs:
                        keep[j] = False
                if not keep[j]:
                    conclude(h, c, y_val)
                    results[gi] = TrainResult(stack.network(j), h, c)
            if not keep.any():
                break
            if not keep.all():
                stack.keep(keep)
                if recorder is not None:
                    recorder.keep(keep)


def _cut(members: list[int], size: int) -> list[list[int]]:
    """``members`` in equal consecutive chunks of at most ``size``."""
    n_chunks = -(-len(members) // size)
    size = -(-len(members) // n_chunks)
    return [members[c0:c0 + size] for c0 in range(0, len(members), size)]


def plan(configs: Sequence[RunConfig], data: Dataset, max_bytes: int | None = None,
         threads: int = 1) -> list[tuple[GroupKey, list[int]]]:
    """The stacks :func:`train_many` trains: ``(group key, config indices)`` per stack.

    Per group (:class:`GroupKey`) the configs are ordered by cost (one contiguous segment
    per cost), then seed (runs of models that share a minibatch), then position, and cut
    into equal chunks of at most ``CACHE_MODELS`` models that fit the memory budget
    (``max_bytes``, divided among the threads). When there are fewer stacks than threads,
    the largest are halved. How the models are cut changes their results only by float
    rounding (a BLAS product may sum in another order for another matrix width).
    """
    groups: dict[GroupKey, list[int]] = defaultdict(list)
    for i, c in enumerate(configs):
        groups[group_key(c, data.n_features, data.n_classes)].append(i)
    budget = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    out = []
    for key, members in groups.items():
        members = sorted(members, key=lambda i: (cost_rule(configs[i].cost, configs[i].ce_outside), configs[i].seed, i))
        momentum = any(configs[i].momentum for i in members)
        l2 = any(configs[i].l2 for i in members)
        limit = min(CACHE_MODELS, chunk_size(key.sizes, key.batch_size, key.dtype, momentum, l2,
                                             budget // threads))
        out.extend((key, chunk) for chunk in _cut(members, limit))
    while len(out) < threads:
        j = max(range(len(out)), key=lambda j: len(out[j][1]), default=None)
        if j is None or len(out[j][1]) < 2:
            break
        key, members = out.pop(j)
        out.extend((key, chunk) for chunk in _cut(members, -(-len(members) // 2)))
    return out


def train_many(configs: Sequence[RunConfig], data: Dataset, *, max_bytes: int | None = None,
               on_epoch: OnEpoch | None = None, threads: int = 1, processes: int = 1,
               diagnostics: bool = True) -> list[TrainResult]:
    """Train every config on ``data``: the results of ``[train(c, data) for c in configs]``.

    Parameters
    ----------
    configs : sequence of RunConfig
        Any mix. Runs with the same layer sizes, activations, batch size and dtype are
        trained together in stacks (see :func:`plan`); the others in stacks of their own.
        The configs' dataset and split settings are not read: ``data`` is what every run
        trains on.
    data : Dataset
        The split data.
    max_bytes : int, optional
        Memory budget of the stacks in training at once (default ``DEFAULT_MAX_BYTES``,
        1.5 GiB; see :func:`bytes_per_model`): a larger group is trained in several chunks.
        The returned networks come on top (``8 P`` bytes each).
    on_epoch : callable, optional
        ``on_epoch(index, epoch, history)`` after each recorded epoch of ``configs[index]``
        (with ``threads > 1`` from worker threads, one call at a time; with ``processes > 1``
        in this process, epoch by epoch, once the run's stack has finished).
    threads : int
        Stacks trained at once on this many threads (numpy and BLAS release the GIL, the
        Python between the calls does not). The default, 1, suits callers that already run
        one process per core (the study runner).
    processes : int
        Stacks trained at once in this many worker processes (forked where the platform
        allows): no GIL between them, so it scales better than ``threads``. Each stack is
        trained whole in one worker, so results do not depend on it.
    diagnostics : bool
        Record the per-layer diagnostics in each history (:mod:`sgdlab.engine.diagnostics`;
        the same values as :func:`sgdlab.train`). The status (``chance`` included) is
        set either way.

    BLAS is held to one thread during the call (and in the workers).

    Returns
    -------
    list of TrainResult
        One per config, in the order given.
    """
    configs = list(configs)
    for name, value in (("threads", threads), ("processes", processes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SgdlabError(f"{name}: expected a positive integer, got {value!r}")
    results: dict[int, TrainResult] = {}
    prepared: dict[str, _Prepared] = {}
    workers = max(threads, processes)
    stacks = plan(configs, data, max_bytes, workers)
    for key, _ in stacks:
        if key.dtype not in prepared:
            prepared[key.dtype] = _prepare(data, np.dtype(key.dtype))
    # the largest stacks first, so that the workers finish together
    stacks.sort(key=lambda item: -len(item[1]))
    jobs = [(key, [configs[i] for i in members], members) for key, members in stacks]

    with _blas_threads(1):
        if processes > 1 and len(jobs) > 1:
            _run_in_processes(jobs, prepared, min(processes, len(jobs)), results, on_epoch, diagnostics)
        elif threads > 1 and len(jobs) > 1:
            _run_in_threads(jobs, prepared, min(threads, len(jobs)), results, on_epoch, diagnostics)
        else:
            for job in jobs:
                train_stack(Stack(*job), prepared[job[0].dtype], results, on_epoch, diagnostics)
    return [results[i] for i in range(len(configs))]


def _run_in_threads(jobs, prepared, n, results, on_epoch, diagnostics=True) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def locked(index, epoch, history):
        with lock:
            on_epoch(index, epoch, history)

    callback = None if on_epoch is None else locked

    def run(job):
        train_stack(Stack(*job), prepared[job[0].dtype], results, callback, diagnostics)

    with ThreadPoolExecutor(n) as pool:
        for f in [pool.submit(run, job) for job in jobs]:
            f.result()


_WORKER_DATA: dict = {}


def _worker_init(prepared) -> None:
    _WORKER_DATA["prepared"] = prepared
    _WORKER_DATA["blas"] = _blas_threads(1)
    _WORKER_DATA["blas"].__enter__()


def _worker_train(job, diagnostics=True) -> dict[int, TrainResult]:
    """Train one stack in a worker; its results by run index."""
    out: dict[int, TrainResult] = {}
    train_stack(Stack(*job), _WORKER_DATA["prepared"][job[0].dtype], out, diagnostics=diagnostics)
    return out


def _run_in_processes(jobs, prepared, n, results, on_epoch, diagnostics=True) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init, initargs=(prepared,)) as pool:
        futures = {pool.submit(_worker_train, job, diagnostics): job for job in jobs}
        for f in as_completed(futures):
            for index, result in sorted(f.result().items()):
                results[index] = result
                if on_epoch is not None:
                    _replay(on_epoch, index, result.history)


def _replay(on_epoch: OnEpoch, index: int, history: History) -> None:
    """Call ``on_epoch`` for each recorded epoch of a finished run, with the history as it
    stood after that epoch."""
    d = history.to_dict()
    lists = {k: v for k, v in d.items() if isinstance(v, list)}
    for epoch in range(1, history.epochs + 1):
        partial = History(**{k: v[:epoch] for k, v in lists.items()},
                          diagnostics={k: v[:epoch + 1] for k, v in history.diagnostics.items()})
        on_epoch(index, epoch, partial)
