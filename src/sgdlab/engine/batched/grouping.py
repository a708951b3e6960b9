"""Which stacks the batched engine trains: models grouped by what they must share
(:class:`GroupKey`), cut into stacks within a memory budget."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...config import RunConfig
from ...data import Dataset
from ...nn.costs import cost_rule

DEFAULT_MAX_BYTES = 3 << 29  # 1.5 GiB: 10,000 models of 64-32-16-10 (with momentum and L2) in one stack
CACHE_MODELS = 64  # stacks hold at most this many models (cache-sized; two per group of the paper grid)


@dataclass(frozen=True)
class GroupKey:
    """What the models trained in one stack must share."""

    sizes: tuple[int, ...]
    activation: str
    output: str
    batch_size: int
    dtype: str


def group_key(config: RunConfig, n_features: int, n_classes: int) -> GroupKey:
    return GroupKey((n_features, *config.hidden, n_classes), config.activation, config.output_activation,
                    config.batch_size, config.dtype)


def n_params(sizes: Sequence[int]) -> int:
    """Weights and biases of one network: ``P = sum (fan_in + 1) * fan_out``."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def bytes_per_model(sizes: Sequence[int], batch_size: int, dtype="float64", momentum: bool = False,
                    l2: bool = False) -> int:
    """Bytes one model takes in a stack while training: the unit of the chunking budget.

    ``itemsize * ((3 + momentum + l2) P + 2 * batch * (sizes[0] + 1 + sizes[-1])
    + 4 * batch * sum(sizes[1:] + 1)) + P + 16 * batch``: parameters, gradients and the
    update's scratch (plus a velocity with momentum and a decay row with L2), the gathered
    minibatch and its targets for two batch sizes (the full one and the last, smaller one),
    per layer the pre-activations, activations, deltas and scratch, the end-of-epoch
    finiteness mask and the int64 minibatch indices. Evaluation works on a fixed slice of
    ``EVAL_BYTES``; the returned networks (``itemsize * P`` each) are not counted.
    """
    item = np.dtype(dtype).itemsize
    P = n_params(sizes)
    per_batch = 2 * batch_size * (sizes[0] + 1 + sizes[-1]) + 4 * batch_size * sum(s + 1 for s in sizes[1:])
    return int(item * ((3 + bool(momentum) + bool(l2)) * P + per_batch) + P + 16 * batch_size)


def chunk_size(sizes: Sequence[int], batch_size: int, dtype="float64", momentum=False, l2=False,
               max_bytes: int | None = None) -> int:
    """How many models of a group train in one stack within ``max_bytes`` (at least one)."""
    budget = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    return max(1, budget // bytes_per_model(sizes, batch_size, dtype, momentum, l2))


def _cut(members: list[int], size: int) -> list[list[int]]:
    """``members`` in equal consecutive chunks of at most ``size``."""
    n_chunks = -(-len(members) // size)
    size = -(-len(members) // n_chunks)
    return [members[c0:c0 + size] for c0 in range(0, len(members), size)]


def plan(configs: Sequence[RunConfig], data: Dataset, max_bytes: int | None = None,
         threads: int = 1) -> list[tuple[GroupKey, list[int]]]:
    """The stacks :func:`train_many` trains: ``(group key, config indices)`` per stack.

    Per group (:class:`GroupKey`) the configs are ordered by cost (one contiguous segment
    per cost), then seed (blocks of models that share a minibatch), then position, and cut
    into equal chunks of at most ``CACHE_MODELS`` models that fit the memory budget
    (``max_bytes``, divided among the threads). When there are fewer stacks than threads,
    the largest are halved. How the models are cut changes their results only by float
    rounding (a BLAS product may sum in another order for another matrix width).
    """
    groups: dict[GroupKey, list[int]] = defaultdict(list)
    for i, c in enumerate(configs):
        groups[group_key(c, data.n_features, data.n_classes)].append(i)
    budget = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    out = []
    for key, members in groups.items():
        members = sorted(members, key=lambda i: (cost_rule(configs[i].cost, configs[i].ce_outside), configs[i].seed, i))
        momentum = any(configs[i].momentum for i in members)
        l2 = any(configs[i].l2 for i in members)
        limit = min(CACHE_MODELS, chunk_size(key.sizes, key.batch_size, key.dtype, momentum, l2,
                                             budget // threads))
        out.extend((key, chunk) for chunk in _cut(members, limit))
    while len(out) < threads:
        j = max(range(len(out)), key=lambda j: len(out[j][1]), default=None)
        if j is None or len(out[j][1]) < 2:
            break
        key, members = out.pop(j)
        out.extend((key, chunk) for chunk in _cut(members, -(-len(members) // 2)))
    return out
