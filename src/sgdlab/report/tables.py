"""The report's tables: each is built as a Markdown table (for people) and a CSV table
(for programs: fractions, not percent strings), and written as ``tables/<name>.{md,csv}``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import Dataset
from ..study.analysis import (ACTIVATION_ORDER, GRID_COLUMNS, INIT_ORDER, CellSummary, Selection, Stat,
                              _order, grid_rows, table_groups)
from ..study.records import Cell
from . import paper_reference as ref
from .document import Table


@dataclass
class TableFile:
    """One table as written under ``tables/``: ``name.md`` from ``md``, ``name.csv`` from ``csv``."""

    name: str
    title: str
    md: Table
    csv: Table

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{self.name}.md").write_text(f"# {self.title}\n\n{self.md.markdown()}\n")
        (directory / f"{self.name}.csv").write_text(self.csv.csv())


def pct(x: float | None, digits: int = 2) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{100 * x:.{digits}f}"


def num(x) -> str:
    """A CSV number: repr-exact floats, empty for missing values."""
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x)).lower()
    if isinstance(x, float) and not np.isfinite(x):
        return ""
    return repr(float(x)) if isinstance(x, float) else str(x)


def policy_note(diverged: str) -> str:
    return ("diverged runs count as 0" if diverged == "zero"
            else "diverged runs count with their last finite epoch (0 if none)")


def lr_text(lr: float) -> str:
    return f"{lr:g}"


def mode_title(mode: str) -> str:
    return {"paper": "paper mode (output = hidden activation)",
            "corrected": "corrected mode (sigmoid or softmax output)"}.get(mode, f"mode {mode}")


def group_title(key: tuple, paper: bool = True) -> str:
    mode, cost, output, momentum, l2, ce_outside = key
    table = ref.TABLE_OF_COST.get(cost) if paper and (output == "same" or cost in ("ce", "mse")) else None
    out = "output = hidden activation" if output == "same" else f"{output} output"
    extra = (f", momentum {momentum:g}" if momentum else "") + (f", l2 {l2:g}" if l2 else "")
    extra += f", ce_outside {ce_outside}" if ce_outside != "clip" else ""
    layout = f"{table} layout, " if table and ce_outside == "clip" else ""
    return f"{layout}{mode} mode, cost {cost}, {out}{extra}"


def group_name(key: tuple, keys: Sequence[tuple]) -> str:
    mode, cost, output, momentum, l2, ce_outside = key
    base = {"ce": "table2_ce", "mse": "table3_mse"}.get(cost, f"table_{cost}")
    name = f"{base}_{mode}"
    same_cost = [k for k in keys if k[0] == mode and k[1] == cost]
    if len({k[2] for k in same_cost}) > 1:
        name += f"_out-{output}"
    if momentum:
        name += f"_m{momentum:g}"
    if l2:
        name += f"_l2-{l2:g}"
    if ce_outside != "clip":
        name += f"_ce-{ce_outside}"
    return name


# --------------------------------------------------------------------------- Table 1


def table1(data: Dataset) -> TableFile:
    """Images per class in each part, with the parts named correctly (the paper's Table 1
    calls the 60 % part "Test"; it is the training set)."""
    counts = data.split_counts()
    parts = ("train", "validation", "test")
    crows = []
    for k, cls in enumerate(data.classes):
        vals = [int(counts[p][k]) for p in parts]
        crows.append([str(cls), *map(str, vals), str(sum(vals))])
    sums = [int(counts[p].sum()) for p in parts]
    total = sum(sums)
    rows = crows + [["**all**", *map(str, sums), str(total)],
                    ["fraction", *(f"{s / total:.3f}" for s in sums), "1.000"]]
    crows.append(["all", *map(str, sums), str(total)])
    note = ("The paper's Table 1 labels its columns Test / Train / Validation = 1078 / 360 / 359; "
            "the 60 % part is the training set, and since every accuracy the paper reports is a "
            "multiple of 1/360, its validation set had 360 images and its test set 359.") \
        if data.name == "digits" else ""
    header = ["class", "train", "validation", "test", "total"]
    return TableFile("table1_split", f"Table 1: {data.name}, images per class and split",
                     Table(header, rows, note=note), Table(header, crows))


# --------------------------------------------------------------------------- Tables 2-3 layout


def stat_cell(s: CellSummary, ci: bool = True) -> str:
    return s.val.format(ci=ci)


def edge_text(sel: Selection) -> str:
    """The flag of a selected lr at the end of the grid ("" inside it)."""
    beyond = {"largest": "beyond", "smallest": "below"}.get(sel.edge)
    return f" ⚠ best at the {sel.edge} lr tried: the optimum may lie {beyond}" if beyond else ""


def selection_text(sel: Selection) -> str:
    b = sel.best
    if sel.all_at_chance:
        return f"at chance at every lr (best val {pct(b.val.mean)} %): no lr learns"
    div = f"; {b.n_diverged}/{b.n_runs} diverged" if b.n_diverged else ""
    return f"val {b.val.format()}; test {b.test.format(ci=False)}; lr {lr_text(b.lr)}{div}{edge_text(sel)}"


_STAT_CSV = ("mean", "std", "ci_low", "ci_high", "min", "max")  # the CSV columns of a Stat, as _stat_csv writes them


def _stat_csv(st: Stat) -> list[str]:
    ci = st.ci
    return [num(st.mean), num(st.std), num(ci[0] if ci else None), num(ci[1] if ci else None),
            num(st.min), num(st.max)]


def selected_tables(selections: Sequence[Selection], settings: dict[Cell, str],
                    diverged: str = "zero", paper: bool = True) -> list[TableFile]:
    """The paper's Tables 2 (ce) and 3 (mse) layout, one per mode (and per other cost or
    output setting): init rows, hidden-activation columns, validation accuracy (%) at the
    selected lr as mean ± std [95 % CI], test accuracy alongside, the selected lr."""
    groups = table_groups(selections, settings)
    keys = list(groups)
    out = []
    csv_header = ["mode", "cost", "output", "init", "activation", "momentum", "l2", "lr", "all_at_chance", "lr_edge",
                  "n", "n_diverged", *(f"{split}_{c}" for split in ("val", "test") for c in _STAT_CSV)]
    for key, sels in groups.items():
        acts = sorted({s.cell.activation for s in sels}, key=lambda a: _order(a, ACTIVATION_ORDER))
        inits = sorted({s.cell.init for s in sels}, key=lambda i: _order(i, INIT_ORDER))
        by = {(s.cell.init, s.cell.activation): s for s in sels}
        rows, crows = [], []
        for init in inits:
            row = [f"**{init}**"]
            for act in acts:
                s = by.get((init, act))
                row.append(selection_text(s) if s else "—")
                if s:
                    b = s.best
                    crows.append([key[0], key[1], s.cell.output, init, act, num(key[3]), num(key[4]),
                                  num(b.lr), num(s.all_at_chance), s.edge or "", str(b.n), str(b.n_diverged),
                                  *_stat_csv(b.val), *_stat_csv(b.test)])
            rows.append(row)
        title = group_title(key, paper)
        note = ("Accuracy in %: mean ± sample std over seeds [95 % t confidence interval of the mean] "
                "of the final-epoch validation accuracy at the lr with the best mean validation accuracy; "
                f"test accuracy at that lr; {policy_note(diverged)}.")
        out.append(TableFile(group_name(key, keys), title,
                             Table(["init", *acts], rows, caption=title, note=note),
                             Table(csv_header, crows)))
    return out


# --------------------------------------------------------------------------- full grid


def grid_table(summaries: Sequence[CellSummary], selections: Sequence[Selection],
               diverged: str = "zero") -> TableFile:
    rows = grid_rows(summaries, selections)
    by_cell = {sel.cell: sel for sel in selections}
    md_header = ["mode", "cost", "hidden", "output", "init", "lr", "sel", "runs", "diverged", "failed",
                 "val % mean ± std [95 % CI]", "test % mean ± std [95 % CI]"]
    extra = any(r["momentum"] or r["l2"] for r in rows)
    if extra:
        md_header[5:5] = ["momentum", "l2"]
    md_rows = []
    for r, s in zip(rows, summaries):
        cost = r["cost"] if r["ce_outside"] == "clip" else f"{r['cost']} ({r['ce_outside']})"
        row = [r["mode"], cost, r["activation"], r["output"], r["init"], lr_text(r["lr"]),
               sel_mark(r, by_cell.get(s.cell)), str(r["n_runs"]), str(r["n_diverged"]), str(r["n_failed"]),
               s.val.format(), s.test.format()]
        if extra:
            row[5:5] = [f"{r['momentum']:g}", f"{r['l2']:g}"]
        md_rows.append(row)
    csv_rows = [[num(r[c]) if not isinstance(r[c], str) else r[c] for c in GRID_COLUMNS] for r in rows]
    return TableFile("grid", "Full grid: every cell at every learning rate",
                     Table(md_header, md_rows, note=f"Final-epoch accuracy over seeds; {policy_note(diverged)}; "
                           "✔ marks the lr selected on validation (⚠: at the edge of the grid); 'chance' marks a "
                           "cell where no lr learns."),
                     Table(list(GRID_COLUMNS), csv_rows))


def runs_table(records) -> TableFile:
    """One row per stored run with its key, the name ``sgdlab rerun DIR KEY`` takes (a unique
    prefix is enough)."""
    header = ["key", "mode", "cost", "ce_outside", "activation", "output", "init", "lr", "seed", "status",
              "val_acc", "test_acc", "engine"]
    rows = []
    for r in sorted(records, key=lambda r: r.key):
        c = r.config
        rows.append([r.key, r.mode, c.cost, c.ce_outside, c.activation, c.output_activation, c.init, lr_text(c.lr),
                     str(c.seed), r.status, num(r.final.get("val_acc")), num(r.final.get("test_acc")),
                     r.engine or ""])
    return TableFile("runs", "Every stored run, with the key `sgdlab rerun DIR KEY` takes",
                     Table(header, rows, note="Final-epoch accuracies as fractions; a unique prefix of a key "
                           "is enough for `sgdlab rerun`."),
                     Table(header, rows))


def sel_mark(row: dict, sel: Selection | None) -> str:
    if sel is not None and sel.all_at_chance:
        return "chance"
    if not row["selected"]:
        return ""
    return "✔ ⚠" if sel is not None and sel.edge else "✔"


def diverged_table(selections: Sequence[Selection], diverged: str = "zero") -> TableFile:
    """Diverged runs per cell, in total and per learning rate (first divergence epochs)."""
    header = ["cell", "runs", "diverged", "per lr (diverged/runs)", "epochs of divergence"]
    rows, crows = [], []
    for sel in selections:
        per_lr = ", ".join(f"{lr_text(c.lr)}: {c.n_diverged}/{c.n_runs}" for c in sel.candidates if c.n_diverged)
        epochs = sorted(e for c in sel.candidates for e in c.diverged_epochs)
        ep = f"{min(epochs)}–{max(epochs)}" if epochs else ""
        if sel.n_diverged:  # the Markdown table lists only cells with a diverged run; the CSV every cell
            rows.append([sel.cell.label(), str(sel.n_runs), str(sel.n_diverged), per_lr, ep])
        for c in sel.candidates:
            crows.append([sel.cell.mode, sel.cell.cost, sel.cell.activation, sel.cell.output, sel.cell.init,
                          num(sel.cell.momentum), num(sel.cell.l2), num(c.lr), str(c.n_runs), str(c.n_diverged),
                          " ".join(map(str, c.diverged_epochs))])
    return TableFile("diverged", "Diverged runs per cell",
                     Table(header, rows, note="A run diverges when its loss or a weight becomes non-finite; "
                           f"it stops there; {policy_note(diverged)}."),
                     Table(["mode", "cost", "activation", "output", "init", "momentum", "l2", "lr", "runs",
                            "diverged", "diverged_epochs"], crows))


# --------------------------------------------------------------------------- paper vs reproduced


def _find(selections, prefer_mode: str, **fields) -> Selection | None:
    # the paper-vs-reproduced numbers use the default ce convention (clip), no momentum, no l2;
    # the other conventions have their own section (report/conventions.py)
    want = Cell("", **fields)
    cands = [s for s in selections if replace(s.cell, mode="") == want]
    return min(cands, key=lambda s: (s.cell.mode != prefer_mode, s.cell.mode), default=None)


def within_seeds(sel: Selection, value: float) -> bool:
    """Whether ``value`` lies within the range (min..max) of the seeds at ``sel``'s selected lr."""
    v = sel.best.val
    return v.n > 0 and v.min - 1e-9 <= value <= v.max + 1e-9


