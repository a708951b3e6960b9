"""Lab trainings as jobs: a queue, worker threads, a per-job event log that pages follow.

One training runs at a time per lab by default (``workers=1``); the others wait in a queue
and are told their position. Each job keeps the list of events it produced (``start``,
``epoch``, ``end``, and ``queued`` updates), so a page that connects late, or reconnects,
replays them from any point. A job nobody watches (the tab was closed or never opened its
stream) is cancelled once it has been unwatched for ``grace`` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from ..config import RunConfig
from ..errors import SgdlabError

FINAL_STATES = ("done", "cancelled", "failed")


class Cancelled(Exception):
    """Raised from a training's epoch callback to stop it."""


@dataclass(eq=False)
class Job:
    """One requested training and everything it has reported so far."""

    id: str
    config: RunConfig
    label: str
    source: dict | None = None  # {"study": name, "key": run key} for a rerun of a stored run
    state: str = "queued"  # queued | running | done | cancelled | failed
    events: list = field(default_factory=list)
    watchers: int = 0
    waiters: set = field(default_factory=set)  # (event loop, asyncio.Event) of each page following it
    unwatched_since: float | None = field(default_factory=time.monotonic)  # nobody watches until a page connects
    cancel_reason: str | None = None  # set once, by the first cancel
    announced: int | None = None  # the queue position last told

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def stop_requested(self) -> bool:
        return self.cancel_reason is not None


