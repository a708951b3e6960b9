"""Render a finished study: tables (Markdown, CSV), figures (PNG, SVG), report.md and a
self-contained report.html. Rendering reads the store; it never trains.

>>> from sgdlab.report import render
>>> render(Path("results/paper"))          # doctest: +SKIP
PosixPath('results/paper/report.html')
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import json
from dataclasses import dataclass
from importlib import resources

from ..errors import SgdlabError
from ..study.analysis import (DIVERGED_POLICIES, check_policy, majority_rate, output_settings, select,
                              summarize_cells)
from ..study.questions import questions
from ..study.records import RunRecord
from . import paper_reference as ref
from .context import ReportContext
from .document import Document, to_html, to_markdown
from .sections import SECTIONS
from .sections.answers import lines as answer_lines, plain

__all__ = ["render", "render_records", "build", "Rendered", "DIVERGED_POLICIES", "SECTIONS"]

STORE_NAME = "results.sqlite"


@dataclass(frozen=True)
class Rendered:
    """What rendering wrote: report.html's path and the Answers lines (Markdown inline)."""

    html: Path
    answers: tuple[str, ...]

    def answers_text(self) -> str:
        """The Answers box as terminal text."""
        return "Answers:\n" + "\n".join(f"  - {plain(a)}" for a in self.answers)


def render(out_dir: Path, diverged: str = "zero") -> Path:
    """Re-render the report of the study stored in ``out_dir/results.sqlite``; returns report.html."""
    return build(out_dir, diverged).html


def build(out_dir: Path, diverged: str = "zero") -> Rendered:
    """:func:`render`, returning the Answers lines too (the CLI prints them)."""
    from ..study.api import as_folder

    out_dir = as_folder(out_dir, "out_dir")
    if not out_dir.is_dir():
        raise SgdlabError(f"no such study directory: {out_dir}")
    db = out_dir / STORE_NAME
    if not db.is_file():
        raise SgdlabError(f"{out_dir}: no {STORE_NAME} here; run 'sgdlab study SPEC --out {out_dir}' first")
    from ..outdir import write_error
    from ..study.lock import FolderLock
    from ..study.store import Store

    with Store(db) as s:
        spec = s.spec()
        records = s.records()
        sensitivity = s.sensitivity()  # rounding sensitivity, measured at study time
    try:
        with FolderLock(out_dir, "sgdlab report"):
            return render_records(out_dir, records, spec, diverged=diverged, full=True, sensitivity=sensitivity)
    except OSError as e:  # full disk, read-only folder: the results stay in the store
        raise SgdlabError(f"{write_error(out_dir, e)}; the report is not (fully) rendered, the results are "
                          f"stored: render it again with `sgdlab report {out_dir}`") from None


def _load_data(spec: dict):
    from ..data import load_dataset

    split = tuple(spec.get("split") or (0.6, 0.2, 0.2))
    return load_dataset(spec.get("dataset", "digits"), split, spec.get("split_seed", 0), spec.get("label"),
                        spec.get("scale", "auto"))


def _asset(name: str) -> str:
    return resources.files("sgdlab").joinpath("assets", name).read_text(encoding="utf-8")


def _scripts(doc: Document, payload: dict) -> None:
    """Inline uPlot, its CSS, sgdlab's own script and the data: the page fetches nothing."""
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    doc.head.append(f"<style>{_asset('vendor/uplot/uPlot.min.css')}\n{_asset('report.css')}</style>")
    doc.tail.append(f'<script type="application/json" id="sgdlab-data">{data}</script>')
    doc.tail.append(f"<script>{_asset('vendor/uplot/uPlot.iife.min.js')}</script>")
    doc.tail.append(f"<script>{_asset('report.js')}</script>")


def paper_grid_present(spec: dict, records) -> bool:
    """The paper's setting (digits, 32-16) and at least one published combination run with
    the hidden activation on the output layer."""
    if not ref.is_paper_setting(spec):
        return False
    return any(r.config.output == "same" and (r.config.cost, r.config.init, r.config.activation) in ref.PUBLISHED
               for r in records)


def render_records(out_dir: Path, records: Sequence[RunRecord], spec: dict | None, data=None,
                   diverged: str = "zero", full: bool = False, sensitivity: dict | None = None):
    """Write tables/, figures/, report.md and report.html under ``out_dir`` from ``records``.

    ``data`` is the study's split dataset (loaded from ``spec`` when None; the data figures
    and Table 1 are skipped, with a note, if it cannot be loaded). ``diverged`` is the
    counting policy of :mod:`sgdlab.study.analysis`. Returns the path of report.html, or
    with ``full`` a :class:`Rendered` (the path and the Answers lines).

    The report is the blocks of every function in :data:`~sgdlab.report.sections.SECTIONS`,
    in order.
    """
    check_policy(diverged)
    out_dir = Path(out_dir)
    records = list(records)
    spec = dict(spec or {})
    if not records:
        raise SgdlabError(f"{out_dir}: the study holds no finished run yet; nothing to report")
    from ..outdir import OutDir

    owner = OutDir(out_dir).claim()  # refuses a folder sgdlab did not make
    before = owner.begin_render()  # deletes only what an earlier rendering wrote

    data_note = None
    if data is None:
        try:
            data = _load_data(spec)
        except SgdlabError as e:
            data_note = f"The dataset could not be loaded ({e}); Table 1, the data figures and the confusion " \
                        "matrices are left out."
    chance = majority_rate(data.y_val) if data is not None and len(data.y_val) else None
    summaries = summarize_cells(records, diverged)
    selections = select(summaries, chance)
    ctx = ReportContext(out_dir, records, spec, data, data_note, diverged, summaries, selections,
                        output_settings(records), chance, paper_grid_present(spec, records),
                        questions(records, summaries, selections, chance, diverged), sensitivity=sensitivity or {})

    doc = Document(f"sgdlab study report: {spec.get('name') or out_dir.name}")
    for section in SECTIONS:
        doc.add(*section(ctx))
    for tf in ctx.tables:
        tf.write(ctx.tdir)
    _scripts(doc, ctx.payload)
    (out_dir / "report.md").write_text(to_markdown(doc, out_dir))
    html_path = out_dir / "report.html"
    html_path.write_text(to_html(doc))
    owner.finish_render(before)
    if full:
        return Rendered(html_path, tuple(answer_lines(ctx.questions)))
    return html_path
