"""What every baseline shares: the two models, a row's description, one seed's result, and
sgdlab's reference trajectory (initial weights, minibatch order, parameters after each epoch).

A *variant* is one row of a comparison table: a framework in one dtype, started either from
sgdlab's own initial weights and fed sgdlab's minibatch order (``init="sgdlab"``, so its
trajectory can be compared with sgdlab's parameter by parameter) or from the framework's own
initialiser and shuffling (``init="own"``, the way a user of that framework would write it).

Parameters are exchanged in sgdlab's layout: ``W[l]`` of shape ``(fan_in, fan_out)``,
``b[l]`` of shape ``(fan_out,)``; PyTorch's ``Linear.weight`` is ``W[l].T``, scikit-learn's
``coefs_`` and Keras's ``Dense`` kernel are ``W[l]`` as is.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..config import RunConfig
from ..data import Dataset
from ..errors import SgdlabError

FRAMEWORKS = ("sgdlab", "sklearn", "torch", "tensorflow")

INSTALL = {
    "sklearn": 'pip install scikit-learn',
    "torch": 'pip install "sgdlab[torch]"',
    "tensorflow": 'pip install "sgdlab[tensorflow]"',
}


@dataclass(frozen=True)
class Model:
    """One of the compared models: a name for files, a title for tables, and its run settings."""

    name: str
    title: str
    config: RunConfig

    def sized(self, data: Dataset) -> list[int]:
        return [data.n_features, *self.config.hidden, data.n_classes]


def models(epochs: int = 30, dataset: str = "digits", split=(0.6, 0.2, 0.2), split_seed: int = 0,
           label: str | None = None) -> dict[str, Model]:
    """The paper's model and the corrected one, with the paper's hyperparameters.

    ``paper``: sigmoid hidden and output, binary cross-entropy summed over the outputs
    (``ce``), xavier (N(0,1)/sqrt(fan_in)) weights and N(0,1) biases, plain SGD, lr 1.0,
    batch 10. ``corrected``: the same with a softmax output and categorical cross-entropy.
    """
    base = RunConfig(hidden=(32, 16), activation="sigmoid", output="same", cost="ce", init="xavier",
                     bias_init="normal", lr=1.0, batch_size=10, epochs=epochs, dataset=dataset,
                     split=tuple(split), split_seed=split_seed, label=label)
    return {
        "paper": Model("paper", "the paper's model: sigmoid hidden and output + binary cross-entropy (ce)", base),
        "corrected": Model("corrected", "the corrected model: sigmoid hidden, softmax output + categorical "
                           "cross-entropy (cce)", replace(base, output="softmax", cost="cce")),
    }


MODEL_NAMES = ("paper", "corrected")


@dataclass(frozen=True)
class Variant:
    """One table row: which framework, in which dtype, started from which weights."""

    framework: str
    key: str  # unique within a framework, e.g. "float64" or "own-init"
    dtype: str
    init: str  # "sgdlab": sgdlab's initial weights and batch order; "own": the framework's
    notes: str = ""
    models: tuple[str, ...] = MODEL_NAMES  # which models this row applies to

    @property
    def label(self) -> str:
        return f"{self.framework} {self.key}"


@dataclass
class SeedRun:
    """One variant trained once (one seed)."""

    framework: str
    variant: str
    seed: int
    dtype: str
    init: str
    version: str = ""
    status: str = "ok"  # ok | diverged | not installed | error
    message: str = ""  # for "not installed": how to install; for "error": the error
    val_acc: list[float] = field(default_factory=list)  # per epoch
    test_acc: float = float("nan")  # after the last epoch
    seconds: float = float("nan")  # training steps only, evaluation excluded
    samples: int = 0  # training samples processed (epochs x n_train)
    deviation: float | None = None  # max |theta - theta_sgdlab| over the epoch ends (init="sgdlab")
    final_deviation: float | None = None  # the same after the last epoch only
    epochs_run: int | None = None  # where a framework decides (sklearn's defaults: n_iter_)
    params: list[list[np.ndarray]] | None = field(default=None, repr=False)  # per epoch, sgdlab layout

    @property
    def val_final(self) -> float:
        return self.val_acc[-1] if self.val_acc else float("nan")

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds and self.seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        def num(x):
            return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)

        return {"framework": self.framework, "variant": self.variant, "seed": self.seed, "dtype": self.dtype,
                "init": self.init, "version": self.version, "status": self.status, "message": self.message,
                "val_acc": [num(v) for v in self.val_acc], "test_acc": num(self.test_acc),
                "seconds": num(self.seconds), "samples": self.samples, "deviation": num(self.deviation),
                "final_deviation": num(self.final_deviation), "epochs_run": self.epochs_run}

    @classmethod
    def from_dict(cls, d: dict) -> "SeedRun":
        def f(x):
            return float("nan") if x is None else float(x)

        return cls(d["framework"], d["variant"], int(d["seed"]), d["dtype"], d["init"], d.get("version", ""),
                   d.get("status", "ok"), d.get("message", ""), [f(v) for v in d.get("val_acc", [])],
                   f(d.get("test_acc")), f(d.get("seconds")), int(d.get("samples", 0)), d.get("deviation"),
                   d.get("final_deviation"), d.get("epochs_run"))


class NotInstalled(Exception):
    """A framework's package cannot be imported; the row says how to install it."""

    def __init__(self, framework: str, error: str = ""):
        self.framework = framework
        super().__init__(f"not installed: {INSTALL.get(framework, framework)}"
                         + (f" ({error})" if error else ""))


