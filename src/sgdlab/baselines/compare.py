"""Run the baselines side by side, aggregate over seeds, and write tables and figures.

Computing and writing are separate: :func:`run_compare` trains and returns every seed's
:class:`SeedRun`; :func:`write_compare` stores them as ``runs.json`` under ``OUT/compare/``
and writes the tables and figures from that file (:func:`write_tables_and_figures`), which
never trains. (Rendering a study's report is :mod:`sgdlab.report`'s; it includes these files.)
"""

from __future__ import annotations

import csv
import importlib
import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data import Dataset
from ..errors import SgdlabError
from .common import (FRAMEWORKS, INSTALL, MODEL_NAMES, Model, NotInstalled, Reference, SeedRun, Variant,
                     check_seeds, models as make_models, parse_frameworks, parse_models, trajectory_deviation)

RUNNERS = {"sgdlab": "sgdlab_runner", "sklearn": "sklearn_runner", "torch": "torch_runner",
           "tensorflow": "tf_runner"}


def runner(framework: str):
    """The runner module of a framework (imports nothing heavy: each imports its package lazily)."""
    return importlib.import_module(f".{RUNNERS[framework]}", __package__)


@dataclass
class Row:
    """One table row: a variant aggregated over seeds (sample std, ddof=1, over >= 2 seeds)."""

    framework: str
    variant: str
    version: str
    dtype: str
    init: str
    status: str  # ok | diverged (some seed) | not installed | error
    notes: str
    seeds: int = 0
    val_mean: float = float("nan")
    val_std: float = float("nan")
    test_mean: float = float("nan")
    test_std: float = float("nan")
    seconds: float = float("nan")  # mean training seconds per seed
    samples_per_second: float = float("nan")
    deviation: float | None = None  # max over seeds of the max-over-epochs deviation
    final_deviation: float | None = None
    epochs: float | None = None  # mean epochs run
    curve: list[float] = field(default_factory=list)  # mean validation accuracy per epoch
    message: str = ""


@dataclass
class ModelComparison:
    model: Model
    data_summary: dict
    seeds: list[int]
    runs: list[SeedRun]
    variants: list[Variant]
    missing: dict[str, str]  # framework -> "not installed: ..." message

    def rows(self) -> list[Row]:
        return aggregate(self.runs, self.variants, self.missing)


def _mean_std(values):
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return float("nan"), float("nan")
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"))


def aggregate(runs: list[SeedRun], variants: list[Variant], missing: dict[str, str]) -> list[Row]:
    """Rows in the order of ``variants``; a missing framework gives one row of its own."""
    rows, done_missing = [], set()
    for v in variants:
        if v.framework in missing:
            if v.framework not in done_missing:
                done_missing.add(v.framework)
                rows.append(Row(v.framework, "-", "-", "-", "-", "not installed", missing[v.framework],
                                message=missing[v.framework]))
            continue
        rs = [r for r in runs if r.framework == v.framework and r.variant == v.key]
        if not rs:
            continue
        errors = [r for r in rs if r.status == "error"]
        ok = [r for r in rs if r.status in ("ok", "diverged")]
        status = "error" if errors else ("diverged" if any(r.status == "diverged" for r in rs) else "ok")
        row = Row(v.framework, v.key, rs[0].version, v.dtype, v.init, status, v.notes, seeds=len(rs))
        if errors:
            row.message = errors[0].message
        finished = [r for r in ok if r.status == "ok"]
        row.val_mean, row.val_std = _mean_std([r.val_final for r in finished])
        row.test_mean, row.test_std = _mean_std([r.test_acc for r in finished])
        row.seconds = _mean_std([r.seconds for r in ok])[0]
        row.samples_per_second = _mean_std([r.samples_per_second for r in ok])[0]
        row.deviation = max((r.deviation for r in ok if r.deviation is not None), default=None)
        row.final_deviation = max((r.final_deviation for r in ok if r.final_deviation is not None), default=None)
        row.epochs = _mean_std([r.epochs_run if r.epochs_run is not None else len(r.val_acc) for r in ok])[0]
        curves = [r.val_acc for r in finished if r.epochs_run is None and r.val_acc]
        if curves and len({len(c) for c in curves}) == 1:
            row.curve = [float(x) for x in np.mean(np.array(curves), axis=0)]
        msgs = sorted({r.message for r in rs if r.message})
        if msgs and not row.message:
            row.message = msgs[0] if len(msgs) == 1 else f"seed {rs[0].seed}: {rs[0].message}"
        rows.append(row)
    return rows


