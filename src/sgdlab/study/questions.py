"""The questions a study asks, one per grid axis it varies, answered by paired comparisons.

For an axis X with values a and b, a *setting* is a pair of cells equal in every other axis
(and in mode, unless X only varies between modes: the paper's output layer does). Each cell
is taken at its selected lr (chosen on validation), and the two are compared on **test**
accuracy, seed by seed (:mod:`sgdlab.study.paired`). The answer pools the settings: for each
seed, the mean over settings of a and of b; the effect is the mean paired difference over
seeds with its 95 % interval, and the paired t-test and Wilcoxon test run on those
per-seed means. Settings where both cells are at chance (:func:`~.analysis.at_chance` of
their mean validation accuracy) are left out and counted apart; settings where the two cells
are the same network (a sigmoid hidden layer with "output = hidden" or a sigmoid output)
are left out as identical.

The learning rate is not chosen per cell here but compared at fixed values: the two lrs
selected most often, in every cell, seed by seed.

Several answers are several tests: the pooled t-test p values of one study are adjusted
together with Holm's method, and "better" means an adjusted p below 0.05.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Sequence

from .analysis import (ACTIVATION_ORDER, COST_ORDER, INIT_ORDER, MODE_ORDER, CellSummary, Selection, _order,
                       at_chance, run_accuracy)
from .paired import Paired, paired, with_holm
from .records import Cell, RunRecord

QUESTION_AXES = ("cost", "ce_outside", "activation", "output", "init", "momentum", "l2")
ALPHA = 0.05
_ORDERS = {"cost": COST_ORDER, "activation": ACTIVATION_ORDER, "init": INIT_ORDER,
           "output": ("same", *ACTIVATION_ORDER)}


def axis_order(axis: str, value) -> tuple:
    return _order(value, _ORDERS.get(axis, ()))


@dataclass(frozen=True)
class Setting:
    """One matched pair of cells (or of lrs in one cell): ``context`` names the other axes."""

    context: dict
    a: CellSummary
    b: CellSummary
    result: Paired


@dataclass(frozen=True)
class Comparison:
    """Value ``a`` against value ``b`` of ``axis`` (within ``mode``, or across modes when None)."""

    axis: str
    mode: str | None
    a: object
    b: object
    settings: tuple[Setting, ...]
    pooled: Paired
    n_chance: int = 0  # settings left out: both sides at chance
    n_identical: int = 0  # settings left out: the same network on both sides

    @property
    def better(self):
        """The value that is better by the (Holm-adjusted) paired t-test, or None."""
        if not self.pooled.significant(ALPHA):
            return None
        return self.a if self.pooled.mean > 0 else self.b


@dataclass(frozen=True)
class Question:
    """One axis the study varies (within ``mode``, or across modes when None)."""

    axis: str
    mode: str | None
    values: tuple
    comparisons: tuple[Comparison, ...]
    lr_counts: dict = field(default_factory=dict)  # lr axis: selected lr -> cells (learning cells only)
    lr_edges: dict = field(default_factory=dict)  # lr axis: "largest"/"smallest" -> cells selected there
    n_dead: int = 0  # lr axis: cells where no lr learns

    @property
    def winner(self):
        """The value better than every other it was compared with, or None."""
        if not self.comparisons:
            return None
        for v in self.values:
            mine = [c for c in self.comparisons if v in (c.a, c.b) and c.pooled.n]
            if mine and all(c.better == v for c in mine):
                return v
        return None


def _factors(records: Sequence[RunRecord]) -> dict[Cell, dict]:
    """Each cell's axis values, ``output`` as configured (``"same"``, not the activation it means)."""
    return {r.cell: {**vars(r.cell), "output": r.config.output} for r in records}


def _seed_acc(records: Sequence[RunRecord], diverged: str) -> dict[tuple[Cell, float], dict[int, float]]:
    acc: dict[tuple[Cell, float], dict[int, float]] = {}
    for r in records:
        v = run_accuracy(r, "test", diverged)
        if v is not None:
            acc.setdefault((r.cell, float(r.config.lr)), {})[r.config.seed] = v
    return acc


def _pool(pairs: list[tuple[dict[int, float], dict[int, float]]]) -> tuple[Paired, list[Paired]]:
    """Per-setting paired results, and the pooled one (per seed, the mean over settings)."""
    per, by_seed = [], {}
    for xa, xb in pairs:
        seeds = sorted(set(xa) & set(xb))
        per.append(paired([xa[s] for s in seeds], [xb[s] for s in seeds]))
        for s in seeds:
            by_seed.setdefault(s, []).append((xa[s], xb[s]))
    seeds = sorted(by_seed)
    a = [sum(p[0] for p in by_seed[s]) / len(by_seed[s]) for s in seeds]
    b = [sum(p[1] for p in by_seed[s]) / len(by_seed[s]) for s in seeds]
    return paired(a, b), with_holm(per)


