"""A multilayer perceptron: parameters, forward pass (paper eq. 3), backpropagation (eq. 5-9).

Samples are rows. For layer ``l`` (0-based), ``W[l]`` has shape ``(fan_in, fan_out)`` and
``b[l]`` shape ``(fan_out,)``; the forward pass is ``Z = A_prev @ W + b``, ``A = f(Z)``.
The paper's ``W^(k)`` (one row per neuron of layer k) is ``W[k-1].T``.

Backpropagation, vectorised over a minibatch of ``n`` rows:

- output layer (eq. 5-6): ``Delta_L = f_L'(Z_L) * dC/dA_L``, or ``A_L - Y`` for the pairs
  in ``costs.SHORTCUTS`` where that is exact;
- hidden layers (eq. 7): ``Delta_l = (Delta_{l+1} @ W[l+1].T) * f'(Z_l)``;
- gradients (eq. 8-9), averaged over the minibatch: ``dW[l] = A_{l-1}.T @ Delta_l / n``,
  ``db[l] = mean over rows of Delta_l``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SgdlabError
from .activations import LEAKY_SLOPE, Activation, get_activation
from .costs import Cost, check_pairing, get_cost, output_delta, shortcut_mask, uses_shortcut
from .init import init_params
from .inplace import ONES, TIMES_DERIVATIVE

DTYPES = {"float64": np.float64, "float32": np.float32}


def resolve_dtype(dtype) -> np.dtype:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise SgdlabError(f"unknown dtype {dtype!r}; valid: float32, float64")
    return np.dtype(DTYPES[name])


def check_sizes(sizes) -> list[int]:
    """Layer sizes as a list of positive ints, at least input and output."""
    try:
        out = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise SgdlabError(f"layer sizes must be positive integers, got {sizes!r}") from None
    if len(out) < 2 or any(s <= 0 for s in out) or any(float(s) != float(t) for s, t in zip(out, sizes)):
        raise SgdlabError(f"layer sizes must be positive integers (input, ..., output), got {list(sizes)!r}")
    return out


@dataclass
class Gradients:
    """dC/dW and dC/db per layer, averaged over the minibatch."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