def _default_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_compare(data: Dataset, *, model_names=MODEL_NAMES, frameworks=FRAMEWORKS, seeds=(0, 1, 2),
                epochs: int = 30, progress: Callable[[str], None] | None = _default_progress,
                dataset_name: str | None = None, split=(0.6, 0.2, 0.2), split_seed: int = 0,
                sklearn_defaults: bool = True) -> dict[str, ModelComparison]:
    """Train every selected framework on every selected model for every seed.

    ``data`` is the split dataset (the same for every framework and seed). A framework whose
    package cannot be imported becomes a "not installed" row; an exception inside one run is
    recorded as an ``error`` row (with its message) and the comparison goes on.
    ``sklearn_defaults=False`` leaves out the rows of MLPClassifier with its default settings
    (they train for up to 200 epochs whatever ``epochs`` says).
    """
    model_names = parse_models(model_names)
    frameworks = parse_frameworks(frameworks)
    seeds = check_seeds(seeds)
    say = progress or (lambda line: None)
    all_models = make_models(epochs, dataset_name or data.name, split, split_seed)
    versions, missing = {}, {}
    for fw in frameworks:
        try:
            versions[fw] = runner(fw).version()
        except NotInstalled as e:
            missing[fw] = str(e)
            say(f"compare: {fw}: {e}")
    results = {}
    for name in model_names:
        model = all_models[name]
        variants = [v for fw in frameworks for v in runner(fw).VARIANTS if name in v.models
                    and (sklearn_defaults or not (v.framework == "sklearn" and v.key.startswith("defaults")))]
        runs: list[SeedRun] = []
        for seed in seeds:
            refs: dict[str, Reference] = {}

            def ref_for(dtype):
                if dtype not in refs:
                    refs[dtype] = runner("sgdlab").reference(model.config, data, seed, dtype)
                return refs[dtype]

            for v in variants:
                if v.framework in missing:
                    continue
                t0 = time.perf_counter()
                try:
                    ref = ref_for(v.dtype)
                    r = runner(v.framework).run(v, model.config, data, seed, ref)
                    if v.init == "sgdlab" and r.params:
                        r.deviation, r.final_deviation = trajectory_deviation(r.params, ref.params)
                    elif v.framework == "sgdlab" and v.dtype != "float64":
                        # sgdlab's own float32 run, against its float64 run: the size of a
                        # dtype's effect, to read the other float32 rows against.
                        r.deviation, r.final_deviation = trajectory_deviation(ref.params, ref_for("float64").params)
                    r.params = None
                except NotInstalled as e:  # imported once fine, then not (hidden mid-run)
                    missing[v.framework] = str(e)
                    say(f"compare: {v.framework}: {e}")
                    continue
                except Exception as e:  # one broken run must not sink the comparison
                    r = SeedRun(v.framework, v.key, seed, v.dtype, v.init, versions.get(v.framework, ""),
                                status="error", message=f"{type(e).__name__}: {e}")
                runs.append(r)
                say(_progress_line(name, seed, v, r, time.perf_counter() - t0))
        summary = {"dataset": dataset_name or data.name, "split": list(split), "split_seed": split_seed,
                   "n_train": len(data.y_train), "n_val": len(data.y_val), "n_test": len(data.y_test),
                   "sizes": model.sized(data), "epochs": epochs}
        results[name] = ModelComparison(model, summary, seeds, runs, variants, dict(missing))
    return results


def _progress_line(model, seed, v, r, wall):
    head = f"compare: {model} seed {seed}: {v.framework} {v.key}"
    if r.status == "error":
        return f"{head}: error: {r.message}"
    s = f"{head}: val {r.val_final:.4f} test {r.test_acc:.4f} in {r.seconds:.2f} s"
    if r.deviation is not None and v.framework == "sgdlab":
        s += "" if v.dtype == "float64" else f", deviation from sgdlab float64 {r.deviation:.1e}"
    elif r.deviation is not None:
        s += f", deviation from sgdlab {r.deviation:.1e}"
    if r.status != "ok":
        s += f" ({r.status})"
    return s + f" [{wall:.1f} s wall]"


