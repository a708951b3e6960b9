"""Sentences computed from a study's results: nothing here is written in advance.

Thresholds used by the wording (stated in the report): a cell *fails* when its mean
validation accuracy at the selected lr is below :data:`FAIL` and *works* at or above
:data:`WORKS`. Two cells differ *clearly* when the paired t-test over their common seeds
(validation accuracy at each one's selected lr) gives p < 0.05 after Holm's correction over
the pairs one sentence counts; fewer than two common seeds never differ clearly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable, Sequence

from ..study.analysis import CellSummary, Selection, best_selection, modes
from ..study.records import Cell, RunRecord
from ..study.paired import Paired, paired, with_holm
from .tables import Comparison, lr_text, pct

FAIL = 0.5
WORKS = 0.9


def _cost_words(c) -> str:
    """The cost, with its cross-entropy convention when it is not the default ``clip``."""
    return c.cost if c.ce_outside == "clip" else f"{c.cost} ({c.ce_outside} convention)"


def _cell_words(sel: Selection) -> str:
    c = sel.cell
    out = "" if c.output == c.activation else f" with a {c.output} output"
    extra = (f", momentum {c.momentum:g}" if c.momentum else "") + (f", l2 {c.l2:g}" if c.l2 else "")
    return f"{c.activation} + {_cost_words(c)}{out}, {c.init} init{extra}"


def _val(sel: Selection) -> str:
    return f"{pct(sel.best.val.mean)} ± {pct(sel.best.val.std)} %"


def _clearly(a: Selection, b: Selection) -> Paired:
    """Paired comparison of a and b over their common seeds (validation, selected lr)."""
    xa, xb = dict(a.best.val_runs), dict(b.best.val_runs)
    seeds = sorted(set(xa) & set(xb))
    return paired([xa[s] for s in seeds], [xb[s] for s in seeds])


def _signs(pairs) -> list[int]:
    """+1 / -1 / 0 per (a, b) pair: a clearly better / worse / neither, Holm over the pairs."""
    results = with_holm([_clearly(a, b) for a, b in pairs])
    return [(r.mean > 0) - (r.mean < 0) if r.significant() else 0 for r in results]


def _tally(pairs) -> tuple[int, int, float]:
    """Over (a, b) pairs: how often a is clearly better, clearly worse, and the mean of a − b in points."""
    signs = _signs(pairs)
    diffs = [a.best.val.mean - b.best.val.mean for a, b in pairs]
    return sum(g > 0 for g in signs), sum(g < 0 for g in signs), 100 * sum(diffs) / len(diffs)


def _pairs(selections: Sequence[Selection], keep: Callable[[Cell], bool], any_mode: bool = False,
           **change) -> list[tuple[Selection, Selection]]:
    """``(s, partner)`` for each selection whose cell ``keep`` accepts and whose cell with
    ``change`` applied was run (in any mode with ``any_mode``: the first such cell)."""
    def key(c: Cell) -> Cell:
        return replace(c, mode="") if any_mode else c

    out = []
    for s in selections:
        if keep(s.cell):
            want = key(replace(s.cell, **change))
            partner = next((t for t in selections if key(t.cell) == want), None)
            if partner is not None:
                out.append((s, partner))
    return out


def overview(records: Sequence[RunRecord], summaries: Sequence[CellSummary], selections: Sequence[Selection]) -> str:
    status = Counter(r.status for r in records)
    lrs = sorted({s.lr for s in summaries})
    seeds = sorted({r.config.seed for r in records})
    head = (f"The study holds {len(records)} runs: {len(selections)} cells × {len(lrs)} learning rates × "
            f"{len(seeds)} seed{'s' * (len(seeds) != 1)}")
    tail = []
    if status.get("diverged"):
        tail.append(f"{status['diverged']} diverged")
    if status.get("failed"):
        tail.append(f"{status['failed']} failed with an error")
    s = head + ("; " + " and ".join(tail) if tail else "; none diverged or failed") + "."
    expected = len(selections) * len(lrs) * len(seeds)
    if expected != len(records):
        s += f" (A full grid would hold {expected} runs; some are missing.)"
    return s


def best_per_mode(selections: Sequence[Selection]) -> list[str]:
    out = []
    for mode in modes(s.cell for s in selections):
        best = best_selection([s for s in selections if not s.all_at_chance], mode)
        if best is None:
            continue
        b = best.best
        out.append(f"In {mode} mode the best cell is {_cell_words(best)} at lr {lr_text(best.lr)}: validation "
                   f"{_val(best)}, test {pct(b.test.mean)} ± {pct(b.test.std)} % over {b.n} runs.")
    return out


def flags(selections: Sequence[Selection]) -> list[str]:
    """Cells where no lr learns, and selected lrs at the edge of the grid."""
    out = []
    dead = [s for s in selections if s.all_at_chance]
    if dead:
        out.append(f"{len(dead)} cell{'s' * (len(dead) != 1)} learn{'s' * (len(dead) == 1)} at no lr tried (at "
                   "chance at every lr), so no lr is selected for them: "
                   + "; ".join(f"{s.cell.mode}: {_cell_words(s)} (best {_val(s)})" for s in dead) + ".")
    for edge in ("largest", "smallest"):
        group = [s for s in selections if s.edge == edge]
        if group:
            lr = lr_text(group[0].lr) if len({s.lr for s in group}) == 1 else "the end of its grid"
            out.append(f"{len(group)} cell{'s' * (len(group) != 1)} {'are' if len(group) != 1 else 'is'} best at "
                       f"the {edge} lr tried ({lr}): the optimum may lie beyond — "
                       + "; ".join(f"{s.cell.mode}: {_cell_words(s)}" for s in group) + ".")
    return out


def paper_numbers(comps: Sequence[Comparison]) -> list[str]:
    done = [c for c in comps if c.holds is not None]
    if not done:
        return []
    within = [c for c in done if c.holds]
    outside = [c for c in done if not c.holds]
    out = [f"{len(within)} of the {len(done)} published validation accuracies we could compare "
           f"{'lie' if len(within) != 1 else 'lies'} within the range of our seeds in paper mode at the selected lr"
           + (": " + "; ".join(f"{c.activation} + {c.cost}, {c.init} ({pct(c.paper)} %)" for c in within)
              if within else "") + "."]
    for word in ("higher", "lower"):
        group = [c for c in outside if c.direction == f"paper {word}"]
        if group:
            out.append(f"The paper reports {word} than all our seeds for {len(group)}: " + "; ".join(
                f"{c.activation} + {c.cost}, {c.init}: paper {pct(c.paper)} %, ours "
                f"{pct(c.paper_mode.best.val.min)}–{pct(c.paper_mode.best.val.max)} %" for c in group) + ".")
    out.extend(unexplained_by_output(done))
    return out


def unexplained_by_output(comps: Sequence[Comparison]) -> list[str]:
    """Published failures that the output layer cannot explain: the paper reports a failing
    number, yet our runs with the paper's own output layer (paper mode) work."""
    group = [c for c in comps if c.paper_mode is not None and c.paper < FAIL
             and c.paper_mode.best.val.mean >= WORKS]
    if not group:
        return []
    return [f"The output layer does not explain {len(group)} published failure{'s' * (len(group) != 1)}: "
            "with the hidden activation on the output layer, as the paper did, our runs work — " + "; ".join(
                f"{c.activation} + {c.cost}, {c.init}: paper {pct(c.paper)} %, ours {_val(c.paper_mode)}"
                for c in group) + "."]


