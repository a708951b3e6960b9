"""RunConfig: everything that decides one training run, validated at the boundary."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np

from .choices import CHOICES, pairing_problem
from .data.scale import check_scale
from .errors import SgdlabError


class ConfigError(SgdlabError):
    """A bad run setting: ``key`` names the RunConfig field, ``detail`` says what is wrong and
    what is valid. The spec and the estimator re-raise it under their own key names."""

    def __init__(self, key: str, detail: str):
        super().__init__(f"{key}: {detail}")
        self.key, self.detail = key, detail

    def __reduce__(self):
        return ConfigError, (self.key, self.detail)


def _number(key, value, *, positive=False, nonneg=False, integer=False, below_one=False, below=None):
    ok_types = (int,) if integer else (int, float)  # plain ints: the run key is JSON
    if isinstance(value, bool) or not isinstance(value, ok_types) or not math.isfinite(value):
        raise ConfigError(key, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(key, f"must be > 0, got {value!r}")
    if nonneg and value < 0:
        raise ConfigError(key, f"must be >= 0, got {value!r}")
    if below_one and not 0 <= value < 1:
        raise ConfigError(key, f"must be in [0, 1), got {value!r}")
    if below is not None and value >= below:
        raise ConfigError(key, f"must be below {below}, got {value!r}")


#: numeric fields and their ranges
NUMBERS = {
    "lr": {"positive": True}, "batch_size": {"positive": True, "integer": True},
    "epochs": {"positive": True, "integer": True},
    "seed": {"nonneg": True, "integer": True, "below": 2**63},  # a study store keeps it as a 64-bit SQLite INTEGER
    "momentum": {"below_one": True}, "l2": {"nonneg": True}, "patience": {"positive": True, "integer": True},
    "split_seed": {"nonneg": True, "integer": True, "below": 2**32},  # the split's generator takes 32 bits
}


def check_field(key: str, value) -> None:
    """Check one RunConfig field's value on its own; raise :class:`ConfigError` naming ``key``.

    The rules between fields (cce needs softmax, Nesterov needs momentum) are
    :meth:`RunConfig.validate`'s."""
    if key in CHOICES:
        if not isinstance(value, str) or value not in CHOICES[key]:
            raise ConfigError(key, f"unknown value {value!r}; valid: {', '.join(CHOICES[key])}")
    elif key in NUMBERS:
        if not (key == "patience" and value is None):
            _number(key, value, **NUMBERS[key])
    elif key == "hidden":
        if any(isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, np.integer)) or h <= 0 for h in value):
            raise ConfigError(key, f"layer sizes must be positive integers, got {list(value)!r}")
    elif key == "split":
        if len(value) != 3 or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s)
                                  or s < 0 for s in value) \
                or value[0] <= 0 or abs(sum(value) - 1) > 1e-9:
            raise ConfigError(key, f"three fractions train,validation,test summing to 1, got {value!r}")
    elif key == "nesterov":
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(key, f"expected True or False, got {value!r}")
    elif key == "dataset":
        if not isinstance(value, str) or not value:
            raise ConfigError(key, f"expected a name (digits, iris, wine, breast_cancer) or a file path, got {value!r}")
    elif key == "label":
        if value is not None and not isinstance(value, str):
            raise ConfigError(key, f"expected a column name or a labels file path (or None), got {value!r}")
    elif key == "scale":
        try:
            check_scale(value)
        except SgdlabError as e:
            raise ConfigError(key, str(e).removeprefix("scale: ")) from None


#: settings that joined RunConfig after the first stores: omitted from the key at these values
KEY_DEFAULTS = {"ce_outside": "clip", "scale": "auto"}
_MISSING = object()


@dataclass(frozen=True)
class RunConfig:
    """One training run. The network's input and output sizes come from the data.

    ``hidden`` lists the hidden layer sizes (the paper's: ``(32, 16)``). ``output="same"``
    puts the hidden activation on the output layer as the paper did. ``seed`` decides the
    initial weights and the shuffling order through two independent streams (see
    :func:`rng_streams`); ``split_seed`` decides the data split and is shared by a study.
    ``ce_outside`` is how cross-entropy treats outputs outside (0, 1) (``clip``, ``nielsen``,
    ``none``; see :mod:`sgdlab.nn.costs`): the paper does not say. ``scale`` is the feature
    scaling fitted on the training part (:mod:`sgdlab.data.scale`; ``auto``: the dataset's
    default, e.g. digits divided by 16, iris standardised).
    """

    hidden: tuple[int, ...] = (32, 16)
    activation: str = "sigmoid"
    output: str = "same"
    cost: str = "ce"
    ce_outside: str = "clip"
    init: str = "xavier"
    bias_init: str = "normal"
    lr: float = 1.0
    batch_size: int = 10
    epochs: int = 30
    seed: int = 0
    momentum: float = 0.0
    nesterov: bool = False
    l2: float = 0.0
    patience: int | None = None
    dtype: str = "float64"
    dataset: str = "digits"
    label: str | None = None
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    split_seed: int = 0
    scale: str = "auto"

    def __post_init__(self):
        for key, example in (("hidden", "(32, 16)"), ("split", "(0.6, 0.2, 0.2)")):
            value = getattr(self, key)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ConfigError(key, f"expected a sequence like {example}, got {value!r}")
            object.__setattr__(self, key, tuple(value))
        # numpy integers (np.array([32, 16]), a grid search's values) as plain ints: the run key is JSON
        object.__setattr__(self, "hidden", tuple(int(h) if isinstance(h, np.integer) else h for h in self.hidden))
        for key in ("dataset", "label"):  # a Path names the same file; the run key is JSON
            if isinstance(getattr(self, key), os.PathLike):
                object.__setattr__(self, key, os.fspath(getattr(self, key)))
        self.validate()

    def validate(self) -> None:
        """Check every field (:func:`check_field`), then the rules between fields."""
        for f in fields(self):
            check_field(f.name, getattr(self, f.name))
        problem = pairing_problem(self.output_activation, self.cost, self.ce_outside)
        if problem is not None:
            raise ConfigError(*problem)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov", "needs momentum > 0")

    @property
    def output_activation(self) -> str:
        return self.activation if self.output == "same" else self.output

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["split"] = list(self.split)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SgdlabError(f"unknown run setting {unknown[0]!r}; valid: {', '.join(sorted(names))}")
        return cls(**d)

    def key(self) -> str:
        """A stable hash of the run (sha256 of its canonical JSON, 16 hex digits).

        Settings added after stores were first written (:data:`KEY_DEFAULTS`) are left out
        at their default, so runs stored before they existed keep their keys."""
        d = {k: v for k, v in self.to_dict().items() if KEY_DEFAULTS.get(k, _MISSING) != v}
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def rng_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent (init, shuffle) generators for a run's seed.

    The shuffle stream does not depend on the initialiser, cost or learning rate, so runs
    that share a seed see the same minibatch order (the batched engine relies on this).
    """
    init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_ss), np.random.default_rng(shuffle_ss)
