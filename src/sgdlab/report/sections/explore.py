"""The explorer of report.html: every stored history, pickers that redraw small multiples.

The histories go into ``ctx.payload`` (embedded in the page as JSON); the drawing is
``sgdlab/assets/report.js`` on uPlot (vendored, MIT). report.md gets a pointer instead.
"""

from __future__ import annotations

import math

from ..document import Heading, Html

METRICS = ("val_acc", "train_acc", "train_loss")


def _round(values, digits: int = 4) -> list:
    # Accuracies are multiples of 1/n: 4 decimals keep them apart while the page stays small.
    return [round(float(v), digits) if v is not None and math.isfinite(v) else None for v in values]


def payload(ctx) -> dict:
    runs = []
    for r in ctx.records:
        if r.status == "failed":
            continue
        c = r.config
        row = {"mode": r.mode, "cost": c.cost, "ce_outside": c.ce_outside, "activation": c.activation,
               "output": c.output, "init": c.init, "momentum": c.momentum, "l2": c.l2, "lr": c.lr, "seed": c.seed,
               "status": r.status}
        for m in METRICS:
            row[m] = _round(getattr(r.history, m, []) or [])
        runs.append(row)

    # Each cell with its selected lr (None where no lr learns) and the lr its tie-break picked;
    # the script builds its own keys from these fields (number formatting differs between languages).
    cells = []
    for s in ctx.selections:
        c = s.cell
        cells.append({"mode": c.mode, "cost": c.cost, "ce_outside": c.ce_outside, "activation": c.activation,
                      "output": ctx.settings.get(c, c.output), "init": c.init, "momentum": c.momentum, "l2": c.l2,
                      "selected": None if s.all_at_chance else s.lr, "best": s.lr})
    return {"runs": runs, "cells": cells}


def section(ctx) -> list:
    ctx.payload.update(payload(ctx))
    return [Heading("Explore the curves"),
            Html('<p>Every stored run, drawn in your browser from the data embedded in this file: pick a mode, '
                 'filter the axes, switch between each cell\'s selected lr and any lr, the mean over seeds or one '
                 'seed, and the metric. One panel per cost/output and hidden activation, one line per init '
                 '(dashed: a cell where no lr learns). Drawn with uPlot 1.6.32 (MIT), bundled in this file.</p>'
                 '<div id="explorer"></div><noscript><p class="note">The explorer needs JavaScript; the figures '
                 'below show the same curves.</p></noscript>',
                 "*report.html holds an interactive explorer of every stored history (pickers for mode, cost, "
                 "activation, init, lr, seed and metric); the static figures below show the selected curves.*")]