def output_layer(comps: Sequence[Comparison] | None, selections: Sequence[Selection]) -> list[str]:
    """Which combinations fail in paper mode but work with a sigmoid output (same hidden
    activation, cost and init)."""
    pairs = _pairs(selections, lambda c: c.output == c.activation != "sigmoid" and c.cost in ("ce", "mse"),
                   any_mode=True, output="sigmoid")
    if not pairs:
        return []
    only_output = [(p, s) for p, s in pairs if p.best.val.mean < FAIL and s.best.val.mean >= WORKS]
    signs = _signs([(s, p) for p, s in pairs])
    better = [(p, s) for (p, s), g in zip(pairs, signs) if (p, s) not in only_output and g > 0]
    worse = [(p, s) for (p, s), g in zip(pairs, signs) if g < 0]

    def changes(group):
        return "; ".join(f"{p.cell.activation} + {p.cell.cost}, {p.cell.init}: {_val(p)} → {_val(s)}"
                         for p, s in group)

    out = []
    if only_output:
        out.append(f"{len(only_output)} of the {len(pairs)} paper-mode combinations with a non-sigmoid output fail "
                   f"(below {pct(FAIL, 0)} %) only because of the output layer: with a sigmoid output and the same "
                   "hidden activation, cost and init they reach at least "
                   f"{pct(WORKS, 0)} % — " + changes(only_output) + ".")
    else:
        out.append(f"None of the {len(pairs)} paper-mode combinations with a non-sigmoid output goes from below "
                   f"{pct(FAIL, 0)} % to at least {pct(WORKS, 0)} % when only the output layer becomes a sigmoid.")
    if better:
        out.append("A sigmoid output also clearly improves: " + changes(better) + ".")
    if worse:
        out.append("A sigmoid output is clearly worse for: " + changes(worse) + ".")
    return out


