"""What a study stores per run, shared by the runner (writes), analysis and report (read).

A *cell* is every grid axis but learning rate and seed, within a mode (``paper`` puts the
hidden activation on the output layer, as the paper did; ``corrected`` uses a sigmoid or
softmax output). Selection picks, per cell, the lr with the best mean final validation
accuracy over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import RunConfig
from ..engine.loop import History

STATUSES = ("done", "chance", "diverged", "failed")
#: statuses of runs that finished training (their final metrics count; ``chance``: finished at
#: the majority-class rate, see :func:`sgdlab.engine.diagnostics.at_chance`)
FINISHED = ("done", "chance")


@dataclass(frozen=True)
class Cell:
    mode: str
    cost: str
    activation: str
    output: str  # the output activation actually used (never "same")
    init: str
    momentum: float = 0.0
    l2: float = 0.0
    ce_outside: str = "clip"  # the cross-entropy convention (see sgdlab.nn.costs)

    @classmethod
    def of(cls, mode: str, config: RunConfig) -> "Cell":
        return cls(mode, config.cost, config.activation, config.output_activation, config.init,
                   config.momentum, config.l2, config.ce_outside)

    def label(self) -> str:
        s = f"{self.mode}: {self.activation}/{self.output} + {self.cost}, {self.init}"
        if self.momentum:
            s += f", momentum {self.momentum:g}"
        if self.l2:
            s += f", l2 {self.l2:g}"
        if self.ce_outside != "clip":
            s += f", ce_outside {self.ce_outside}"
        return s


@dataclass
class RunRecord:
    """One finished run as the store holds it."""

    key: str  # RunConfig.key() plus mode, stable across processes and machines
    mode: str
    config: RunConfig
    status: str  # done | chance | diverged | failed (see STATUSES)
    final: dict  # History.final(): train/val/test loss and acc of the last recorded epoch, ...
    history: History = field(default_factory=History)
    error: str | None = None  # the error text of a failed run
    test_predictions: list[int] | None = None  # class index per test row from the final network (None: diverged/failed)
    engine: str | None = None  # the engine that trained it: single | batched

    @property
    def cell(self) -> Cell:
        return Cell.of(self.mode, self.config)


def run_key(mode: str, config: RunConfig) -> str:
    """The store's key of a run: mode and config hash."""
    return f"{mode}:{config.key()}"
