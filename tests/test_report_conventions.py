"""The report's ce-convention section, and that the other conventions' cells stay out of the
paper-vs-reproduced and Tables 2-3 tables (they have their own section)."""

from __future__ import annotations

import csv

import pytest

from sgdlab import RunConfig
from sgdlab.report import render_records
from sgdlab.report.conventions import convention_cells, conventions_section, sentence
from sgdlab.report.sensitivity import sensitivity_section
from sgdlab.study.analysis import select_records
from sgdlab.study.records import RunRecord, run_key
from sgdlab.engine.loop import History

SPEC = dict(name="conv", dataset="digits", split=[0.6, 0.2, 0.2], split_seed=0, hidden=[32, 16], epochs=1,
            batch_size=10, dtype="float64")

# final validation accuracy per (init, convention) over two seeds, at lr 0.001 (lr 0.01 is worse)
VALUES = {("xavier", "clip"): (0.50, 0.70), ("xavier", "nielsen"): (0.20, 0.30), ("xavier", "none"): (0.10, 0.10),
          ("gaussian", "clip"): (0.05, 0.15), ("gaussian", "nielsen"): (0.08, 0.09),
          ("gaussian", "none"): (0.02, 0.03)}


def _record(val, init, conv, lr, seed):
    h = History(train_loss=[1.0], train_acc=[val], val_loss=[1.0], val_acc=[val], test_loss=[1.0], test_acc=[val],
                seconds=[0.0])
    c = RunConfig(activation="tanh", cost="ce", ce_outside=conv, init=init, lr=lr, seed=seed, epochs=1)
    return RunRecord(run_key("paper", c), "paper", c, "done", h.final(), h, engine="batched")


@pytest.fixture(scope="module")
def records():
    out = []
    for (init, conv), vals in VALUES.items():
        for seed, v in enumerate(vals):
            out.append(_record(v, init, conv, 0.001, seed))
            out.append(_record(v / 2, init, conv, 0.01, seed))
    return out


def test_one_row_per_convention_with_the_numbers_of_its_selected_lr(records):
    cells = convention_cells(select_records(records))
    assert len(cells) == 2 and all(set(by) == {"clip", "nielsen", "none"} for by in cells.values())
    text = conventions_section(records)
    rows = [line for line in text.splitlines() if line.startswith("| paper:")]
    assert len(rows) == 6
    xc = next(r for r in rows if "xavier" in r and "| clip |" in r)
    assert "| 0.001 |" in xc and "60.00 ± 14.14" in xc and "50.00–70.00" in xc
    assert "| 67.22 | yes |" in xc  # the paper's tanh + ce, xavier: 67.22 %, inside 50-70
    xn = next(r for r in rows if "xavier" in r and "| nielsen |" in r)
    assert "| 67.22 | no |" in xn
    assert ("tanh/tanh + ce, xavier: the published 67.22 % depends on how cross-entropy treats outputs outside "
            "(0, 1), a choice the paper does not state; the seed range of clip reaches it, that of nielsen and none "
            "do not.") in text
    # Gaussian: the paper's 8.89 % lies in clip's 5-15 and nielsen's 8-9, not in none's 2-3
    assert "the seed ranges of clip and nielsen reach it, that of none does not." in text


def test_sentence_when_every_or_no_convention_reaches_it(records):
    cells = convention_cells(select_records(records))
    key = ("paper", "tanh", "tanh", "gaussian", 0.0, 0.0)
    by = {k: v for k, v in cells[key].items() if k != "none"}  # clip 5-15 %, nielsen 8-9 %
    assert "the seed ranges of every convention tried (clip and nielsen) reach it." in sentence(key, by, 0.085)
    by = cells[key]
    assert "no convention's seed range reaches it (clip, nielsen and none tried)" in sentence(key, by, 0.99)
    assert "mean validation accuracy depends" in sentence(key, by, None)


def test_no_section_without_other_conventions(records):
    assert conventions_section([r for r in records if r.config.ce_outside == "clip"]) == ""


def test_the_paper_tables_use_the_clip_cells_only(tmp_path, records):
    render_records(tmp_path, records, SPEC)
    with open(tmp_path / "tables" / "paper_comparison.csv", newline="") as f:
        rows = {(r["init"], r["activation"], r["cost"]): r for r in csv.DictReader(f)}
    assert float(rows[("xavier", "tanh", "ce")]["paper_mode_val_mean"]) == pytest.approx(0.60)
    assert float(rows[("gaussian", "tanh", "ce")]["paper_mode_val_mean"]) == pytest.approx(0.10)
    with open(tmp_path / "tables" / "table2_ce_paper.csv", newline="") as f:
        sel = list(csv.DictReader(f))
    assert len(sel) == 2 and sorted(float(r["val_mean"]) for r in sel) == pytest.approx([0.10, 0.60])
    with open(tmp_path / "tables" / "grid.csv", newline="") as f:
        grid = list(csv.DictReader(f))
    assert len(grid) == 12 and {r["ce_outside"] for r in grid} == {"clip", "nielsen", "none"}
    md = (tmp_path / "report.md").read_text()
    assert "## The paper's unstated cross-entropy convention" in md
    assert "## Rounding-sensitive cells" in md and "Not measured for this store" in md
    assert "ce (nielsen)" in (tmp_path / "tables" / "grid.md").read_text()


def test_sensitivity_section_marks_the_measured_cells(records):
    sels = select_records(records)
    from sgdlab.study.analysis import representative_run

    rep = {s.cell.init + s.cell.ce_outside: representative_run(records, s) for s in sels}
    rows = {r.key: {"sensitive": r.config.init == "gaussian", "stored_val_acc": 0.1, "val_acc": 0.3,
                    "stored_status": "done", "status": "done", "stored_engine": "batched",
                    "test_predictions_changed": 7} for r in rep.values() if r.config.ce_outside == "clip"}
    text = sensitivity_section(records, rows)
    assert "**1 of 2 measured cells is rounding-sensitive**: paper: tanh/tanh + ce, gaussian." in text
    assert text.count("not measured") == 4 and "1 + 2^-52" in text
    assert "| **yes** |" in text and "`" + rep["gaussianclip"].key + "`" in text
    conv = conventions_section(records, sensitive={s.cell: rows[rep[s.cell.init + s.cell.ce_outside].key]
                                                   for s in sels if s.cell.ce_outside == "clip"})
    assert conv.count("| yes |") >= 1 and conv.count("not measured") == 4


def test_findings_name_the_convention_and_compare_like_with_like(records):
    """The findings' sentences say which convention a non-clip cell ran under, and the output
    layer comparison pairs a paper-mode cell only with the sigmoid-output cell of its convention."""
    from sgdlab.report import narrative

    sels = select_records(records)
    words = {s.cell.ce_outside: narrative._cell_words(s) for s in sels if s.cell.init == "xavier"}
    assert words["clip"] == "tanh + ce, xavier init"
    assert words["nielsen"] == "tanh + ce (nielsen convention), xavier init"
    sig = [_record(0.95, "xavier", "clip", 0.001, s) for s in (0, 1)]
    sig = [RunRecord(r.key, r.mode, RunConfig(**{**r.config.to_dict(), "output": "sigmoid"}), r.status, r.final,
                     r.history, engine="batched") for r in sig]
    text = " ".join(narrative.output_layer(None, select_records(records + sig)))
    assert "1 of the 2 paper-mode combinations" not in text  # only the clip xavier cell has a partner
    assert "of the 1 paper-mode combination" in text or "None of the 1 paper-mode" in text, text
