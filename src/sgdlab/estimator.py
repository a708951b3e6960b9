"""A scikit-learn compatible classifier over sgdlab's engine.

:class:`SGDNetClassifier` trains the same :class:`~sgdlab.nn.network.Network` with the same
:class:`~sgdlab.train.optim.SGD` and the same seeded streams as ``sgdlab train``: with
``random_state=s`` and no early stopping, ``fit(X, y)`` gives the network that
:func:`sgdlab.train` gives for ``RunConfig(seed=s, ...)`` on the same training rows, up to
float rounding (``train`` uses the packed fast path; this uses ``Network.gradients``, the
reference path, so that ``partial_fit`` can keep the optimizer between calls).
It drops into ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``.

Defaults differ from the paper's on purpose. A classifier should learn out of the box and
``predict_proba`` should return probabilities, so the output layer defaults to softmax with
categorical cross-entropy (``cost="auto"``); the paper's sigmoid output with per-unit
cross-entropy is ``output="sigmoid"`` (its ``predict_proba`` rows are then normalised to sum
to 1), and its "same activation on the output" is ``output="same"``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .config import RunConfig
from .data.scale import check_scale
from .data.scale import fit as fit_scaler
from .errors import SgdlabError
from .nn.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS
from .nn.costs import CE_OUTSIDE, COSTS
from .nn.init import BIAS_INITS, INITS
from .nn.network import Network, one_hot
from .train.loop import History, build_network
from .train.optim import SGD

#: Output activations whose values can be read as class probabilities.
PROBABILISTIC_OUTPUTS = ("softmax", "sigmoid")


def _one_of(name, value, valid):
    if not isinstance(value, str) or value not in valid:
        raise SgdlabError(f"{name}: unknown value {value!r}; valid: {', '.join(valid)}")


def _real(name, value, *, low=None, high=None, low_open=False, high_open=False, integer=False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise SgdlabError(f"{name}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise SgdlabError(f"{name}: must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise SgdlabError(f"{name}: must be {'<' if high_open else '<='} {high}, got {value!r}")


def _auto_cost(output: str) -> str:
    """``cost="auto"``: the likelihood that matches the output layer."""
    return {"softmax": "cce", "sigmoid": "ce"}.get(output, "mse")


class SGDNetClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier trained by minibatch SGD on sgdlab's numpy engine.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(32, 16)
        Units per hidden layer (the paper's 64-32-16-10 network has ``(32, 16)``). ``()``
        gives a network without hidden layers.
    activation : {"sigmoid", "tanh", "relu", "leaky_relu", "identity"}, default="sigmoid"
        Hidden-layer activation.
    output : {"softmax", "sigmoid", "same", "tanh", "relu", "leaky_relu", "identity"}, default="softmax"
        Output activation; ``"same"`` repeats the hidden activation, as the paper did.
        ``predict_proba`` exists only for softmax and sigmoid outputs.
    cost : {"auto", "cce", "ce", "mse"}, default="auto"
        ``auto`` picks ``cce`` for a softmax output, ``ce`` for a sigmoid output and ``mse``
        otherwise. ``cce`` needs a softmax output.
    init : {"xavier", "gaussian", "glorot", "he"}, default="xavier"
        Weight initialiser (``xavier`` is the paper's N(0, 1) / sqrt(fan_in)).
    bias_init : {"normal", "zeros"}, default="normal"
        Bias initialiser (``normal`` is the paper's N(0, 1)).
    learning_rate : float, default=0.1
        SGD step size, > 0.
    batch_size : int, default=10
        Minibatch size; the last, smaller minibatch of an epoch is used too.
    epochs : int, default=30
        Passes over the training data in ``fit`` (the most, with early stopping).
    momentum : float, default=0.0
        In [0, 1).
    nesterov : bool, default=False
        Nesterov momentum (needs momentum > 0).
    l2 : float, default=0.0
        L2 penalty on the weights (not the biases), added to the gradient.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified), stop when the
        validation accuracy has not improved for ``patience`` epochs, and keep the weights of
        the best epoch.
    validation_fraction : float, default=0.1
        In (0, 1); used with ``early_stopping``.
    patience : int, default=5
        Epochs without improvement before early stopping ends training.
    random_state : int, RandomState instance or None, default=None
        An int seeds initial weights and shuffling exactly as ``sgdlab train --seed`` does
        (and the validation split). ``None`` draws a fresh seed; the seed used is kept in
        ``seed_``.
    dtype : {"float64", "float32"}, default="float64"
        Floating point type of the parameters and of the computation.
    ce_outside : {"clip", "nielsen", "none"}, default="clip"
        How ``cost="ce"`` treats outputs outside (0, 1) (a tanh or relu output layer), which
        the paper leaves undefined; see :mod:`sgdlab.nn.costs`. Only ``clip`` is valid with
        another cost.
    scale : {"none", "standard", "minmax", "divide:K"}, default="none"
        Feature scaling fitted on the rows given to ``fit`` and applied by ``predict``
        (:mod:`sgdlab.data.scale`); kept in ``scaler_`` and written by :meth:`save`, so a
        saved model predicts from raw features. ``"none"`` leaves scaling to a ``Pipeline``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when fitted on data with string column names
    coefs_ : list of ndarray
        ``coefs_[l]`` has shape ``(fan_in, fan_out)`` (samples are rows).
    intercepts_ : list of ndarray
        ``intercepts_[l]`` has shape ``(fan_out,)``.
    loss_curve_ : list of float
        Cost on the training rows after each epoch.
    validation_scores_ : list of float or None
        Accuracy on the held-out rows after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run, summed over ``partial_fit`` calls.
    t_ : int
        SGD steps (minibatches) taken.
    history_ : sgdlab.History
        Per-epoch train (and validation) loss and accuracy, status ``done`` or ``diverged``.
    network_ : sgdlab.Network
        The trained network (save it with :func:`sgdlab.save`).
    scaler_ : sgdlab.data.scale.Scaler
        The fitted feature scaling (identity for ``scale="none"``).
    seed_ : int
        The seed that decided initial weights and shuffling.
    """

    def __init__(self, hidden_layer_sizes=(32, 16), activation="sigmoid", output="softmax", cost="auto",
                 init="xavier", bias_init="normal", learning_rate=0.1, batch_size=10, epochs=30,
                 momentum=0.0, nesterov=False, l2=0.0, early_stopping=False, validation_fraction=0.1,
                 patience=5, random_state=None, dtype="float64", ce_outside="clip", scale="none"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output = output
        self.cost = cost
        self.init = init
        self.bias_init = bias_init
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.nesterov = nesterov
        self.l2 = l2
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.dtype = dtype
        self.ce_outside = ce_outside
        self.scale = scale

    # -- parameters -------------------------------------------------------------------
    @property
    def _output_activation(self) -> str:
        return self.activation if self.output == "same" else self.output

    def _check_params(self) -> RunConfig:
        """Check every parameter (errors name it) and return the engine's run config."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise SgdlabError(f"hidden_layer_sizes: expected a tuple of positive integers, got {sizes!r}") from None
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h <= 0 for h in sizes):
            raise SgdlabError(f"hidden_layer_sizes: expected a tuple of positive integers, got {sizes!r}")
        _one_of("activation", self.activation, HIDDEN_ACTIVATIONS)
        _one_of("output", self.output, ("same", *ACTIVATIONS))
        _one_of("cost", self.cost, ("auto", *COSTS))
        _one_of("init", self.init, tuple(INITS))
        _one_of("bias_init", self.bias_init, tuple(BIAS_INITS))
        _one_of("dtype", self.dtype, ("float64", "float32"))
        _one_of("ce_outside", self.ce_outside, CE_OUTSIDE)
        check_scale(self.scale)
        out = self._output_activation
        cost = _auto_cost(out) if self.cost == "auto" else self.cost
        if cost == "cce" and out != "softmax":
            raise SgdlabError(f"cost: 'cce' needs output='softmax', not {out!r}; use cost='ce', 'mse' or 'auto'")
        _real("learning_rate", self.learning_rate, low=0, low_open=True)
        _real("batch_size", self.batch_size, low=1, integer=True)
        _real("epochs", self.epochs, low=1, integer=True)
        _real("momentum", self.momentum, low=0, high=1, high_open=True)
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise SgdlabError(f"nesterov: expected True or False, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise SgdlabError("nesterov: needs momentum > 0")
        _real("l2", self.l2, low=0)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise SgdlabError(f"early_stopping: expected True or False, got {self.early_stopping!r}")
        _real("validation_fraction", self.validation_fraction, low=0, high=1, low_open=True, high_open=True)
        _real("patience", self.patience, low=1, integer=True)
        if not (self.random_state is None or isinstance(self.random_state, np.random.RandomState)
                or (isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool)
                    and 0 <= self.random_state < 2**63)):
            raise SgdlabError(f"random_state: expected None, a non-negative int or a RandomState, "
                              f"got {self.random_state!r}")
        return RunConfig(hidden=tuple(int(h) for h in sizes), activation=self.activation, output=out,
                         cost=cost, ce_outside=self.ce_outside, init=self.init, bias_init=self.bias_init, lr=float(self.learning_rate),
                         batch_size=int(self.batch_size), epochs=int(self.epochs), momentum=float(self.momentum),
                         nesterov=bool(self.nesterov), l2=float(self.l2), dtype=self.dtype)

    def _draw_seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.SeedSequence().entropy % 2**63)
        if isinstance(rs, numbers.Integral):
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    # -- fitting ----------------------------------------------------------------------
    def _check_y(self, y):
        check_classification_targets(y)
        return y

    def _start(self, config: RunConfig, seed: int, classes) -> None:
        """A fresh network, optimizer and shuffling stream for ``classes``."""
        if len(classes) < 2:
            raise SgdlabError(f"y has only one class ({classes[0]!r}); a classifier needs at least 2 classes")
        init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)  # as sgdlab.rng_streams(seed)
        init_rng = np.random.default_rng(init_ss)
        self._shuffle_rng = np.random.default_rng(shuffle_ss)
        self.seed_ = seed
        self.classes_ = np.asarray(classes)
        self.network_ = build_network(replace(config, seed=seed), self.n_features_in_, len(self.classes_),
                                      init_rng)
        self._optimizer = SGD(config.lr, config.momentum, config.nesterov, config.l2)
        self._config = config
        self.coefs_ = self.network_.weights
        self.intercepts_ = self.network_.biases
        self.history_ = History()
        self.loss_curve_ = self.history_.train_loss
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self.n_iter_ = 0
        self.t_ = 0

    def _encode(self, y) -> np.ndarray:
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if np.any(bad):
            unknown = np.unique(np.asarray(y)[bad])
            raise SgdlabError(f"y: labels {unknown.tolist()!r} are not in classes_ {self.classes_.tolist()!r}")
        return idx

    def _epoch(self, X, Y) -> None:
        """One pass of minibatch SGD over (X, Y) in a fresh shuffled order."""
        net, opt, bs = self.network_, self._optimizer, self._config.batch_size
        perm = self._shuffle_rng.permutation(len(X))
        Xs, Ys = X[perm], Y[perm]
        for i in range(0, len(X), bs):
            opt.step(net.weights, net.biases, net.gradients(Xs[i:i + bs], Ys[i:i + bs]))
            self.t_ += 1
        self.n_iter_ += 1

    def _record(self, X, y, Y) -> bool:
        """Append the epoch's train metrics; False (and a warning) if training diverged."""
        loss, acc = self.network_.evaluate(X, y, Y)
        if not np.isfinite(loss) or not all(np.isfinite(p).all() for p in self.network_.params):
            self.history_.status, self.history_.diverged_epoch = "diverged", self.n_iter_
            warnings.warn(f"SGDNetClassifier: training diverged at epoch {self.n_iter_} (non-finite loss or "
                          f"weights); try a smaller learning_rate than {self.learning_rate!r}",
                          ConvergenceWarning, stacklevel=3)
            return False
        self.history_.train_loss.append(loss)
        self.history_.train_acc.append(acc)
        return True

    def fit(self, X, y):
        """Train a fresh network for ``epochs`` epochs (fewer with early stopping).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any sortable type, e.g. ints or strings).

        Returns
        -------
        self
        """
        config = self._check_params()
        X, y = validate_data(self, X, y, dtype=self.dtype, order="C")
        self.scaler_ = fit_scaler(self.scale, X)
        X = self._scaled(X)
        self._check_y(y)
        classes = np.unique(y)
        seed = self._draw_seed()
        self._start(config, seed, classes)
        yi = self._encode(y)
        X_val = y_val = None
        if self.early_stopping:
            # stratified when every class can be on both sides, else a plain random split
            n_val = math.ceil(self.validation_fraction * len(yi))
            counts = np.bincount(yi, minlength=len(classes))
            stratify = yi if counts.min() >= 2 and len(classes) <= min(n_val, len(yi) - n_val) else None
            try:
                X, X_val, yi, y_val = train_test_split(X, yi, test_size=self.validation_fraction,
                                                       random_state=seed % 2**32, stratify=stratify)
            except ValueError as e:
                raise SgdlabError(f"validation_fraction: cannot hold out {self.validation_fraction!r} of "
                                  f"{len(yi)} samples for early stopping ({e})") from None
            X, X_val = np.ascontiguousarray(X), np.ascontiguousarray(X_val)
            self.validation_scores_ = self.history_.val_acc
        k, dtype = len(classes), self.network_.dtype
        Y = one_hot(yi, k, dtype)
        Y_val = one_hot(y_val, k, dtype) if X_val is not None else None
        best, waited, best_params = -np.inf, 0, None
        with np.errstate(all="ignore"):
            for _ in range(config.epochs):
                self._epoch(X, Y)
                if not self._record(X, yi, Y):
                    break
                if X_val is None:
                    continue
                val_loss, val_acc = self.network_.evaluate(X_val, y_val, Y_val)
                self.history_.val_loss.append(val_loss)
                self.history_.val_acc.append(val_acc)
                if val_acc > best:
                    best, waited = val_acc, 0
                    best_params = [p.copy() for p in self.network_.params]
                else:
                    waited += 1
                    if waited >= self.patience:
                        self.history_.stopped_epoch = self.n_iter_
                        break
        if best_params is not None:
            # keep the best epoch's weights (as scikit-learn's MLP does), in the same arrays
            for p, best_p in zip(self.network_.params, best_params):
                p[...] = best_p
            self.best_validation_score_ = float(best)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch of SGD over (X, y), continuing the current network and optimizer state.

        ``classes`` (every label that will ever appear) is required on the first call and
        ignored afterwards (it must then match ``classes_``). Early stopping does not apply.

        Returns
        -------
        self
        """
        first = not hasattr(self, "network_")
        if first:
            config = self._check_params()
            if classes is None:
                raise SgdlabError("classes: must be passed on the first call to partial_fit")
        if first and check_scale(self.scale) not in ("none", "auto") and not self.scale.startswith("divide:"):
            raise SgdlabError(f"scale: {self.scale!r} is fitted on the data and needs fit(); partial_fit "
                              "takes scale='none' or 'divide:K'")
        X, y = validate_data(self, X, y, dtype=self.dtype, order="C", reset=first)
        if first:
            self.scaler_ = fit_scaler(self.scale, X)
        X = self._scaled(X)
        self._check_y(y)
        if first:
            self._start(config, self._draw_seed(), np.unique(classes))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise SgdlabError(f"classes: {np.unique(classes).tolist()!r} differs from the classes of the first "
                              f"partial_fit call, {self.classes_.tolist()!r}")
        yi = self._encode(y)
        Y = one_hot(yi, len(self.classes_), self.network_.dtype)
        with np.errstate(all="ignore"):
            self._epoch(X, Y)
            self._record(X, yi, Y)
        return self

    # -- pickling ---------------------------------------------------------------------
    def __getstate__(self):
        # A Network holds its activation and cost functions, which do not pickle; keep its
        # architecture and parameters and rebuild it on load.
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        net = state.pop("network_", None)
        if net is not None:
            state["_network_state"] = {"sizes": net.sizes, "activation": net.activation, "output": net.output,
                                       "cost": net.cost, "dtype": net.dtype, "ce_outside": net.ce_outside,
                                       "weights": net.weights, "biases": net.biases}
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        net_state = state.pop("_network_state", None)
        super().__setstate__(state)
        if net_state is not None:
            weights, biases = net_state.pop("weights"), net_state.pop("biases")
            self.network_ = Network(**net_state)
            self.network_.weights, self.network_.biases = weights, biases
            self.coefs_, self.intercepts_ = self.network_.weights, self.network_.biases

    # -- prediction -------------------------------------------------------------------
    def _scaled(self, X) -> np.ndarray:
        """``X`` through ``scaler_`` (an estimator pickled before ``scale`` existed has none)."""
        scaler = getattr(self, "scaler_", None)
        if scaler is None or scaler.kind == "none":
            return X
        return np.ascontiguousarray(scaler.transform(X), dtype=X.dtype)

    def save(self, path):
        """Write the fitted network with its scaling and classes (:func:`sgdlab.save`); returns the path.

        ``sgdlab predict FILE --input RAW.csv`` then predicts from raw features, as
        :meth:`predict` does."""
        from .io import save

        check_is_fitted(self, "network_")
        scaler = getattr(self, "scaler_", None)
        return save(self.network_, path, classes=self.classes_, scaler=scaler,
                    extra={"estimator": "SGDNetClassifier", "seed": int(self.seed_)})

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = self._scaled(validate_data(self, X, dtype=self.network_.dtype, order="C", reset=False))
        with np.errstate(all="ignore"):
            return self.network_.predict_proba(X)

    def predict(self, X):
        """The class whose output unit is largest, per row."""
        outputs = self._outputs(X)
        return self.classes_[np.argmax(outputs, axis=1)]

    def _has_proba(self):
        return self._output_activation in PROBABILISTIC_OUTPUTS

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), rows summing to 1.

        A softmax output is returned as is. Sigmoid outputs are independent per unit, so
        they are divided by their row sum (the argmax, and so ``predict``, is unchanged).
        Only softmax and sigmoid outputs have this method.
        """
        a = self._outputs(X)
        if self._output_activation == "softmax":
            return a
        total = a.sum(axis=1, keepdims=True)
        with np.errstate(all="ignore"):
            p = a / total
        # a row whose every sigmoid underflowed to 0 carries no preference: uniform
        return np.where(total > 0, p, 1.0 / a.shape[1])

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))
