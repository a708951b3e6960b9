"""Loss and accuracy of every model of a stack on the train, validation and test sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..diagnostics import ValidationStats
from ..kernels import loss_sums
from .data import GroupData
from .stack import Stack, models_first

EVAL_BYTES = 1 << 20  # evaluation handles about this many bytes of activations at a time
EVAL_ROWS = 360  # ... in chunks of at most this many rows


@dataclass
class Metrics:
    """Loss and accuracy of each model of a stack on one part of the data, shape ``(K,)``."""

    loss: np.ndarray
    acc: np.ndarray


def evaluate(stack: Stack, prep: "GroupData", stats: ValidationStats | None = None,
             parts: Sequence[int] = (0, 1, 2)) -> list[Metrics]:
    """Loss and accuracy of every model on the train, validation and test sets, as the single
    engine computes them (the forward pass, the cost's mean value, the share of rows whose
    largest output is the label).

    The three sets are one matrix ``X_all``, cut into chunks of at most ``EVAL_ROWS`` rows
    inside each part; the models in blocks of about ``EVAL_BYTES`` of activations per chunk,
    so a block's first layer is one GEMM, ``(rows, n_in + 1) @ (n_in + 1, k * fan_out)``, and
    everything stays in cache. Later layers add their bias after the product (no column of
    ones to copy into).

    ``stats``: each layer's outputs on the validation rows are added to it (the diagnostics,
    see :mod:`sgdlab.engine.diagnostics`). ``parts``: the parts evaluated (0 train, 1
    validation, 2 test); the others' metrics are NaN."""
    K, sizes, dtype = stack.K, stack.sizes, stack.dtype
    out = [Metrics(np.zeros(K), np.zeros(K)) for _ in prep.bounds]
    rows = min(EVAL_ROWS, max(r1 - r0 for r0, r1 in prep.bounds))
    per_model = dtype.itemsize * rows * (sum(sizes[1:]) + sizes[-1])
    step = max(1, min(K, EVAL_BYTES // per_model))
    h1 = sizes[1]
    sign, offset = prep.ce_terms
    for k0 in range(0, K, step):
        k1 = min(k0 + step, K)
        segments = [(max(s.start, k0) - k0, min(s.stop, k1) - k0, s.cost) for s in stack.segments
                    if s.start < k1 and s.stop > k0]
        weights = [blk[k0:k1, :-1] for blk in stack.blocks[1:]]
        biases = [blk[k0:k1, -1][None] for blk in stack.blocks[1:]]
        first = stack.first[k0 * h1:k1 * h1].T
        for i, (p0, p1) in enumerate(prep.bounds):
            if i not in parts:
                continue
            for r0 in range(p0, p1, rows):
                r1 = min(r0 + rows, p1)
                zs, a, tmp = stack.eval_buffers(r1 - r0, k1 - k0)
                np.matmul(prep.X_all[r0:r1], first, out=zs[0].reshape(r1 - r0, -1))
                for l in range(1, len(stack.layers)):
                    stack.hidden_into(zs[l - 1], zs[l - 1])
                    np.matmul(models_first(zs[l - 1]), weights[l - 1], out=models_first(zs[l]))
                    zs[l] += biases[l - 1]
                stack.out_into(zs[-1], a)
                if stats is not None and i == 1:
                    for l in range(len(stack.layers) - 1):  # zs[l] holds the activations
                        stats.add(l, models_first(zs[l]), k0)
                    stats.add(len(stack.layers) - 1, models_first(a), k0)
                hits = np.argmax(a, axis=2) == prep.y_all[r0:r1, None]
                out[i].acc[k0:k1] += np.count_nonzero(hits, axis=0)
                for j0, j1, cost in segments:
                    out[i].loss[k0 + j0:k0 + j1] += loss_sums(cost, a[:, j0:j1], prep.Y_mask[r0:r1],
                                                             tmp[:, j0:j1], (sign[r0:r1], offset[r0:r1]))
    for i, (m, (p0, p1)) in enumerate(zip(out, prep.bounds)):
        if p1 > p0 and i in parts:
            m.loss /= p1 - p0
            m.acc /= p1 - p0
        else:
            m.loss[:] = m.acc[:] = np.nan
    return out
