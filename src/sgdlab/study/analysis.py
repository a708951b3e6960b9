"""Analysis of a study: aggregate over seeds, select the learning rate on validation.

Pure functions on a list of :class:`~sgdlab.study.records.RunRecord`; nothing here
touches the store, the disk or a plot.

Selection rule
    A *cell* is every grid axis but lr and seed (:class:`~sgdlab.study.records.Cell`).
    For each cell, the selected lr is the one with the best mean validation accuracy at
    the final epoch over seeds. Test accuracy is reported at that lr and never used to
    choose. Ties (equal means, which happen: accuracies are multiples of ``1/n_val``) go
    to the lr with fewer diverged runs, then to the smaller lr.

Diverged runs
    A run that diverged (a non-finite loss or weight) ends with an unusable network. Under
    the default policy ``"zero"`` it counts with accuracy 0 in the means, the standard
    deviations and the intervals, so a learning rate that blows up on some seeds is
    penalised rather than hidden. Policy ``"last"`` counts its last finite epoch instead
    (0 when it diverged in the first epoch, before anything was recorded). Either way the
    run is counted in ``n_diverged``. Failed runs (an exception, status ``failed``) carry
    no metrics: they are left out of every statistic and only counted in ``n_failed``.

Statistics
    Mean, sample standard deviation (``ddof=1``; 0 for one run) and a 95 % confidence
    interval for the mean, ``mean +- t_{0.975, n-1} * std / sqrt(n)`` (the Student t
    quantile from ``scipy.stats``), clipped to [0, 1]; one run gives no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

from ..errors import SgdlabError
# The one rule for "learns nothing" lives with the engines, which give a finished run at chance
# the status "chance"; it is re-exported here for the analysis and the report.
from ..engine.diagnostics import CHANCE_MARGIN, at_chance, majority_rate  # noqa: F401
from .records import Cell, RunRecord

DIVERGED_POLICIES = ("zero", "last")
SPLITS = ("train", "val", "test")
ACTIVATION_ORDER = ("sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax")
INIT_ORDER = ("xavier", "gaussian", "glorot", "he")
COST_ORDER = ("ce", "mse", "cce")
MODE_ORDER = ("paper", "corrected")


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf``).

    ``t_quantile(0.975, 4)`` is 2.776..., the factor of a 95 % interval from 5 seeds.
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    return float(stats.t.ppf(p, df))


@dataclass(frozen=True)
class Stat:
    """Mean, spread and 95 % confidence interval of one metric over seeds.

    ``half_width`` is ``t_{0.975, n-1} * std / sqrt(n)``; None when ``n < 2`` (no
    interval) or ``n == 0`` (no value at all: every run failed).
    """

    n: int
    mean: float
    std: float
    min: float
    max: float
    half_width: float | None
    bounds: tuple[float, float] | None = None  # the interval is clipped to these

    @property
    def ci(self) -> tuple[float, float] | None:
        if self.half_width is None:
            return None
        lo, hi = self.mean - self.half_width, self.mean + self.half_width
        if self.bounds is not None:
            lo, hi = max(lo, self.bounds[0]), min(hi, self.bounds[1])
        return lo, hi

    def format(self, percent: bool = True, ci: bool = True, digits: int = 2) -> str:
        """``"96.39 ± 0.42 [95.87, 96.91]"`` (percent) or ``"n/a"`` when there is no value."""
        if self.n == 0:
            return "n/a"
        k = 100.0 if percent else 1.0
        s = f"{self.mean * k:.{digits}f} ± {self.std * k:.{digits}f}"
        if ci and self.ci is not None:
            lo, hi = self.ci
            s += f" [{lo * k:.{digits}f}, {hi * k:.{digits}f}]"
        return s


def summarize(values: Sequence[float], confidence: float = 0.95,
              bounds: tuple[float, float] | None = (0.0, 1.0)) -> Stat:
    """:class:`Stat` of ``values`` (sample std, ddof=1; t interval at ``confidence``).

    The interval is clipped to ``bounds`` (accuracies lie in [0, 1]; with 2 seeds the raw
    t interval easily reaches past them); ``bounds=None`` leaves it as is.
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    n = len(v)
    if n == 0:
        nan = float("nan")
        return Stat(0, nan, nan, nan, nan, None)
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n) if n > 1 else None
    return Stat(n, mean, std, float(v.min()), float(v.max()), half, bounds)


