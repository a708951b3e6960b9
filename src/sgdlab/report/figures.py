"""The report's figures, drawn with matplotlib's object API (no pyplot state, no GUI
backend: each :class:`matplotlib.figure.Figure` is saved through the Agg canvas) and written
as ``figures/<name>.png`` and ``.svg``. Each function returns a :class:`~.document.Figure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ..data import Dataset
from ..nn.activations import ACTIVATIONS
from ..study.analysis import (INIT_ORDER, CellSummary, Selection, _order, confusion_matrix, curve,
                              run_accuracy)
from ..study.records import RunRecord
from . import paper_reference as ref
from .document import Figure

DPI = 100
INIT_COLORS = {"xavier": "#1f77b4", "gaussian": "#d62728", "glorot": "#2ca02c", "he": "#9467bd"}
ACT_COLORS = {"sigmoid": "#1f77b4", "tanh": "#ff7f0e", "relu": "#2ca02c", "leaky_relu": "#9467bd",
              "softmax": "#8c564b", "identity": "#7f7f7f"}


def _new(width: float, height: float, ncols: int = 1, nrows: int = 1, layout: str | None = "constrained"):
    fig = MplFigure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save(fig: MplFigure, directory: Path, name: str, caption: str) -> Figure:
    """Write ``name.png`` and ``name.svg`` (no timestamps, so re-rendering is reproducible)."""
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{name}.png", directory / f"{name}.svg"
    with matplotlib.rc_context({"svg.hashsalt": "sgdlab", "svg.fonttype": "path"}):
        fig.savefig(png, dpi=DPI, metadata={"Software": None})
        fig.set_layout_engine("none")  # keep the layout just computed: the SVG need not redo it
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return Figure(png, caption, svg)


# --------------------------------------------------------------------------- data (Figs. 3-5)


def sample_digits(data: Dataset, directory: Path, per_class: int = 2) -> Figure | None:
    """The first ``per_class`` images of each class (paper Fig. 3); None without images."""
    if data.images is None:
        return None
    shape = tuple(data.images.shape[1:])
    if int(np.prod(shape)) != data.n_features:
        return None
    # The training rows are the images' pixels (scaled), in the split's order.
    # One mosaic image (one imshow is much faster to draw than a grid of axes).
    h, w = shape
    k = data.n_classes
    mosaic = np.full((per_class * (h + 1) - 1, k * (w + 1) - 1), np.nan)
    for c in range(k):
        idx = np.flatnonzero(data.y_train == c)[:per_class]
        for i, j in enumerate(idx):
            mosaic[i * (h + 1):i * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = data.X_train[j].reshape(shape)
    fig, axes = _new(0.75 * k + 0.6, 0.8 * per_class + 0.9)
    ax = axes[0, 0]
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, interpolation="nearest")
    ax.set_xticks([c * (w + 1) + (w - 1) / 2 for c in range(k)], [str(c) for c in data.classes])
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"{data.name}: sample training images ({h}x{w} pixels), {per_class} per class", fontsize=10)
    return save(fig, directory, "fig03_sample_digits",
                f"Sample images of {data.name}, {per_class} per class (paper Fig. 3).")


def class_frequency(data: Dataset, directory: Path) -> Figure:
    """Images per class in each split, grouped bars (paper Fig. 4, correct split names)."""
    counts = data.split_counts()
    k = data.n_classes
    fig, axes = _new(7.5, 3.4)
    ax = axes[0, 0]
    width = 0.27
    x = np.arange(k)
    for i, (part, color) in enumerate((("train", "#4c72b0"), ("validation", "#dd8452"), ("test", "#55a868"))):
        ax.bar(x + (i - 1) * width, counts[part], width, label=f"{part} ({int(counts[part].sum())})", color=color)
    ax.set_xticks(x, [str(c) for c in data.classes])
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_title(f"{data.name}: class frequency per split")
    ax.legend(frameon=False, fontsize=9)
    return save(fig, directory, "fig04_class_frequency",
                "Images per class in the training, validation and test parts (paper Fig. 4).")


def activation_functions(directory: Path) -> Figure:
    """sigmoid, tanh, relu, leaky ReLU and softmax (first output of softmax([z, 0, 0])),
    with their derivatives, from :mod:`sgdlab.nn.activations` (paper Fig. 5)."""
    z = np.linspace(-5, 5, 401)
    fig, axes = _new(9.5, 3.6, ncols=2)
    fa, da = axes[0, 0], axes[0, 1]
    # relu drawn wide and leaky relu dotted on top: they coincide for z > 0.
    style = {"relu": dict(linewidth=3.2, alpha=0.55), "leaky_relu": dict(linestyle=":", linewidth=1.8)}
    for name in ("sigmoid", "tanh", "relu", "leaky_relu"):
        act = ACTIVATIONS[name]
        a = act.fn(z)
        kw = dict(label=name, color=ACT_COLORS[name], **style.get(name, {}))
        fa.plot(z, a, **kw)
        da.plot(z, act.derivative(z, a), **kw)
    Z = np.stack([z, np.zeros_like(z), np.zeros_like(z)], axis=1)
    s = ACTIVATIONS["softmax"].fn(Z)[:, 0]
    fa.plot(z, s, label="softmax([z, 0, 0])₁", color=ACT_COLORS["softmax"], linestyle="--")
    da.plot(z, s * (1 - s), label="∂ softmax₁/∂z", color=ACT_COLORS["softmax"], linestyle="--")
    fa.set_ylim(-1.2, 2.2)
    da.set_ylim(-0.1, 1.15)
    for ax, title in ((fa, "f(z)"), (da, "f′(z)")):
        ax.axhline(0, color="#999", linewidth=0.6)
        ax.axvline(0, color="#999", linewidth=0.6)
        ax.set_xlabel("z")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fa.legend(frameon=False, fontsize=8)
    return save(fig, directory, "fig05_activations",
                "Activation functions and their derivatives, computed by sgdlab.nn.activations (paper Fig. 5).")


# --------------------------------------------------------------------------- results


def confusion(mode: str, selection: Selection, record: RunRecord, data: Dataset, directory: Path,
              n_seeds: int, diverged: str = "zero") -> Figure | None:
    """Confusion matrix on the test set of the representative run of a mode's best cell."""
    preds = getattr(record, "test_predictions", None)
    if preds is None or len(preds) != len(data.y_test):
        return None
    m = confusion_matrix(data.y_test, preds, data.n_classes)
    acc = np.trace(m) / max(1, m.sum())
    fig, axes = _new(5.6, 5.0)
    ax = axes[0, 0]
    im = ax.imshow(m, cmap="Blues")
    thresh = m.max() / 2 if m.max() else 1
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > thresh else "black")
    labels = [str(c) for c in data.classes]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8)
    c = selection.cell
    ax.set_title(f"{mode}: {c.activation}/{c.output} + {c.cost}, {c.init}, lr {selection.lr:g}\n"
                 f"seed {record.config.seed}, test accuracy {100 * acc:.2f} %", fontsize=9)
    val = run_accuracy(record, "val", diverged)
    return save(fig, directory, f"confusion_{_slug(mode)}",
                f"{mode} mode: confusion matrix on the test set ({len(data.y_test)} images) of the best cell by "
                f"mean validation accuracy ({c.label()}, lr {selection.lr:g}), seed {record.config.seed}: the seed "
                f"with the median final validation accuracy ({100 * val:.2f} %) of its {n_seeds}.")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in str(text))