@dataclass(frozen=True)
class Comparison:
    """One published number beside the reproduced ones."""

    cost: str
    init: str
    activation: str
    paper: float  # the exact multiple of 1/360
    paper_mode: Selection | None  # output = hidden activation
    corrected: Selection | None  # sigmoid output, same cost
    softmax: Selection | None  # softmax output + cce

    @property
    def holds(self) -> bool | None:
        """Whether the paper's number lies within the seeds' range (min..max) at the selected lr."""
        if self.paper_mode is None or self.paper_mode.best.val.n == 0:
            return None
        return within_seeds(self.paper_mode, self.paper)

    @property
    def direction(self) -> str:
        if self.holds is None:
            return "not run"
        if self.holds:
            return "within"
        return "paper higher" if self.paper > self.paper_mode.best.val.max else "paper lower"


def comparisons(selections: Sequence[Selection]) -> list[Comparison]:
    out = []
    for (cost, init, act), value in ref.PUBLISHED.items():
        out.append(Comparison(
            cost, init, act, ref.exact(value),
            _find(selections, cost=cost, activation=act, init=init, output=act, prefer_mode="paper"),
            _find(selections, cost=cost, activation=act, init=init, output="sigmoid", prefer_mode="corrected"),
            _find(selections, cost="cce", activation=act, init=init, output="softmax", prefer_mode="corrected"),
        ))
    return out