def check_policy(diverged: str) -> None:
    if diverged not in DIVERGED_POLICIES:
        raise SgdlabError(f"diverged: unknown policy {diverged!r}; valid: {', '.join(DIVERGED_POLICIES)}")


def run_accuracy(record: RunRecord, split: str = "val", diverged: str = "zero") -> float | None:
    """The final accuracy a run counts with (see the module docstring); None for a failed run."""
    check_policy(diverged)
    if record.status == "failed":
        return None
    hist = getattr(record.history, f"{split}_acc", None) or []
    if record.status == "diverged" and (diverged == "zero" or not hist):
        return 0.0
    if hist:
        return float(hist[-1])
    value = (record.final or {}).get(f"{split}_acc")
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class CellSummary:
    """All seeds of one cell at one learning rate."""

    cell: Cell
    lr: float
    n_runs: int  # every record, failed ones included
    n_diverged: int
    n_failed: int
    seeds: tuple[int, ...]
    val: Stat  # final validation accuracy over the counted (non-failed) runs
    test: Stat  # final test accuracy over the same runs
    diverged_epochs: tuple[int, ...] = ()
    val_runs: tuple[tuple[int, float], ...] = ()  # (seed, counted final validation accuracy)

    @property
    def n(self) -> int:
        """Runs counted in the statistics (done + diverged)."""
        return self.n_runs - self.n_failed


@dataclass(frozen=True)
class Selection:
    """A cell's selected learning rate and the summaries of every lr it was chosen from."""

    cell: Cell
    best: CellSummary
    candidates: tuple[CellSummary, ...]  # ascending lr
    all_at_chance: bool = False  # no lr learns: every lr's mean validation accuracy is at chance

    @property
    def lr(self) -> float:
        return self.best.lr

    @property
    def edge(self) -> str | None:
        """``"largest"`` or ``"smallest"`` when the selected lr is at that end of the lrs tried
        (of two or more): the optimum may lie beyond the grid. None inside the grid, or when
        no lr learns (then the pick is a tie-break among failures, not a finding)."""
        lrs = [c.lr for c in self.candidates if c.val.n > 0]
        if len(lrs) < 2 or self.all_at_chance:
            return None
        if self.lr == max(lrs):
            return "largest"
        if self.lr == min(lrs):
            return "smallest"
        return None

    @property
    def n_diverged(self) -> int:
        """Diverged runs of the cell over every lr."""
        return sum(c.n_diverged for c in self.candidates)

    @property
    def n_runs(self) -> int:
        return sum(c.n_runs for c in self.candidates)


def _order(value, order) -> tuple:
    return (order.index(value), "") if value in order else (len(order), str(value))


def cell_sort_key(cell: Cell) -> tuple:
    """Mode (paper first), cost, output, activation, init, momentum, l2."""
    return (_order(cell.mode, MODE_ORDER), _order(cell.cost, COST_ORDER), _order(cell.output, ACTIVATION_ORDER),
            _order(cell.activation, ACTIVATION_ORDER), _order(cell.init, INIT_ORDER), cell.momentum, cell.l2)


def group_by_cell_lr(records: Iterable[RunRecord]) -> dict[tuple[Cell, float], list[RunRecord]]:
    groups: dict[tuple[Cell, float], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.cell, float(r.config.lr)), []).append(r)
    for rs in groups.values():
        rs.sort(key=lambda r: r.config.seed)
    return groups


def summarize_cells(records: Iterable[RunRecord], diverged: str = "zero") -> list[CellSummary]:
    """One :class:`CellSummary` per (cell, lr), sorted by cell then lr."""
    check_policy(diverged)
    out = []
    for (cell, lr), rs in group_by_cell_lr(records).items():
        counted = [r for r in rs if r.status != "failed"]
        val = [run_accuracy(r, "val", diverged) for r in counted]
        test = [run_accuracy(r, "test", diverged) for r in counted]
        out.append(CellSummary(
            cell=cell, lr=lr, n_runs=len(rs),
            n_diverged=sum(r.status == "diverged" for r in rs),
            n_failed=sum(r.status == "failed" for r in rs),
            seeds=tuple(r.config.seed for r in rs),
            val=summarize([v for v in val if v is not None]),
            test=summarize([v for v in test if v is not None]),
            diverged_epochs=tuple(r.history.diverged_epoch or 0 for r in rs if r.status == "diverged"),
            val_runs=tuple((r.config.seed, v) for r, v in zip(counted, val) if v is not None),
        ))
    out.sort(key=lambda s: (cell_sort_key(s.cell), s.lr))
    return out


