"""RunConfig: everything that decides one training run, validated at the boundary."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .data.scale import check_scale
from .errors import SgdlabError
from .nn.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS
from .nn.costs import CE_OUTSIDE, COSTS, check_pairing
from .nn.init import BIAS_INITS, INITS


def _one_of(key, value, valid):
    if value not in valid:
        raise SgdlabError(f"{key}: unknown value {value!r}; valid: {', '.join(valid)}")


def _number(key, value, *, positive=False, nonneg=False, integer=False):
    ok_types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types) or not math.isfinite(value):
        raise SgdlabError(f"{key}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if positive and value <= 0:
        raise SgdlabError(f"{key}: must be > 0, got {value!r}")
    if nonneg and value < 0:
        raise SgdlabError(f"{key}: must be >= 0, got {value!r}")


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
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "split", tuple(self.split))
        self.validate()

    def validate(self) -> None:
        for h in self.hidden:
            if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0:
                raise SgdlabError(f"hidden: layer sizes must be positive integers, got {list(self.hidden)!r}")
        _one_of("activation", self.activation, HIDDEN_ACTIVATIONS)
        _one_of("output", self.output, ("same", *ACTIVATIONS))
        _one_of("cost", self.cost, tuple(COSTS))
        _one_of("ce_outside", self.ce_outside, CE_OUTSIDE)
        _one_of("init", self.init, tuple(INITS))
        _one_of("bias_init", self.bias_init, tuple(BIAS_INITS))
        _one_of("dtype", self.dtype, ("float64", "float32"))
        check_pairing(self.output_activation, self.cost, self.ce_outside)
        _number("lr", self.lr, positive=True)
        _number("batch_size", self.batch_size, positive=True, integer=True)
        _number("epochs", self.epochs, positive=True, integer=True)
        _number("seed", self.seed, nonneg=True, integer=True)
        _number("momentum", self.momentum, nonneg=True)
        if self.momentum >= 1:
            raise SgdlabError(f"momentum: must be in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise SgdlabError("nesterov: needs momentum > 0")
        _number("l2", self.l2, nonneg=True)
        if self.patience is not None:
            _number("patience", self.patience, positive=True, integer=True)
        if len(self.split) != 3 or any(not isinstance(s, (int, float)) or s < 0 for s in self.split) \
                or self.split[0] <= 0 or abs(sum(self.split) - 1) > 1e-9:
            raise SgdlabError(f"split: three fractions train,validation,test summing to 1, got {self.split!r}")
        _number("split_seed", self.split_seed, nonneg=True, integer=True)
        check_scale(self.scale)

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
