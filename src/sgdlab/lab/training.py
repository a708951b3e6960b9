"""One lab training: the engine's own ``train()``, observed after every epoch.

The network is built here with :func:`sgdlab.engine.loop.build_network` (the same
initialisation ``train()`` would make) and handed to ``train(..., network=net)``, which
updates ``net.weights`` in place after every epoch; the epoch callback reads them, so the
engine is used exactly as the command line uses it, without any change for the lab.
Non-finite floats in the events are written as JSON null by the app.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..data import load_dataset
from ..study.analysis import confusion_matrix
from ..engine.loop import METRICS, build_network, train

MAX_UNITS_SHOWN = 32  # first-layer units drawn as images
MAX_MISCLASSIFIED = 8

_load_dataset = functools.cache(load_dataset)


def dataset_for(config):
    """The config's (bundled) dataset, split as it says; loaded once per lab process."""
    return _load_dataset(config.dataset, config.split, config.split_seed, config.label, config.scale)


def image_shape(data) -> tuple[int, int] | None:
    """(rows, cols) when a sample is an image (digits: 8x8), else None."""
    if data.images is not None and data.images.ndim == 3:
        rows, cols = data.images.shape[1:]
        if rows * cols == data.n_features:
            return int(rows), int(cols)
    return None


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def weights_view(net, shape) -> dict | None:
    """The first layer's incoming weights of the first units, one image per unit.

    Values are scaled by the largest |w| shown (``scale``) to integers in [-127, 127], so
    the page draws them on one colour scale and a growing or exploding layer shows as such.
    """
    if shape is None:
        return None
    W = np.asarray(net.weights[0], dtype=np.float64)[:, :MAX_UNITS_SHOWN]
    finite = np.isfinite(W)
    scale = float(np.max(np.abs(W[finite]))) if finite.any() else 0.0
    q = np.zeros_like(W) if scale == 0 else np.where(finite, np.round(W / scale * 127), 0)
    return {"rows": shape[0], "cols": shape[1], "scale": scale, "units": int(net.weights[0].shape[1]),
            "nonfinite": int((~finite).sum()), "images": q.T.astype(int).tolist()}


def diagnostics_rows(history, start: int) -> tuple[dict, int]:
    """Per-layer diagnostics rows from ``start`` on, as recorded by the engine (when it does).

    ``history.diagnostics`` maps a metric name to rows over epochs (row 0: the initial
    weights) of per-layer values, NaN where a metric does not apply to a layer. Returns
    ``({name: rows[start:]}, rows recorded)``; empty when the engine records none.
    """
    diag = getattr(history, "diagnostics", None) or {}
    n = min((len(rows) for rows in diag.values()), default=0)
    if n <= start:
        return {}, start
    out = {name: [[finite_or_none(v) for v in row] for row in rows[start:n]] for name, rows in diag.items()}
    return out, n


def run(job, emit, check) -> None:
    """Train ``job.config`` and publish ``start``, one ``epoch`` per epoch, and ``end``."""
    config = job.config
    data = dataset_for(config)
    net = build_network(config, data.n_features, data.n_classes)
    shape = image_shape(data)
    emit({"type": "start", "label": job.label, "config": config.to_dict(), "sizes": list(net.sizes),
          "epochs": config.epochs, "classes": [str(c) for c in data.classes],
          "weights": weights_view(net, shape)})
    sent = 0

    def on_epoch(epoch, history):
        nonlocal sent
        check()
        diag, sent_now = diagnostics_rows(history, sent)
        emit({"type": "epoch", "epoch": epoch, "weights": weights_view(net, shape), "diagnostics": diag,
              "diag_from": sent, **{m: getattr(history, m)[-1] for m in METRICS}})
        sent = sent_now

    history = train(config, data, network=net, on_epoch=on_epoch).history
    check()
    diag, _ = diagnostics_rows(history, sent)
    with np.errstate(all="ignore"):  # a diverged network predicts garbage, quietly
        pred = np.asarray(net.predict(data.X_test.astype(net.dtype)), dtype=int)
    wrong = np.flatnonzero(pred != data.y_test)
    missed = []
    if shape is not None:
        top = float(np.max(data.X_train)) or 1.0
        for i in wrong[:MAX_MISCLASSIFIED]:
            pixels = np.clip(np.round(data.X_test[i] / top * 255), 0, 255).astype(int).tolist()
            missed.append({"true": str(data.classes[data.y_test[i]]), "predicted": str(data.classes[pred[i]]),
                           "pixels": pixels})
    rows, cols = shape or (None, None)
    emit({"type": "end", "status": history.status, "diagnosis": getattr(history, "diagnosis", None),
          "diverged_epoch": history.diverged_epoch, "stopped_epoch": history.stopped_epoch,
          "final": history.final(), "diagnostics": diag, "diag_from": sent,
          "confusion": confusion_matrix(data.y_test, pred, data.n_classes).tolist(),
          "misclassified": missed, "n_misclassified": int(wrong.size), "rows": rows, "cols": cols,
          "weights": weights_view(net, shape)})
