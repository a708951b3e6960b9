"""Run a study: expand the spec into schedule groups, train them on local processes (joblib)
or a Dask cluster, and write each finished schedule group to the store in one transaction.

The driver alone writes the store. A task is one schedule group (see :mod:`.expand`): its
partitioning depends only on the spec, so the results are bit-identical whatever ``jobs``
is, and ``resume`` never meets half a schedule group. A run that raises is stored as ``failed`` with
its error text; the study goes on.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import SgdlabError
from ..engine.loop import History
from .expand import PlannedRun, expand, schedule_groups, schedule_id
from .records import FINISHED, RunRecord
from .spec import check_growth
from .store import STORE_NAME, Store, StoreWriteError

ENGINES = ("batched", "single")
BACKENDS = ("local", "dask")
DASK_ENV = "SGDLAB_DASK_SCHEDULER"


@dataclass(frozen=True)
class Task:
    """One unit of work: the runs of one schedule group still to do, and the engine to train them with."""

    schedule: str
    runs: tuple[PlannedRun, ...]
    engine: str = "single"
    data_digest: str | None = None  # the driver's dataset digest: a worker's data must match it
    keep: tuple[str, ...] | None = None  # keys to return (None: all); the others are trained only


# --------------------------------------------------------------------------- worker side

_DATA: dict[tuple, object] = {}  # per-process cache: every task of a study shares its data


class DataChanged(SgdlabError):
    """A worker loaded data that differ from what the driver recorded in the store."""


def _dataset_for(config, digest: str | None = None):
    from ..data import load_dataset
    from ..data.digest import dataset_digest

    k = (config.dataset, tuple(config.split), config.split_seed, config.label, config.scale, config.dtype)
    if k not in _DATA:
        data = load_dataset(config.dataset, config.split, config.split_seed, config.label, config.scale)
        _DATA[k] = (data.astype(config.dtype), dataset_digest(data))
    data, have = _DATA[k]
    if digest is not None and have != digest:
        del _DATA[k]
        raise DataChanged(f"dataset {config.dataset}: its content changed while the study ran (the store's data "
                          "digest no longer matches); restore the data the study started with, or start a new "
                          "study in another folder")
    return data


def _error_text(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _record(run: PlannedRun, result, data, engine: str) -> RunRecord:
    hist = result.history
    preds = None
    if hist.status in FINISHED:
        with np.errstate(all="ignore"):
            preds = [int(x) for x in result.network.predict(data.X_test)]
    return RunRecord(run.key, run.mode, run.config, hist.status, hist.final(), hist, test_predictions=preds,
                     engine=engine)


def _train_single(run: PlannedRun, data) -> tuple[RunRecord, object]:
    from ..engine import train

    try:
        result = train(run.config, data)
        return _record(run, result, data, "single"), result.network
    except Exception as e:  # a run that raises is recorded, not fatal
        hist = History(status="failed")
        return RunRecord(run.key, run.mode, run.config, "failed", hist.final(), hist, error=_error_text(e),
                         engine="single"), None


def run_schedule_group(task: Task) -> list[RunRecord]:
    """Train one schedule group's runs (worker side; top-level so that it pickles).

    ``engine="batched"`` trains its runs together with
    :func:`sgdlab.engine.batched.train_many`; if that raises, each run is retried alone on the
    single engine so that one bad run cannot sink the others.
    """
    return [rec for rec, _ in train_group(task)]


def train_group(task: Task) -> list[tuple[RunRecord, object]]:
    """:func:`run_schedule_group` with each run's trained network (None for a failed run) beside its
    record: what ``sgdlab rerun`` uses to retrain a stored run exactly as the study did."""
    data = _dataset_for(task.runs[0].config, task.data_digest)
    # Runs that differ only in how the output activation is written (paper mode's "same" on
    # a sigmoid network, corrected mode's "sigmoid") are one computation: train it once.
    unique: dict = {}
    for r in task.runs:
        unique.setdefault(_computation(r.config), r)
    todo = list(unique.values())
    done: dict = {}
    if task.engine == "batched":
        from ..engine.batched import train_many

        try:
            results = train_many([r.config for r in todo], data)
            if len(results) != len(todo):
                raise RuntimeError(f"train_many returned {len(results)} results for {len(todo)} configs")
            done = {_computation(r.config): (_record(r, res, data, "batched"), res.network)
                    for r, res in zip(todo, results)}
        except Exception as e:
            print(f"sgdlab: warning: batched engine failed on a schedule group of {len(todo)} runs "
                  f"({_error_text(e)}); training them one by one", file=sys.stderr)
    if not done:
        done = {_computation(r.config): _train_single(r, data) for r in todo}
    out = []
    for r in task.runs:
        if task.keep is not None and r.key not in task.keep:
            continue
        rec, net = done[_computation(r.config)]
        if rec.key != r.key:
            rec = dataclasses.replace(rec, key=r.key, mode=r.mode, config=r.config)
        out.append((rec, net))
    return out


def _computation(config):
    """What decides a run's numbers: its config with ``output="same"`` spelled out."""
    return dataclasses.replace(config, output=config.output_activation)


