"""The Answers box and what stands behind it: paired statistics checked against values
worked out by hand, the at-chance rule, edge-of-grid flags, reports that fit the study."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from sgdlab import load_dataset
from sgdlab.report import render_records
from sgdlab.study.analysis import at_chance, majority_rate, select_records, summarize_cells
from sgdlab.study.paired import holm, paired
from sgdlab.study.questions import questions

sys.path.insert(0, str(Path(__file__).parent))
from test_report import SPEC, digits, synthetic, tiny_study  # noqa: E402


# --------------------------------------------------------------------------- paired statistics


def test_paired_against_hand_computed_values():
    # d = 1..5 points: mean 3, sd sqrt(2.5), t = 3 / (sqrt(2.5) / sqrt(5)) = 4.2426 on 4 df,
    # two-sided p = 0.01324 (t tables); 95 % interval 3 ± 2.7764 * sqrt(0.5).
    # Wilcoxon: all 5 differences positive, exact two-sided p = 2 / 2^5 = 0.0625.
    a = [0.51, 0.62, 0.73, 0.84, 0.95]
    b = [0.50, 0.60, 0.70, 0.80, 0.90]
    r = paired(a, b)
    assert r.n == 5 and r.mean == pytest.approx(0.03)
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5) / 100
    assert r.ci == pytest.approx((0.03 - half, 0.03 + half), abs=1e-6)
    assert r.p_t == pytest.approx(0.013236, abs=2e-5)
    assert r.p_wilcoxon == pytest.approx(0.0625)
    flipped = paired(b, a)
    assert flipped.mean == pytest.approx(-0.03) and flipped.p_t == pytest.approx(r.p_t)


def test_paired_edge_cases():
    assert paired([0.5], [0.4]).ci is None and paired([0.5], [0.4]).p_t is None
    same = paired([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert same.mean == 0 and same.p_t == 1.0 and same.p_wilcoxon == 1.0
    shift = paired([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])  # the same gain on every seed: t is infinite
    assert shift.p_t == 0.0


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def test_question_pools_settings_per_seed_on_a_tiny_store():
    """init xavier vs gaussian in two settings (sigmoid, tanh), 3 seeds, test accuracy = val - 0.01."""
    xs = {"sigmoid": [0.90, 0.92, 0.94], "tanh": [0.80, 0.83, 0.80]}
    gs = {"sigmoid": [0.85, 0.86, 0.90], "tanh": [0.70, 0.70, 0.74]}
    recs = [synthetic([v], init=init, activation=act, seed=s)
            for init, table in (("xavier", xs), ("gaussian", gs)) for act in table for s, v in enumerate(table[act])]
    summ = summarize_cells(recs)
    qs = questions(recs, summ, select_records(recs, chance=0.1), chance=0.1)
    [q] = [q for q in qs if q.axis == "init"]
    [c] = q.comparisons
    # per seed, mean over the two settings of xavier - gaussian:
    d = [((0.90 - 0.85) + (0.80 - 0.70)) / 2, ((0.92 - 0.86) + (0.83 - 0.70)) / 2, ((0.94 - 0.90) + (0.80 - 0.74)) / 2]
    assert (c.a, c.b) == ("xavier", "gaussian") and len(c.settings) == 2 and c.pooled.n == 3
    assert c.pooled.mean == pytest.approx(sum(d) / 3)
    assert c.pooled.p_t == pytest.approx(paired(d, [0, 0, 0]).p_t)
    per_setting = {s.context["activation"]: s.result.mean for s in c.settings}
    assert per_setting == pytest.approx({"sigmoid": (0.05 + 0.06 + 0.04) / 3, "tanh": (0.10 + 0.13 + 0.06) / 3})


# --------------------------------------------------------------------------- chance and edges


def test_at_chance_rule():
    assert majority_rate([0, 0, 1, 2]) == 0.5
    assert at_chance(0.14, 0.1) and at_chance(0.0, 0.1) and not at_chance(0.16, 0.1)
    assert not at_chance(0.05, None)


def test_all_at_chance_cell_and_edge_lr_are_flagged(tmp_path):
    dead = [synthetic([0.10], activation="relu", lr=lr, seed=s) for lr in (1.0, 0.1, 0.01) for s in (0, 1)]
    edge = [synthetic([0.5 + lr / 4 + 0.01 * s], activation="sigmoid", lr=lr, seed=s)
            for lr in (1.0, 0.1, 0.01) for s in (0, 1)]
    chance = majority_rate(digits().y_val)
    sels = {s.cell.activation: s for s in select_records(dead + edge, chance=chance)}
    assert sels["relu"].all_at_chance and sels["relu"].edge is None
    assert not sels["sigmoid"].all_at_chance and sels["sigmoid"].edge == "largest"
    render_records(tmp_path, dead + edge, dict(SPEC, hidden=[16]), data=digits())
    md = (tmp_path / "report.md").read_text()
    assert "at chance at every lr" in md and "no lr learns" in md
    assert "best at the largest lr tried" in md and "the optimum may lie beyond" in md
    grid = (tmp_path / "tables" / "grid.md").read_text()
    assert grid.count("| chance |") == 3  # every lr row of the dead cell; none is ticked
    # the pair (relu, sigmoid) has one side learning: compared, not left out
    assert "Hidden activation" in md.split("## Study")[0]


def test_divergence_finding_claims_no_selected_lr_for_a_cell_at_chance_at_every_lr(tmp_path):
    """A cell at chance at every lr has no selected lr: its divergences are not said to
    happen 'at the selected lr'; a cell whose every run diverged at every lr is named apart."""
    def run(val, status="done", **kw):
        return replace(synthetic([val], **kw), status=status)

    # relu: at each lr one seed diverges and the other is at chance -> at chance at every lr,
    # and the tie-break's lr (0.1) holds a diverged run
    dead = [run(0.0, "diverged", activation="relu", lr=lr, seed=0) for lr in (1.0, 0.1)]
    dead += [run(0.10, activation="relu", lr=lr, seed=1) for lr in (1.0, 0.1)]
    gone = [run(0.0, "diverged", activation="tanh", lr=lr, seed=s) for lr in (1.0, 0.1) for s in (0, 1)]
    # sigmoid learns, best at lr 1 where one of its two runs diverged
    learns = [run(0.0, "diverged", activation="sigmoid", lr=1.0, seed=0),
              run(0.99, activation="sigmoid", lr=1.0, seed=1)]
    learns += [run(0.3, activation="sigmoid", lr=0.1, seed=s) for s in (0, 1)]
    recs = dead + gone + learns
    chance = majority_rate(digits().y_val)
    sels = {s.cell.activation: s for s in select_records(recs, chance=chance)}
    assert sels["relu"].all_at_chance and sels["relu"].best.n_diverged == 1
    assert sels["tanh"].all_at_chance and not sels["sigmoid"].all_at_chance
    render_records(tmp_path, recs, dict(SPEC, hidden=[16]), data=digits())
    md = (tmp_path / "report.md").read_text()
    [line] = [ln for ln in md.splitlines() if "runs diverged (" in ln]
    assert "7 of 12 runs diverged (lr 1: 4/6, lr 0.1: 3/6)." in line
    assert "In 1 cell runs diverged even at the selected lr: sigmoid + ce, xavier init (1/2 at lr 1)." in line
    assert "In 1 cell every run diverged at every lr: tanh + ce, xavier init." in line
    assert "relu" not in line  # neither diverged at a selected lr nor at every lr


def test_both_at_chance_pairs_are_left_out_and_counted():
    recs = [synthetic([0.10], activation=act, init=init, seed=s) for act in ("relu", "tanh")
            for init in ("xavier", "gaussian") for s in (0, 1)]
    recs += [synthetic([0.9 + 0.01 * s], activation="sigmoid", init=init, seed=s) for init in ("xavier", "gaussian")
             for s in (0, 1)]
    summ = summarize_cells(recs)
    qs = questions(recs, summ, select_records(recs, chance=0.1), chance=0.1)
    [q] = [q for q in qs if q.axis == "init"]
    [c] = q.comparisons
    assert c.n_chance == 2 and len(c.settings) == 1  # relu and tanh pairs out, sigmoid kept


# --------------------------------------------------------------------------- answers box and fitting sections


def test_answers_box_opens_the_bundled_study_report():
    md = (tiny_study() / "report.md").read_text()
    first = md.split("\n## ")[1]
    assert first.startswith("Answers")
    assert "**Initialisation, paper mode**" in first and "paired t p =" in first and "Wilcoxon p =" in first
    assert "**Learning rate**" in first and "Holm" in first
    html = (tiny_study() / "report.html").read_text()
    assert html.index('class="answers"') < html.index("<nav>") < html.index('id="study"')


def test_custom_study_gets_its_own_questions_and_no_paper_sections(tmp_path):
    """iris, varying activation and init (no cost axis): answers from those axes only."""
    iris = load_dataset("iris")
    vals = {("sigmoid", "xavier"): 0.9, ("sigmoid", "gaussian"): 0.8, ("tanh", "xavier"): 0.7, ("tanh", "gaussian"): 0.6}
    recs = [synthetic([0.5, v + 0.01 * s], activation=a, init=i, seed=s, lr=lr, cost="mse")
            for (a, i), v in vals.items() for s in range(3) for lr in (0.1, 0.5)]
    spec = dict(name="iris-small", dataset="iris", split=[0.6, 0.2, 0.2], split_seed=0, hidden=[8], epochs=2,
                batch_size=10, dtype="float64")
    from sgdlab.report import build  # noqa: F401  (render_records with full=True is what build returns)

    done = render_records(tmp_path, recs, spec, data=iris, full=True)
    answers = "\n".join(done.answers)
    assert "**Hidden activation, paper mode**" in answers and "**Initialisation, paper mode**" in answers
    assert "Cost" not in answers and "Output layer" not in answers
    assert "**sigmoid** better than tanh by 20.00 points" in answers
    md = (tmp_path / "report.md").read_text()
    assert "Paper vs reproduced" not in md and "Table 2" not in md and "Figs. 6-11" not in md
    assert "## Selected results\n" in md and "Answers:" in done.answers_text()