@dataclass
class Network:
    """An MLP with a hidden activation, an output activation and a cost.

    Parameters
    ----------
    sizes : list of int
        ``[n_inputs, hidden..., n_outputs]``, e.g. the paper's ``[64, 32, 16, 10]``.
    activation : str
        Hidden-layer activation.
    output : str
        Output activation, or ``"same"`` for the hidden one (what the paper did).
    cost : str
        ``mse``, ``ce`` or ``cce`` (softmax output only).
    ce_outside : str
        How ``ce`` treats outputs outside (0, 1): ``clip``, ``nielsen`` or ``none``
        (see :mod:`sgdlab.nn.costs`).
    """

    sizes: list[int]
    activation: str = "sigmoid"
    output: str = "same"
    cost: str = "ce"
    dtype: str = "float64"
    ce_outside: str = "clip"
    weights: list[np.ndarray] = field(default_factory=list, repr=False)
    biases: list[np.ndarray] = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.sizes = check_sizes(self.sizes)
        if self.output == "same":
            self.output = self.activation
        if self.activation == "softmax":
            raise SgdlabError("softmax is an output activation only; hidden: sigmoid, tanh, relu, leaky_relu, identity")
        check_pairing(self.output, self.cost, self.ce_outside)
        self.dtype = resolve_dtype(self.dtype).name
        self._bind()

    def _bind(self) -> None:
        """Look up the activation and cost functions the names stand for (not pickled)."""
        self._hidden: Activation = get_activation(self.activation)
        self._out: Activation = get_activation(self.output)
        self._cost: Cost = get_cost(self.cost, self.ce_outside)

    # -- pickling: the functions are looked up again from the names ----------------------
    _DERIVED = ("_hidden", "_out", "_cost")

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._DERIVED}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    @property
    def rule(self) -> str:
        """The cost with its cross-entropy convention (``ce``, ``ce:nielsen``, ...): what the
        output delta depends on (see :data:`sgdlab.nn.costs.RULES`)."""
        return self._cost.rule

    @property
    def shortcut(self) -> bool:
        """Is the output delta ``a - y`` (times the clip mask where the cost clips)?"""
        return uses_shortcut(self.output, self.rule)

    @property
    def output_activation(self) -> Activation:
        """The output layer's :class:`~sgdlab.nn.activations.Activation`."""
        return self._out

    # -- construction ---------------------------------------------------------------
    def initialize(self, init="xavier", bias_init="normal", rng=None) -> "Network":
        self.weights, self.biases = init_params(self.sizes, init, bias_init, rng, self.dtype)
        return self

    @property
    def params(self) -> list[np.ndarray]:
        """Weights and biases interleaved: W0, b0, W1, b1, ... (the same arrays, not copies)."""
        return [p for wb in zip(self.weights, self.biases) for p in wb]

    def copy(self) -> "Network":
        net = Network(self.sizes, self.activation, self.output, self.cost, self.dtype, self.ce_outside)
        net.weights = [w.copy() for w in self.weights]
        net.biases = [b.copy() for b in self.biases]
        return net

    # -- math -------------------------------------------------------------------------
    def forward(self, X):
        """Pre-activations ``Z`` and activations ``A`` of every layer (``A[0] = X``), eq. 3."""
        acts, zs = [X], []
        last = len(self.weights) - 1
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = acts[-1] @ W + b
            zs.append(z)
            acts.append((self._out if l == last else self._hidden).fn(z))
        return zs, acts

    def output_delta(self, z, a, Y):
        """dC_s/dz at the output layer per sample (eq. 5-6; see :func:`costs.output_delta`)."""
        return output_delta(self.output, self.rule, self._out, z, a, Y)

    def backward(self, zs, acts, Y) -> Gradients:
        """Gradients of the minibatch cost, averaged over its rows (eq. 7-9)."""
        n = Y.shape[0]
        delta = self.output_delta(zs[-1], acts[-1], Y) / n
        gw = [None] * len(self.weights)
        gb = [None] * len(self.weights)
        for l in range(len(self.weights) - 1, -1, -1):
            gw[l] = acts[l].T @ delta
            gb[l] = delta.sum(axis=0)
            if l:
                delta = self._hidden.backward(zs[l - 1], acts[l], delta @ self.weights[l].T)
        return Gradients(gw, gb)

    def gradients(self, X, Y) -> Gradients:
        zs, acts = self.forward(X)
        return self.backward(zs, acts, Y)

    def loss(self, X, Y) -> float:
        return float(self._cost.value(self.predict_proba(X), Y))

    def predict_proba(self, X):
        a = X
        last = len(self.weights) - 1
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            a = (self._out if l == last else self._hidden).fn(a @ W + b)
        return a

    def predict(self, X):
        """Class index of the largest output per row."""
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X, y, Y=None) -> tuple[float, float]:
        """(loss, accuracy) on labels ``y`` (one-hot ``Y`` built if not given)."""
        if Y is None:
            Y = one_hot(y, self.sizes[-1], self.dtype)
        a = self.predict_proba(X)
        return float(self._cost.value(a, Y)), float(np.mean(np.argmax(a, axis=1) == y))


def one_hot(y, n_classes, dtype="float64"):
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


# --------------------------------------------------------------------------------------
# The training fast path: the same math as Network.forward/backward, in place.
# --------------------------------------------------------------------------------------
def augment(X) -> np.ndarray:
    """``[X, 1]``: the rows of ``X`` with a column of ones appended (for the packed bias row)."""
    X = np.asarray(X)
    out = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
    out[:, :-1] = X
    out[:, -1] = 1
    return out


_ONES = ONES  # 0-d ones of each dtype (see nn/inplace.py)


# In-place activations, out = f(z). Same values as activations.py up to float rounding.
def _sigmoid_into(z, out):
    # 1 / (1 + exp(-z)); exp overflows to inf for z < -709 and gives exactly 0 (callers
    # run under np.errstate(over="ignore")).
    np.negative(z, out=out)
    np.exp(out, out=out)
    np.add(out, _ONES[out.dtype], out=out)
    np.reciprocal(out, out=out)


def _leaky_relu_into(z, out):
    np.multiply(z, LEAKY_SLOPE, out=out)
    np.maximum(z, out, out=out)  # max(z, slope * z) for 0 < slope < 1


