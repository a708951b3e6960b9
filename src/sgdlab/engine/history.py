"""A run's per-epoch record (:class:`History`) and the bookkeeping that fills it
(:class:`EpochBook`: metrics, divergence, patience), written once for one model or a stack."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from .diagnostics import append_row

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds")


@dataclass
class History:
    """Per-epoch metrics of one run (index ``i`` is epoch ``i + 1``).

    ``status`` is ``done``, ``chance`` (finished, but the final validation accuracy is no
    better than the majority-class rate: see :func:`sgdlab.engine.diagnostics.at_chance`) or
    ``diverged`` (a non-finite loss or parameter; ``diverged_epoch`` says when, and the lists
    hold the epochs before it). ``stopped_epoch`` is set when early stopping ended the run.

    ``diagnostics`` maps each name of :data:`sgdlab.engine.diagnostics.NAMES` to one row per
    epoch (row 0: the initial weights; row ``i``: after epoch ``i``) of per-layer values (NaN
    where a metric does not apply); empty when they were not recorded. ``diagnosis`` is a
    one-line explanation for a run at chance or diverged.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    status: str = "done"
    diverged_epoch: int | None = None
    stopped_epoch: int | None = None
    diagnostics: dict[str, list[list[float]]] = field(default_factory=dict)
    diagnosis: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def final(self) -> dict:
        """The last epoch's metrics (NaN where nothing was recorded), plus status."""
        out = {m: (getattr(self, m)[-1] if getattr(self, m) else float("nan")) for m in METRICS if m != "seconds"}
        out.update(status=self.status, epochs=self.epochs, diverged_epoch=self.diverged_epoch,
                   seconds=float(sum(self.seconds)))
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """The inverse of :meth:`to_dict`; dicts written before a field existed get its default."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if d.get("diagnostics"):  # JSON has no NaN: null comes back as None
            d["diagnostics"] = {k: [[float("nan") if x is None else x for x in row] for row in rows]
                                for k, rows in d["diagnostics"].items()}
        return cls(**d)


class EpochBook:
    """One run's per-epoch bookkeeping into its :class:`History`: the single engine, the
    estimator and each model of a batched stack call it the same way, after each epoch::

        if not book.record(epoch, metrics, finite, seconds, row):  # diverged
            ...
        on_epoch(...)
        if book.patience_over(epoch, val_acc):  # early stopping
            ...

    ``patience``: epochs without a better validation accuracy before stopping (None: never).
    """

    def __init__(self, patience: int | None = None, history: History | None = None):
        self.history = History() if history is None else history
        self.patience = patience
        self.best, self.waited, self.improved = -math.inf, 0, False

    def record(self, epoch: int, metrics: dict, finite: bool = True, seconds: float | None = None,
               diagnostics: dict | None = None, column: int = 0) -> bool:
        """Append an epoch's ``metrics`` (``{part: (loss, acc)}`` for train, val, test: those
        given), its ``seconds`` and its diagnostics row (``column`` of a stack's row), unless
        the run diverged: a non-finite training loss, or ``finite`` False (a non-finite
        parameter). Returns False when it diverged (the status says so, nothing is appended)."""
        h = self.history
        if not finite or not math.isfinite(metrics["train"][0]):
            h.status, h.diverged_epoch = "diverged", epoch
            return False
        for part, (loss, acc) in metrics.items():
            getattr(h, f"{part}_loss").append(float(loss))
            getattr(h, f"{part}_acc").append(float(acc))
        if seconds is not None:
            h.seconds.append(seconds)
        if diagnostics is not None:
            append_row(h.diagnostics, diagnostics, column)
        return True

    def patience_over(self, epoch: int, val_acc: float) -> bool:
        """Early stopping: True when ``patience`` epochs have passed without a better
        validation accuracy (``stopped_epoch`` is then set); ``improved`` says whether this one
        was the best so far."""
        self.improved = False
        if self.patience is None:
            return False
        if val_acc > self.best:
            self.best, self.waited, self.improved = float(val_acc), 0, True
            return False
        self.waited += 1
        if self.waited >= self.patience:
            self.history.stopped_epoch = epoch
            return True
        return False
