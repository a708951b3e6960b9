"""Render a finished study: tables (Markdown, CSV), figures (PNG, SVG), report.md and a
self-contained report.html. Rendering reads the store; it never trains.

>>> from sgdlab.report import render
>>> render(Path("results/paper"))          # doctest: +SKIP
PosixPath('results/paper/report.html')
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import SgdlabError
from ..study.analysis import (DIVERGED_POLICIES, best_selection, check_policy, modes, output_settings,
                              representative_run, select, summarize_cells, table_groups)
from ..study.records import RunRecord
from . import figures as F
from . import narrative as N
from . import paper_reference as ref
from . import tables as T
from .document import Bullets, Document, Figure, Heading, Paragraph, RawMarkdown, Table, to_html, to_markdown

__all__ = ["render", "render_records", "DIVERGED_POLICIES"]

STORE_NAME = "results.sqlite"


def render(out_dir: Path, diverged: str = "zero") -> Path:
    """Re-render the report of the study stored in ``out_dir/results.sqlite``; returns report.html."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise SgdlabError(f"no such study directory: {out_dir}")
    db = out_dir / STORE_NAME
    if not db.is_file():
        raise SgdlabError(f"{out_dir}: no {STORE_NAME} here; run 'sgdlab study SPEC --out {out_dir}' first")
    from ..study.store import Store

    with Store(db) as s:
        spec = s.spec()
        records = s.records()
        sensitivity = s.sensitivity()
    return render_records(out_dir, records, spec, diverged=diverged, sensitivity=sensitivity)


def _load_data(spec: dict):
    from ..data import load_dataset

    split = tuple(spec.get("split") or (0.6, 0.2, 0.2))
    return load_dataset(spec.get("dataset", "digits"), split, spec.get("split_seed", 0), spec.get("label"),
                        spec.get("scale", "auto"))


def _clean(directory: Path, suffixes: tuple[str, ...]) -> None:
    """Remove what an earlier rendering wrote, so a re-render leaves no stale file."""
    if directory.is_dir():
        for p in directory.iterdir():
            if p.is_file() and p.suffix in suffixes:
                p.unlink()


def _spec_rows(spec: dict, records: Sequence[RunRecord], data) -> list[list[str]]:
    rows = []
    for key, label in (("name", "study"), ("dataset", "dataset"), ("label", "label column"),
                       ("split", "split (train, validation, test)"), ("split_seed", "split seed"),
                       ("hidden", "hidden layers"), ("epochs", "epochs"), ("batch_size", "batch size"),
                       ("dtype", "dtype")):
        if spec.get(key) is not None:
            v = spec[key]
            if key == "split" and data is not None:
                v = f"{list(v)} → {len(data.y_train)} / {len(data.y_val)} / {len(data.y_test)} samples"
            elif key == "hidden" and data is not None:
                v = "-".join(map(str, [data.n_features, *v, data.n_classes])) + " (layer sizes)"
            rows.append([label, str(v)])
    rows.append(["modes", ", ".join(modes(records))])
    rows.append(["learning rates", ", ".join(f"{lr:g}" for lr in sorted({r.config.lr for r in records}, reverse=True))])
    rows.append(["seeds", ", ".join(map(str, sorted({r.config.seed for r in records})))])
    return rows


