"""The report's "Mechanism" section: what happens inside the networks, from the per-layer
diagnostics each run recorded (:mod:`sgdlab.engine.diagnostics`).

The paper explains its results by saturation: a poor initialisation gives "extremely large
values" that saturate neurons, which then stop contributing to learning, and tanh and ReLU
"do not work well on their own". :func:`mechanism_section` tests that explanation against the
study's data and draws, per mode, small multiples of each cell at its selected lr.

Definitions used in the sentences:

- a run's *blocked share* at an epoch is, over its hidden layers weighted by their units, the
  share of saturated unit activations (sigmoid, tanh) or of dead units (ReLU) on the
  validation set;
- Gaussian and Xavier runs are *paired* when they differ in nothing but the initialisation
  (mode, cost, activations, lr, seed and the rest equal); at epoch 0 the pair's difference
  comes from the initial weights alone;
- tests: Wilcoxon's signed-rank test on the paired differences (one-sided, in the direction
  the medians point; at epoch 0 there is one pair per seed, so five seeds give at best
  p = 1/32), Spearman's rank correlation
  between the blocked share at epoch 1 and the final validation accuracy (diverged runs count
  with accuracy 0, as in the tables), both from ``scipy.stats``.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.ticker import NullFormatter

from ..study.analysis import Selection, cell_sort_key, modes, run_accuracy, select, summarize_cells
from ..study.records import RunRecord
from ..engine.diagnostics import TINY_STEP, blockage
from .document import Figure, Heading, RawMarkdown
from .figures import _new, _slug, save

SATURATING = ("sigmoid", "tanh")
# the diagnostic that says a layer of this activation is blocked (see the module docstring)
BLOCKED = {"sigmoid": "saturated", "tanh": "saturated", "relu": "dead_units"}
LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _has(r: RunRecord) -> bool:
    d = r.history.diagnostics
    return bool(d) and bool(d.get("weight_norm")) and r.status != "failed"


def blocked_share(r: RunRecord, epoch: int) -> float:
    """The run's blocked share at ``epoch`` (see the module docstring); NaN if it has no such
    row or its hidden activation neither saturates nor dies."""
    metric = BLOCKED.get(r.config.activation)
    rows = (r.history.diagnostics.get(metric) or []) if metric else []
    if epoch >= len(rows):
        return math.nan
    hidden = list(r.config.hidden)
    vals = np.asarray(rows[epoch][:len(hidden)], dtype=float)
    w = np.asarray(hidden, dtype=float)
    ok = np.isfinite(vals)
    return float(np.sum(vals[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else math.nan


def _pair_key(r: RunRecord, epoch: int) -> tuple:
    c = r.config
    if epoch == 0:  # the initial weights depend on the layer sizes, init and seed only
        return (c.activation, tuple(c.hidden), c.bias_init, c.seed, c.dtype)
    return (r.mode, tuple(sorted((k, repr(v)) for k, v in c.to_dict().items() if k != "init")))


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if x >= 0.01 or x == 0 else f"{100 * x:.1g} %"


def _p(p: float) -> str:
    return "p < 1e-10" if p < 1e-10 else f"p = {p:.2g}"


def init_sentences(records: Sequence[RunRecord]) -> list[str]:
    """Does Gaussian init block more hidden units than Xavier at epochs 0 and 1, per activation?"""
    from scipy.stats import wilcoxon

    out = []
    for act in BLOCKED:
        what = "dead" if act == "relu" else "saturated"
        parts, verdicts = [], []
        for epoch in (0, 1):
            by = defaultdict(dict)
            for r in records:
                if r.config.activation == act and r.config.init in ("gaussian", "xavier") and _has(r):
                    v = blocked_share(r, epoch)
                    if math.isfinite(v):
                        by[_pair_key(r, epoch)][r.config.init] = v
            pairs = np.array([(p["gaussian"], p["xavier"]) for p in by.values() if len(p) == 2])
            if len(pairs) == 0:
                continue
            g, x = np.median(pairs[:, 0]), np.median(pairs[:, 1])
            higher = int(np.sum(pairs[:, 0] > pairs[:, 1]))
            diff = pairs[:, 0] - pairs[:, 1]
            test, verdict = "", 0
            if len(pairs) >= 5 and np.any(diff != 0):
                more, less = (wilcoxon(diff, alternative=a).pvalue for a in ("greater", "less"))
                test = f", one-sided Wilcoxon {_p(more if g >= x else less)}"
                verdict = 1 if more < 0.05 else (-1 if less < 0.05 else 0)
            parts.append(f"at epoch {epoch} {_pct(g)} with Gaussian init against {_pct(x)} with Xavier "
                         f"(medians; Gaussian higher in {higher} of {len(pairs)} pairs{test})")
            verdicts.append(verdict)
        if not parts:
            continue
        if all(v == 1 for v in verdicts):
            verdict = "as the paper's explanation says"
        elif all(v == -1 for v in verdicts):
            verdict = "the opposite of what the paper's explanation says"
        elif any(v == 1 for v in verdicts):
            verdict = "so the data support the paper's explanation only in part"
        else:
            verdict = "which does not support the paper's explanation"
        out.append(f"**{act} hidden layers, {what} units:** " + "; ".join(parts) + f", {verdict}.")
    return out


def prediction_sentences(records: Sequence[RunRecord], selections: Sequence[Selection],
                         diverged: str = "zero") -> list[str]:
    """Does the blocked share at epoch 1 predict the final validation accuracy across runs?"""
    from scipy.stats import spearmanr

    chosen = {(s.cell, s.lr) for s in selections}
    out = []
    for act in BLOCKED:
        what = "dead ReLUs" if act == "relu" else "saturated units"
        texts = []
        for label, keep in (("at each cell's selected lr", lambda r: (r.cell, float(r.config.lr)) in chosen),
                            ("over every lr", lambda r: True)):
            xs, ys = [], []
            for r in records:
                if r.config.activation == act and _has(r) and keep(r):
                    v, acc = blocked_share(r, 1), run_accuracy(r, "val", diverged)
                    if math.isfinite(v) and acc is not None:
                        xs.append(v)
                        ys.append(acc)
            if len(xs) < 5 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
                if xs:
                    texts.append(f"{label} ({len(xs)} runs) the share or the accuracy does not vary, so no "
                                 "correlation can be measured")
                continue
            res = spearmanr(xs, ys)
            rho, p = float(res.statistic), float(res.pvalue)
            if p < 0.05:
                sense = ("more blocked runs end less accurate, as the paper's mechanism predicts" if rho < 0
                         else "more blocked runs end *more* accurate, against the paper's mechanism")
            else:
                sense = "no evidence either way"
            texts.append(f"{label}, Spearman ρ = {rho:.2f} ({_p(p)}, {len(xs)} runs): {sense}")
        if texts:
            out.append(f"**{what} at epoch 1 ({act}) vs final validation accuracy:** " + "; ".join(texts) + ".")
    return out


def clipped_sentences(records: Sequence[RunRecord], selections: Sequence[Selection]) -> list[str]:
    """What share of ce + tanh/relu output values is clipped, per output and convention."""
    chosen = {(s.cell, s.lr) for s in selections}
    groups = defaultdict(list)
    for r in records:
        if not _has(r) or (r.cell, float(r.config.lr)) not in chosen:
            continue
        rows = r.history.diagnostics.get("clipped") or []
        if rows and math.isfinite(rows[0][-1]):
            groups[(r.config.output_activation, r.config.ce_outside)].append((r, [row[-1] for row in rows]))
    out = []
    for (output, conv), runs in sorted(groups.items()):
        n, n_div = len(runs), sum(r.status == "diverged" for r, _ in runs)
        e0 = np.mean([x[0] for _, x in runs])
        later = [x for _, x in runs if len(x) > 1]
        text = (f"**ce + {output} output ({conv} convention):** {_pct(e0)} of output values on the validation set "
                f"are outside [eps, 1 − eps] at epoch 0")
        if later:
            e1, last = np.mean([x[1] for x in later]), np.mean([x[-1] for x in later])
            text += f", {_pct(e1)} after epoch 1 and {_pct(last)} at the last epoch"
        text += f" (mean over the {n} runs at the selected lr"
        text += f"; {n_div} diverged)" if n_div else ")"
        effect = {"clip": "clipped outputs get no gradient (the clipped cost is flat there)",
                  "nielsen": "their delta is still a − y (Nielsen's convention), so they keep learning",
                  "none": "the unclipped cost is not finite there"}.get(conv)
        out.append(text + (f"; {effect}." if effect else "."))
    return out


_BLOCKAGE_WORDS = {"clipped": "clipped outputs", "dead_units": "dead ReLUs",
                   "dead_rows": "ReLU layers zero on most rows", "saturated": "saturated units",
                   "tiny_steps": f"tiny steps (update/weight ratio < {TINY_STEP:g})",
                   "none": "no layer mostly blocked", None: "no diagnostics"}


def chance_sentence(records: Sequence[RunRecord]) -> list[str]:
    """How many runs ended at chance, and what blocked them (:func:`sgdlab.engine.diagnostics.blockage`)."""
    at = [r for r in records if r.status == "chance"]
    if not at:
        return []
    kinds = defaultdict(int)
    for r in at:
        b = blockage(r.history.diagnostics)
        kinds[None if b is None else b[0]] += 1
    detail = ", ".join(f"{n} {_BLOCKAGE_WORDS[k]}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return [f"**Runs at chance:** {len(at)} of {len(records)} runs finished no better than the majority class "
            f"(within the margin of `sgdlab.engine.diagnostics.at_chance`); what held at least half of a layer at "
            f"their last epoch, nearest the output first: {detail}."]


# --------------------------------------------------------------------------- figures

def _stack(rows_per_run: list[list], width: int) -> np.ndarray:
    """Runs x epochs (x layers) with NaN past a run's end."""
    length = max(len(r) for r in rows_per_run)
    out = np.full((len(rows_per_run), length, width), np.nan)
    for i, rows in enumerate(rows_per_run):
        if rows:
            out[i, :len(rows)] = np.asarray(rows, dtype=float).reshape(len(rows), -1)[:, :width]
    return out


