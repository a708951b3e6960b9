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
import math
from dataclasses import dataclass

from ..config import RunConfig
from ..errors import SgdlabError
from .records import run_key
from .spec import AXES


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
    return len(spec.seeds) * sum(math.prod(len(getattr(block, a)) for a in AXES) for block in spec.grid)


def check_count(spec, max_runs: int | None = MAX_RUNS) -> int:
    """:func:`count_runs`, or :class:`SgdlabError` if it is above ``max_runs``."""
    n = count_runs(spec)
    limit = MAX_RUNS if max_runs is None else max_runs
    if n > limit:
        raise SgdlabError(f"{spec.source}: the spec expands to {n:,} runs, more than the limit of {limit:,}; "
                          "shrink the grid or the seeds, or raise the limit with --max-runs N")
    return n


def expand(spec, max_runs: int | None = MAX_RUNS) -> list[PlannedRun]:
    """Every run of ``spec`` in a fixed order: blocks as written, then the axes in the order of
    :data:`~sgdlab.study.spec.AXES`, and the seed innermost.

    The runs are counted first: more than ``max_runs`` is an :class:`SgdlabError`, before
    anything is allocated."""
    check_count(spec, max_runs)
    shared = {k: getattr(spec, k) for k in ("hidden", "batch_size", "epochs", "patience", "dtype", "dataset", "label",
                                            "split", "split_seed", "scale")}
    runs, seen = [], {}
    for bi, block in enumerate(spec.grid, 1):
        for *values, seed in itertools.product(*(getattr(block, a) for a in AXES), spec.seeds):
            try:
                config = RunConfig(**shared, **dict(zip(AXES, values)), seed=seed)
            except SgdlabError as e:
                raise SgdlabError(f"{spec.source}: grid[{bi}]: {e}") from None
            key = run_key(block.mode, config)
            if key in seen:
                c = config
                raise SgdlabError(
                    f"{spec.source}: grid[{bi}]: mode {block.mode!r} repeats runs of grid[{seen[key]}] "
                    f"(e.g. {c.activation}/{c.output_activation} + {c.cost}, {c.init}, lr {c.lr:g}); "
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
