"""Grid expansion: a spec -> one :class:`RunConfig` per (block, axis values, seed), and the
schedule groups the runner hands out as tasks.

A *schedule group* is every run that shares the data, the network shape and activations,
the minibatch schedule and the seed: ``(dataset, label, split, split_seed, hidden,
activation, output activation, batch_size, epochs, patience, dtype, seed)``. Runs in a
schedule group see the same minibatch order, so an engine can train them side by side.
Schedule groups depend only on the spec, never on the number of workers, so results do not
either. (The batched engine cuts a schedule group further by shape; see ``docs/batched.md``.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

from ..config import RunConfig
from ..errors import SgdlabError
from .records import run_key


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study: its position in expansion order, mode, config and store key."""

    index: int
    mode: str
    config: RunConfig
    key: str
    schedule: str  # the id of its schedule group


@dataclass(frozen=True)
class ScheduleGroup:
    """Runs that share a minibatch order (see module docstring); ``id`` is a stable hash."""

    id: str
    runs: tuple[PlannedRun, ...]


def schedule_id(config: RunConfig) -> str:
    """The stable id of the schedule group a config belongs to (16 hex digits; the store's ``group_id``)."""
    c = config
    parts = [c.dataset, c.label, list(c.split), c.split_seed, list(c.hidden), c.activation,
             c.output_activation, c.batch_size, c.epochs, c.patience, c.dtype, c.seed]
    if c.scale != "auto":  # left out at its default: group ids of stores written before it stay
        parts.append(c.scale)
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:16]


#: the most runs a study may have unless ``--max-runs`` (``max_runs``) says more
MAX_RUNS = 200_000


def count_runs(spec) -> int:
    """The number of runs ``spec`` expands to, counted without expanding it."""
    total = 0
    for block in spec.grid:
        n = len(spec.seeds)
        for axis in (block.cost, block.ce_outside, block.activation, block.output, block.init, block.momentum, block.l2,
                     block.bias_init, block.lr):
            n *= len(axis)
        total += n
    return total


def check_count(spec, max_runs: int | None = MAX_RUNS) -> int:
    """:func:`count_runs`, or :class:`SgdlabError` if it is above ``max_runs``."""
    n = count_runs(spec)
    limit = MAX_RUNS if max_runs is None else max_runs
    if n > limit:
        raise SgdlabError(f"{spec.source}: the spec expands to {n:,} runs, more than the limit of {limit:,}; "
                          "shrink the grid or the seeds, or raise the limit with --max-runs N")
    return n


def expand(spec, max_runs: int | None = MAX_RUNS) -> list[PlannedRun]:
    """Every run of ``spec`` in a fixed order: blocks as written, then the axes
    cost, ce_outside, activation, output, init, momentum, l2, bias_init, lr, and the seed innermost.

    The runs are counted first: more than ``max_runs`` is an :class:`SgdlabError`, before
    anything is allocated."""
    check_count(spec, max_runs)
    runs, seen = [], {}
    for bi, block in enumerate(spec.grid, 1):
        axes = (block.cost, block.ce_outside, block.activation, block.output, block.init, block.momentum, block.l2,
                block.bias_init, block.lr, spec.seeds)
        for cost, ce_out, act, out, init, mom, l2, bias, lr, seed in itertools.product(*axes):
            try:
                config = RunConfig(hidden=spec.hidden, activation=act, output=out, cost=cost, ce_outside=ce_out,
                                   init=init,
                                   bias_init=bias, lr=lr, batch_size=spec.batch_size, epochs=spec.epochs,
                                   seed=seed, momentum=mom, l2=l2, patience=spec.patience, dtype=spec.dtype,
                                   dataset=spec.dataset, label=spec.label, split=spec.split,
                                   split_seed=spec.split_seed, scale=spec.scale)
            except SgdlabError as e:
                raise SgdlabError(f"{spec.source}: grid[{bi}]: {e}") from None
            key = run_key(block.mode, config)
            if key in seen:
                raise SgdlabError(
                    f"{spec.source}: grid[{bi}]: mode {block.mode!r} repeats runs of grid[{seen[key]}] "
                    f"(e.g. {act}/{config.output_activation} + {cost}, {init}, lr {lr:g}); "
                    "give each run once")
            seen[key] = bi
            runs.append(PlannedRun(len(runs), block.mode, config, key, schedule_id(config)))
    return runs


def schedule_groups(runs: list[PlannedRun]) -> list[ScheduleGroup]:
    """Runs grouped by :func:`schedule_id`, in order of first appearance."""
    by: dict[str, list[PlannedRun]] = {}
    for r in runs:
        by.setdefault(r.schedule, []).append(r)
    return [ScheduleGroup(sid, tuple(rs)) for sid, rs in by.items()]
