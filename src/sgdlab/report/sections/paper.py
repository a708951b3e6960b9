"""Paper vs reproduced: only when the paper's grid is present (see ``ReportContext.paper``)."""

from __future__ import annotations

from .. import figures as F
from .. import tables as T
from ..document import Heading, Paragraph


def section(ctx) -> list:
    if not ctx.paper:
        return []
    cmp_file = ctx.table(T.comparison_table(T.comparisons(ctx.selections)))
    return [Heading("Paper vs reproduced"),
            Paragraph("The paper's Tables 2 (cross-entropy) and 3 (MSE) report one validation accuracy per "
                      "combination, at its best lr, with the hidden activation on the output layer as well "
                      "(paper mode). Beside each: our paper-mode result, and the same hidden activation, cost "
                      "and init with a sigmoid output, and with softmax + categorical cross-entropy "
                      "(corrected mode)."),
            cmp_file.md,
            Paragraph("The paper also reports, for sigmoid + cross-entropy, " + F.framework_note()
                      + " (see the Frameworks section for sgdlab's own comparison, when it was run).")]