# -- storing and writing --------------------------------------------------------------------

def write_compare(results: dict[str, ModelComparison], out: str | Path) -> list[Path]:
    """Store the runs as ``OUT/compare/runs.json`` and write tables and figures from it."""
    folder = Path(out) / "compare"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SgdlabError(f"--out: cannot create {folder}: {e.strerror or e}") from None
    doc = {name: {"title": mc.model.title, "config": mc.model.config.to_dict(), "data": mc.data_summary,
                  "seeds": mc.seeds, "missing": mc.missing,
                  "variants": [asdict(v) for v in mc.variants],
                  "runs": [r.to_dict() for r in mc.runs]}
           for name, mc in results.items()}
    path = folder / "runs.json"
    path.write_text(json.dumps(doc, indent=1))
    return [path, *write_tables_and_figures(folder)]


def write_tables_and_figures(folder: str | Path) -> list[Path]:
    """Markdown + CSV tables and PNG + SVG figures from ``folder/runs.json`` (no training)."""
    folder = Path(folder)
    doc = json.loads((folder / "runs.json").read_text())
    written = []
    for name, d in doc.items():
        variants = [Variant(**{**v, "models": tuple(v["models"])}) for v in d["variants"]]
        runs = [SeedRun.from_dict(r) for r in d["runs"]]
        rows = aggregate(runs, variants, d["missing"])
        written += [_write_markdown(folder / f"{name}.md", d, rows),
                    _write_csv(folder / f"{name}.csv", name, rows)]
        written += _write_figure(folder / f"{name}_val_acc", d, rows)
    return written


def _fmt_acc(mean, std):
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.4f} ± {std:.4f}" if math.isfinite(std) else f"{mean:.4f}"


def _fmt_num(x, spec):
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def _dev_cell(r: Row) -> str:
    if r.framework == "sgdlab":
        return "reference" if r.dtype == "float64" else f"{_fmt_num(r.deviation, '.1e')} (vs float64)"
    return _fmt_num(r.deviation, ".1e")


INIT_LABEL = {"sgdlab": "sgdlab's", "own": "own", "-": "-"}


