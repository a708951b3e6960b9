"""Paired comparisons of two settings over seeds, and Holm's correction for several of them.

Runs with the same seed share their initial-weight stream and minibatch order, so two
settings are compared seed by seed: ``d_s = a_s - b_s``. The effect is the mean of ``d``
with a 95 % t interval; the tests are the paired t-test (``scipy.stats.ttest_1samp`` on
``d``, the same as ``ttest_rel``) and the Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``, zero differences dropped). With five seeds the smallest
two-sided Wilcoxon p is 1/16 = 0.0625, so the t-test is the one that decides; Wilcoxon is
shown as the check that does not assume normal differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Paired:
    """``a - b`` over ``n`` pairs: mean, 95 % interval, two-sided p values.

    ``ci``, ``p_t`` and ``p_wilcoxon`` are None with fewer than two pairs. ``p_holm`` is the
    t-test p after :func:`holm` over the family it was compared in (None until then).
    """

    n: int
    mean: float
    ci: tuple[float, float] | None
    p_t: float | None
    p_wilcoxon: float | None
    p_holm: float | None = None

    @property
    def p(self) -> float | None:
        """The p that decides: Holm-adjusted when set, else the raw t-test p."""
        return self.p_holm if self.p_holm is not None else self.p_t

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p is not None and self.p < alpha


def paired(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Paired:
    """Compare ``a`` and ``b`` pair by pair (same length, same order of seeds)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired: need two 1-d arrays of one length, got {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    if n == 0:
        return Paired(0, float("nan"), None, None, None)
    mean = float(d.mean())
    if n < 2:
        return Paired(n, mean, None, None, None)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    if sd <= 1e-12 * max(1.0, abs(mean)):
        # Every pair differs by the same amount (up to float rounding): t is infinite (p = 0)
        # or undefined (all equal).
        p_t = 1.0 if abs(mean) <= 1e-12 else 0.0
    else:
        p_t = float(stats.ttest_1samp(d, 0.0).pvalue)
    nonzero = d[d != 0]
    p_w = 1.0 if len(nonzero) == 0 else float(stats.wilcoxon(nonzero).pvalue)
    return Paired(n, mean, (mean - half, mean + half), p_t, p_w)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment: the k-th smallest of m p values becomes
    ``max_{j <= k} min(1, (m - j + 1) p_(j))``. None (no test) stays None and is not counted."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def with_holm(results: Sequence[Paired]) -> list[Paired]:
    """``results`` with ``p_holm`` set over them as one family."""
    adjusted = holm([r.p_t for r in results])
    return [replace(r, p_holm=p) for r, p in zip(results, adjusted)]
