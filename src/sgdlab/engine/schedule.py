"""The minibatch schedule, written once for every engine and the baselines' shared order.

Each seed's shuffle stream (:func:`sgdlab.config.rng_streams`) draws one permutation of the
training rows per epoch; consecutive ``batch_size`` slices of it are the minibatches, the last
smaller one kept.
"""

from __future__ import annotations

import numpy as np

from ..config import rng_streams


def shuffle_stream(seed: int) -> np.random.Generator:
    """The stream that draws a run's minibatch order (the second of :func:`rng_streams`)."""
    return rng_streams(seed)[1]


def epoch_order(rng: np.random.Generator, n: int) -> np.ndarray:
    """One epoch's order of the ``n`` training rows (one draw from the shuffle stream)."""
    return rng.permutation(n)


def minibatches(n: int, batch_size: int) -> list[slice]:
    """The minibatches of an epoch as slices of its order: ``batch_size`` rows each, the last
    smaller one kept."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def batches(perm: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The minibatches of the order ``perm`` as index arrays."""
    return [perm[s] for s in minibatches(len(perm), batch_size)]


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's minibatches as index arrays: a fresh order, cut into minibatches."""
    return batches(epoch_order(rng, n), batch_size)


def epoch_permutations(seed: int, n: int, epochs: int) -> list[np.ndarray]:
    """A seed's order for each of ``epochs`` epochs, drawn as the engines draw them."""
    rng = shuffle_stream(seed)
    return [epoch_order(rng, n) for _ in range(epochs)]
