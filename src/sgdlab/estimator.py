"""A scikit-learn compatible classifier over sgdlab's engine.

:class:`SGDNetClassifier` speaks scikit-learn's language where the meaning is that of
:class:`sklearn.neural_network.MLPClassifier` (``learning_rate_init``, ``max_iter``,
``alpha``, ``batch_size``, ``momentum``, ``nesterovs_momentum``, ``early_stopping``,
``validation_fraction``, ``n_iter_no_change``, ``random_state``, ``verbose``; ``loss_curve_``,
``validation_scores_``, ``n_iter_``, ``classes_``) and sgdlab's own otherwise (``activation``,
``out_activation``, ``cost``, ``init``, ``bias_init``, ``ce_outside``, ``dtype``).

It trains on the same fast path as :func:`sgdlab.train` (the packed network's in-place
gradient, :meth:`SGD.step_flat <sgdlab.engine.optim.SGD.step_flat>`) with the same seeded
streams: with ``random_state=s`` and no early stopping, ``fit(X, y)`` gives the network that
``sgdlab.train(RunConfig(seed=s, ...), data)`` gives on the same training rows.
``partial_fit`` is one epoch of that path, keeping the optimizer's state between calls.
It drops into ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``.

Defaults differ from the paper's on purpose. A classifier should learn out of the box and
``predict_proba`` should return probabilities, so the output layer defaults to softmax with
categorical cross-entropy (``cost="auto"``); the paper's sigmoid output with per-unit
cross-entropy is ``out_activation="sigmoid"`` (its ``predict_proba`` rows are then normalised
to sum to 1), and its "same activation on the output" is ``out_activation="same"``.
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

from .choices import COSTS
from .config import ConfigError, RunConfig, rng_streams
from .data.scale import check_scale
from .data.scale import fit as fit_scaler
from .errors import SgdlabError
from .nn.network import one_hot
from .engine.kernels import augment
from .engine.history import EpochBook, History
from .engine.loop import build_network
from .engine.trainer import Trainer

#: Output activations whose values can be read as class probabilities.
PROBABILISTIC_OUTPUTS = ("softmax", "sigmoid")

#: RunConfig field -> the estimator's parameter of the same meaning (errors name the latter)
PARAMS = {"hidden": "hidden_layer_sizes", "output": "out_activation", "lr": "learning_rate_init",
          "epochs": "max_iter", "nesterov": "nesterovs_momentum", "l2": "alpha", "patience": "n_iter_no_change"}


def _plain(value, integer=False):
    """A numpy scalar as the Python number RunConfig takes (GridSearchCV hands out numpy values);
    anything else unchanged, for RunConfig to judge."""
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if not integer and isinstance(value, numbers.Real):
        return float(value)
    return value


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
    out_activation : {"softmax", "sigmoid", "same", "tanh", "relu", "leaky_relu", "identity"}, default="softmax"
        Output activation; ``"same"`` repeats the hidden activation, as the paper did.
        ``predict_proba`` exists only for softmax and sigmoid outputs.
    cost : {"auto", "cce", "ce", "mse"}, default="auto"
        ``auto`` picks ``cce`` for a softmax output, ``ce`` for a sigmoid output and ``mse``
        otherwise. ``cce`` needs a softmax output.
    init : {"xavier", "gaussian", "glorot", "he"}, default="xavier"
        Weight initialiser (``xavier`` is the paper's N(0, 1) / sqrt(fan_in)).
    bias_init : {"normal", "zeros"}, default="normal"
        Bias initialiser (``normal`` is the paper's N(0, 1)).
    learning_rate_init : float, default=0.1
        SGD step size, > 0 (constant: there is no schedule).
    batch_size : int, default=10
        Minibatch size; the last, smaller minibatch of an epoch is used too.
    max_iter : int, default=30
        Epochs in ``fit`` (the most, with early stopping).
    momentum : float, default=0.0
        In [0, 1).
    nesterovs_momentum : bool, default=False
        Nesterov momentum (needs momentum > 0).
    alpha : float, default=0.0
        L2 penalty: ``alpha * W`` is added to the minibatch's mean gradient of the weights (not
        the biases), as PyTorch's ``weight_decay``. (MLPClassifier adds ``alpha * W / batch rows``:
        its ``alpha`` is this one times the batch size.)
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified), stop when the
        validation accuracy has not improved for ``n_iter_no_change`` epochs, and keep the
        weights of the best epoch.
    validation_fraction : float, default=0.1
        In (0, 1); used with ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without a better validation accuracy before early stopping ends training
        (with ``early_stopping`` only).
    random_state : int, RandomState instance or None, default=None
        An int seeds initial weights and shuffling exactly as ``sgdlab train --seed`` does
        (and the validation split). ``None`` draws a fresh seed; the seed used is kept in
        ``seed_``.
    verbose : bool, default=False
        Print one line per epoch (loss, and validation accuracy with early stopping).
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
        Cost on the training rows after each epoch (penalty not included).
    validation_scores_ : list of float or None
        Accuracy on the held-out rows after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run, summed over ``partial_fit`` calls.
    t_ : int
        Training samples seen (summed over epochs), as MLPClassifier counts them.
    history_ : sgdlab.History
        Per-epoch train (and validation) loss and accuracy, status ``done`` or ``diverged``.
    network_ : sgdlab.Network
        The trained network (save it with :func:`sgdlab.save`).
    scaler_ : sgdlab.data.scale.Scaler
        The fitted feature scaling (identity for ``scale="none"``).
    seed_ : int
        The seed that decided initial weights and shuffling.
    """

    def __init__(self, hidden_layer_sizes=(32, 16), activation="sigmoid", out_activation="softmax", cost="auto",
                 init="xavier", bias_init="normal", learning_rate_init=0.1, batch_size=10, max_iter=30,
                 momentum=0.0, nesterovs_momentum=False, alpha=0.0, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, random_state=None, verbose=False, dtype="float64", ce_outside="clip",
                 scale="none"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.out_activation = out_activation
        self.cost = cost
        self.init = init
        self.bias_init = bias_init
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.ce_outside = ce_outside
        self.scale = scale

    # -- parameters -------------------------------------------------------------------
    @property
    def _output_activation(self) -> str:
        return self.activation if self.out_activation == "same" else self.out_activation

    def _check_params(self) -> RunConfig:
        """The engine's run config. RunConfig checks every value it holds; an error names this
        class's parameter (``learning_rate_init: must be > 0, got -1``)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)):  # "32" is not (3, 2)
            raise SgdlabError(f"hidden_layer_sizes: expected a tuple of positive integers, got {sizes!r}")
        try:
            sizes = tuple(_plain(h, integer=True) for h in sizes)
        except TypeError:
            raise SgdlabError(f"hidden_layer_sizes: expected a tuple of positive integers, got {sizes!r}") from None
        if self.cost != "auto" and self.cost not in COSTS:
            raise SgdlabError(f"cost: unknown value {self.cost!r}; valid: auto, {', '.join(COSTS)}")
        cost = _auto_cost(self._output_activation) if self.cost == "auto" else self.cost
        for name in ("nesterovs_momentum", "early_stopping", "verbose"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)) and not (name == "verbose" and isinstance(value, int)):
                raise SgdlabError(f"{name}: expected True or False, got {value!r}")
        try:
            config = RunConfig(hidden=sizes, activation=self.activation, output=self.out_activation, cost=cost,
                               ce_outside=self.ce_outside, init=self.init, bias_init=self.bias_init,
                               lr=_plain(self.learning_rate_init), batch_size=_plain(self.batch_size, integer=True),
                               epochs=_plain(self.max_iter, integer=True), momentum=_plain(self.momentum),
                               nesterov=bool(self.nesterovs_momentum), l2=_plain(self.alpha),
                               patience=_plain(self.n_iter_no_change, integer=True), dtype=self.dtype)
        except ConfigError as e:
            raise SgdlabError(f"{PARAMS.get(e.key, e.key)}: {e.detail}") from None
        check_scale(self.scale)
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, numbers.Real) or not 0 < vf < 1:
            raise SgdlabError(f"validation_fraction: must be in (0, 1), got {vf!r}")
        if not (self.random_state is None or isinstance(self.random_state, np.random.RandomState)
                or (isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool)
                    and 0 <= self.random_state < 2**63)):
            raise SgdlabError(f"random_state: expected None, a non-negative int or a RandomState, "
                              f"got {self.random_state!r}")
        return config

    def _draw_seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.SeedSequence().entropy % 2**63)
        if isinstance(rs, numbers.Integral):
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    # -- fitting ----------------------------------------------------------------------
    def _start(self, config: RunConfig, seed: int, classes) -> None:
        """A fresh network, optimizer and shuffling stream for ``classes``."""
        if len(classes) < 2:
            raise SgdlabError(f"y has only one class ({classes[0]!r}); a classifier needs at least 2 classes")
        init_rng, shuffle_rng = rng_streams(seed)
        self.seed_ = seed
        self.classes_ = np.asarray(classes)
        self.network_ = build_network(replace(config, seed=seed), self.n_features_in_, len(self.classes_),
                                      init_rng)
        self._trainer = Trainer(self.network_, config, shuffle_rng)
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

    def _epochs(self, X, yi, epochs: int, val=None) -> None:
        """``epochs`` epochs of the :class:`~sgdlab.engine.trainer.Trainer` (the fast path of
        :func:`sgdlab.train`), each followed by its metrics; early stopping on
        ``val = (X_val, y_val)`` if given."""
        trainer, k, dtype = self._trainer, len(self.classes_), self.network_.dtype
        trainer.packed.pack()  # the network's current parameters (set_params or coefs_ may have changed them)
        theta = trainer.packed.theta
        Xa, Y = augment(X), one_hot(yi, k, dtype)
        parts = {"train": (Xa, yi, Y)}  # the features with a column of ones appended, labels, one-hot targets
        if val is not None:
            parts["val"] = (augment(val[0]), val[1], one_hot(val[1], k, dtype))
        book = EpochBook(self._config.patience if val is not None else None, self.history_)
        best_theta = None
        with trainer.running(max(self._config.batch_size, len(yi))):
            for _ in range(epochs):
                trainer.epoch(Xa, Y)
                self.n_iter_ += 1
                self.t_ += len(yi)
                metrics = {name: trainer.evaluate(*part) for name, part in parts.items()}
                if not book.record(self.n_iter_, metrics, trainer.finite()):
                    trainer.unpack()
                    warnings.warn(f"SGDNetClassifier: training diverged at epoch {self.n_iter_} (non-finite loss "
                                  f"or weights); try a smaller learning_rate_init than "
                                  f"{self.learning_rate_init!r}", ConvergenceWarning, stacklevel=3)
                    return
                line = f"Iteration {self.n_iter_}, loss = {metrics['train'][0]:.8f}"
                if val is not None:
                    line += f", validation score = {metrics['val'][1]:.6f}"
                if self.verbose:
                    print(line, flush=True)
                if val is None:
                    continue
                stop = book.patience_over(self.n_iter_, metrics["val"][1])
                if book.improved:
                    best_theta = theta.copy()
                if stop:
                    break
        if best_theta is not None:
            # keep the best epoch's weights (as scikit-learn's MLP does), in the same arrays
            theta[...] = best_theta
            self.best_validation_score_ = float(book.best)
        trainer.unpack()

    def fit(self, X, y):
        """Train a fresh network for ``max_iter`` epochs (fewer with early stopping).

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
        check_classification_targets(y)
        classes = np.unique(y)
        seed = self._draw_seed()
        self._start(config, seed, classes)
        yi = self._encode(y)
        val = None
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
            val = (X_val, y_val)
            self.validation_scores_ = self.history_.val_acc
        self._epochs(X, yi, config.epochs, val)
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
            if check_scale(self.scale) not in ("none", "auto") and not self.scale.startswith("divide:"):
                raise SgdlabError(f"scale: {self.scale!r} is fitted on the data and needs fit(); partial_fit "
                                  "takes scale='none' or 'divide:K'")
        X, y = validate_data(self, X, y, dtype=self.dtype, order="C", reset=first)
        if first:
            self.scaler_ = fit_scaler(self.scale, X)
        X = self._scaled(X)
        check_classification_targets(y)
        if first:
            self._start(config, self._draw_seed(), np.unique(classes))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise SgdlabError(f"classes: {np.unique(classes).tolist()!r} differs from the classes of the first "
                              f"partial_fit call, {self.classes_.tolist()!r}")
        self._epochs(X, self._encode(y), 1)
        return self

    # -- pickling: a Network pickles; coefs_ and intercepts_ stay its arrays -------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        if "network_" in state:
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "network_" in state:
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
