"""What every report section reads: the records and what is computed from them once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..study.analysis import CellSummary, Selection
from ..study.questions import Question
from ..study.records import Cell, RunRecord
from .tables import TableFile


@dataclass
class ReportContext:
    """Inputs of the sections (see :mod:`sgdlab.report.sections`).

    ``chance`` is the validation set's majority-class rate (None when the data could not be
    loaded); ``paper`` is True when the paper's grid is present (its setting and at least
    one published combination run with the hidden activation on the output). Sections add
    the tables they write to ``tables`` and JSON-able data for report.html's scripts to
    ``payload``.
    """

    out_dir: Path
    records: list[RunRecord]
    spec: dict
    data: object | None
    data_note: str | None
    diverged: str
    summaries: list[CellSummary]
    selections: list[Selection]
    settings: dict[Cell, str]
    chance: float | None
    paper: bool
    questions: list[Question]
    tables: list[TableFile] = field(default_factory=list)
    payload: dict = field(default_factory=dict)
    sensitivity: dict = field(default_factory=dict)  # the store's rounding-sensitivity rows (run key -> result)

    @property
    def fdir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def tdir(self) -> Path:
        return self.out_dir / "tables"

    def table(self, tf: TableFile) -> TableFile:
        """Register ``tf`` to be written under tables/ (and listed in the Files section)."""
        self.tables.append(tf)
        return tf
