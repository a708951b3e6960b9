"""The report: tables, figures, report.md / report.html, generated sentences, `sgdlab report`.

The end-to-end study is real: 2 cells (sigmoid + ce, Xavier and Gaussian, paper mode) x
2 learning rates x 2 seeds x 3 epochs trained with sgdlab.train on digits, rendered once
and shared by the tests here and in test_report_browser.py.
"""

from __future__ import annotations

import atexit
import csv
import functools
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sgdlab import RunConfig, load_dataset, train
from sgdlab.cli import main
from sgdlab.report import render_records
from sgdlab.report.narrative import init_effect, output_layer, unexplained_by_output
from sgdlab.report.tables import Comparison
from sgdlab.study.analysis import select_records
from sgdlab.study.records import RunRecord, run_key
from sgdlab.engine.loop import History

SPEC = dict(name="tiny", dataset="digits", split=[0.6, 0.2, 0.2], split_seed=0, hidden=[32, 16], epochs=3,
            batch_size=10, dtype="float64")
LRS = (1.0, 0.1)
SEEDS = (0, 1)


@functools.lru_cache(maxsize=None)
def digits():
    return load_dataset("digits")


@functools.lru_cache(maxsize=None)
def tiny_records() -> tuple[RunRecord, ...]:
    data = digits()
    out = []
    for init in ("xavier", "gaussian"):
        for lr in LRS:
            for seed in SEEDS:
                c = RunConfig(activation="sigmoid", cost="ce", init=init, lr=lr, seed=seed, epochs=3)
                r = train(c, data)
                out.append(RunRecord(run_key("paper", c), "paper", c, r.history.status, r.history.final(),
                                     r.history, test_predictions=[int(v) for v in r.network.predict(data.X_test)]))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def tiny_study() -> Path:
    """The tiny study rendered once into a temporary directory (removed at exit)."""
    d = Path(tempfile.mkdtemp(prefix="sgdlab-report-"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    for p in ("figures/stale.png", "tables/stale.csv", "tables/keep.txt"):  # as if rendered before
        (d / p).parent.mkdir(exist_ok=True)
        (d / p).write_text("x")
    # sgdlab deletes only what its manifest lists: the stale files, not the user's keep.txt
    (d / ".sgdlab-manifest.json").write_text('{"files": ["figures/stale.png", "tables/stale.csv"]}')
    render_records(d, list(tiny_records()), SPEC, data=digits())
    return d


def synthetic(val, *, mode="paper", activation="tanh", output="same", init="xavier", cost="ce", lr=0.1, seed=0):
    h = History(train_loss=[1.0] * len(val), train_acc=list(val), val_loss=[1.0] * len(val), val_acc=list(val),
                test_loss=[1.0] * len(val), test_acc=list(val), seconds=[0.0] * len(val))
    c = RunConfig(activation=activation, output=output, cost=cost, init=init, lr=lr, seed=seed, epochs=len(val))
    return RunRecord(run_key(mode, c), mode, c, "done", h.final(), h)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- tables


def test_tables_exist_and_are_non_empty():
    t = tiny_study() / "tables"
    for name in ("table1_split", "table2_ce_paper", "grid", "diverged", "paper_comparison"):
        for ext in ("md", "csv"):
            p = t / f"{name}.{ext}"
            assert p.is_file() and p.stat().st_size > 50, p
        assert len(read_csv(t / f"{name}.csv")) >= 2


def test_table1_counts_and_labels():
    rows = read_csv(tiny_study() / "tables" / "table1_split.csv")
    total = next(r for r in rows if r["class"] == "all")
    assert (total["train"], total["validation"], total["test"]) == ("1078", "360", "359")
    data = digits()
    for k in range(10):
        r = next(r for r in rows if r["class"] == str(k))
        assert int(r["train"]) == int(np.sum(data.y_train == k))
    md = (tiny_study() / "tables" / "table1_split.md").read_text()
    assert "mislabel" in md or "labels its columns" in md


def test_grid_csv_selection_matches_records():
    """The selected lr in grid.csv is the one with the best mean final val acc, computed here from the records."""
    rows = read_csv(tiny_study() / "tables" / "grid.csv")
    assert len(rows) == 4
    recs = tiny_records()
    for init in ("xavier", "gaussian"):
        means = {lr: np.mean([r.history.val_acc[-1] for r in recs if r.config.init == init and r.config.lr == lr])
                 for lr in LRS}
        best = max(means, key=means.get)
        chosen = [r for r in rows if r["init"] == init and r["selected"] == "true"]
        assert len(chosen) == 1 and float(chosen[0]["lr"]) == best
        assert float(chosen[0]["val_mean"]) == pytest.approx(means[best])
        tests = [r.history.test_acc[-1] for r in recs if r.config.init == init and r.config.lr == best]
        assert float(chosen[0]["test_mean"]) == pytest.approx(np.mean(tests))
        assert int(chosen[0]["n_runs"]) == 2


def test_paper_layout_table_has_paper_rows_and_columns():
    md = (tiny_study() / "tables" / "table2_ce_paper.md").read_text()
    assert "| init | sigmoid |" in md
    assert "**xavier**" in md and "**gaussian**" in md
    assert re.search(r"val \d+\.\d\d ± \d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]; test", md)
    rows = read_csv(tiny_study() / "tables" / "table2_ce_paper.csv")
    assert {r["init"] for r in rows} == {"xavier", "gaussian"}


def test_paper_comparison_holds_published_numbers():
    rows = read_csv(tiny_study() / "tables" / "paper_comparison.csv")
    assert len(rows) == 12
    sx = next(r for r in rows if (r["cost"], r["init"], r["activation"]) == ("ce", "xavier", "sigmoid"))
    assert float(sx["paper_val"]) == pytest.approx(347 / 360)  # 96.39 % is 347/360
    assert sx["paper_mode_val_mean"] != ""
    relu = next(r for r in rows if r["activation"] == "relu")
    assert relu["paper_vs_seeds"] == "not run"


# --------------------------------------------------------------------------- figures and report


EXPECTED_FIGURES = ("fig03_sample_digits", "fig04_class_frequency", "fig05_activations", "confusion_paper",
                    "curves_paper", "lr_heatmap_paper")


def test_figures_exist_png_and_svg():
    f = tiny_study() / "figures"
    for name in EXPECTED_FIGURES:
        png, svg = f / f"{name}.png", f / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000, png
        assert b"<svg" in svg.read_bytes()[:2000] and svg.stat().st_size > 2000, svg


def test_report_html_embeds_every_figure_and_nothing_external():
    d = tiny_study()
    html = (d / "report.html").read_text()
    import base64

    pngs = sorted((d / "figures").glob("*.png"))
    assert len(pngs) >= len(EXPECTED_FIGURES)
    for png in pngs:
        assert "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode() in html, png.name
    assert html.count("<img ") == len(pngs)
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert not re.search(r"<link|<script[^>]*\ssrc=|url\(", html)
    from importlib import resources

    vendored = resources.files("sgdlab").joinpath("assets/vendor/uplot/uPlot.iife.min.js").read_text()
    assert vendored in html  # inlined as released (its licence header names its home page)
    assert not re.search(r"https?://", html.replace(vendored, ""))


def test_report_md_links_figures_and_states_findings():
    d = tiny_study()
    md = (d / "report.md").read_text()
    for name in EXPECTED_FIGURES:
        assert f"figures/{name}.png" in md
    assert "## What the data shows" in md and "## Paper vs reproduced" in md
    assert "The study holds 8 runs: 2 cells × 2 learning rates × 2 seeds" in md
    for line in ("Table 2", "96.39"):
        assert line in md


def test_rerender_removes_stale_files():
    assert not (tiny_study() / "figures" / "stale.png").exists()  # planted before rendering
    assert not (tiny_study() / "tables" / "stale.csv").exists()
    assert (tiny_study() / "tables" / "keep.txt").exists()  # only what rendering writes is removed


def test_other_setting_without_predictions_with_frameworks(tmp_path):
    """No paper numbers off the paper's setting, no confusion matrix without predictions,
    and `sgdlab compare` output included as a Frameworks section."""
    records = [synthetic([0.5, 0.8], init=i, lr=lr, seed=s, activation="sigmoid")
               for i in ("xavier", "gaussian") for lr in (1.0, 0.1) for s in (0, 1)]
    (tmp_path / "compare").mkdir(parents=True)
    (tmp_path / "compare" / "frameworks.md").write_text(
        "# Frameworks\n\n| framework | val acc |\n|---|---|\n| sgdlab | 0.95 |\n| torch | 0.94 |\n")
    shutil.copy(tiny_study() / "figures" / "fig05_activations.png", tmp_path / "compare" / "curves.png")
    spec = dict(SPEC, hidden=[16])
    render_records(tmp_path, records, spec, data=digits())
    html = (tmp_path / "report.html").read_text()
    assert "Paper vs reproduced" not in html and "96.39" not in html
    assert not (tmp_path / "tables" / "paper_comparison.csv").exists()
    assert not list((tmp_path / "figures").glob("confusion_*"))
    assert "no confusion matrix" in html
    assert "Frameworks" in html and "<td>torch</td>" in html
    import base64

    assert base64.b64encode((tmp_path / "compare" / "curves.png").read_bytes()).decode() in html


def test_render_without_loadable_dataset_still_writes_report(tmp_path):
    records = [synthetic([0.5, 0.8], activation="sigmoid")]
    html = render_records(tmp_path, records, dict(SPEC, dataset=str(tmp_path / "gone.csv")))
    text = html.read_text()
    assert "could not be loaded" in text
    assert (tmp_path / "figures" / "fig05_activations.png").is_file()


# --------------------------------------------------------------------------- generated sentences


def test_output_layer_sentence_is_computed_from_the_data():
    fail_then_work = [synthetic([0.1, 0.1], seed=s) for s in (0, 1)] + \
                     [synthetic([0.9, 0.95 + 0.01 * s], mode="corrected", output="sigmoid", seed=s) for s in (0, 1)]
    [text] = output_layer(None, select_records(fail_then_work))[:1]
    assert "1 of the 1" in text and "only because of the output layer" in text and "tanh + ce, xavier" in text
    both_fail = [synthetic([0.1, 0.1], seed=s) for s in (0, 1)] + \
                [synthetic([0.2, 0.3 + 0.01 * s], mode="corrected", output="sigmoid", seed=s) for s in (0, 1)]
    text = output_layer(None, select_records(both_fail))[0]
    assert text.startswith("None of the 1")


def test_unexplained_failure_sentence_names_cells_that_work_in_paper_mode():
    works = select_records([synthetic([0.95 + 0.01 * s], cost="mse", seed=s) for s in (0, 1)])[0]
    fails = select_records([synthetic([0.1 + 0.01 * s], cost="ce", seed=s) for s in (0, 1)])[0]
    comps = [Comparison("mse", "xavier", "tanh", 91 / 360, works, None, None),   # paper fails, ours works
             Comparison("ce", "xavier", "tanh", 242 / 360, fails, None, None),   # paper works better than ours
             Comparison("ce", "gaussian", "tanh", 32 / 360, fails, None, None)]  # both fail
    [text] = unexplained_by_output(comps)
    assert text.startswith("The output layer does not explain 1 published failure:")
    assert "tanh + mse, xavier: paper 25.28 %" in text and "+ ce" not in text
    assert unexplained_by_output(comps[1:]) == []


def test_init_sentence_counts_clear_differences():
    recs = [synthetic([0.9 + 0.01 * s], init="xavier", seed=s) for s in range(3)] + \
           [synthetic([0.5 + 0.01 * s], init="gaussian", seed=s) for s in range(3)]
    [text] = init_effect(select_records(recs))
    assert "Xavier clearly better in 1, Gaussian clearly better in 0" in text
    assert "+40.00 points" in text


# --------------------------------------------------------------------------- sgdlab report


def test_cli_report_missing_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such study directory" in err and "\n" not in err


def test_cli_report_dir_without_store(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "results.sqlite" in err and "\n" not in err


def test_cli_report_corrupt_store(tmp_path, capsys):
    (tmp_path / "results.sqlite").write_bytes(b"not a database at all" * 10)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sgdlab: error:") and "\n" not in err


def test_cli_report_rerenders_from_store(tmp_path, capsys):
    """A small study through `sgdlab study --no-report`, then `sgdlab report` renders it from the store."""
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\ndataset = "digits"\nhidden = [8]\nepochs = 2\nbatch_size = 32\nseeds = 2\n'
                    'lr = [1, 0.1]\nactivation = "sigmoid"\ninit = ["xavier", "gaussian"]\n\n'
                    '[[grid]]\nmode = "paper"\ncost = "ce"\noutput = "same"\n')
    out = tmp_path / "study"
    assert main(["study", str(spec), "--out", str(out), "--jobs", "1", "--no-report", "--quiet"]) == 0
    assert not (out / "report.html").exists()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert str(out / "report.html") in capsys.readouterr().out
    rows = read_csv(out / "tables" / "grid.csv")
    assert len(rows) == 4 and sum(r["selected"] == "true" for r in rows) == 2
    assert (out / "figures" / "confusion_paper.png").is_file()
