"""scikit-learn: ``MLPClassifier`` with ``solver="sgd"`` and nothing else switched on.

``momentum=0``, ``nesterovs_momentum=False``, ``alpha=0`` (no L2), ``learning_rate="constant"``,
``learning_rate_init=lr``, ``batch_size``, early stopping off, and one ``partial_fit`` per
epoch so that the validation accuracy can be read after each one (``tol`` and
``n_iter_no_change`` then never stop a run).

Which output layer MLPClassifier builds depends on the targets, not on a parameter:

- class labels (``y`` of shape ``(n,)``) give a **softmax output with log-loss**, which is
  sgdlab's *corrected* model (softmax + cce);
- a one-hot indicator matrix (``Y`` of shape ``(n, k)``, "multilabel") gives a **logistic
  (sigmoid) output with binary log-loss summed over the outputs and averaged over the
  samples**, which is exactly the paper's sigmoid + ce. The paper's model is trained that way
  here and scored by the argmax of ``predict_proba``.

Rows:

- ``float64`` (init ``sgdlab``): sgdlab's initial weights (through ``_init_coef``, a private
  hook) and sgdlab's minibatch order (``shuffle=False``, each epoch's rows fed in sgdlab's
  permutation), so its trajectory is comparable with sgdlab's;
- ``own-init``: MLPClassifier's own Glorot-uniform initialiser (weights *and* biases uniform
  in +-sqrt(2/(fan_in+fan_out)) for logistic units) and its own shuffling, seeded by the run's
  seed: the model as a scikit-learn user would write it;
- ``defaults`` and ``defaults-32-16`` (the paper's table only): ``MLPClassifier()`` with its
  default settings (hidden (100,), relu, adam, lr 0.001, batch 200, up to 200 epochs,
  stopping when the training loss stalls), and the same with the paper's hidden layers and
  logistic units, fitted with ``fit`` on class labels.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..data import Dataset
from ..nn.network import one_hot
from .common import Diverged, NotInstalled, Reference, SeedRun, Variant, accuracy, train_epochs

VARIANTS = [
    Variant("sklearn", "float64", "float64", "sgdlab",
            "MLPClassifier sgd; sgdlab's initial weights and minibatch order"),
    Variant("sklearn", "own-init", "float64", "own",
            "MLPClassifier sgd; its own Glorot-uniform init and shuffling"),
    Variant("sklearn", "defaults", "float64", "own",
            "MLPClassifier() defaults: (100,) relu, adam lr 0.001, batch 200, <= 200 epochs, class labels",
            models=("paper",)),
    Variant("sklearn", "defaults-32-16", "float64", "own",
            "MLPClassifier defaults with hidden (32, 16) and logistic units, class labels",
            models=("paper",)),
]


def _import():
    try:
        import sklearn
        from sklearn.neural_network import MLPClassifier
    except Exception as e:
        raise NotInstalled("sklearn", type(e).__name__) from None
    return sklearn, MLPClassifier


def version() -> str:
    return _import()[0].__version__


def _targets(config, data: Dataset, y):
    """Class labels for a softmax output; a one-hot matrix (sklearn's multilabel mode, a
    logistic output with binary log-loss) for the paper's sigmoid + ce."""
    if config.output_activation == "softmax" and config.cost == "cce":
        return np.asarray(y)
    if config.output_activation == "sigmoid" and config.cost == "ce":
        return one_hot(y, data.n_classes, np.int64)
    raise ValueError("sklearn baseline: sigmoid + ce or softmax + cce only")


def _shared_init_class(MLPClassifier):
    class SharedInitMLP(MLPClassifier):
        """MLPClassifier whose initial weights come from ``self.initial_params`` (layer by layer)."""

        def _init_coef(self, fan_in, fan_out, dtype):
            W, b = self.initial_params[self._next_layer]
            self._next_layer += 1
            if W.shape != (fan_in, fan_out):
                raise ValueError(f"initial weights of shape {W.shape}, expected {(fan_in, fan_out)}")
            return np.array(W, dtype=dtype), np.array(b, dtype=dtype)

    return SharedInitMLP


def _params(clf) -> list[np.ndarray]:
    return [np.array(p, dtype=np.float64) for wb in zip(clf.coefs_, clf.intercepts_) for p in wb]


def run(variant: Variant, config, data: Dataset, seed: int, ref: Reference) -> SeedRun:
    sklearn, MLPClassifier = _import()
    out = SeedRun("sklearn", variant.key, seed, variant.dtype, variant.init, sklearn.__version__)
    if variant.key.startswith("defaults"):
        return _run_defaults(variant, MLPClassifier, data, seed, out)
    if config.activation != "sigmoid":
        raise ValueError("sklearn baseline: sigmoid hidden layers only here")
    common = dict(hidden_layer_sizes=tuple(config.hidden), activation="logistic", solver="sgd", alpha=0.0,
                  batch_size=config.batch_size, learning_rate="constant", learning_rate_init=config.lr,
                  momentum=0.0, nesterovs_momentum=False, early_stopping=False, max_iter=1, tol=0.0,
                  n_iter_no_change=config.epochs + 1)
    X = np.asarray(data.X_train, dtype=np.float64)
    T = _targets(config, data, data.y_train)
    classes = np.arange(data.n_classes)
    if variant.init == "sgdlab":
        clf = _shared_init_class(MLPClassifier)(shuffle=False, **common)
        clf.initial_params = list(zip(ref.weights, ref.biases))
        clf._next_layer = 0
        orders = ref.perms
    else:
        # A RandomState instance (not an int) so that successive partial_fit calls continue
        # one stream, as a single fit(max_iter=epochs) would, instead of reshuffling alike.
        clf = MLPClassifier(shuffle=True, random_state=np.random.RandomState(seed), **common)
        orders = [None] * config.epochs

    def step(Xe, Te):
        try:
            clf.partial_fit(Xe, Te, classes=classes)
        except ValueError as e:  # "Solver produced non-finite parameter weights"
            if "non-finite" not in str(e):
                raise
            raise Diverged from None

    def params():
        if clf._next_layer != len(ref.weights):
            # The private hook was not called: this scikit-learn initialises differently.
            raise RuntimeError(f"scikit-learn {sklearn.__version__} did not call MLPClassifier._init_coef; "
                               "sgdlab's initial weights cannot be injected")
        return _params(clf)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return train_epochs(out, data, orders, lambda order: [(X, T) if order is None else (X[order], T[order])],
                            step, clf.predict_proba, params if variant.init == "sgdlab" else None)


def _run_defaults(variant, MLPClassifier, data, seed, out):
    kw = {} if variant.key == "defaults" else dict(hidden_layer_sizes=(32, 16), activation="logistic")
    clf = MLPClassifier(random_state=seed, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        t0 = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        out.seconds = time.perf_counter() - t0
    out.epochs_run = int(clf.n_iter_)
    out.samples = len(data.y_train) * out.epochs_run
    out.val_acc = [accuracy(clf.predict_proba(data.X_val), data.y_val)]
    out.test_acc = accuracy(clf.predict_proba(data.X_test), data.y_test)
    return out