def render_records(out_dir: Path, records: Sequence[RunRecord], spec: dict | None, data=None,
                   diverged: str = "zero", sensitivity: dict | None = None) -> Path:
    """Write tables/, figures/, report.md and report.html under ``out_dir`` from ``records``.

    ``data`` is the study's split dataset (loaded from ``spec`` when None; the data figures
    and Table 1 are skipped, with a note, if it cannot be loaded). ``diverged`` is the
    counting policy of :mod:`sgdlab.study.analysis`. Returns the path of report.html.
    """
    check_policy(diverged)
    out_dir = Path(out_dir)
    records = list(records)
    spec = dict(spec or {})
    if not records:
        raise SgdlabError(f"{out_dir}: the study holds no finished run yet; nothing to report")
    tdir, fdir = out_dir / "tables", out_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    _clean(tdir, (".md", ".csv"))
    _clean(fdir, (".png", ".svg"))

    data_note = None
    if data is None:
        try:
            data = _load_data(spec)
        except SgdlabError as e:
            data_note = f"The dataset could not be loaded ({e}); Table 1, the data figures and the confusion " \
                        "matrices are left out."
    summaries = summarize_cells(records, diverged)
    every = select(summaries)  # with the cells of other ce conventions (grid, diverged, their own section)
    selections = [s for s in every if s.cell.ce_outside == "clip"]
    settings = output_settings(records)
    paper = ref.is_paper_setting(spec)
    comps = T.comparisons(selections) if paper else []

    doc = Document(f"sgdlab study report: {spec.get('name') or out_dir.name}")

    # ---- study and selection rule
    doc.add(Heading("Study"), Table(["setting", "value"], _spec_rows(spec, records, data)),
            Paragraph("**Selection rule.** A cell is every grid axis but learning rate and seed. For each cell the "
                      "selected lr is the one with the best mean final-epoch validation accuracy over seeds (ties: "
                      "fewer diverged runs, then the smaller lr); test accuracy is reported at that lr and never "
                      "used to choose. Accuracies are mean ± sample standard deviation over seeds with a 95 % "
                      "confidence interval of the mean from the t distribution (none for a single seed)."),
            Paragraph("**Diverged runs** (a non-finite loss or weight) stop where they diverge and "
                      + ("count with accuracy 0, their final network being unusable." if diverged == "zero" else
                         "count with the accuracy of their last finite epoch (0 if none).")
                      + " Failed runs (an error) are left out of the statistics and counted apart."))

    # ---- findings
    findings = [N.overview(records, summaries, every), *N.best_per_mode(selections)]
    findings += N.paper_numbers(comps)
    findings += N.output_layer(comps, selections)
    findings += N.softmax_vs_sigmoid(selections)
    findings += N.init_effect(selections)
    findings += N.divergence(summaries, selections)
    doc.add(Heading("What the data shows"), Bullets(findings),
            Paragraph(f"These sentences are computed from the results: a cell *fails* below "
                      f"{T.pct(N.FAIL, 0)} % and *works* from {T.pct(N.WORKS, 0)} % mean validation accuracy; "
                      "'clearly' means non-overlapping 95 % intervals."))

    tfiles: list[T.TableFile] = []
    # ---- paper vs reproduced
    if paper:
        cmp_file = T.comparison_table(comps)
        tfiles.append(cmp_file)
        doc.add(Heading("Paper vs reproduced"),
                Paragraph("The paper's Tables 2 (cross-entropy) and 3 (MSE) report one validation accuracy per "
                          "combination, at its best lr, with the hidden activation on the output layer as well "
                          "(paper mode). Beside each: our paper-mode result, and the same hidden activation, cost "
                          "and init with a sigmoid output, and with softmax + categorical cross-entropy "
                          "(corrected mode)."),
                cmp_file.md,
                Paragraph("The paper also reports, for sigmoid + cross-entropy, " + F.framework_note()
                          + " (see the Frameworks section for sgdlab's own comparison, when it was run)."))

    # ---- the ce convention and rounding sensitivity (issue 10; sections of their own)
    from .conventions import TITLE as CONV_TITLE, conventions_section
    from .sensitivity import TITLE as SENS_TITLE, sensitivity_section
    from ..study.sensitivity import sensitive_cells

    for title, text in ((CONV_TITLE, conventions_section(records, paper, sensitive_cells(records, sensitivity or {}),
                                                         every)),
                        (SENS_TITLE, sensitivity_section(records, sensitivity, every))):
        if text:
            doc.add(Heading(title), RawMarkdown(text))

    # ---- selected results, paper layout
    sel_files = T.selected_tables(selections, settings, diverged)
    tfiles += sel_files
    doc.add(Heading("Selected results (the paper's Tables 2-3 layout)"))
    for tf in sel_files:
        doc.add(Table(tf.md.header, tf.md.rows, caption=tf.md.caption))
    if sel_files:
        doc.add(Paragraph(sel_files[0].md.note))  # the same note for every one of these tables

    # ---- diverged
    div_file = T.diverged_table(every, diverged)
    tfiles.append(div_file)
    doc.add(Heading("Diverged runs per cell"), div_file.md)

    # ---- figures of results
    groups = table_groups(selections, settings)
    doc.add(Heading("Validation accuracy per epoch (the paper's Figs. 6-11)"))
    for key, sels in groups.items():
        acts = []
        for s in sels:
            if s.cell.activation not in acts:
                acts.append(s.cell.activation)
        for act in acts:
            doc.add(F.accuracy_curves(records, key, act, [s for s in sels if s.cell.activation == act], fdir, paper))
    doc.add(Heading("Learning-rate sensitivity"))
    for mode in modes(records):
        doc.add(F.lr_heatmap(mode, summaries, selections, fdir))
    if data is not None:
        doc.add(Heading("Confusion matrices of the best models"))
        for mode in modes(records):
            best = best_selection(selections, mode)
            rep = representative_run(records, best, diverged) if best else None
            fig = F.confusion(mode, best, rep, data, fdir, best.best.n, diverged) if rep else None
            if fig is not None:
                doc.add(fig)
            elif best is None:
                doc.add(Paragraph(f"{mode} mode: no confusion matrix — every run of this mode failed."))
            else:
                doc.add(Paragraph(f"{mode} mode: no confusion matrix — the store holds no test-set predictions "
                                  "for its best model's median seed (an older store, or that run diverged)."))

    # ---- data
    doc.add(Heading("Data and activations (the paper's Table 1, Figs. 3-5)"))
    if data is not None:
        t1 = T.table1(data)
        tfiles.insert(0, t1)
        doc.add(t1.md)
        fig3 = F.sample_digits(data, fdir)
        if fig3 is not None:
            doc.add(fig3)
        doc.add(F.class_frequency(data, fdir))
    else:
        doc.add(Paragraph(data_note))
    doc.add(F.activation_functions(fdir))

    # ---- frameworks (sgdlab compare)
    cdir = out_dir / "compare"
    cmp_md = sorted(cdir.glob("*.md")) if cdir.is_dir() else []
    cmp_png = sorted(cdir.glob("*.png")) if cdir.is_dir() else []
    if cmp_md or cmp_png:
        doc.add(Heading("Frameworks"))
        for p in cmp_md:
            doc.add(RawMarkdown(p.read_text(errors="replace"), p.relative_to(out_dir).as_posix()))
        for p in cmp_png:
            doc.add(Figure(p, f"{p.stem.replace('_', ' ')} (from {p.relative_to(out_dir).as_posix()})"))

    # ---- full grid
    grid_file = T.grid_table(summaries, every, diverged)
    tfiles.append(grid_file)
    doc.add(Heading("Full grid"), Paragraph("Every cell at every learning rate (also in tables/grid.csv, with "
                                            "accuracies as fractions)."), grid_file.md)

    for tf in tfiles:
        tf.write(tdir)
    doc.add(Heading("Files"), Paragraph("Tables: " + ", ".join(f"`tables/{tf.name}.md`/`.csv`" for tf in tfiles)
                                        + ". Figures: `figures/*.png` and `*.svg`. Re-render with "
                                        f"`sgdlab report {out_dir}`."))
    (out_dir / "report.md").write_text(to_markdown(doc, out_dir))
    html_path = out_dir / "report.html"
    html_path.write_text(to_html(doc))
    return html_path