def table_markdown(rows: list[Row]) -> str:
    head = ("| framework | row | version | dtype | init | validation acc | test acc | train s | samples/s "
            "| deviation from sgdlab | notes |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        if r.status == "not installed":
            lines.append(f"| {r.framework} | - | - | - | - | - | - | - | - | - | {r.message} |")
            continue
        notes = r.notes
        if r.epochs is not None and r.curve == [] and r.status == "ok":
            notes += f" ({r.epochs:g} epochs run)"
        if r.message:
            notes += f"; {r.message}"
        if r.status != "ok":
            notes = f"**{r.status}**: {notes}"
        lines.append(f"| {r.framework} | {r.variant} | {r.version} | {r.dtype} | {INIT_LABEL.get(r.init, r.init)} | "
                     f"{_fmt_acc(r.val_mean, r.val_std)} | {_fmt_acc(r.test_mean, r.test_std)} | "
                     f"{_fmt_num(r.seconds, '.2f')} | {_fmt_num(r.samples_per_second, ',.0f')} | "
                     f"{_dev_cell(r)} | {notes.replace('|', '/')} |")
    return "\n".join(lines)


NOTES = """\
- Accuracy is the fraction of rows whose largest output is the label, after the last epoch, mean ± sample
  standard deviation over the seeds. *train s* counts the training steps only (evaluation excluded), mean
  per seed; *samples/s* is epochs x training rows / train s. These networks are tiny, so the per-step
  overhead of each framework dominates the time, not arithmetic.
- *init sgdlab's*: the row starts from sgdlab's initial weights for the same seed (xavier N(0,1)/sqrt(fan_in)
  weights, N(0,1) biases) and is fed sgdlab's minibatch order, so its parameters can be compared with sgdlab's
  after every epoch. *deviation from sgdlab* is the largest |parameter difference| over all parameters and
  epoch ends, largest over the seeds, against sgdlab's run in the same dtype; sgdlab's float32 row gives
  its own distance from sgdlab's float64 run, the scale to read the other float32 rows against.
- *init own*: the framework's own initialiser and shuffling, seeded by the run's seed, as its users would
  write it. scikit-learn's MLPClassifier draws weights *and* biases uniformly in ±sqrt(2/(fan_in+fan_out))
  for logistic units; Keras draws Glorot-uniform kernels and zero biases.
- scikit-learn has no output-activation parameter: class labels give a softmax output with log-loss (the
  corrected model); a one-hot target matrix (its multilabel mode) gives logistic outputs with binary
  log-loss summed over the outputs, which is the paper's sigmoid + ce. The paper's model is trained here
  that way and scored by the argmax of predict_proba. The *defaults* rows use class labels (softmax).
- PyTorch and TensorFlow fold the output activation into the loss (sigmoid + binary cross-entropy from
  logits, summed over the outputs and averaged over the minibatch for ce; log-softmax + NLL for cce):
  the same gradient a - y that sgdlab uses, without rounding log(1 - a) of a saturated sigmoid.
- Keras's own *binary_crossentropy* averages over the outputs where the paper's ce sums them, so the
  Keras own-init row of the paper's model trains with a tenth of the gradient.
"""


def _write_markdown(path, d, rows):
    cfg, data = d["config"], d["data"]
    sizes = "-".join(str(s) for s in data["sizes"])
    seeds = d["seeds"]
    text = [f"### Baselines: {d['title']}", "",
            f"{data['dataset']} {sizes}, split {'/'.join(f'{s:g}' for s in data['split'])} (split seed "
            f"{data['split_seed']}: {data['n_train']} train, {data['n_val']} validation, {data['n_test']} test), "
            f"{cfg['init']} init, plain SGD lr {cfg['lr']:g}, batch {cfg['batch_size']}, {data['epochs']} epochs, "
            f"seeds {', '.join(map(str, seeds))}.", "",
            table_markdown(rows), "", NOTES]
    path.write_text("\n".join(text))
    return path


CSV_FIELDS = ("model", "framework", "variant", "version", "dtype", "init", "status", "seeds", "val_acc_mean",
              "val_acc_std", "test_acc_mean", "test_acc_std", "train_seconds", "samples_per_second",
              "deviation_from_sgdlab", "final_deviation_from_sgdlab", "epochs", "notes", "message")


def _write_csv(path, name, rows):
    def num(x):
        return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else repr(float(x))

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in rows:
            w.writerow([name, r.framework, r.variant, r.version, r.dtype, r.init, r.status, r.seeds,
                        num(r.val_mean), num(r.val_std), num(r.test_mean), num(r.test_std), num(r.seconds),
                        num(r.samples_per_second), num(r.deviation), num(r.final_deviation), num(r.epochs),
                        r.notes, r.message])
    return path


STYLES = {"sgdlab": ("C0", "-"), "sklearn": ("C1", "--"), "torch": ("C3", ":"), "tensorflow": ("C2", "-.")}


def _write_figure(stem: Path, d, rows) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    curves = [r for r in rows if r.curve]
    for r, marker in zip(curves, itertools.chain("os^vD<>px*h", itertools.repeat("o"))):
        color, ls = STYLES.get(r.framework, ("k", "-"))
        epochs = np.arange(1, len(r.curve) + 1)
        ax.plot(epochs, r.curve, ls, color=color, marker=marker, markevery=max(1, len(epochs) // 10),
                markersize=4, linewidth=1.2, alpha=0.85,
                label=f"{r.framework} {r.variant} ({INIT_LABEL.get(r.init, r.init)} init)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation accuracy ({d['data']['n_val']} rows), mean over {len(d['seeds'])} seed(s)")
    ax.set_title(d["title"], fontsize=9)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no per-epoch curves (no framework ran)", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


__all__ = ["run_compare", "write_compare", "write_tables_and_figures", "aggregate", "table_markdown", "Row", "ModelComparison",
           "INSTALL"]