def curves_per_mode(records: Sequence[RunRecord], mode: str, sels: Sequence[Selection], settings: dict,
                    directory: Path, paper_setting: bool) -> Figure:
    """Small multiples for one mode: a panel per (cost, output setting, momentum, l2) row and
    hidden-activation column; in each, one line per init at its own selected lr (mean over
    seeds, band min–max). A cell where no lr learns is drawn dashed and labelled at chance."""
    def row_of(s):
        return (s.cell.cost, s.cell.ce_outside, settings.get(s.cell, s.cell.output), s.cell.momentum, s.cell.l2)

    rows = sorted({row_of(s) for s in sels},
                  key=lambda k: (_order(k[0], ("ce", "mse", "cce")), k[1] != "clip", k[1], str(k[2]), k[3], k[4]))
    acts = sorted({s.cell.activation for s in sels}, key=lambda a: _order(a, tuple(ACT_COLORS)))
    fig, axes = _new(2.9 * len(acts) + 0.4, 2.3 * len(rows) + 0.5, ncols=len(acts), nrows=len(rows))
    for i, key in enumerate(rows):
        for j, act in enumerate(acts):
            ax = axes[i, j]
            panel = [s for s in sels if row_of(s) == key and s.cell.activation == act]
            for sel in sorted(panel, key=lambda s: _order(s.cell.init, INIT_ORDER)):
                cv = curve(records, sel.cell, sel.lr)
                if cv.values.size == 0:
                    continue
                color = INIT_COLORS.get(sel.cell.init)
                dead = sel.all_at_chance
                label = f"{sel.cell.init}: " + ("at chance at every lr" if dead else f"lr {sel.lr:g}")
                ax.plot(cv.epochs, 100 * cv.mean, color=color, label=label, linewidth=1.5,
                        linestyle="--" if dead else "-")
                if cv.values.shape[0] > 1:
                    ax.fill_between(cv.epochs, 100 * cv.low, 100 * cv.high, color=color, alpha=0.18, linewidth=0)
            cost, ce_out, out, mom, l2 = key
            cost = cost if ce_out == "clip" else f"{cost} ({ce_out})"
            out_text = "out = hidden" if out == "same" else f"{out} out"
            extra = (f", m {mom:g}" if mom else "") + (f", l2 {l2:g}" if l2 else "")
            ax.set_title(f"{cost}, {act} hidden, {out_text}{extra}", fontsize=8)
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if panel:
                ax.legend(fontsize=6, loc="lower right", framealpha=0.8)
            if i == len(rows) - 1:
                ax.set_xlabel("epoch", fontsize=8)
            if j == 0:
                ax.set_ylabel("val. accuracy (%)", fontsize=8)
    fig.suptitle(f"{mode} mode: validation accuracy per epoch at each cell's selected lr", fontsize=10)
    cf = (" In paper mode the panels of ce and mse are the paper's Figs. 6-11."
          if paper_setting and mode == "paper" else "")
    return save(fig, directory, f"curves_{_slug(mode)}",
                f"{mode} mode: validation accuracy per epoch, one panel per cost/output and hidden activation, one "
                f"line per initialisation at its selected lr (mean over seeds; band = min–max; dashed: no lr "
                f"learns).{cf}")


