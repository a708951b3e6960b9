"""Many networks of the same layer sizes trained together along a leading model axis.

A study is hundreds of small independent networks. Trained one at a time, numpy spends
its time in Python and call overhead; stacked along a model axis, one numpy call does the
work of every network. :func:`train_many` is the same algorithm as :func:`sgdlab.train.train`
(same initial weights, minibatch order, update rule, per-epoch metrics, divergence and early
stopping) for ``K`` models at once.

Layout (``K`` models, layer ``l`` with ``fan_in -> fan_out`` units):

- the parameters of each model are one flat row of ``theta``, shape ``(K, P)``, in the
  single engine's packed order (``[W0; b0], [W1; b1], ...``); layer ``l`` is the view
  ``(K, fan_in + 1, fan_out)`` whose last row is the bias, so with a column of ones appended
  to the previous activations a layer is one batched product ``Z = [A, 1] @ [W; b]`` and its
  weight and bias gradients are one product ``[A, 1]^T @ Delta``;
- each minibatch is gathered into a preallocated ``(K, batch, fan_in + 1)`` buffer (models that
  share a seed share a row of indices; when all of a chunk's models share one seed the
  minibatch is gathered once and broadcast);
- every product is ``np.matmul`` over the model axis, which runs the same BLAS kernel on the
  same matrices as the single engine, so a model's result does not depend on which other
  models share its call, and in practice equals the single engine's bit for bit;
- elementwise work (activations, chain rule, the SGD update with each model's lr, momentum
  and L2 as ``(K, 1)`` columns) is done in place on whole stacks; the output delta is
  computed per contiguous *segment* of models that share a cost;
- after each epoch, every model is evaluated on the full train, validation and test sets
  (:func:`evaluate`, with :mod:`sgdlab.nn.activations` and :mod:`sgdlab.nn.costs`, a few models
  at a time so the activations stay in cache).

Models that can share a stack are grouped by :class:`GroupKey` (layer sizes, hidden and
output activation, batch size, dtype); a group larger than the memory budget is cut into
chunks along the model axis (:func:`chunk_size`). A model that diverges, stops early or
reaches its last epoch leaves its stack at the end of that epoch; the others go on.
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
from ..nn.activations import get_activation
from ..nn.costs import SHORTCUTS, get_cost
from ..nn.init import init_params
from ..nn.network import Network, one_hot
from .batched_kernels import forward_into, times_derivative
from .loop import History, TrainResult

DEFAULT_MAX_BYTES = 3 << 29  # 1.5 GiB: 10,000 models of 64-32-16-10 (with momentum and L2) in one stack
EVAL_BYTES = 2 << 20  # evaluation handles this many bytes of one layer's activations at a time

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
    """Models ``start:stop`` of a stack share a cost (and so an output-delta rule)."""

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


class _Buffers:
    """Preallocated arrays of one minibatch size ``n`` for ``K`` models; samples are columns:
    activations ``(K, units, n)``, hidden ones with a trailing row of ones ``[A_l; 1]``."""

    def __init__(self, sizes, K, n, dtype, shared):
        self.X = np.empty((n, sizes[0] + 1) if shared else (K, n, sizes[0] + 1), dtype=dtype)
        self.Y = np.empty((n, sizes[-1]) if shared else (K, n, sizes[-1]), dtype=dtype)
        self.hidden = []
        for size in sizes[1:-1]:
            h = np.empty((K, size + 1, n), dtype=dtype)
            h[:, -1] = 1
            self.hidden.append(h)
        self.z = [np.empty((K, s, n), dtype=dtype) for s in sizes[1:]]
        self.a = [h[:, :-1] for h in self.hidden] + [np.empty((K, sizes[-1], n), dtype=dtype)]
        self.delta = [np.empty((K, s, n), dtype=dtype) for s in sizes[1:]]
        self.tmp = [np.empty((K, s, n), dtype=dtype) for s in sizes[1:]]
        self.n = n


class Stack:
    """The parameters and optimiser state of K networks of one group, model axis first.

    ``theta`` and ``grad`` have shape ``(K, P)``; ``blocks[l]`` is layer ``l``'s view
    ``(K, fan_in + 1, fan_out)`` of ``theta`` (weights, then the bias row). ``lr``,
    ``momentum`` and ``nesterov`` are ``(K, 1)`` columns; ``decay`` (``l2`` on weights, 0 on
    biases) is ``(K, P)`` and exists only when some model has L2.
    """

    def __init__(self, key: GroupKey, configs: Sequence[RunConfig], indices: Sequence[int]):
        self.key = key
        self.sizes = list(key.sizes)
        self.dtype = np.dtype(key.dtype)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.configs = list(configs)
        P = n_params(self.sizes)
        theta = np.empty((len(configs), P), dtype=self.dtype)
        for j, c in enumerate(configs):
            ws, bs = init_params(self.sizes, c.init, c.bias_init, rng_streams(c.seed)[0], self.dtype)
            theta[j] = np.concatenate([p.ravel() for wb in zip(ws, bs) for p in wb])
        mask = np.zeros(P, dtype=self.dtype)  # 1 on weights, 0 on biases
        o = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            mask[o:o + fan_in * fan_out] = 1
            o += (fan_in + 1) * fan_out
        col = lambda vals: np.asarray(vals, dtype=self.dtype).reshape(-1, 1)  # noqa: E731
        self.lr = col([c.lr for c in configs])
        self.momentum = col([c.momentum for c in configs])
        self.nesterov = np.asarray([c.nesterov for c in configs], dtype=bool).reshape(-1, 1)
        l2 = np.asarray([c.l2 for c in configs], dtype=np.float64).reshape(-1, 1)
        # the single engine's (l2 * mask).astype(dtype), row by row
        self.decay = (l2 * mask).astype(self.dtype) if l2.any() else None
        self.any_momentum = bool(self.momentum.any())
        self.any_nesterov = bool(self.nesterov.any())
        self.velocity: np.ndarray | None = None
        self.hidden_into = forward_into(key.activation)
        self.out_into = forward_into(key.output)
        self.hidden_times = times_derivative(key.activation)
        self.out_times = times_derivative(key.output)
        self._set(theta)

    def _set(self, theta: np.ndarray) -> None:
        self.theta = theta
        self.grad = np.zeros_like(theta)
        self.scratch = np.empty_like(theta)
        self.blocks, self.grad_blocks = [], []
        K, o = len(theta), 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            size = (fan_in + 1) * fan_out
            self.blocks.append(theta[:, o:o + size].reshape(K, fan_in + 1, fan_out))
            self.grad_blocks.append(self.grad[:, o:o + size].reshape(K, fan_in + 1, fan_out))
            o += size
        self.weights = [b[:, :-1] for b in self.blocks]
        self.biases = [b[:, -1:] for b in self.blocks]
        self.segments = _segments([c.cost for c in self.configs])
        self.shared_seed = len({c.seed for c in self.configs}) == 1
        self.buffers: dict[int, _Buffers] = {}

    @property
    def size(self) -> int:
        return len(self.configs)

    def buffers_for(self, n: int, shared: bool | None = None, k: int | None = None) -> _Buffers:
        """Buffers for ``k`` models (default all) and minibatches of ``n`` rows."""
        k = self.size if k is None else k
        shared = self.shared_seed if shared is None else shared
        buf = self.buffers.get((k, n, shared))
        if buf is None:
            buf = self.buffers[(k, n, shared)] = _Buffers(self.sizes, k, n, self.dtype, shared)
        return buf

    def view(self, k0: int, k1: int) -> "_View":
        """Models ``k0:k1`` for a forward pass (sharing this stack's parameters and buffers)."""
        return _View(self, k0, k1)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the models where ``mask`` is False (they have finished)."""
        self.indices = self.indices[mask]
        self.configs = [c for c, m in zip(self.configs, mask) if m]
        self.lr, self.momentum, self.nesterov = self.lr[mask], self.momentum[mask], self.nesterov[mask]
        if self.decay is not None:
            self.decay = self.decay[mask]
        if self.velocity is not None:
            self.velocity = self.velocity[mask]
        self._set(self.theta[mask])

    def network(self, j: int) -> Network:
        """Model ``j`` as a :class:`Network` (copies of its parameters)."""
        c = self.configs[j]
        net = Network(self.sizes, c.activation, c.output, c.cost, c.dtype)
        net.weights = [w[j].copy() for w in self.weights]
        net.biases = [b[j, 0].copy() for b in self.biases]
        return net


class _View:
    """Models ``k0:k1`` of a stack, enough for :func:`forward`."""

    def __init__(self, stack: Stack, k0: int, k1: int):
        self.blocks = [b[k0:k1] for b in stack.blocks]
        self.hidden_into, self.out_into = stack.hidden_into, stack.out_into
        self._stack, self._k = stack, k1 - k0

    def buffers_for(self, n: int, shared: bool = True) -> _Buffers:
        return self._stack.buffers_for(n, shared, self._k)


# -- the math of one step ----------------------------------------------------------------------

def _T(x):
    """Swap the last two axes (a view)."""
    return x.swapaxes(-1, -2)


def forward(stack: Stack, Xa, buf: _Buffers) -> None:
    """Forward pass of every model into ``buf`` (eq. 3), samples as columns:
    ``Z_l^T = [W_l; b_l]^T @ [A_{l-1}; 1]``, ``A_l = f(Z_l)``. ``Xa``: the rows with a column
    of ones, ``(K, n, n_in + 1)``, or ``(n, n_in + 1)`` shared by every model."""
    blocks, zs, acts = stack.blocks, buf.z, buf.a
    prev = _T(Xa)
    for l in range(len(blocks) - 1):
        np.matmul(_T(blocks[l]), prev, out=zs[l])
        stack.hidden_into(zs[l], acts[l])
        prev = buf.hidden[l]
    np.matmul(_T(blocks[-1]), prev, out=zs[-1])
    stack.out_into(zs[-1], acts[-1])


def gradient(stack: Stack, Xa, Y, buf: _Buffers) -> np.ndarray:
    """Minibatch-averaged gradients of every model into ``stack.grad`` (eq. 3, 5-9):
    ``grad [W_l; b_l] = [A_{l-1}; 1] @ Delta_l^T``, ``Delta_{l-1} = (W_l @ Delta_l) * f'(Z_{l-1})``.

    ``Y``: one-hot targets as rows, ``(K, n, n_out)`` or ``(n, n_out)`` shared.
    """
    forward(stack, Xa, buf)
    zs, acts, deltas, tmps = buf.z, buf.a, buf.delta, buf.tmp
    output_delta(stack, zs[-1], acts[-1], _T(Y), deltas[-1], tmps[-1])
    np.divide(deltas[-1], buf.n, out=deltas[-1])
    for l in range(len(stack.blocks) - 1, -1, -1):
        prev = buf.hidden[l - 1] if l else _T(Xa)
        np.matmul(prev, _T(deltas[l]), out=stack.grad_blocks[l])
        if l:
            np.matmul(stack.weights[l], deltas[l], out=deltas[l - 1])
            if stack.hidden_times is not None:
                stack.hidden_times(deltas[l - 1], zs[l - 1], acts[l - 1], tmps[l - 1])
    return stack.grad


def output_delta(stack: Stack, z, a, YT, out, tmp) -> None:
    """dC_s/dz at the output layer of every model into ``out``, segment by segment (eq. 5-6):
    ``a - y`` where that is exact (sigmoid + ce, softmax + cce, identity + mse), ``(a - y) f'(z)``
    for mse under an elementwise output, the general chain rule otherwise. Samples are
    columns: ``z``, ``a``, ``out`` are ``(K, n_out, n)``, ``YT`` is ``(K, n_out, n)`` or shared ``(n_out, n)``."""
    output = stack.key.output
    for s in stack.segments:
        sl = slice(s.start, s.stop)
        Ys = YT if YT.ndim == 2 else YT[sl]
        if (output, s.cost) in SHORTCUTS:
            np.subtract(a[sl], Ys, out=out[sl])
        elif s.cost == "mse" and stack.out_times is not None:
            np.subtract(a[sl], Ys, out=out[sl])
            stack.out_times(out[sl], z[sl], a[sl], tmp[sl])
        else:
            act = get_activation(output)
            out[sl] = _T(act.backward(_T(z[sl]), _T(a[sl]), get_cost(s.cost).grad(_T(a[sl]), _T(Ys))))


def sgd_step(stack: Stack) -> None:
    """One SGD update of every model from ``stack.grad``, as :class:`sgdlab.train.optim.SGD`
    (``torch.optim.SGD``): ``g += l2 W`` (weights only), ``v = m v + g``, ``g += m v``
    (Nesterov) or ``g = v``, ``theta -= lr g``; each model's own lr, momentum and l2."""
    g, tmp, theta = stack.grad, stack.scratch, stack.theta
    if stack.decay is not None:
        np.multiply(theta, stack.decay, out=tmp)
        g += tmp
    if stack.any_momentum:
        v = stack.velocity
        if v is None:
            v = stack.velocity = g.copy()
        else:
            v *= stack.momentum
            v += g
        if stack.any_nesterov:
            np.multiply(v, stack.momentum, out=tmp)
            nest = np.add(g, tmp)
            g = np.where(stack.nesterov, nest, v)
        else:
            g = v
    np.multiply(g, stack.lr, out=tmp)
    theta -= tmp


# -- evaluation ---------------------------------------------------------------------------------

@dataclass
class Metrics:
    """Loss and accuracy of each model of a stack on one part of the data, shape ``(K,)``."""

    loss: np.ndarray
    acc: np.ndarray


def evaluate(stack: Stack, parts, eval_models: int) -> list[Metrics]:
    """Loss and accuracy of every model on each ``(Xa, y, Y)`` of ``parts`` (full sets, with a
    column of ones), as the single engine computes them: the forward pass of
    :func:`forward`, the cost's mean value, the share of rows whose largest output is the
    label. ``eval_models`` models at a time, so the activations stay in cache."""
    K = stack.size
    out = [Metrics(np.full(K, np.nan), np.full(K, np.nan)) for _ in parts]
    for i, (Xa, yp, Yp) in enumerate(parts):
        if not len(yp):
            continue
        for s in stack.segments:
            cost = get_cost(s.cost)
            for k0 in range(s.start, s.stop, eval_models):
                k1 = min(k0 + eval_models, s.stop)
                sub = stack.view(k0, k1)
                buf = sub.buffers_for(len(yp), shared=True)
                forward(sub, Xa, buf)
                a = _T(buf.a[-1])  # (k, n, n_out) view
                out[i].loss[k0:k1] = cost.value(a, Yp)
                out[i].acc[k0:k1] = np.mean(np.argmax(a, axis=-1) == yp, axis=-1)
    return out


# -- training -----------------------------------------------------------------------------------

@dataclass
class _Prepared:
    """A group's data in its dtype: the training inputs with a column of ones, one-hot
    targets, and the (X with ones, y, Y) of the train, validation and test parts."""

    Xa: np.ndarray
    Y: np.ndarray
    parts: list
    n: int
    has_val: bool


def _prepare(data: Dataset, dtype) -> _Prepared:
    d = data.astype(dtype)
    k = d.n_classes
    Xa = _augment(d.X_train)
    Y = one_hot(d.y_train, k, dtype)
    parts = [(Xa, d.y_train, Y), (_augment(d.X_val), d.y_val, one_hot(d.y_val, k, dtype)),
             (_augment(d.X_test), d.y_test, one_hot(d.y_test, k, dtype))]
    return _Prepared(Xa, Y, parts, len(d.y_train), len(d.y_val) > 0)


def _augment(X) -> np.ndarray:
    """``[X, 1]``: a column of ones appended."""
    out = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
    out[:, :-1] = X
    out[:, -1] = 1
    return out


def train_stack(stack: Stack, prep: _Prepared, results: dict, on_epoch: OnEpoch | None = None) -> None:
    """Train one stack to the end; put each model's :class:`TrainResult` in ``results``
    under its index."""
    n, bs = prep.n, stack.key.batch_size
    seeds = sorted({c.seed for c in stack.configs})
    streams = {s: rng_streams(s)[1] for s in seeds}
    hist = {int(i): History() for i in stack.indices}
    best = {int(i): -1.0 for i in stack.indices}
    waited = {int(i): 0 for i in stack.indices}
    # evaluation buffers per model: z, a, delta, tmp of every layer for the largest part
    n_eval = max(len(p[1]) for p in prep.parts)
    eval_models = max(1, EVAL_BYTES // (stack.dtype.itemsize * n_eval * 4 * sum(s + 1 for s in stack.sizes[1:])))
    epochs = max(c.epochs for c in stack.configs)
    Xa, Y = prep.Xa, prep.Y
    with np.errstate(all="ignore"):
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            # every seed's stream draws one permutation per epoch, as in the single engine
            perms = {s: streams[s].permutation(n) for s in seeds}
            if stack.shared_seed:
                order, rows = perms[seeds[0]], None
            else:  # one row per seed; each model reads its seed's row
                order = np.stack([perms[s] for s in seeds])
                rows = np.searchsorted(seeds, [c.seed for c in stack.configs])
            for i in range(0, n, bs):
                idx = order[i:i + bs] if rows is None else order[rows, i:i + bs]
                buf = stack.buffers_for(idx.shape[-1])
                np.take(Xa, idx, axis=0, out=buf.X)
                np.take(Y, idx, axis=0, out=buf.Y)
                gradient(stack, buf.X, buf.Y, buf)
                sgd_step(stack)
            seconds = (time.perf_counter() - t0) / stack.size
            m = evaluate(stack, prep.parts, eval_models)
            finite = np.isfinite(m[0].loss) & np.isfinite(stack.theta).all(axis=1)
            keep = np.ones(stack.size, dtype=bool)
            for j, (gi, c) in enumerate(zip(stack.indices.tolist(), stack.configs)):
                h = hist[gi]
                if not finite[j]:
                    h.status, h.diverged_epoch = "diverged", epoch
                    keep[j] = False
                else:
                    for part, mp in zip(("train", "val", "test"), m):
                        getattr(h, f"{part}_loss").append(float(mp.loss[j]))
                        getattr(h, f"{part}_acc").append(float(mp.acc[j]))
                    h.seconds.append(seconds)
                    if on_epoch:
                        on_epoch(gi, epoch, h)
                    if c.patience is not None and prep.has_val:
                        if m[1].acc[j] > best[gi]:
                            best[gi], waited[gi] = float(m[1].acc[j]), 0
                        else:
                            waited[gi] += 1
                            if waited[gi] >= c.patience:
                                h.stopped_epoch = epoch
                                keep[j] = False
                    if epoch >= c.epochs:
                        keep[j] = False
                if not keep[j]:
                    results[gi] = TrainResult(stack.network(j), h, c)
            if not keep.all():
                stack.keep(keep)
            if stack.size == 0:
                break


def plan(configs: Sequence[RunConfig], data: Dataset, max_bytes: int | None = None,
         threads: int = 1) -> list[tuple[GroupKey, list[int]]]:
    """The stacks :func:`train_many` trains: ``(group key, config indices)`` per chunk.

    Within a group the configs are ordered by cost (each cost one contiguous segment), then
    seed, then position. A group is cut into equal chunks, as few as the memory budget
    allows, and at least ``threads`` when it has that many models, so that every thread has
    work. How the models are chunked never changes their results.
    """
    groups: dict[GroupKey, list[int]] = defaultdict(list)
    for i, c in enumerate(configs):
        groups[group_key(c, data.n_features, data.n_classes)].append(i)
    out = []
    for key, members in groups.items():
        members = sorted(members, key=lambda i: (configs[i].cost, configs[i].seed, i))
        momentum = any(configs[i].momentum for i in members)
        l2 = any(configs[i].l2 for i in members)
        budget = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        limit = chunk_size(key.sizes, key.batch_size, key.dtype, momentum, l2, budget // threads)
        n_chunks = max(-(-len(members) // limit), min(threads, len(members)))
        size = -(-len(members) // n_chunks)
        out.extend((key, members[c0:c0 + size]) for c0 in range(0, len(members), size))
    return out


def train_many(configs: Sequence[RunConfig], data: Dataset, *, max_bytes: int | None = None,
               on_epoch: OnEpoch | None = None, threads: int = 1) -> list[TrainResult]:
    """Train every config on ``data``: the results of ``[train(c, data) for c in configs]``.

    Parameters
    ----------
    configs : sequence of RunConfig
        Any mix. Runs with the same layer sizes, activations, batch size and dtype are
        trained together in stacks; the others in stacks of their own. The configs' dataset
        and split settings are not read: ``data`` is what every run trains on.
    data : Dataset
        The split data.
    max_bytes : int, optional
        Memory budget of the stacks in training at once (default ``DEFAULT_MAX_BYTES``,
        1.5 GiB; see :func:`bytes_per_model`): a larger group is trained in several chunks,
        with the same results. The returned networks come on top (``8 P`` bytes each).
    on_epoch : callable, optional
        ``on_epoch(index, epoch, history)`` after each recorded epoch of ``configs[index]``
        (with ``threads > 1`` from worker threads, one call at a time).
    threads : int
        Stacks trained at once on this many threads (numpy and BLAS release the GIL). The
        default, 1, suits callers that already run one process per core (the study runner).
        BLAS is held to one thread during the call, so results do not depend on ``threads``
        (a multithreaded BLAS product can round differently from a single-threaded one).

    Returns
    -------
    list of TrainResult
        One per config, in the order given.
    """
    configs = list(configs)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise SgdlabError(f"threads: expected a positive integer, got {threads!r}")
    results: dict[int, TrainResult] = {}
    prepared: dict[str, _Prepared] = {}
    stacks = plan(configs, data, max_bytes, threads)
    for key, _ in stacks:
        if key.dtype not in prepared:
            prepared[key.dtype] = _prepare(data, np.dtype(key.dtype))

    def run(item):
        key, members = item
        stack = Stack(key, [configs[i] for i in members], members)
        train_stack(stack, prepared[key.dtype], results, callback)

    callback = on_epoch
    # BLAS on one thread always: a multithreaded product can round differently, and the
    # results must not depend on ``threads`` (the per-model products are small anyway).
    with _blas_threads(1):
        if threads == 1 or len(stacks) == 1:
            for item in stacks:
                run(item)
        else:
            import threading
            from concurrent.futures import ThreadPoolExecutor

            if on_epoch is not None:
                lock = threading.Lock()

                def callback(index, epoch, history):
                    with lock:
                        on_epoch(index, epoch, history)

            with ThreadPoolExecutor(min(threads, len(stacks))) as pool:
                for f in [pool.submit(run, item) for item in stacks]:
                    f.result()
    return [results[i] for i in range(len(configs))]


def _blas_threads(n: int):
    """Hold BLAS to ``n`` threads (threadpoolctl, when installed) while the block runs."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(n, user_api="blas")
