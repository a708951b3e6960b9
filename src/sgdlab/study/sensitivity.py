"""Which cells' outcomes are rounding-sensitive: measured once at study time, read by the report.

Some runs are chaotic: a difference in the last bit of one number (another BLAS kernel on
another CPU, the batched engine's summation order against the single engine's) grows until
the final accuracy is another. Their numbers do not reproduce exactly across machines or
engines; the others do. This module measures which cells are like that.

Measurement
    For each cell, at its selected learning rate, the median seed
    (:func:`~sgdlab.study.analysis.representative_run`) is trained again on the single
    engine with every training input moved by one rounding step, ``X_train * (1 + 2**-52)``
    (validation and test inputs unchanged).

Criterion (:data:`CRITERION`)
    The cell is *rounding-sensitive* when that retrained run ends with another status
    (done / diverged) than the stored run, or with a final validation accuracy more than one
    validation image (``1 / n_val``) away from it. One image is tolerated: a stable run can
    move a single borderline image.

The runner measures every selected cell after the grid (:func:`measure_missing`: one extra
run per cell, in the study's processes) and keeps the results in the store's
``sensitivity`` table, keyed by the retrained run's key; rendering only reads them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from .analysis import representative_run, run_accuracy, select_records
from .records import FINISHED, RunRecord

STEP = 2.0 ** -52  # one rounding step of a float64 in [1, 2)
CRITERION = ("retrained on the single engine at its selected lr (median seed) with every training input multiplied "
             "by (1 + 2^-52), one rounding step, the run ends with another status or a final validation "
             "accuracy more than one validation image (1/n_val) away from the stored run's")


def perturbed(data):
    """``data`` with its training inputs moved by one rounding step (validation and test unchanged)."""
    return dataclasses.replace(data, X_train=data.X_train * (1.0 + STEP))


def targets(records: Sequence[RunRecord]) -> list[RunRecord]:
    """The run measured per cell: the median seed at the cell's selected lr."""
    out = []
    for sel in select_records(records):
        rep = representative_run(records, sel)
        if rep is not None:
            out.append(rep)
    return out


def measure(record: RunRecord) -> dict:
    """Retrain ``record`` with perturbed training inputs and compare (see the module docstring)."""
    from ..engine import train
    from .runner import _dataset_for

    data = _dataset_for(record.config)
    with np.errstate(all="ignore"):
        res = train(record.config, perturbed(data))
        preds = res.network.predict(data.X_test) if res.history.status in FINISHED else None
    n_val = len(data.y_val)
    stored = run_accuracy(record)
    new = run_accuracy(RunRecord(record.key, record.mode, record.config, res.history.status,
                                 res.history.final(), res.history))
    changed = None
    if preds is not None and record.test_predictions is not None:
        changed = int(np.sum(np.asarray(record.test_predictions) != preds))
    sensitive = res.history.status != record.status or abs(new - stored) * n_val > 1 + 1e-9
    return {"cell": record.cell.label(), "lr": record.config.lr, "seed": record.config.seed,
            "stored_engine": record.engine, "engine": "single", "step": STEP, "n_val": n_val,
            "stored_status": record.status, "status": res.history.status,
            "stored_val_acc": stored, "val_acc": new, "test_predictions_changed": changed,
            "sensitive": bool(sensitive)}


def measure_missing(store, jobs: int = 1, log: Callable[[str], None] | None = None) -> int:
    """Measure every selected cell of the study in ``store`` (writable) not measured yet;
    returns how many runs it trained. A cell whose selection moved (more seeds after a
    resume) is measured again at its new median run."""
    records = store.records()
    have = store.sensitivity()
    todo = [r for r in targets(records) if r.key not in have]
    if not todo:
        return 0
    if log:
        log(f"rounding sensitivity: retraining {len(todo)} run{'s' * (len(todo) != 1)} (one per cell) with "
            "inputs moved by one rounding step")
    if jobs <= 1 or len(todo) == 1:
        results = [measure(r) for r in todo]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=min(jobs, len(todo)))(delayed(measure)(r) for r in todo)
    store.write_sensitivity({r.key: res for r, res in zip(todo, results)})
    return len(todo)


def sensitive_cells(records: Sequence[RunRecord], rows: dict[str, dict]) -> dict:
    """``{cell: result}`` for the cells whose current median run was measured."""
    return {r.cell: rows[r.key] for r in targets(records) if r.key in rows}