def softmax_vs_sigmoid(selections: Sequence[Selection]) -> list[str]:
    """Softmax + cce against sigmoid output + ce, same hidden activation and init."""
    rows = _pairs(selections, lambda c: c.cost == "cce", cost="ce", output="sigmoid")
    if not rows:
        return []
    wins, losses, diff = _tally(rows)
    return [f"Softmax + categorical cross-entropy against a sigmoid output + binary cross-entropy (same hidden "
            f"activation and init, {len(rows)} pair{'s' * (len(rows) != 1)}): clearly better in {wins}, clearly worse "
            f"in {losses}, mean difference {diff:+.2f} points."]


def init_effect(selections: Sequence[Selection]) -> list[str]:
    out = []
    for mode in modes(s.cell for s in selections):
        pairs = _pairs(selections, lambda c: c.mode == mode and c.init == "xavier", init="gaussian")
        if not pairs:
            continue
        xw, gw, diff = _tally(pairs)
        big = max(pairs, key=lambda p: abs(p[0].best.val.mean - p[1].best.val.mean))
        out.append(f"Xavier vs Gaussian init in {mode} mode ({len(pairs)} pair{'s' * (len(pairs) != 1)}): Xavier "
                   f"clearly better in {xw}, Gaussian clearly better in {gw}, indistinguishable in "
                   f"{len(pairs) - xw - gw}; mean difference {diff:+.2f} points (Xavier − Gaussian), largest for "
                   f"{big[0].cell.activation} + {_cost_words(big[0].cell)}"
                   + ("" if big[0].cell.output == big[0].cell.activation else f" ({big[0].cell.output} output)")
                   + f": {_val(big[0])} vs {_val(big[1])}.")
    return out


def divergence(summaries: Sequence[CellSummary], selections: Sequence[Selection]) -> list[str]:
    total = sum(s.n_runs for s in summaries)
    div = sum(s.n_diverged for s in summaries)
    if not div:
        return [f"No run diverged (of {total})."]
    by_lr = Counter()
    runs_lr = Counter()
    for s in summaries:
        by_lr[s.lr] += s.n_diverged
        runs_lr[s.lr] += s.n_runs
    per = ", ".join(f"lr {lr_text(lr)}: {by_lr[lr]}/{runs_lr[lr]}" for lr in sorted(by_lr, reverse=True)
                    if by_lr[lr])
    # a cell at chance at every lr has no selected lr (see flags): its divergences are counted
    # apart, not as "at the selected lr"
    at_sel = [sel for sel in selections if sel.best.n_diverged and not sel.all_at_chance]
    everywhere = [sel for sel in selections if sel.all_at_chance and all(c.n_diverged == c.n_runs
                                                                          for c in sel.candidates)]
    s = f"{div} of {total} runs diverged ({per})."
    if at_sel:
        s += (f" In {len(at_sel)} cell{'s' * (len(at_sel) != 1)} runs diverged even at the selected lr: "
              + "; ".join(f"{_cell_words(sel)} ({sel.best.n_diverged}/{sel.best.n_runs} at lr {lr_text(sel.lr)})"
                          for sel in at_sel) + ".")
    if everywhere:
        s += (f" In {len(everywhere)} cell{'s' * (len(everywhere) != 1)} every run diverged at every lr: "
              + "; ".join(_cell_words(sel) for sel in everywhere) + ".")
    return [s]
