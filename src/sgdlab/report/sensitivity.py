"""The report section that marks rounding-sensitive cells (measured at study time by
:mod:`sgdlab.study.sensitivity`; rendering only reads the store's results)."""

from __future__ import annotations

from typing import Sequence

from ..study.analysis import Selection, cell_sort_key, representative_run, select_records
from ..study.records import RunRecord
from ..study.sensitivity import CRITERION
from .document import Heading, RawMarkdown, Table
from .tables import pct

TITLE = "Rounding-sensitive cells"


def sensitivity_section(records: Sequence[RunRecord], rows: dict[str, dict] | None,
                        selections: Sequence[Selection] | None = None) -> str:
    """Markdown: the criterion, one row per selected cell, and which cells may differ across machines.

    ``rows`` is the store's sensitivity table (``Store.sensitivity()``); a cell whose current
    median run is not in it is shown as not measured.
    """
    sels = sorted(selections if selections is not None else select_records(records),
                  key=lambda s: cell_sort_key(s.cell) + (s.cell.ce_outside,))
    rows = rows or {}
    table, sensitive, measured = [], [], 0
    for sel in sels:
        rep = representative_run(records, sel)
        if rep is None:
            continue
        res = rows.get(rep.key)
        if res is None:
            table.append([sel.cell.label(), f"{sel.lr:g}", f"`{rep.key}`", rep.engine or "", pct(sel.best.val.mean),
                          "", "", "", "not measured"])
            continue
        measured += 1
        if res["sensitive"]:
            sensitive.append(sel.cell.label())
        changed = res.get("test_predictions_changed")
        table.append([sel.cell.label(), f"{sel.lr:g}", f"`{rep.key}`", res.get("stored_engine") or "",
                      pct(sel.best.val.mean), f"{pct(res['stored_val_acc'])} ({res['stored_status']})",
                      f"{pct(res['val_acc'])} ({res['status']})", "" if changed is None else str(changed),
                      "**yes**" if res["sensitive"] else "no"])
    if not table:
        return ""
    intro = (f"A cell is marked rounding-sensitive when, {CRITERION}. A change of one rounding step is what "
             "another CPU's BLAS kernels (AVX2 against AVX-512, say) or the other engine (single against batched) "
             "makes; a chaotic run amplifies it into another outcome.")
    if not measured:
        return intro + "\n\nNot measured for this store (written before the measurement existed); resume the " \
                       "study (`sgdlab study SPEC --out DIR --resume`, or `sgdlab reproduce --out DIR`) to measure " \
                       "it: one extra run per cell.\n"
    if sensitive:
        verdict = (f"**{len(sensitive)} of {measured} measured cells {'is' if len(sensitive) == 1 else 'are'} "
                   "rounding-sensitive**: "
                   + "; ".join(sensitive) + ". Their numbers may differ across machines, BLAS libraries and engines "
                   "(the seeds' spread is the honest summary there, not the last digit); the other cells' outcomes "
                   "did not move under the perturbation and are expected to reproduce exactly.")
    else:
        verdict = (f"None of the {measured} measured cells is rounding-sensitive: their outcomes did not move under "
                   "the perturbation and are expected to reproduce exactly on other machines.")
    verdict += (" On the same machine every run reproduces bit for bit: `sgdlab rerun DIR RUN` retrains one stored "
                "run (RUN: its key, as in the table, or a unique prefix) with the engine that produced it.")
    header = ["cell", "lr", "run retrained", "engine", "cell val % (mean)", "stored run val %",
              "perturbed val %", "test predictions changed", "rounding-sensitive"]
    return intro + "\n\n" + verdict + "\n\n" + Table(header, table).markdown() + "\n"


def section(ctx) -> list:
    """The report section (:mod:`sgdlab.report.sections`): heading and Markdown, or nothing."""
    text = sensitivity_section(ctx.records, ctx.sensitivity, ctx.selections)
    return [Heading(TITLE), RawMarkdown(text)] if text else []
