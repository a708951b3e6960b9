"""Training the stacks: one to the end (:func:`train_stack`, each model's
:class:`~sgdlab.engine.history.EpochBook`), and all of a list of configs
(:func:`train_many`) on threads or in worker processes."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ...config import RunConfig
from ...data import Dataset
from ...errors import SgdlabError
from ..blas import blas_threads as _blas_threads
from ..diagnostics import Recorder, append_row, conclude
from ..history import EpochBook, History
from ..loop import TrainResult
from ..schedule import shuffle_stream
from .data import GroupData, prepare_group_data
from .evaluate import evaluate
from .grouping import plan
from .stack import Stack
from .step import train_epoch

OnEpoch = Callable[[int, int, History], None]


def train_stack(stack: Stack, prep: GroupData, results: dict, on_epoch: OnEpoch | None = None,
                diagnostics: bool = True) -> None:
    """Train one stack to the end; put each model's :class:`TrainResult` in ``results``
    under its index. ``diagnostics``: record the per-layer diagnostics
    (:mod:`sgdlab.engine.diagnostics`)."""
    streams = {s: shuffle_stream(s) for s in sorted({c.seed for c in stack.configs})}
    books = {int(i): EpochBook(c.patience if prep.has_val else None) for i, c in zip(stack.indices, stack.configs)}
    epochs = max(c.epochs for c in stack.configs)
    v0, v1 = prep.bounds[1]
    y_val = prep.y_all[v0:v1]
    L = len(stack.layers)
    recorder = Recorder(stack.configs, stack.sizes, -(-prep.n // stack.key.batch_size)) if diagnostics else None
    with np.errstate(all="ignore"):
        if recorder is not None:  # epoch 0: the initial weights
            stats = recorder.validation()
            evaluate(stack, prep, stats, parts=(1,))
            row = recorder.row([stack.layer(l) for l in range(L)], stats, initial=True)
            for j, gi in enumerate(stack.indices.tolist()):
                append_row(books[gi].history.diagnostics, row, j)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            train_epoch(stack, prep, streams, None if recorder is None else recorder.grads)
            seconds = (time.perf_counter() - t0) / stack.K
            stats = None if recorder is None else recorder.validation()
            m = evaluate(stack, prep, stats)
            row = None
            if recorder is not None:
                # an lr_folded stack's gradients carry the learning rate (see Stack.scale)
                row = recorder.row([stack.layer(l) for l in range(L)], stats,
                                   grad_scale=1.0 / stack._factor.ravel())
            finite = np.isfinite(m[0].loss) & stack.finite()
            keep = np.empty(stack.K, dtype=bool)
            for j, (gi, c) in enumerate(zip(stack.indices.tolist(), stack.configs)):
                book = books[gi]
                metrics = {part: (mp.loss[j], mp.acc[j]) for part, mp in zip(("train", "val", "test"), m)}
                keep[j] = book.record(epoch, metrics, finite[j], seconds, row, j)  # False: diverged
                if keep[j]:
                    if on_epoch:
                        on_epoch(gi, epoch, book.history)
                    keep[j] = not (book.patience_over(epoch, m[1].acc[j]) or epoch >= c.epochs)
                if not keep[j]:
                    conclude(book.history, c, y_val)
                    results[gi] = TrainResult(stack.network(j), book.history, c)
            if not keep.any():
                break
            if not keep.all():
                stack.keep(keep)
                if recorder is not None:
                    recorder.keep(keep)


def train_many(configs: Sequence[RunConfig], data: Dataset, *, max_bytes: int | None = None,
               on_epoch: OnEpoch | None = None, threads: int = 1, processes: int = 1,
               diagnostics: bool = True) -> list[TrainResult]:
    """Train every config on ``data``: the results of ``[train(c, data) for c in configs]``.

    Parameters
    ----------
    configs : sequence of RunConfig
        Any mix. Runs with the same layer sizes, activations, batch size and dtype are
        trained together in stacks (see :func:`plan`); the others in stacks of their own.
        The configs' dataset and split settings are not read: ``data`` is what every run
        trains on.
    data : Dataset
        The split data.
    max_bytes : int, optional
        Memory budget of the stacks in training at once (default ``DEFAULT_MAX_BYTES``,
        1.5 GiB; see :func:`bytes_per_model`): a larger group is trained in several chunks.
        The returned networks come on top (``8 P`` bytes each).
    on_epoch : callable, optional
        ``on_epoch(index, epoch, history)`` after each recorded epoch of ``configs[index]``
        (with ``threads > 1`` from worker threads, one call at a time; with ``processes > 1``
        in this process, epoch by epoch, once the run's stack has finished).
    threads : int
        Stacks trained at once on this many threads (numpy and BLAS release the GIL, the
        Python between the calls does not). The default, 1, suits callers that already run
        one process per core (the study runner).
    processes : int
        Stacks trained at once in this many worker processes (forked where the platform
        allows): no GIL between them, so it scales better than ``threads``. Each stack is
        trained whole in one worker, so results do not depend on it.
    diagnostics : bool
        Record the per-layer diagnostics in each history (:mod:`sgdlab.engine.diagnostics`;
        the same values as :func:`sgdlab.train`). The status (``chance`` included) is
        set either way.

    BLAS is held to one thread during the call (and in the workers).

    Returns
    -------
    list of TrainResult
        One per config, in the order given.
    """
    configs = list(configs)
    for name, value in (("threads", threads), ("processes", processes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SgdlabError(f"{name}: expected a positive integer, got {value!r}")
    results: dict[int, TrainResult] = {}
    stacks = plan(configs, data, max_bytes, max(threads, processes))
    prepared = {dtype: prepare_group_data(data, np.dtype(dtype)) for dtype in {key.dtype for key, _ in stacks}}
    # the largest stacks first, so that the workers finish together
    stacks.sort(key=lambda item: -len(item[1]))
    jobs = [(key, [configs[i] for i in members], members) for key, members in stacks]

    with _blas_threads(1):
        if processes > 1 and len(jobs) > 1:
            _run_in_processes(jobs, prepared, min(processes, len(jobs)), results, on_epoch, diagnostics)
        elif threads > 1 and len(jobs) > 1:
            _run_in_threads(jobs, prepared, min(threads, len(jobs)), results, on_epoch, diagnostics)
        else:
            for job in jobs:
                train_stack(Stack(*job), prepared[job[0].dtype], results, on_epoch, diagnostics)
    return [results[i] for i in range(len(configs))]


def _run_in_threads(jobs, prepared, n, results, on_epoch, diagnostics=True) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def locked(index, epoch, history):
        with lock:
            on_epoch(index, epoch, history)

    callback = None if on_epoch is None else locked

    def run(job):
        train_stack(Stack(*job), prepared[job[0].dtype], results, callback, diagnostics)

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(run, jobs))  # re-raises a worker's exception


_WORKER_DATA: dict = {}


def _worker_init(prepared) -> None:
    _WORKER_DATA["prepared"] = prepared
    _WORKER_DATA["blas"] = _blas_threads(1)
    _WORKER_DATA["blas"].__enter__()


def _worker_train(job, diagnostics=True) -> dict[int, TrainResult]:
    """Train one stack in a worker; its results by run index."""
    out: dict[int, TrainResult] = {}
    train_stack(Stack(*job), _WORKER_DATA["prepared"][job[0].dtype], out, diagnostics=diagnostics)
    return out


def _run_in_processes(jobs, prepared, n, results, on_epoch, diagnostics=True) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init, initargs=(prepared,)) as pool:
        futures = {pool.submit(_worker_train, job, diagnostics): job for job in jobs}
        for f in as_completed(futures):
            for index, result in sorted(f.result().items()):
                results[index] = result
                if on_epoch is not None:
                    _replay(on_epoch, index, result.history)


def _replay(on_epoch: OnEpoch, index: int, history: History) -> None:
    """Call ``on_epoch`` for each recorded epoch of a finished run, with the history as it
    stood after that epoch."""
    d = history.to_dict()
    lists = {k: v for k, v in d.items() if isinstance(v, list)}
    for epoch in range(1, history.epochs + 1):
        partial = History(**{k: v[:epoch] for k, v in lists.items()},
                          diagnostics={k: v[:epoch + 1] for k, v in history.diagnostics.items()})
        on_epoch(index, epoch, partial)