def _compare(axis, mode, a, b, pairs, acc, chance, identical) -> Comparison:
    kept, n_chance, n_identical = [], 0, 0
    for ctx, sa, sb in pairs:
        if identical(sa, sb):
            n_identical += 1
        elif at_chance(sa.val.mean, chance) and at_chance(sb.val.mean, chance):
            n_chance += 1
        else:
            kept.append((ctx, sa, sb))
    pooled, per = _pool([(acc.get((sa.cell, sa.lr), {}), acc.get((sb.cell, sb.lr), {})) for _, sa, sb in kept])
    settings = tuple(Setting(ctx, sa, sb, p) for (ctx, sa, sb), p in zip(kept, per))
    return Comparison(axis, mode, a, b, settings, pooled, n_chance, n_identical)


def _identical(sa: CellSummary, sb: CellSummary) -> bool:
    """The same network on both sides (e.g. a sigmoid hidden layer, "output = hidden" vs sigmoid)."""
    return replace(sa.cell, mode=sb.cell.mode) == sb.cell


def _axis_questions(axis, factors, sel_by_cell, acc, chance) -> list[Question]:
    """Within each mode where ``axis`` varies, one question; and one across modes (pairs of
    cells from different modes) when the modes hold different values of it (the paper's
    output layer: "same" in paper mode, sigmoid in corrected mode). Questions without any
    matched setting are dropped."""
    cells = list(sel_by_cell)
    by_mode: dict[str, set] = {}
    for c in cells:
        by_mode.setdefault(factors[c]["mode"], set()).add(factors[c][axis])
    if len({v for vs in by_mode.values() for v in vs}) < 2:
        return []
    modes = sorted(by_mode, key=lambda m: _order(m, MODE_ORDER))
    groups = [m for m in modes if len(by_mode[m]) > 1]
    if len({frozenset(vs) for vs in by_mode.values()}) > 1:
        groups.append(None)
    others = [k for k in QUESTION_AXES if k != axis]
    out = []
    for mode in groups:
        table: dict[tuple, dict] = {}
        for c in cells:
            f = factors[c]
            if mode is not None and f["mode"] != mode:
                continue
            table.setdefault(tuple(f[k] for k in others), {}).setdefault(f[axis], []).append(sel_by_cell[c])
        values = sorted({v for d in table.values() for v in d}, key=lambda v: axis_order(axis, v))
        comps = []
        for a, b in itertools.combinations(values, 2):
            pairs = []
            for key, d in table.items():
                for sa in d.get(a, []):
                    for sb in d.get(b, []):
                        if mode is None and sa.cell.mode == sb.cell.mode:
                            continue  # across modes: within-mode pairs belong to that mode's question
                        ctx = dict(zip(others, key))
                        if mode is None:
                            ctx["modes"] = f"{sa.cell.mode} vs {sb.cell.mode}"
                        pairs.append((ctx, sa.best, sb.best))
            if pairs:
                comps.append(_compare(axis, mode, a, b, pairs, acc, chance, _identical))
        if comps:
            out.append(Question(axis, mode, tuple(values), tuple(comps)))
    return out


def _lr_question(selections, summaries, acc, chance) -> Question | None:
    lrs = sorted({s.lr for s in summaries}, reverse=True)
    if len(lrs) < 2:
        return None
    live = [s for s in selections if not s.all_at_chance]
    counts = Counter(s.lr for s in live)
    edges = dict(Counter(s.edge for s in live if s.edge))
    comps = []
    top = sorted(counts, key=lambda lr: (-counts[lr], lr))[:2]
    if len(top) == 2:
        a, b = sorted(top, reverse=True)
        by = {(s.cell, s.lr): s for s in summaries}
        pairs = [({"cell": s.cell.label()}, by[(s.cell, a)], by[(s.cell, b)]) for s in selections
                 if (s.cell, a) in by and (s.cell, b) in by]
        comps.append(_compare("lr", None, a, b, pairs, acc, chance, lambda x, y: False))
    return Question("lr", None, tuple(lrs), tuple(comps), dict(sorted(counts.items(), reverse=True)), edges,
                    len(selections) - len(live))


def questions(records: Sequence[RunRecord], summaries: Sequence[CellSummary], selections: Sequence[Selection],
              chance: float | None, diverged: str = "zero") -> list[Question]:
    """Every question the study asks, answered; pooled p values Holm-adjusted together."""
    factors = _factors(records)
    acc = _seed_acc(records, diverged)
    sel_by_cell = {s.cell: s for s in selections}
    qs: list[Question] = []
    for axis in QUESTION_AXES:
        qs += _axis_questions(axis, factors, sel_by_cell, acc, chance)
    lr_q = _lr_question(selections, summaries, acc, chance)
    if lr_q is not None:
        qs.append(lr_q)
    # Holm over every pooled comparison of the study: one family.
    adjusted = iter(with_holm([c.pooled for q in qs for c in q.comparisons]))
    return [replace(q, comparisons=tuple(replace(c, pooled=next(adjusted)) for c in q.comparisons)) for q in qs]
