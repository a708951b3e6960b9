"""The Answers box: one line per question the study asks (per grid axis it varies).

Also printed in the terminal by ``sgdlab study``, ``reproduce`` and ``report``.
"""

from __future__ import annotations

from ...study.analysis import CHANCE_MARGIN
from ...study.paired import Paired
from ...study.questions import Comparison, Question
from ..document import Answers

AXIS_LABELS = {"cost": "Cost", "ce_outside": "Cross-entropy convention", "activation": "Hidden activation",
               "output": "Output layer", "init": "Initialisation", "momentum": "Momentum", "l2": "L2 penalty",
               "lr": "Learning rate"}


def value_text(axis: str, v) -> str:
    if axis == "ce_outside":
        return f"ce_outside {v}"
    if axis == "output":
        return "output = hidden activation" if v == "same" else f"{v} output"
    if axis in ("lr", "momentum", "l2"):
        return f"{'lr' if axis == 'lr' else axis} {v:g}"
    return str(v)


def p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1e}"


def _pts(x: float) -> str:
    return f"{100 * x:.2f}"


def _oriented(c: Comparison) -> tuple[object, object, Paired]:
    """(winner side, other side, result as winner − other): the larger mean first."""
    p = c.pooled
    if p.mean >= 0:
        return c.a, c.b, p
    ci = None if p.ci is None else (-p.ci[1], -p.ci[0])
    return c.b, c.a, Paired(p.n, -p.mean, ci, p.p_t, p.p_wilcoxon, p.p_holm)


def comparison_text(c: Comparison, unit: str = "setting") -> str:
    a, b, p = _oriented(c)
    at, bt = value_text(c.axis, a), value_text(c.axis, b)
    ci = f" [{_pts(p.ci[0])}, {_pts(p.ci[1])}]" if p.ci else ""
    n_set = len(c.settings)
    where = f"{n_set} {unit}{'s' * (n_set != 1)}, {p.n} seed{'s' * (p.n != 1)}"
    tests = f"paired t p = {p_text(p.p)}" + (" (Holm)" if p.p_holm is not None else "") \
        + f", Wilcoxon p = {p_text(p.p_wilcoxon)}"
    left = []
    if c.n_chance:
        left.append(f"{c.n_chance} with both at chance")
    if c.n_identical:
        left.append(f"{c.n_identical} identical")
    out = f"; {' and '.join(left)} left out" if left else ""
    if p.n == 0:
        return f"{at} vs {bt}: nothing to compare ({' and '.join(left) or 'no common seed'} of " \
               f"{c.n_chance + c.n_identical} setting{'s' * (c.n_chance + c.n_identical != 1)})"
    if c.better is not None:
        return f"**{at}** better than {bt} by {_pts(p.mean)} points{ci} ({where}; {tests}{out})"
    return f"{at} vs {bt}: no clear difference, {_pts(p.mean)} points{ci} ({where}; {tests}{out})"


def question_label(q: Question) -> str:
    label = AXIS_LABELS.get(q.axis, q.axis)
    if q.axis == "lr":
        return label
    return f"{label}, {q.mode} mode" if q.mode else f"{label}, across modes"


def question_text(q: Question) -> str:
    """One line: the answer, then the evidence of every comparison."""
    if q.axis == "lr":
        return _lr_text(q)
    compared = [v for v in q.values if any(v in (c.a, c.b) for c in q.comparisons)]
    w = q.winner
    if w is not None:
        head = f"{value_text(q.axis, w)} {'better' if len(compared) == 2 else 'best'}"
    else:
        head = "no clear difference" if len(compared) == 2 else "no single best"
    extra = [v for v in q.values if v not in compared]
    tail = (f" ({', '.join(value_text(q.axis, v) for v in extra)}: no setting shared with the others.)"
            if extra else "")
    if len(q.comparisons) == 1:
        return f"**{question_label(q)}**: " + comparison_text(q.comparisons[0]) + "." + tail
    return f"**{question_label(q)}**: {head}. " + "; ".join(comparison_text(c) for c in q.comparisons) + "." + tail


def _lr_text(q: Question) -> str:
    counts = ", ".join(f"{lr:g} in {n}" for lr, n in q.lr_counts.items())
    s = f"**{question_label(q)}** (chosen per cell on validation): selected {counts or 'in no cell'}"
    s += f" of {sum(q.lr_counts.values())} cells that learn"
    if q.lr_edges.get("largest"):
        s += (f"; {q.lr_edges['largest']} at the largest lr tried ({max(q.values):g}): "
              "the optimum may lie beyond")
    if q.lr_edges.get("smallest"):
        s += f"; {q.lr_edges['smallest']} at the smallest lr tried ({min(q.values):g})"
    if q.n_dead:
        s += f"; {q.n_dead} cell{'s' * (q.n_dead != 1)} at chance at every lr"
    s += "."
    for c in q.comparisons:
        s += " The two lrs selected most often, in every cell: " + comparison_text(c, unit="cell") + "."
    return s


def method_note(chance: float | None) -> str:
    chance_rule = (f"at chance means a mean validation accuracy at most {100 * CHANCE_MARGIN:.0f} points above the "
                   f"majority-class rate of the validation set ({100 * chance:.2f} %)" if chance is not None else
                   "the data could not be loaded, so nothing is called at chance")
    return ("Each line compares values of one grid axis with every other axis held equal (a setting), each side at "
            "its own lr selected on validation, on **test** accuracy, paired by seed (same seed: same initial-weight "
            "stream and minibatch order); per seed the settings are averaged, and the effect is the mean paired "
            "difference over seeds, in percentage points, with its 95 % t interval. 'Better' means a paired t-test "
            "p below 0.05 after Holm's correction over every comparison in this box; the Wilcoxon signed-rank p is "
            "shown as a check that does not assume normal differences (with 5 seeds it cannot go below 0.0625). "
            f"Settings where both sides are at chance are left out and counted ({chance_rule}).")


def lines(questions: list[Question]) -> list[str]:
    return [question_text(q) for q in questions]


def section(ctx) -> list:
    items = lines(ctx.questions)
    if not items:
        items = ["The study varies no grid axis (one cell, one lr): there is no question to answer; see the "
                 "results below."]
    return [Answers(items, method_note(ctx.chance))]


def plain(line: str) -> str:
    """A Markdown answer line as terminal text."""
    return line.replace("**", "")
