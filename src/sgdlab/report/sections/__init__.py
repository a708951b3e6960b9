"""The report's sections, in order. A section is a function ``section(ctx) -> list`` of
document blocks (:mod:`sgdlab.report.document`; an empty list leaves it out) reading a
:class:`~sgdlab.report.context.ReportContext`; it registers the tables it writes with
``ctx.table(...)`` and may add JSON data for report.html's scripts to ``ctx.payload``.

To add a section, write its module here and insert its function in :data:`SECTIONS`.
"""

from __future__ import annotations

from .. import conventions, mechanism, sensitivity
from . import answers, core, explore, paper

SECTIONS = [
    answers.section,  # the Answers box: first in report.md/html, printed in the terminal
    core.study,
    core.findings,
    paper.section,  # only when the paper's grid is present
    conventions.section,  # only when ce cells ran under more than one convention
    sensitivity.section,  # rounding-sensitive cells (measured at study time)
    core.selected,
    explore.section,
    core.curves,
    core.lr_sensitivity,
    core.confusion,
    core.diverged,
    mechanism.section,  # the per-layer diagnostics (sgdlab.report.mechanism)
    core.data,
    core.frameworks,
    core.grid,
    core.files,  # last: lists every table the sections above registered
]