def _rank(s: CellSummary) -> tuple:
    # Larger is better: mean val acc (rounded: sums of multiples of 1/n_val are not exact),
    # then fewer diverged runs, then the smaller lr.
    return (round(s.val.mean, 12), -s.n_diverged, -s.lr)


def select(summaries: Iterable[CellSummary], chance: float | None = None) -> list[Selection]:
    """Per cell, the lr with the best mean final validation accuracy (see the module docstring).

    Cells whose runs all failed (no value) get no selection. With ``chance`` (the validation
    set's majority-class rate) a cell whose every lr is :func:`at_chance` is marked
    ``all_at_chance``.
    """
    by_cell: dict[Cell, list[CellSummary]] = {}
    for s in summaries:
        by_cell.setdefault(s.cell, []).append(s)
    out = []
    for cell, cands in by_cell.items():
        cands = sorted(cands, key=lambda s: s.lr)
        valid = [s for s in cands if s.val.n > 0]
        if not valid:
            continue
        dead = chance is not None and all(at_chance(s.val.mean, chance) for s in valid)
        out.append(Selection(cell, max(valid, key=_rank), tuple(cands), dead))
    out.sort(key=lambda sel: cell_sort_key(sel.cell))
    return out


def select_records(records: Sequence[RunRecord], diverged: str = "zero",
                   chance: float | None = None) -> list[Selection]:
    """:func:`summarize_cells` then :func:`select`."""
    return select(summarize_cells(records, diverged), chance)


GRID_COLUMNS = ("mode", "cost", "ce_outside", "activation", "output", "init", "momentum", "l2", "lr", "selected",
                "n_runs", "n_diverged", "n_failed",
                "val_mean", "val_std", "val_ci_low", "val_ci_high", "val_min", "val_max",
                "test_mean", "test_std", "test_ci_low", "test_ci_high", "cell_all_at_chance", "lr_edge")


def grid_rows(summaries: Sequence[CellSummary], selections: Sequence[Selection] | None = None) -> list[dict]:
    """The full grid as flat rows (one per cell and lr), accuracies as fractions in [0, 1].

    Columns are :data:`GRID_COLUMNS`; ``selected`` marks the lr chosen for the cell.
    CI bounds are None where there is no interval (one run).
    """
    if selections is None:
        selections = select(summaries)
    chosen = {(sel.cell, sel.lr) for sel in selections}
    by_cell = {sel.cell: sel for sel in selections}
    rows = []
    for s in summaries:
        c = s.cell
        vci, tci = s.val.ci, s.test.ci
        rows.append({
            "mode": c.mode, "cost": c.cost, "ce_outside": c.ce_outside, "activation": c.activation, "output": c.output,
            "init": c.init, "momentum": c.momentum, "l2": c.l2, "lr": s.lr, "selected": (c, s.lr) in chosen,
            "n_runs": s.n_runs, "n_diverged": s.n_diverged, "n_failed": s.n_failed,
            "val_mean": s.val.mean, "val_std": s.val.std,
            "val_ci_low": vci[0] if vci else None, "val_ci_high": vci[1] if vci else None,
            "val_min": s.val.min, "val_max": s.val.max,
            "test_mean": s.test.mean, "test_std": s.test.std,
            "test_ci_low": tci[0] if tci else None, "test_ci_high": tci[1] if tci else None,
            "cell_all_at_chance": bool(by_cell[c].all_at_chance) if c in by_cell else False,
            "lr_edge": (by_cell[c].edge or "") if (c, s.lr) in chosen else "",
        })
    return rows


# --------------------------------------------------------------------------- curves and best runs

