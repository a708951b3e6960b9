"""How many threads BLAS may use while sgdlab trains.

The paper's networks are small: a product of ``(10, 65) @ (65, 32)`` is over before a second
BLAS thread has started, so a second thread only burns a core (measured: the single engine
on the paper grid took twice the CPU time for the same wall time with OpenBLAS's default of
one thread per core). :func:`blas_threads` holds BLAS to ``n`` threads inside a ``with``
block (through threadpoolctl, which scikit-learn brings; a no-op without it).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

SMALL_FLOP = 50e6  # below this many FLOP per product, one BLAS thread is as fast as several


def blas_threads(n: int):
    """Hold BLAS to ``n`` threads while the ``with`` block runs."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return nullcontext()
    return threadpool_limits(n, user_api="blas")


def is_small(sizes: Sequence[int], rows: int) -> bool:
    """Is the largest product of a network of layer ``sizes`` on ``rows`` rows at once
    (a minibatch, or a whole evaluated set) below :data:`SMALL_FLOP`?"""
    largest = max((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2 * largest * rows < SMALL_FLOP


def for_network(sizes: Sequence[int], rows: int):
    """One BLAS thread for a small network (:func:`is_small`), BLAS's own setting otherwise."""
    return blas_threads(1) if is_small(sizes, rows) else nullcontext()