def _softmax_into(z, out):
    # samples are columns here (see PackedNetwork.gradient): normalise over axis 0
    np.subtract(z, z.max(axis=0, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=0, keepdims=True)


_FORWARD_INTO = {
    "sigmoid": _sigmoid_into,
    "tanh": lambda z, out: np.tanh(z, out=out),
    "relu": lambda z, out: np.maximum(z, 0, out=out),
    "leaky_relu": _leaky_relu_into,
    "identity": lambda z, out: np.copyto(out, z),
    "softmax": _softmax_into,
}


_TIMES_DERIVATIVE = TIMES_DERIVATIVE  # in-place delta *= f'(z), shared with the batched engine


class _Buffers:
    """Preallocated arrays for one minibatch size ``n``, samples as columns (see PackedNetwork)."""

    def __init__(self, sizes, n, dtype):
        # hidden activations with a trailing row of ones: [A_l; 1], shape (size_l + 1, n)
        self.hidden = []
        for size in sizes[1:-1]:
            a = np.empty((size + 1, n), dtype=dtype)
            a[-1] = 1
            self.hidden.append(a)
        self.z = [np.empty((size, n), dtype=dtype) for size in sizes[1:]]
        self.a = [h[:-1] for h in self.hidden] + [np.empty((sizes[-1], n), dtype=dtype)]
        self.delta = [np.empty((size, n), dtype=dtype) for size in sizes[1:]]
        self.tmp = [np.empty((size, n), dtype=dtype) for size in sizes[1:]]
        self.n = np.array(n, dtype=dtype)  # the batch size, as a 0-d array (see _ONES)
        self.L = len(sizes) - 1


class PackedNetwork:
    """A :class:`Network`'s parameters in one flat array, with in-place minibatch gradients.

    This is the training loop's fast path: the same forward pass (eq. 3) and
    backpropagation (eq. 5-9) as :meth:`Network.forward` / :meth:`Network.backward`, equal
    to them up to float rounding, without allocating per minibatch.

    Layout: ``theta = [W0.ravel(), b0, W1.ravel(), b1, ...]``, the order of
    :attr:`Network.params`. Layer ``l``'s slice of ``theta``, read as a
    ``(fan_in + 1, fan_out)`` matrix, is ``[W_l; b_l]``, so with the previous activations
    augmented by a column of ones (``[A, 1]``, see :func:`augment`) the pre-activation is one
    matmul, ``Z = [A, 1] @ [W; b]``, and the weight and bias gradients are one matmul,
    ``[A, 1].T @ Delta``. ``grad`` has the same layout.

    The packed parameters are a copy: call :meth:`unpack` to write them back into the
    network's arrays (in place).
    """

    def __init__(self, net: Network):
        self.net = net
        self.dtype = np.dtype(net.dtype)
        self.sizes = list(net.sizes)
        self.theta = np.concatenate([np.asarray(p, dtype=self.dtype).ravel() for p in net.params])
        self.grad = np.zeros_like(self.theta)
        # 1 where a parameter is a weight, 0 where it is a bias (L2 applies to weights only)
        self.weight_mask = np.zeros_like(self.theta)
        self.blocks, self.grad_blocks, self.weights = [], [], []
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            size = (fan_in + 1) * fan_out
            block = self.theta[offset:offset + size].reshape(fan_in + 1, fan_out)
            self.blocks.append(block)
            self.weights.append(block[:-1])
            self.grad_blocks.append(self.grad[offset:offset + size].reshape(fan_in + 1, fan_out))
            self.weight_mask[offset:offset + fan_in * fan_out] = 1
            offset += size
        self._hidden_into = _FORWARD_INTO[net.activation]
        self._out_into = _FORWARD_INTO[net.output]
        self._hidden_times = _TIMES_DERIVATIVE[net.activation]
        self._shortcut = net.shortcut
        # a - y needs the clip mask of ce / cce to be the gradient of the value computed
        self._masked = self._shortcut and net.rule in ("ce", "cce")
        self._rule = net.rule
        # mse under an elementwise output: dC/dz = (a - y) * f'(z), in place
        self._mse_elementwise = net.cost == "mse" and net.output in _TIMES_DERIVATIVE
        self._out_times = _TIMES_DERIVATIVE.get(net.output)
        self._buffers: dict[int, _Buffers] = {}

    def unpack(self) -> Network:
        """Copy the packed parameters into the network's weight and bias arrays."""
        for l, block in enumerate(self.blocks):
            np.copyto(self.net.weights[l], block[:-1])
            np.copyto(self.net.biases[l], block[-1])
        return self.net

    def _forward(self, Xa, buf):
        """Forward pass (eq. 3) into ``buf``: Z_l.T = [W_l; b_l].T @ [A_{l-1}; 1], A_l = f(Z_l)."""
        blocks, zs, acts, hidden_into = self.blocks, buf.z, buf.a, self._hidden_into
        prev = Xa.T
        for l in range(buf.L - 1):
            np.dot(blocks[l].T, prev, out=zs[l])
            hidden_into(zs[l], acts[l])
            prev = buf.hidden[l]
        np.dot(blocks[-1].T, prev, out=zs[-1])
        self._out_into(zs[-1], acts[-1])

    def _buffers_for(self, n) -> _Buffers:
        buf = self._buffers.get(n)
        if buf is None:
            buf = self._buffers[n] = _Buffers(self.sizes, n, self.dtype)
        return buf

    def layer_outputs(self, Xa) -> list[np.ndarray]:
        """Every layer's activations for the rows of ``Xa`` (with the column of ones), samples as
        columns: ``(units, n)`` per layer, the output layer last. Views of internal buffers, as
        for :meth:`predict_proba`."""
        buf = self._buffers_for(Xa.shape[0])
        self._forward(Xa, buf)
        return buf.a

    def predict_proba(self, Xa) -> np.ndarray:
        """Output activations for the rows of ``Xa`` (with the column of ones), shape ``(n, n_outputs)``.

        The result is a view of an internal buffer, overwritten by the next call with the
        same number of rows; copy it to keep it. Run under ``np.errstate(over="ignore")``.
        """
        buf = self._buffers_for(Xa.shape[0])
        self._forward(Xa, buf)
        return buf.a[-1].T

    def gradient(self, Xa, Y) -> np.ndarray:
        """Average gradient of the minibatch cost at ``theta``, written into (and returning) ``grad``.

        ``Xa`` is the minibatch with a column of ones appended (``augment(X)[rows]``),
        shape ``(n, n_inputs + 1)``; ``Y`` the one-hot targets, shape ``(n, n_outputs)``.
        Run it under ``np.errstate(over="ignore")``: a sigmoid of a very negative input
        overflows ``exp`` on the way to an exact 0.

        Inside, samples are columns (``Z_l.T``, ``A_l.T``, ``Delta_l.T``): the row of ones
        of ``[A; 1]`` then sits after the activations in memory and every elementwise
        operation runs on contiguous arrays.
        """
        n = Xa.shape[0]
        buf = self._buffers.get(n)
        if buf is None:
            buf = self._buffers[n] = _Buffers(self.sizes, n, self.dtype)
        self._forward(Xa, buf)
        L, zs, acts, deltas, tmps = buf.L, buf.z, buf.a, buf.delta, buf.tmp
        z, a, delta = zs[-1], acts[-1], deltas[-1]
        # output delta (eq. 5-6), averaged over the minibatch
        if self._shortcut:  # a - y: sigmoid+ce, softmax+cce, identity+mse, and ce:nielsen
            np.subtract(a, Y.T, out=delta)
            if self._masked:  # 0 where the value clips the output (see costs.shortcut_mask)
                delta *= shortcut_mask(self._rule, a.T, Y).T
        elif self._mse_elementwise:
            np.subtract(a, Y.T, out=delta)
            self._out_times(delta, z, a, tmps[-1])
        else:
            net = self.net
            delta[...] = output_delta(net.output, self._rule, net.output_activation, z.T, a.T, Y).T
        np.divide(delta, buf.n, out=delta)
        # backward (eq. 7-9): grad [W_l; b_l] = [A_{l-1}; 1] @ Delta_l.T,
        # Delta_{l-1}.T = (W_l @ Delta_l.T) * f'(Z_{l-1}.T)
        times = self._hidden_times
        for l in range(L - 1, -1, -1):
            prev = buf.hidden[l - 1] if l else Xa.T
            np.dot(prev, deltas[l].T, out=self.grad_blocks[l])
            if l:
                np.dot(self.weights[l], deltas[l], out=deltas[l - 1])
                if times is not None:
                    times(deltas[l - 1], zs[l - 1], acts[l - 1], tmps[l - 1])
        return self.grad