@dataclass(frozen=True)
class Curve:
    """Per-epoch validation accuracy of one cell at one lr over its seeds.

    ``values`` has shape ``(seeds, epochs)``; a diverged run's epochs after its divergence
    are NaN, and ``mean``/``low``/``high`` are over the runs still alive at each epoch.
    """

    cell: Cell
    lr: float
    epochs: np.ndarray  # 1..E
    values: np.ndarray
    n_diverged: int

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _nan_reduce(np.nanmean, self.values)

    @property
    def low(self) -> np.ndarray:
        return _nan_reduce(np.nanmin, self.values)

    @property
    def high(self) -> np.ndarray:
        return _nan_reduce(np.nanmax, self.values)


def _nan_reduce(fn, values):
    out = np.full(values.shape[1], np.nan)
    alive = ~np.all(np.isnan(values), axis=0)
    if alive.any():
        out[alive] = fn(values[:, alive], axis=0)
    return out


def curve(records: Sequence[RunRecord], cell: Cell, lr: float, metric: str = "val_acc") -> Curve:
    """The :class:`Curve` of ``metric`` for the non-failed runs of ``cell`` at ``lr``."""
    rs = [r for r in records if r.cell == cell and float(r.config.lr) == float(lr) and r.status != "failed"]
    rs.sort(key=lambda r: r.config.seed)
    length = max([len(getattr(r.history, metric)) for r in rs] + [r.config.epochs for r in rs] + [0])
    values = np.full((len(rs), length), np.nan)
    for i, r in enumerate(rs):
        h = getattr(r.history, metric)
        values[i, :len(h)] = h
    return Curve(cell, float(lr), np.arange(1, length + 1), values, sum(r.status == "diverged" for r in rs))


def representative_run(records: Sequence[RunRecord], selection: Selection, diverged: str = "zero") -> RunRecord | None:
    """The seed with the median final validation accuracy at the selected lr.

    With an even number of seeds the lower of the two middle runs is taken (then the
    smaller seed), so the pick is a run that exists and is not flattering.
    """
    rs = [r for r in records if r.cell == selection.cell and float(r.config.lr) == selection.lr
          and r.status != "failed"]
    if not rs:
        return None
    rs.sort(key=lambda r: (run_accuracy(r, "val", diverged), r.config.seed))
    return rs[(len(rs) - 1) // 2]


def best_selection(selections: Sequence[Selection], mode: str | None = None) -> Selection | None:
    """The selection with the highest mean validation accuracy (within ``mode`` if given)."""
    cands = [s for s in selections if mode is None or s.cell.mode == mode]
    if not cands:
        return None
    return max(cands, key=lambda s: _rank(s.best))


def modes(records_or_cells: Iterable) -> list[str]:
    """Modes present, paper first then corrected then the rest by name."""
    found = {getattr(x, "mode", None) or x.cell.mode for x in records_or_cells}
    return sorted(found, key=lambda m: _order(m, MODE_ORDER))


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts ``M[i, j]`` of true class ``i`` predicted as ``j``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise SgdlabError(f"{len(y_pred)} test predictions for {len(y_true)} test labels")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y_true, np.clip(y_pred, 0, n_classes - 1)), 1)
    return m


def output_settings(records: Iterable[RunRecord]) -> dict[Cell, str]:
    """Each cell's output *setting* as configured: ``"same"`` (the paper's) or an activation name."""
    return {r.cell: r.config.output for r in records}


def table_groups(selections: Sequence[Selection], settings: dict[Cell, str]) -> dict[tuple, list[Selection]]:
    """Selections grouped as the paper's Tables 2-3: per (mode, cost, output setting,
    momentum, l2, ce_outside), one table whose rows are inits and columns hidden activations."""
    groups: dict[tuple, list[Selection]] = {}
    for sel in selections:
        c = sel.cell
        key = (c.mode, c.cost, settings.get(c, c.output), c.momentum, c.l2, c.ce_outside)
        groups.setdefault(key, []).append(sel)
    return dict(sorted(groups.items(), key=lambda kv: (_order(kv[0][0], MODE_ORDER), _order(kv[0][1], COST_ORDER),
                                                     str(kv[0][2]), kv[0][3], kv[0][4],
                                                     kv[0][5] != "clip", kv[0][5])))
