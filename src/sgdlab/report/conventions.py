"""The report section on the paper's unstated cross-entropy convention.

The paper's cross-entropy is undefined for outputs outside (0, 1), which a tanh or ReLU
output layer produces, and the paper does not say what it did there. sgdlab runs those
cells under each convention (``clip``, ``nielsen``, ``none``; :mod:`sgdlab.nn.costs`). This
section shows, per cell, one row per convention (final validation accuracy over seeds at
that convention's selected lr) beside the published number, and says which conventions'
seed ranges reach it. Read from the records only; nothing is trained.
"""

from __future__ import annotations

from typing import Sequence

from ..nn.costs import CE_OUTSIDE
from ..study.analysis import ACTIVATION_ORDER, INIT_ORDER, MODE_ORDER, Selection, _order, select_records
from ..study.records import RunRecord
from . import paper_reference as ref
from .document import Heading, RawMarkdown, Table
from .tables import pct, within_seeds

TITLE = "The paper's unstated cross-entropy convention"


def convention_cells(selections: Sequence[Selection]) -> dict[tuple, dict[str, Selection]]:
    """``{(mode, activation, output, init, momentum, l2): {convention: selection}}`` for the
    cross-entropy cells run under more than one convention, in report order."""
    groups: dict[tuple, dict[str, Selection]] = {}
    for s in selections:
        c = s.cell
        if c.cost == "ce":
            groups.setdefault((c.mode, c.activation, c.output, c.init, c.momentum, c.l2), {})[c.ce_outside] = s
    keep = {k: v for k, v in groups.items() if len(v) > 1}
    return dict(sorted(keep.items(), key=lambda kv: (_order(kv[0][0], MODE_ORDER), _order(kv[0][1], ACTIVATION_ORDER),
                                                     _order(kv[0][2], ACTIVATION_ORDER), _order(kv[0][3], INIT_ORDER),
                                                     kv[0][4], kv[0][5])))


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sentence(key: tuple, by: dict[str, Selection], paper: float | None) -> str:
    """The generated sentence of one cell: the published value (if any) and which conventions reach it."""
    mode, act, out, init = key[:4]
    name = f"{act}/{out} + ce, {init}"
    if paper is None:
        spread = ", ".join(f"{conv} {pct(by[conv].best.val.mean)} %" for conv in CE_OUTSIDE if conv in by)
        return (f"{name} ({mode} mode): the mean validation accuracy depends on how cross-entropy treats outputs "
                f"outside (0, 1): {spread}.")
    reach = [conv for conv in CE_OUTSIDE if conv in by and within_seeds(by[conv], paper)]
    miss = [conv for conv in CE_OUTSIDE if conv in by and conv not in reach]
    s = (f"{name}: the published {pct(paper)} % depends on how cross-entropy treats outputs outside (0, 1), "
         "a choice the paper does not state; ")
    if not reach:
        s += f"no convention's seed range reaches it ({_names(miss)} tried)."
    elif not miss:
        s += f"the seed ranges of every convention tried ({_names(reach)}) reach it."
    else:
        s += (f"the seed range{'s' * (len(reach) > 1)} of {_names(reach)} reach{'es' * (len(reach) == 1)} it, "
              f"that of {_names(miss)} {'do' if len(miss) > 1 else 'does'} not.")
    return s


def conventions_section(records: Sequence[RunRecord], paper: bool = True, sensitive: dict | None = None,
                        selections: Sequence[Selection] | None = None) -> str:
    """The section as Markdown ('' when no cell was run under more than one convention).

    ``paper`` puts the published number beside each cell (a study on the paper's data and
    network). ``sensitive`` (``{cell: result}``, :func:`sgdlab.study.sensitivity.sensitive_cells`)
    adds a rounding-sensitivity mark per row.
    """
    sels = list(selections) if selections is not None else select_records(records)
    cells = convention_cells(sels)
    if not cells:
        return ""
    header = ["cell", "convention", "lr", "val % mean ± std", "range over seeds", "diverged"]
    if paper:
        header += ["paper val %", "reaches it"]
    if sensitive is not None:
        header.append("rounding-sensitive")
    rows, sentences = [], []
    for key, by in cells.items():
        mode, act, out, init = key[:4]
        published = ref.PUBLISHED.get(("ce", init, act)) if paper and out == act and mode == "paper" else None
        value = ref.exact(published) if published is not None else None
        for conv in CE_OUTSIDE:
            if conv not in by:
                continue
            b = by[conv].best
            row = [f"{mode}: {act}/{out} + ce, {init}", conv, f"{b.lr:g}", b.val.format(ci=False),
                   f"{pct(b.val.min)}–{pct(b.val.max)}", f"{b.n_diverged}/{b.n_runs}"]
            if paper:
                row += ["—" if value is None else pct(value),
                        "" if value is None else ("yes" if within_seeds(by[conv], value) else "no")]
            if sensitive is not None:
                res = sensitive.get(by[conv].cell)
                row.append("not measured" if res is None else ("yes" if res["sensitive"] else "no"))
            rows.append(row)
        sentences.append(sentence(key, by, value))
    intro = ("The paper's cross-entropy is undefined for outputs outside (0, 1), which a tanh or ReLU output layer "
             "produces, and the paper does not say what it did there. These cells were run under each convention: "
             "**clip** (outputs clipped to [eps, 1 - eps], the exact gradient of that cost: 0 where clipped; the "
             "rest of this report uses it), **nielsen** (output delta a - y whatever the activation, as Nielsen's "
             "network2.py, which the paper cites), **none** (unclipped: a non-finite value makes the run diverge). "
             "Final validation accuracy over seeds at each convention's own selected lr.")
    table = Table(header, rows).markdown()
    return intro + "\n\n" + table + "\n\n" + "\n".join(f"- {s}" for s in sentences) + "\n"


def section(ctx) -> list:
    """The report section (:mod:`sgdlab.report.sections`): heading and Markdown, or nothing."""
    from ..study.sensitivity import sensitive_cells

    text = conventions_section(ctx.records, ref.is_paper_setting(ctx.spec),
                               sensitive_cells(ctx.records, ctx.sensitivity), ctx.selections)
    return [Heading(TITLE), RawMarkdown(text)] if text else []
