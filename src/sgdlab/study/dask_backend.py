"""Run a study's tasks on a Dask cluster (``sgdlab study SPEC --backend dask --scheduler ADDR``).

The driver submits one Dask task per schedule group of runs and hands each one's records to
``on_result`` *in the driver process* as they come back, so the driver alone writes the
SQLite store; workers only compute. What happens when things break:

- A worker that dies (killed, out of memory, machine lost) has the tasks it held
  rescheduled by the Dask scheduler on the remaining or restarted workers. A task that has
  been on ``distributed.scheduler.allowed-failures`` (default 3) dying workers is declared
  poisonous (``KilledWorker``); the study then stops with a one-line error, keeping every
  schedule group already stored, and ``--resume`` continues it.
- A task that *raises* (rare: ``run_schedule_group`` already records a run that raises as
  ``failed``) is retried ``retries`` times, possibly elsewhere, before the error surfaces.
- Ctrl-C cancels the outstanding tasks on the cluster and re-raises ``KeyboardInterrupt``.
- The client is closed in every case.

Results are identical to a local run when the workers run the same sgdlab and numpy: a
schedule group's runs depend only on their configs and seeds, never on where they run.
"""

from __future__ import annotations

from typing import Callable, Sequence

from concurrent.futures import CancelledError

from .._version import __version__
from ..errors import SgdlabError

INSTALL_HINT = 'pip install "sgdlab[dask]"'

# Imported here, not lazily: the runner imports this module before it creates the store,
# so a missing dask stops the study before anything is written.
try:
    from dask.distributed import Client, as_completed
except ImportError as e:
    raise SgdlabError(f"--backend dask needs dask.distributed ({e}); {INSTALL_HINT}") from None

TIMEOUT_ENV = "SGDLAB_DASK_TIMEOUT"
DEFAULT_TIMEOUT = 10.0


def connect_timeout_from_env() -> float:
    """Seconds to wait for the scheduler: ``$SGDLAB_DASK_TIMEOUT`` or 10."""
    import math
    import os

    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise SgdlabError(f"{TIMEOUT_ENV}: expected a number of seconds > 0, got {raw!r}")
    return value


def _worker_sgdlab_version() -> str:
    """Runs on each worker: the sgdlab it imports (a worker without sgdlab fails to unpickle this)."""
    from sgdlab._version import __version__

    return __version__


def connect(scheduler: str, timeout: float | None = None):
    """A ``dask.distributed.Client`` on ``scheduler`` (``tcp://HOST:PORT``), or a one-line
    :class:`SgdlabError` if it cannot be reached within ``timeout`` seconds."""
    if timeout is None:
        timeout = connect_timeout_from_env()
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise SgdlabError(f"--scheduler: expected an address like tcp://HOST:8786, got {scheduler!r}")
    address = scheduler.strip()
    try:  # checked first: Client on an address without a port waits, then prints a traceback at exit
        from distributed.comm.addressing import parse_address, parse_host_port

        scheme, loc = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(loc)
    except ValueError as e:
        raise SgdlabError(f"--scheduler: expected an address like tcp://HOST:8786, got {scheduler!r} ({e})") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as e:  # noqa: BLE001 - refused, unreachable, timed out, bad address, not a scheduler
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if not isinstance(e, (OSError, TimeoutError, ValueError)):
            reason = f"the server there does not answer as a Dask scheduler: {reason}"
        raise SgdlabError(f"--scheduler: cannot reach the Dask scheduler at {address} within {timeout:g} s "
                          f"({reason}); start one with `dask scheduler` and point --scheduler "
                          f"(or SGDLAB_DASK_SCHEDULER) at the address it prints") from None


def _check_workers(client) -> None:
    """Refuse workers that cannot import sgdlab or run another version of it."""
    try:
        versions = client.run(_worker_sgdlab_version)
    except Exception as e:  # noqa: BLE001 - any worker-side import failure
        raise SgdlabError(f"a Dask worker cannot run sgdlab ({type(e).__name__}: {e}); install sgdlab "
                          "(the same version as here) on every worker") from None
    other = {addr: v for addr, v in versions.items() if v != __version__}
    if other:
        addr, v = next(iter(other.items()))
        raise SgdlabError(f"Dask worker {addr} runs sgdlab {v}, this driver {__version__}; results "
                          "would not match a local run: install the same version on every worker")


def run_tasks(tasks: Sequence, fn: Callable, on_result: Callable, scheduler: str, *,
              retries: int = 2, connect_timeout: float | None = None) -> None:
    """Run ``fn(task)`` for every task on the Dask cluster at ``scheduler``.

    Parameters
    ----------
    tasks : sequence of picklable objects
        One per group of runs.
    fn : callable
        A top-level (picklable) function ``fn(task) -> list[RunRecord]``; the workers must be
        able to import it (install sgdlab on every worker).
    on_result : callable
        Called in this process with each task's result, in completion order.
    scheduler : str
        The scheduler's address, e.g. ``tcp://10.0.0.5:8786``.
    retries : int
        How often a task that raises is retried. (Tasks on a worker that dies are
        rescheduled by the scheduler itself, see the module docstring.)
    connect_timeout : float, optional
        Seconds to wait for the scheduler (default ``$SGDLAB_DASK_TIMEOUT`` or 10).
    """
    client = connect(scheduler, connect_timeout)
    futures = []
    try:
        _check_workers(client)
        # pure=False: two studies with equal tasks on one scheduler must not share results
        futures = [client.submit(fn, task, pure=False, retries=retries) for task in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):
            if future.status == "error":
                _raise_task_error(future, tasks[index[future.key]])
            result = future.result()
            future.release()  # the driver has it; let the cluster forget it
            on_result(result)
    except (CancelledError, OSError) as e:
        # The scheduler went away (its futures are cancelled, its connection closed).
        why = " ".join(str(e).split())[:200]
        raise SgdlabError(f"lost the Dask scheduler at {scheduler} ({type(e).__name__}: {why}); the runs stored "
                          "so far are kept: restart the scheduler and its workers, then rerun with --resume"
                          ) from None
    except BaseException:
        # Ctrl-C, a failing on_result or a lost task: stop the work still on the cluster.
        pending = [f for f in futures if not f.done()]
        if pending:
            try:
                client.cancel(pending)
            except Exception:  # noqa: BLE001 - the client may already be gone
                pass
        raise
    finally:
        client.close()


def _raise_task_error(future, task) -> None:
    from distributed.scheduler import KilledWorker

    exc = future.exception()
    what = getattr(task, "schedule", None)
    what = f"schedule group {what}" if what else f"task {future.key}"
    if isinstance(exc, KilledWorker):
        raise SgdlabError(f"{what} was on Dask workers that died too often ({exc}); the runs stored so far are "
                          "kept: check the workers' memory and logs, then rerun with --resume "
                          "(distributed.scheduler.allowed-failures sets how often a task may lose its worker)"
                          ) from None
    future.result()  # re-raise the task's own exception, with its remote traceback
