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

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import SgdlabError
from .activations import Activation, get_activation
from .costs import Cost, check_pairing, get_cost, output_delta, uses_shortcut
from .init import init_params
from .inputs import check_features, check_labels, check_targets

DTYPES = {"float64": np.float64, "float32": np.float32}


def resolve_dtype(dtype) -> np.dtype:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise SgdlabError(f"unknown dtype {dtype!r}; valid: float32, float64")
    return np.dtype(DTYPES[name])


def check_sizes(sizes) -> list[int]:
    """Layer sizes as a list of positive ints, at least input and output."""
    try:
        if isinstance(sizes, (str, bytes)) or any(isinstance(s, (bool, np.bool_, str, bytes)) for s in sizes):
            raise TypeError  # "43" is not [4, 3], True is not 1
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

    def check_parameters(self) -> None:
        """Raise :class:`SgdlabError` unless the weights and biases exist and have the shapes
        ``sizes`` says (a network made by ``Network(...)`` has none until :meth:`initialize`)."""
        if not self.weights and not self.biases:
            raise SgdlabError("network: not initialised (no weights); call "
                              "network.initialize(init, bias_init, rng) first")
        n = len(self.sizes) - 1
        if len(self.weights) != n or len(self.biases) != n:
            raise SgdlabError(f"network: {len(self.weights)} weight and {len(self.biases)} bias arrays, its sizes "
                              f"{self.sizes} need {n} of each")
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            for what, p, shape in (("weights", W, (self.sizes[l], self.sizes[l + 1])),
                                   ("biases", b, (self.sizes[l + 1],))):
                if np.shape(p) != shape:
                    raise SgdlabError(f"network: {what}[{l}] has shape {np.shape(p)}, its sizes {self.sizes} "
                                      f"need {shape}")

    def _checked(self, X, Y=None, y=None):
        """The public methods' inputs, checked against this network (see :mod:`.inputs`)."""
        self.check_parameters()
        X = check_features(X, self.sizes[0])
        if Y is not None:
            Y = check_targets(Y, self.sizes[-1], len(X))
        if y is not None:
            y = check_labels(y, self.sizes[-1], len(X))
        return X, Y, y

    def finite(self) -> bool:
        """Are all weights and biases finite (not a diverged network)?"""
        return all(np.isfinite(p).all() for p in self.params)

    @property
    def params(self) -> list[np.ndarray]:
        """Weights and biases interleaved: W0, b0, W1, b1, ... (the same arrays, not copies)."""
        return [p for wb in zip(self.weights, self.biases) for p in wb]

    def copy(self) -> "Network":
        return replace(self, weights=[w.copy() for w in self.weights], biases=[b.copy() for b in self.biases])

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

    # The methods below check their inputs (shapes against ``sizes``, finite numbers, labels in
    # range); forward and backward are the bare math.
    def gradients(self, X, Y) -> Gradients:
        X, Y, _ = self._checked(X, Y)
        zs, acts = self.forward(X)
        return self.backward(zs, acts, Y)

    def loss(self, X, Y) -> float:
        X, Y, _ = self._checked(X, Y)
        return float(self._cost.value(self.forward(X)[1][-1], Y))

    def predict_proba(self, X):
        """Output activations, ``(n_samples, sizes[-1])``."""
        return self.forward(self._checked(X)[0])[1][-1]

    def predict(self, X):
        """Class index of the largest output per row."""
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X, y, Y=None) -> tuple[float, float]:
        """(loss, accuracy) on labels ``y`` (one-hot ``Y`` built if not given)."""
        X, Y, y = self._checked(X, Y, y)
        if Y is None:
            Y = one_hot(y, self.sizes[-1], self.dtype)
        a = self.forward(X)[1][-1]
        return float(self._cost.value(a, Y)), float(np.mean(np.argmax(a, axis=1) == y))


def one_hot(y, n_classes, dtype="float64"):
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y