@dataclass
class Reference:
    """sgdlab's run of a model for one seed and dtype: what shared-weight baselines start from
    and are compared against.

    ``weights``/``biases`` are the initial parameters; ``perms[e]`` is epoch ``e + 1``'s
    permutation of the training rows (its minibatches: :func:`sgdlab.engine.schedule.batches`,
    the last, smaller one included); ``params[e]`` is the list ``[W0, b0, W1, b1, ...]``
    after epoch ``e + 1``.
    """

    config: RunConfig
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    perms: list[np.ndarray]
    params: list[list[np.ndarray]]
    run: SeedRun


def trajectory_deviation(params: list[list[np.ndarray]], ref: list[list[np.ndarray]]) -> tuple[float, float]:
    """(max over epoch ends, at the last epoch) of ``max |theta - theta_ref|`` over all parameters.

    A trajectory shorter than the reference (a diverged run) is compared over its own epochs.
    """
    if not params:
        return float("nan"), float("nan")
    per_epoch = []
    for mine, theirs in zip(params, ref):
        if len(mine) != len(theirs):
            raise ValueError(f"parameter lists differ in length: {len(mine)} vs {len(theirs)}")
        per_epoch.append(max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                             for a, b in zip(mine, theirs)))
    return max(per_epoch), per_epoch[-1]


class Diverged(Exception):
    """Raised by a step that refuses non-finite parameters (scikit-learn's ``partial_fit``)."""


def train_epochs(out: SeedRun, data: Dataset, orders, feed, step, predict, params=None) -> SeedRun:
    """Train epoch by epoch and fill ``out``: status, accuracies, training seconds, trajectory.

    Per entry of ``orders`` (sgdlab's permutation, or None where the framework shuffles):
    ``step(*args)`` for each ``args`` of ``feed(order)`` (prepared outside the timing), then
    ``params()`` (``[W0, b0, ...]`` in sgdlab's layout; None: no trajectory) and the
    validation score of ``predict(X)``. :class:`Diverged` or non-finite parameters end the
    run as ``diverged``, that epoch unscored.
    """
    seconds, snapshots = 0.0, []
    for order in orders:
        feeds = feed(order)
        t0 = time.perf_counter()
        try:
            for args in feeds:
                step(*args)
        except Diverged:
            out.status = "diverged"
            break
        seconds += time.perf_counter() - t0
        if params is not None:
            snapshots.append(params())
            if not all(np.isfinite(p).all() for p in snapshots[-1]):
                out.status = "diverged"
                snapshots.pop()
                break
        out.val_acc.append(accuracy(predict(data.X_val), data.y_val))
    if out.status == "ok":
        out.test_acc = accuracy(predict(data.X_test), data.y_test)
    out.seconds, out.samples = seconds, len(data.y_train) * len(out.val_acc)
    out.params = snapshots if params is not None else None
    return out


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose largest score is the label (NaN for an empty set)."""
    if len(y) == 0:
        return float("nan")
    return float(np.mean(np.argmax(scores, axis=1) == y))


def check_seeds(seeds) -> list[int]:
    out = list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in out):
        raise SgdlabError(f"seeds: expected non-negative integers, got {seeds!r}")
    return [int(s) for s in out]


def _parse_names(text_or_list, key: str, kind: str, valid, aliases=None) -> list[str]:
    """``"a,b"`` or a list -> validated names in the given order, no duplicates."""
    items = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list)
    names = [str(s).strip().lower() for s in items if str(s).strip()]
    names = [(aliases or {}).get(n, n) for n in names]
    if not names:
        raise SgdlabError(f"{key}: give at least one of {', '.join(valid)}")
    for n in names:
        if n not in valid:
            raise SgdlabError(f"{key}: unknown {kind} {n!r}; valid: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def parse_frameworks(text_or_list) -> list[str]:
    """``"sgdlab,torch"`` or a list -> validated framework names (aliases tf, keras, pytorch, ...)."""
    aliases = {"tf": "tensorflow", "keras": "tensorflow", "scikit-learn": "sklearn", "pytorch": "torch"}
    return _parse_names(text_or_list, "frameworks", "framework", FRAMEWORKS, aliases)


def parse_models(text_or_list) -> list[str]:
    """``"paper,corrected"`` or a list -> validated model names."""
    return _parse_names(text_or_list, "models", "model", MODEL_NAMES)