def comparison_table(comps: Sequence[Comparison]) -> TableFile:
    header = ["paper table", "cost", "init", "hidden", "paper val %", "paper mode: ours val % (range)",
              "paper vs our range", "corrected (sigmoid out) val %", "softmax + cce val %"]
    rows, crows = [], []

    def fmt(sel):
        if sel is None:
            return "not run"
        v = sel.best.val
        return f"{v.format()} (range {pct(v.min)}–{pct(v.max)}; lr {lr_text(sel.lr)})"

    def vals(sel):
        return [""] * 7 if sel is None else [num(sel.lr), *_stat_csv(sel.best.val)]

    for c in comps:
        rows.append([ref.TABLE_OF_COST[c.cost], c.cost, c.init, c.activation, pct(c.paper), fmt(c.paper_mode),
                     c.direction, fmt(c.corrected), fmt(c.softmax)])
        crows.append([c.cost, c.init, c.activation, num(c.paper), c.direction,
                      *vals(c.paper_mode), *vals(c.corrected), *vals(c.softmax)])
    cols = ["lr", *(f"val_{c}" for c in _STAT_CSV)]
    csv_header = ["cost", "init", "activation", "paper_val", "paper_vs_seeds",
                  *(f"paper_mode_{c}" for c in cols), *(f"corrected_{c}" for c in cols),
                  *(f"softmax_cce_{c}" for c in cols)]
    return TableFile("paper_comparison", "The paper's published validation accuracy beside the reproduced ones",
                     Table(header, rows, note="'paper vs our range' says where the published value falls relative to "
                           "the range of our seeds' final validation accuracy at the selected lr in paper mode. "
                           "Published values are the multiples of 1/360 they round from."),
                     Table(csv_header, crows))