class JobManager:
    """The queue of lab trainings and the threads that run them.

    Parameters
    ----------
    run : callable
        ``run(job, emit, check)`` trains ``job.config``; ``emit(event: dict)`` publishes an
        event, ``check()`` raises :class:`Cancelled` when the job should stop (call it after
        every epoch). It returns normally when the run ended (its last event is ``end``);
        emitting ``end`` makes the job ``done`` at once, so whoever reads that event finds the
        job final on every route. The manager sends the ``end`` of a cancelled or failed run.
    workers : int
        Trainings at the same time (default 1).
    grace : float
        Seconds a running or queued job may go unwatched before it is cancelled.
    keep : int
        Finished jobs kept in memory for late viewers; older ones are forgotten.
    """

    def __init__(self, run: Callable, workers: int = 1, grace: float = 10.0, keep: int = 20):
        self._run, self.workers, self.grace, self.keep = run, workers, grace, keep
        self._lock = threading.Condition()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: list[Job] = []
        self._threads: list[threading.Thread] = []
        self._ids = itertools.count(1)
        self.closed = False

    # ------------------------------------------------------------------ requests

    def submit(self, config: RunConfig, label: str = "", source: dict | None = None) -> Job:
        with self._lock:
            job = Job(str(next(self._ids)), config, label or describe(config), source)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._forget_old()
            self._announce_positions()
            self._lock.notify_all()
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name=f"sgdlab-lab-worker-{len(self._threads) + 1}",
                                     daemon=True)
                self._threads.append(t)
                t.start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """Trainings that start before ``job`` (running ones included); 0 once it runs."""
        with self._lock:
            return self._position(job)

    def cancel(self, job: Job, reason: str = "stopped") -> None:
        with self._lock:
            if job.finished:
                return
            job.cancel_reason = job.cancel_reason or reason
            if job in self._queue:  # never started: ends here
                self._queue.remove(job)
                self._finish(job, "cancelled", {"type": "end", "status": "cancelled", "reason": job.cancel_reason})
                self._announce_positions()

    def close(self) -> None:
        """Cancel everything (server shutdown) and wake every follower so its stream ends."""
        with self._lock:
            self.closed = True
            for j in self._jobs.values():
                self.cancel(j, "the lab is shutting down")
            self._lock.notify_all()
            for job in self._jobs.values():
                self._wake(job)

    def join(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [{"id": j.id, "label": j.label, "state": j.state, "position": self._position(j),
                     "watchers": j.watchers} for j in self._jobs.values()]

    # ------------------------------------------------------------------ following a job

    @contextmanager
    def following(self, job: Job):
        """While open (in an event loop), ``job`` counts as watched; yields an
        :class:`asyncio.Event` that is set whenever the job has news."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            job.watchers += 1
            job.unwatched_since = None
            job.waiters.add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                job.waiters.discard(waiter)
                job.watchers -= 1
                if job.watchers == 0:
                    job.unwatched_since = time.monotonic()

    def events_since(self, job: Job, start: int) -> tuple[list[dict], bool]:
        """Events from index ``start`` on, and whether the job has finished."""
        with self._lock:
            return job.events[start:], job.finished

    # ------------------------------------------------------------------ internals

    def _position(self, job: Job) -> int:
        if job in self._queue:
            running = sum(1 for j in self._jobs.values() if j.state == "running")
            return self._queue.index(job) + running
        return 0

    def _announce_positions(self) -> None:
        """Tell each waiting job its position, when it is new."""
        for j in self._queue:
            pos = self._position(j)
            if pos != j.announced:
                j.announced = pos
                self._emit(j, {"type": "queued", "position": pos})

    def _emit(self, job: Job, event: dict) -> None:
        # with self._lock held
        event = {"seq": len(job.events), "t": time.time(), **event}
        job.events.append(event)
        self._wake(job)

    def _finish(self, job: Job, state: str, end: dict) -> None:
        """End ``job`` in ``state`` and publish its ``end`` event, in one step (lock held).

        The state is set before the event is appended, so a page that has read ``end``
        finds the final state on every route; a job ends once, and its ``end`` stays last.
        """
        if job.finished:
            return
        job.state = state
        self._emit(job, end)

    def _wake(self, job: Job) -> None:
        for loop, ev in list(job.waiters):
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # that page's event loop is gone
                job.waiters.discard((loop, ev))

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.finished]
        for j in done[:max(0, len(done) - self.keep)]:
            del self._jobs[j.id]

    def _unwatched_too_long(self, job: Job) -> bool:
        return job.watchers == 0 and time.monotonic() - job.unwatched_since > self.grace

    def _next(self) -> Job | None:
        with self._lock:
            while True:
                if self.closed:
                    return None
                while self._queue and self._unwatched_too_long(self._queue[0]):
                    self.cancel(self._queue[0], "nobody was watching")
                if self._queue:
                    job = self._queue.pop(0)
                    job.state = "running"
                    self._announce_positions()
                    return job
                self._lock.wait(timeout=1.0)

    def _work(self) -> None:
        while (job := self._next()) is not None:
            def emit(event, job=job):
                with self._lock:
                    if event.get("type") == "end":  # the run's own end: the job is done with it
                        self._finish(job, "done", event)
                    elif not job.finished:
                        self._emit(job, event)

            def check(job=job):
                if self._unwatched_too_long(job):
                    self.cancel(job, "nobody was watching")
                if job.stop_requested():
                    raise Cancelled(job.cancel_reason)

            try:
                self._run(job, emit, check)
                with self._lock:
                    if not job.finished:  # it returned without an end event
                        job.state = "done"
                        self._wake(job)
            except Cancelled:
                with self._lock:
                    self._finish(job, "cancelled", {"type": "end", "status": "cancelled", "reason": job.cancel_reason})
            except Exception as e:  # a failed run ends its job, never the lab
                msg = str(e) if isinstance(e, SgdlabError) else f"{type(e).__name__}: {e}"
                with self._lock:
                    self._finish(job, "failed", {"type": "end", "status": "failed", "error": msg})


def describe(config: RunConfig) -> str:
    """A short label: ``32,16 sigmoid/sigmoid + ce, xavier, lr 1, seed 0``."""
    c = config
    return (f"{c.dataset} {','.join(map(str, c.hidden)) or 'no hidden'} {c.activation}/{c.output_activation} "
            f"+ {c.cost}, {c.init}, lr {c.lr:g}, batch {c.batch_size}, seed {c.seed}")
