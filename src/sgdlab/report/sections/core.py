"""The report's general sections: each is ``section(ctx) -> list of blocks`` (empty: left out)."""

from __future__ import annotations

from dataclasses import replace

from ...study.analysis import CHANCE_MARGIN, best_selection, modes, representative_run
from .. import figures as F
from .. import narrative as N
from .. import tables as T
from ..document import Bullets, Figure, Heading, Paragraph, RawMarkdown, Table


def _spec_rows(ctx) -> list[list[str]]:
    spec, records, data = ctx.spec, ctx.records, ctx.data
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
    if ctx.chance is not None:
        rows.append(["chance (majority class, validation)", f"{100 * ctx.chance:.2f} %"])
    return rows


def study(ctx) -> list:
    chance = (f"A cell is **at chance** at an lr when its mean validation accuracy is at most "
              f"{100 * CHANCE_MARGIN:.0f} points above the majority-class rate of the validation set "
              f"({100 * ctx.chance:.2f} %); a cell at chance at every lr has no meaningful lr and none is shown "
              "as selected." if ctx.chance is not None else
              "The data could not be loaded, so no cell is called at chance.")
    return [Heading("Study"), Table(["setting", "value"], _spec_rows(ctx)),
            Paragraph("**Selection rule.** A cell is every grid axis but learning rate and seed. For each cell the "
                      "selected lr is the one with the best mean final-epoch validation accuracy over seeds (ties: "
                      "fewer diverged runs, then the smaller lr); test accuracy is reported at that lr and never "
                      "used to choose. Accuracies are mean ± sample standard deviation over seeds with a 95 % "
                      "confidence interval of the mean from the t distribution (none for a single seed). A selected "
                      "lr at the end of the grid is flagged: the optimum may lie beyond. " + chance),
            Paragraph("**Diverged runs** (a non-finite loss or weight) stop where they diverge and "
                      + ("count with accuracy 0, their final network being unusable." if ctx.diverged == "zero" else
                         "count with the accuracy of their last finite epoch (0 if none).")
                      + " Failed runs (an error) are left out of the statistics and counted apart.")]


def findings(ctx) -> list:
    sels = ctx.selections
    comps = T.comparisons(sels) if ctx.paper else []
    items = [N.overview(ctx.records, ctx.summaries, sels), *N.best_per_mode(sels)]
    items += N.flags(sels)
    items += N.paper_numbers(comps)
    items += N.output_layer(comps, sels)
    items += N.softmax_vs_sigmoid(sels)
    items += N.divergence(ctx.summaries, sels)
    return [Heading("What the data shows"), Bullets(items),
            Paragraph(f"These sentences are computed from the results: a cell *fails* below "
                      f"{T.pct(N.FAIL, 0)} % and *works* from {T.pct(N.WORKS, 0)} % mean validation accuracy; "
                      "'clearly' means a paired t-test over common seeds (validation accuracy) with p < 0.05 after "
                      "Holm's correction over the pairs a sentence counts.")]


def selected(ctx) -> list:
    sel_files = T.selected_tables(ctx.selections, ctx.settings, ctx.diverged, paper=ctx.paper)
    title = "Selected results (the paper's Tables 2-3 layout)" if ctx.paper else "Selected results"
    out = [Heading(title)]
    for tf in sel_files:
        ctx.table(tf)
        out.append(replace(tf.md, note=""))
    if sel_files:
        out.append(Paragraph(sel_files[0].md.note))  # the same note for every one of these tables
    return out


def diverged(ctx) -> list:
    div_file = ctx.table(T.diverged_table(ctx.selections, ctx.diverged))
    if not div_file.md.rows:
        return [Heading("Diverged runs per cell"),
                Paragraph(f"No run diverged (of {len(ctx.records)}); tables/diverged.csv lists every cell.")]
    return [Heading("Diverged runs per cell"), div_file.md]


def curves(ctx) -> list:
    out = [Heading("Validation accuracy per epoch" + (" (the paper's Figs. 6-11)" if ctx.paper else ""))]
    for mode in modes(ctx.records):
        out.append(F.curves_per_mode(ctx.records, mode, [s for s in ctx.selections if s.cell.mode == mode],
                                     ctx.settings, ctx.fdir, ctx.paper))
    return out


def lr_sensitivity(ctx) -> list:
    out = [Heading("Learning-rate sensitivity")]
    for mode in modes(ctx.records):
        out.append(F.lr_heatmap(mode, ctx.summaries, ctx.selections, ctx.fdir))
    return out


def confusion(ctx) -> list:
    if ctx.data is None:
        return []
    out = [Heading("Confusion matrices of the best models")]
    for mode in modes(ctx.records):
        best = best_selection([s for s in ctx.selections if not s.all_at_chance], mode)
        rep = representative_run(ctx.records, best, ctx.diverged) if best else None
        fig = F.confusion(mode, best, rep, ctx.data, ctx.fdir, best.best.n, ctx.diverged) if rep else None
        if fig is not None:
            out.append(fig)
        elif best is None:
            out.append(Paragraph(f"{mode} mode: no confusion matrix — no cell of this mode learns (every run "
                                 "failed or is at chance)."))
        else:
            out.append(Paragraph(f"{mode} mode: no confusion matrix — the store holds no test-set predictions "
                                 "for its best model's median seed (an older store, or that run diverged)."))
    return out


def data(ctx) -> list:
    paper_data = ctx.spec.get("dataset") == "digits"
    out = [Heading("Data and activations" + (" (the paper's Table 1, Figs. 3-5)" if paper_data else ""))]
    if ctx.data is not None:
        t1 = T.table1(ctx.data)
        ctx.tables.insert(0, t1)
        out.append(t1.md)
        fig3 = F.sample_digits(ctx.data, ctx.fdir)
        if fig3 is not None:
            out.append(fig3)
        out.append(F.class_frequency(ctx.data, ctx.fdir))
    else:
        out.append(Paragraph(ctx.data_note))
    out.append(F.activation_functions(ctx.fdir))
    return out


def frameworks(ctx) -> list:
    cdir = ctx.out_dir / "compare"
    cmp_md = sorted(cdir.glob("*.md")) if cdir.is_dir() else []
    cmp_png = sorted(cdir.glob("*.png")) if cdir.is_dir() else []
    if not (cmp_md or cmp_png):
        return []
    out = [Heading("Frameworks")]
    for p in cmp_md:
        out.append(RawMarkdown(p.read_text(errors="replace"), p.relative_to(ctx.out_dir).as_posix()))
    for p in cmp_png:
        out.append(Figure(p, f"{p.stem.replace('_', ' ')} (from {p.relative_to(ctx.out_dir).as_posix()})"))
    return out


def grid(ctx) -> list:
    grid_file = ctx.table(T.grid_table(ctx.summaries, ctx.selections, ctx.diverged))
    ctx.table(T.runs_table(ctx.records))
    return [Heading("Full grid"),
            Paragraph("Every cell at every learning rate (also in tables/grid.csv, with accuracies as fractions). "
                      "Every run, with the key `sgdlab rerun` takes to retrain it, is in tables/runs.csv."),
            replace(grid_file.md, sortable=True)]


def files(ctx) -> list:
    return [Heading("Files"),
            Paragraph("Tables: " + ", ".join(f"`tables/{tf.name}.md`/`.csv`" for tf in ctx.tables)
                      + ". Figures: `figures/*.png` and `*.svg`. Re-render with "
                      f"`sgdlab report {ctx.out_dir}`.")]


__all__ = ["study", "findings", "selected", "diverged", "curves", "lr_sensitivity", "confusion", "data",
           "frameworks", "grid", "files"]