def lr_heatmap(mode: str, summaries: Sequence[CellSummary], selections: Sequence[Selection],
               directory: Path) -> Figure:
    """Mean final validation accuracy of every cell (rows) at every lr (columns), one mode."""
    cells = [s.cell for s in selections if s.cell.mode == mode]
    lrs = sorted({s.lr for s in summaries if s.cell.mode == mode}, reverse=True)
    grid = np.full((len(cells), len(lrs)), np.nan)
    idx = {(s.cell, s.lr): s for s in summaries}
    for i, c in enumerate(cells):
        for j, lr in enumerate(lrs):
            s = idx.get((c, lr))
            if s is not None and s.val.n:
                grid[i, j] = 100 * s.val.mean
    fig, axes = _new(1.1 * len(lrs) + 3.6, 0.34 * len(cells) + 1.5)
    ax = axes[0, 0]
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i in range(len(cells)):
        for j in range(len(lrs)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 60 else "black")
    chosen = {s.cell: s.lr for s in selections if not s.all_at_chance}  # no box where no lr learns
    for i, c in enumerate(cells):
        if chosen.get(c) in lrs:
            j = lrs.index(chosen[c])
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.6))
    ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
    dead = {s.cell for s in selections if s.all_at_chance}
    ax.set_yticks(range(len(cells)), [("(chance) " if c in dead else "")
                                      + f"{c.cost} · {c.activation}/{c.output} · {c.init}"
                                      + (f" · m{c.momentum:g}" if c.momentum else "")
                                      + (f" · l2 {c.l2:g}" if c.l2 else "") for c in cells], fontsize=8)
    ax.set_xlabel("learning rate")
    ax.set_title(f"{mode} mode: mean final validation accuracy (%)", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save(fig, directory, f"lr_heatmap_{_slug(mode)}",
                f"{mode} mode: learning-rate sensitivity, mean final validation accuracy (%) over seeds for "
                "every cell (hidden/output activation) and lr; the box marks the selected lr; cells marked "
                "(chance) learn at no lr and have none.")


def framework_note() -> str:
    return ", ".join(f"{k} {v:.5f}" for k, v in ref.FRAMEWORKS.items())