# --------------------------------------------------------------------------- dispatch

def default_jobs() -> int:
    """All cores this process may use."""
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def run_tasks(tasks: Sequence[Task], fn: Callable[[Task], list[RunRecord]],
              on_result: Callable[[list[RunRecord]], None], jobs: int) -> None:
    """The local backend: ``fn`` over ``tasks`` on ``jobs`` processes, ``on_result`` in this
    process as each task finishes (in completion order). ``jobs=1`` runs in this process."""
    if jobs <= 1 or len(tasks) <= 1:
        for t in tasks:
            on_result(fn(t))
        return
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=min(jobs, len(tasks)), return_as="generator_unordered", batch_size=1,
                   pre_dispatch="2*n_jobs")
    gen = par(delayed(fn)(t) for t in tasks)
    try:
        for res in gen:
            on_result(res)
    finally:
        gen.close()  # on Ctrl-C or an error: stop the workers, drop what is queued


# --------------------------------------------------------------------------- progress

class Progress:
    """Runs stored out of the total: a rich bar on a terminal, periodic plain lines otherwise."""

    def __init__(self, name: str, total: int, done: int, enabled: bool = True, stream=None, every: float = 10.0):
        self.stream = stream or sys.stderr
        self.name, self.total, self.every, self.enabled = name, total, every, enabled
        self.done = self.start_done = done
        self.t0 = self.last = time.monotonic()
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = None
        if self.tty:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("runs"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(),
                                     console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(name, total=total, completed=done, rate="")

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        dt, ran = time.monotonic() - self.t0, self.done - self.start_done
        rate = ran / dt if dt > 0 and ran else 0.0
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{rate:.1f}/s" if rate else "")
            return
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            left = self.total - self.done
            eta = f", ETA {_hms(left / rate)}" if rate and left else ""
            print(f"{self.name}: {self.done}/{self.total} runs ({100 * self.done / max(self.total, 1):.0f}%), "
                  f"{rate:.2f} runs/s{eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# --------------------------------------------------------------------------- driver

@dataclass
class StudyRun:
    """What :func:`execute` did."""

    out_dir: Path
    store: Path
    total: int  # runs in the spec
    already: int  # runs found in the store at the start (resume)
    ran: int = 0  # runs trained and stored now
    counts: dict = field(default_factory=dict)  # status -> runs in the store at the end
    seconds: float = 0.0
    engine: str = "single"
    jobs: int = 1
    backend: str = "local"


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during a study; what was stored stays. ``run`` says how far it got."""

    def __init__(self, run: StudyRun):
        super().__init__("study interrupted")
        self.run = run


def _remove_store(out: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = out / (STORE_NAME + suffix)
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in out.glob(f".{STORE_NAME}.*.tmp"):  # a creation that was killed
        p.unlink(missing_ok=True)


def prepare_out(spec, out: Path, *, resume: bool, force: bool, resume_same: bool = False,
                data_digest: str | None = None, warn: Callable[[str], None] | None = None) -> bool:
    """Check ``out`` against ``spec``; returns True if an existing store is to be resumed.

    A different study there is refused unless ``force`` (which deletes its store); the same
    study is resumed with ``resume`` (or ``resume_same``), refused otherwise. A store whose
    recorded dataset digest differs from ``data_digest`` is refused, naming the dataset.
    The caller holds the folder's lock.
    """
    if out.exists() and not out.is_dir():
        raise SgdlabError(f"--out: {out} exists and is not a directory")
    for p in out.glob(f".{STORE_NAME}.*.tmp"):  # left by a creation that was killed: never a store
        p.unlink(missing_ok=True)
    path = out / STORE_NAME
    if not path.exists():
        return False
    if force:
        _remove_store(out)
        return False
    try:
        with Store(path) as st:
            digest, old, n, keys, data = (st.digest(), st.spec(), st.count(), list(st.statuses()),
                                          st.data_digest())
    except SgdlabError as e:
        if "damaged study store" in str(e):
            raise SgdlabError(f"--out: {e}") from None
        raise SgdlabError(f"--out: {e}; choose another --out, or --force to replace it") from None
    grows = digest != spec.digest()
    if grows:
        # A different spec: it may only grow this study (the stored runs keep their keys).
        check_growth(old, spec, keys)
    if not (resume or resume_same):
        what = "a smaller version of this study" if grows else "this study"
        raise SgdlabError(f"--out: {out} already holds {what} ({n} runs stored); add --resume to "
                          f"{'grow' if grows else 'continue'} it, or --force to start over")
    if data_digest is not None and data is not None and data != data_digest:
        raise SgdlabError(f"--resume: dataset {spec.dataset} is not the data the {n} stored runs were trained on "
                          "(its content or split changed since the study started); restore it, or run the "
                          "study into another --out (or --force to start over)")
    if data_digest is not None and data is None and warn is not None:
        warn(f"{path} was made by an sgdlab that did not record its dataset's digest; the runs already stored "
             "cannot be checked against today's data (the digest is recorded now)")
    return True


def execute(spec, out, *, jobs: int | None = None, resume: bool = False, force: bool = False,
            engine: str = "batched", backend: str = "local", scheduler: str | None = None,
            progress: bool = True, resume_same: bool = False, max_runs: int | None = None,
            log: Callable[[str], None] | None = None, sensitivity: bool = True) -> StudyRun:
    """Run ``spec`` (a :class:`StudySpec`) into ``out/results.sqlite``.

    ``out`` must be new, empty, or a folder sgdlab made (:mod:`sgdlab.outdir`); one study
    at a time may write it (:class:`~sgdlab.study.lock.FolderLock`). ``max_runs`` raises the
    limit on the number of runs (:data:`~sgdlab.study.expand.MAX_RUNS`). After the grid,
    ``sensitivity`` retrains one run per selected cell with its inputs moved by one rounding
    step (:mod:`.sensitivity`; local processes, cells measured before are skipped) so that
    the report can mark the rounding-sensitive cells.
    Raises :class:`StudyInterrupted` on Ctrl-C after closing the store (finished schedule groups kept).
    """
    from ..data.digest import dataset_digest
    from ..memory import check_fits
    from ..outdir import LOCK_NAME, OutDir
    from .lock import FolderLock

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    warn = lambda m: log(f"sgdlab: warning: {m}")  # noqa: E731
    out = Path(out)
    if backend not in BACKENDS:
        raise SgdlabError(f"backend: unknown value {backend!r}; valid: {', '.join(BACKENDS)}")
    if jobs is None:
        jobs = default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SgdlabError(f"jobs: expected a positive integer, got {jobs!r}")
    dispatch = run_tasks
    if backend == "dask":
        scheduler = scheduler or os.environ.get(DASK_ENV)
        if not scheduler:
            raise SgdlabError(f"--backend dask needs --scheduler tcp://HOST:PORT (or {DASK_ENV})")
        # imported now: without dask, the study stops (one line) before anything is written
        from .dask_backend import run_tasks as dispatch
    if engine not in ENGINES:
        raise SgdlabError(f"engine: unknown value {engine!r}; valid: {', '.join(ENGINES)}")
    runs = expand(spec, max_runs)
    # Load the data once here: a bad CSV or an impossible split fails before any store is
    # made (or, with force, deleted).
    from ..data import load_dataset

    data = load_dataset(spec.dataset, spec.split, spec.split_seed, spec.label, spec.scale)
    digest = dataset_digest(data)
    if backend == "local":
        widest = max((len(g.runs) for g in schedule_groups(runs)), default=1) if engine == "batched" else 1
        n_rows = max(len(data.y_train), len(data.y_val), len(data.y_test))
        check_fits([data.n_features, *spec.hidden, data.n_classes], spec.dtype, n_rows,
                   runs=widest * min(jobs, len(runs) or 1), what=f"{spec.source}: the network")
    outdir = OutDir(out).claim()
    with FolderLock(out, f"sgdlab study {spec.name}"):
        resuming = prepare_out(spec, out, resume=resume, force=force, resume_same=resume_same, data_digest=digest,
                               warn=warn)
        outdir.add(STORE_NAME, LOCK_NAME)
        store = _open_store(out / STORE_NAME, spec, digest, resuming, warn)
        summary = StudyRun(out, store.path, len(runs), 0, engine=engine, jobs=jobs, backend=backend)
        try:
            finished = {k for k, s in store.statuses().items() if s != "failed"} & {r.key for r in runs}
            summary.already = len(finished)
            tasks = _tasks(runs, finished, engine, digest)
            bar = Progress(f"study {spec.name}", len(runs), len(finished), enabled=progress)
            if progress and not bar.tty:
                where = f"{jobs} process{'es' if jobs > 1 else ''}" if backend == "local" else f"dask {scheduler}"
                log(f"study {spec.name}: {len(runs)} runs in {len(schedule_groups(runs))} schedule groups, "
                    f"{len(finished)} already stored; {sum(len(t.keep or t.runs) for t in tasks)} to run on "
                    f"{where}, {engine} engine")
            indices = {r.key: r.index for r in runs}

            def on_result(records: list[RunRecord]) -> None:
                if records:
                    store.write_schedule_group(records, schedule_id(records[0].config), indices,
                                               engine=records[0].engine)
                    summary.ran += len(records)
                    bar.advance(len(records))

            t0 = time.perf_counter()
            try:
                try:
                    dispatch(tasks, run_schedule_group, on_result, scheduler if backend == "dask" else jobs)
                except StoreWriteError as e:
                    raise SgdlabError(f"{e}; the {_stored(store)} runs stored before are kept: free space (or "
                                      f"make {out} writable) and resume the study with --resume") from None
                except SgdlabError:
                    # A backend that failed before any result (e.g. an unreachable Dask scheduler)
                    # must not leave an empty store that a retry would then refuse without --resume.
                    if not resuming and summary.ran == 0:
                        store.close()
                        _remove_store(out)
                    raise
                finally:
                    bar.close()
                if sensitivity:
                    from .sensitivity import measure_missing

                    measure_missing(store, jobs, log if progress else None)
            except KeyboardInterrupt:
                summary.seconds, summary.counts = time.perf_counter() - t0, store.counts()
                raise StudyInterrupted(summary) from None
            summary.seconds, summary.counts = time.perf_counter() - t0, store.counts()
        finally:
            store.close()
    return summary


def _open_store(path: Path, spec, digest: str, resuming: bool, warn: Callable[[str], None]) -> Store:
    """The store to write: the one in ``path`` (resumed; grown to ``spec``, given the data digest it
    lacks) or a new one."""
    if not resuming:
        return Store.create(path, spec, data_digest=digest)
    store = Store(path, writable=True)
    if store.digest() != spec.digest():
        store.replace_spec(spec)  # grown (checked in prepare_out): the store now describes the whole grid
    if store.data_digest() is None:
        try:
            store.set_data_digest(digest)
        except Exception as e:  # noqa: BLE001 - a read-only store: resuming fails below with one line
            warn(f"could not record the dataset digest ({e})")
    return store


def _tasks(runs: list[PlannedRun], finished: set[str], engine: str, digest: str) -> list[Task]:
    """A task per schedule group with runs not ``finished`` (failed runs are retried)."""
    tasks = []
    for g in schedule_groups(runs):
        todo = tuple(r for r in g.runs if r.key not in finished)
        if todo and engine == "batched" and len(todo) < len(g.runs):
            # The batched engine's rounding depends on which runs train together: retrain
            # the whole group as an uninterrupted study did, keep only the runs missing.
            tasks.append(Task(g.id, g.runs, engine, digest, keep=tuple(r.key for r in todo)))
        elif todo:
            tasks.append(Task(g.id, todo, engine, digest))
    return tasks


def _stored(store: Store) -> int:
    try:
        return store.count()
    except SgdlabError:
        return 0