def _band(ax, x, values, color, label=None, style="-"):
    """Mean line and min-max band over runs (axis 0), over the runs alive at each epoch."""
    alive = ~np.all(np.isnan(values), axis=0)
    if not alive.any():
        return
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
    ax.plot(x[alive], mean[alive], style, color=color, label=label, linewidth=1.4,
            marker="o" if alive.sum() == 1 else None, markersize=3)
    if values.shape[0] > 1:
        ax.fill_between(x[alive], low[alive], high[alive], color=color, alpha=0.18, linewidth=0)


def small_multiples(mode: str, records: Sequence[RunRecord], selections: Sequence[Selection],
                    directory: Path) -> Figure | None:
    """One figure for ``mode``: a row per cell at its selected lr; columns loss (train, val),
    accuracy (train, val), gradient norm of W per layer, and blocked share per layer (saturated
    for sigmoid/tanh, dead units for ReLU, clipped outputs dashed); mean over seeds with a
    min-max band."""
    sels = sorted((s for s in selections if s.cell.mode == mode), key=lambda s: cell_sort_key(s.cell))
    rows = []
    for s in sels:
        rs = [r for r in records if r.cell == s.cell and float(r.config.lr) == s.lr and r.status != "failed"]
        if rs:
            rows.append((s, sorted(rs, key=lambda r: r.config.seed)))
    if not rows or not any(_has(r) for _, rs in rows for r in rs):
        return None
    height = 1.55 * len(rows) + 0.6
    # a fixed layout: the constrained one costs seconds on a grid of a hundred axes
    fig, axes = _new(13.0, height, ncols=4, nrows=len(rows), layout=None)
    fig.subplots_adjust(left=0.19, right=0.99, bottom=0.5 / height, top=1 - 0.3 / height, wspace=0.22,
                        hspace=0.4)
    epochs = max(r.config.epochs for _, rs in rows for r in rs)
    titles = ("loss (train —, val --)", "accuracy (train —, val --)", "‖grad W‖ per layer (mean per epoch)",
              "saturated / dead share per layer")
    for j, t in enumerate(titles):
        axes[0, j].set_title(t, fontsize=9)
    for i, (s, rs) in enumerate(rows):
        n_div = sum(r.status == "diverged" for r in rs)
        label = (s.cell.label().split(": ", 1)[1] + f"\nlr {s.lr:g}, {len(rs)} seeds"
                 + (f", {n_div} div." if n_div else ""))
        axes[i, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
        for part, style in (("train", "-"), ("val", "--")):
            loss = _stack([getattr(r.history, f"{part}_loss") for r in rs], 1)[..., 0]
            acc = _stack([getattr(r.history, f"{part}_acc") for r in rs], 1)[..., 0]
            x = np.arange(1, loss.shape[1] + 1)
            _band(axes[i, 0], x, loss, "#444444", style=style)
            _band(axes[i, 1], x, 100 * acc, "#1f77b4", style=style)
        axes[i, 0].set_yscale("log")
        axes[i, 1].set_ylim(0, 100)
        with_d = [r for r in rs if _has(r)]
        if with_d:
            L = len(with_d[0].history.diagnostics["weight_norm"][0])
            grads = _stack([r.history.diagnostics.get("grad_w_mean", []) for r in with_d], L)
            x = np.arange(grads.shape[1])
            for l in range(L):
                _band(axes[i, 2], x, grads[..., l], LAYER_COLORS[l % len(LAYER_COLORS)], label=f"layer {l + 1}")
            if np.isfinite(grads).any() and np.nanmax(grads) > 0:
                axes[i, 2].set_yscale("log")
            kinds = [s.cell.activation] * (L - 1) + [s.cell.output]
            for l, kind in enumerate(kinds):
                name = BLOCKED.get(kind)
                if name:
                    v = _stack([r.history.diagnostics.get(name, []) for r in with_d], L)[..., l]
                    _band(axes[i, 3], np.arange(v.shape[1]), 100 * v, LAYER_COLORS[l % len(LAYER_COLORS)],
                          label=f"layer {l + 1} {'dead' if kind == 'relu' else 'sat.'}")
            clipped = _stack([r.history.diagnostics.get("clipped", []) for r in with_d], L)[..., -1]
            if np.isfinite(clipped).any():
                _band(axes[i, 3], np.arange(clipped.shape[1]), 100 * clipped, "#000000", label="output clipped",
                      style="--")
            axes[i, 3].set_ylim(-3, 103)
            if i == 0 or i == len(rows) - 1:
                for j in (2, 3):
                    if axes[i, j].get_legend_handles_labels()[0]:
                        axes[i, j].legend(fontsize=6, loc="best", framealpha=0.7)
        else:
            for j in (2, 3):
                axes[i, j].text(0.5, 0.5, "no diagnostics (older store)", ha="center", va="center", fontsize=7,
                                transform=axes[i, j].transAxes)
        for ax in axes[i]:
            ax.tick_params(labelsize=7)
            ax.yaxis.set_minor_formatter(NullFormatter())  # log axes: major labels only
            ax.set_xlim(0, epochs)
            ax.grid(alpha=0.3)
    for j in range(4):
        axes[-1, j].set_xlabel("epoch", fontsize=8)
    name = f"mechanism_{_slug(mode)}"
    return save(fig, directory, name,
                f"{mode} mode, each cell at its selected lr (rows): loss and accuracy per epoch (train solid, "
                "validation dashed), the L2 norm of each layer's weight gradient (mean over the epoch's "
                "minibatches; epoch 0 has none) and the share of each layer's units saturated (sigmoid, tanh: "
                "f' below 1 % of its maximum) or dead (ReLU) on the validation set, with the output values "
                "clipped by ce dashed; line = mean over seeds, band = min–max.")


def mechanism_section(records: Sequence[RunRecord], directory: Path | None = None,
                      selections: Sequence[Selection] | None = None,
                      diverged: str = "zero") -> tuple[str, list[Figure]]:
    """The "Mechanism" section: Markdown (its body, without the heading) and its figures.

    Parameters
    ----------
    records : sequence of RunRecord
        The study's runs (those without diagnostics, from older stores, are left out of the
        sentences and said to be).
    directory : Path, optional
        Where the figures go (``figures/``); None draws none.
    selections : sequence of Selection, optional
        The selected lr per cell (computed from ``records`` if None).
    diverged : str
        The counting policy of diverged runs (see :mod:`sgdlab.study.analysis`).
    """
    records = list(records)
    if selections is None:
        selections = select(summarize_cells(records, diverged))
    n_diag = sum(_has(r) for r in records)
    intro = ("The paper explains its failures by saturation: a poor initialisation gives large values that "
             "saturate neurons, which then stop learning. Every run recorded, per layer and epoch, the share of "
             "saturated sigmoid/tanh units (f'(z) below 1 % of its maximum) and of dead ReLUs on the validation "
             "set, its gradient norms and the share of clipped outputs (see `sgdlab.engine.diagnostics`). "
             "These sentences test the explanation against those numbers.")
    if n_diag == 0:
        return (intro + "\n\nThis store holds no diagnostics (it was made by an older sgdlab): re-run the study "
                        "to see them.\n", [])
    items = init_sentences(records) + prediction_sentences(records, selections, diverged)
    items += clipped_sentences(records, selections) + chance_sentence(records)
    note = "" if n_diag == len(records) else (f"\n\n{len(records) - n_diag} of {len(records)} runs have no "
                                               "diagnostics (an older store, or failed runs) and are left out.")
    md = intro + note + "\n\n" + "\n".join(f"- {s}" for s in items) + "\n"
    figures = []
    if directory is not None:
        for mode in modes(records):
            fig = small_multiples(mode, records, selections, Path(directory))
            if fig is not None:
                figures.append(fig)
    return md, figures


def section(ctx) -> list:
    """The report section (see :mod:`sgdlab.report.sections`): a heading, the sentences and
    the figures of :func:`mechanism_section`."""
    md, figures = mechanism_section(ctx.records, ctx.fdir, ctx.selections, ctx.diverged)
    return [Heading("Mechanism"), RawMarkdown(md), *figures]
