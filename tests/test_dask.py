"""The Dask backend on a real LocalCluster: separate worker processes on loopback.

Covers the backend's contract (``run_tasks(tasks, fn, on_result, scheduler)``) with toy
tasks, a worker SIGKILLed in the middle of a task, an unreachable scheduler, and whole
studies through ``sgdlab study --backend dask`` compared with a local run.
"""

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("dask.distributed")

from sgdlab.errors import SgdlabError  # noqa: E402
from sgdlab.study.dask_backend import run_tasks  # noqa: E402


def toy_task(task):
    """Worker side: log the start (file named index-pid), sleep, return (index, pid)."""
    pid = os.getpid()
    Path(task["log"], f"{task['i']}-{pid}").touch()
    time.sleep(task["sleep"])
    return [(task["i"], pid)]


def failing_task(task):
    raise RuntimeError(f"task {task} broke")


def suicidal_task(task):
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies every time it runs this task


@pytest.fixture(scope="module")
def cluster():
    import cloudpickle

    # the toy functions live in this test module, which the workers cannot import by name
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as c:
        yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_results_stream_back_to_the_driver(cluster, client, tmp_path):
    tasks = [{"i": i, "sleep": 0.05, "log": str(tmp_path)} for i in range(8)]
    got, threads = [], set()

    def on_result(records):
        threads.add(threading.get_ident())
        got.extend(records)

    run_tasks(tasks, toy_task, on_result, cluster.scheduler_address)
    assert sorted(i for i, _ in got) == list(range(8))
    assert threads == {threading.get_ident()}  # on_result ran here, in the driver
    pids = {pid for _, pid in got}
    assert os.getpid() not in pids and pids <= worker_pids(client)


def test_worker_killed_mid_task_has_its_task_rerun_elsewhere(cluster, client, tmp_path):
    tasks = [{"i": i, "sleep": 0.6, "log": str(tmp_path)} for i in range(6)]
    got, killed = [], []

    def on_result(records):
        got.extend(records)
        if killed:
            return
        # the first result is back; kill a worker that is inside a task it has not finished
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not killed:
            done = {i for i, _ in got}
            for f in os.listdir(tmp_path):
                i, pid = map(int, f.split("-"))
                if i not in done:
                    os.kill(pid, signal.SIGKILL)
                    killed.append((i, pid))
                    break
            time.sleep(0.01)

    run_tasks(tasks, toy_task, on_result, cluster.scheduler_address)
    assert killed, "no running task was found to kill"
    assert sorted(i for i, _ in got) == list(range(6))  # every task, each once
    i, dead = killed[0]
    finished_by = dict(got)[i]
    assert finished_by != dead  # the interrupted task was run again on another worker
    started = {tuple(map(int, f.split("-"))) for f in os.listdir(tmp_path)}
    assert (i, dead) in started and (i, finished_by) in started
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker


def test_a_task_that_raises_is_retried_then_reported(cluster):
    with pytest.raises(RuntimeError, match="task 3 broke"):
        run_tasks([3], failing_task, lambda r: None, cluster.scheduler_address, retries=1)


def test_a_task_that_keeps_killing_workers_stops_the_study_in_one_line(cluster, client, monkeypatch):
    monkeypatch.setattr(cluster.scheduler, "allowed_failures", 0)  # give up on the first lost worker
    with pytest.raises(SgdlabError, match="died too often") as e:
        run_tasks([0], suicidal_task, lambda r: None, cluster.scheduler_address)
    assert "\n" not in str(e.value) and "--resume" in str(e.value)
    client.wait_for_workers(2, timeout=60)


def test_interrupt_cancels_outstanding_tasks(cluster, client, tmp_path):
    tasks = [{"i": i, "sleep": 0.5, "log": str(tmp_path)} for i in range(6)]

    def on_result(records):
        raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_tasks(tasks, toy_task, on_result, cluster.scheduler_address)
    # nothing is left queued on the cluster: a new task runs at once
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and client.processing() and any(client.processing().values()):
        time.sleep(0.05)
    assert not any(client.processing().values())
    assert len(os.listdir(tmp_path)) < 6 and time.monotonic() - t0 < 10


def test_unreachable_scheduler_is_a_one_line_error():
    t0 = time.monotonic()
    with pytest.raises(SgdlabError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:") as e:
        run_tasks([1], toy_task, print, f"tcp://127.0.0.1:{closed_port()}", connect_timeout=1)
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 15
    with pytest.raises(SgdlabError, match="--scheduler"):
        run_tasks([1], toy_task, print, "nonsense-without-port", connect_timeout=1)


def test_bad_timeout_env_is_named(monkeypatch):
    monkeypatch.setenv("SGDLAB_DASK_TIMEOUT", "soon")
    with pytest.raises(SgdlabError, match="SGDLAB_DASK_TIMEOUT"):
        run_tasks([1], toy_task, print, "tcp://127.0.0.1:1")


# --------------------------------------------------------------------------- whole studies

SPEC = """\
name = "dasktest"
dataset = "digits"
hidden = [16]
epochs = 3
batch_size = 20
seeds = 2
lr = [0.5, 0.05]

[[grid]]
mode = "corrected"
cost = "ce"
activation = ["sigmoid", "tanh"]
output = "sigmoid"
init = "xavier"
"""

def _records(out):
    from sgdlab.study.store import Store

    with Store(Path(out) / "results.sqlite") as st:
        return {r.key: r for r in st.records()}


def _study(argv):
    from sgdlab.cli import main

    return main(["study", *argv, "--no-report", "--quiet"])


def _assert_same_store(a, b):
    assert a.keys() == b.keys() and a
    for k in a:
        ra, rb = a[k], b[k]
        assert (ra.status, ra.config) == (rb.status, rb.config), k
        assert {m: v for m, v in ra.final.items() if m != "seconds"} == \
            {m: v for m, v in rb.final.items() if m != "seconds"}, k
        for m in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
            assert getattr(ra.history, m) == getattr(rb.history, m), (k, m)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    """The same study run locally in one process, per engine."""
    cache = {}

    def get(engine):
        if engine not in cache:
            d = tmp_path_factory.mktemp(f"local-{engine}")
            (d / "spec.toml").write_text(SPEC)
            assert _study([str(d / "spec.toml"), "--out", str(d / "out"), "--jobs", "1", "--engine", engine]) == 0
            cache[engine] = _records(d / "out")
        return cache[engine]

    return get


def test_study_on_dask_equals_local_run(cluster, local_store, tmp_path, monkeypatch):
    (tmp_path / "spec.toml").write_text(SPEC)
    monkeypatch.setenv("SGDLAB_DASK_SCHEDULER", cluster.scheduler_address)  # the env var route
    assert _study([str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--backend", "dask",
                   "--engine", "batched"]) == 0
    _assert_same_store(local_store("batched"), _records(tmp_path / "out"))
    assert len(local_store("batched")) == 2 * 2 * 2  # activations x lrs x seeds


def test_study_survives_a_worker_killed_mid_study(cluster, client, local_store, tmp_path, monkeypatch):
    from sgdlab.study.store import Store

    (tmp_path / "spec.toml").write_text(SPEC)
    pid_of = client.run(os.getpid)  # worker address -> pid
    write_group, kills = Store.write_schedule_group, []

    def write_and_kill(self, *args, **kwargs):
        write_group(self, *args, **kwargs)
        if not kills:  # first group stored, three to go: SIGKILL a worker, a busy one if any
            busy = [addr for addr, keys in client.processing().items() if keys and addr in pid_of]
            pid = pid_of[(busy or sorted(pid_of))[0]]
            os.kill(pid, signal.SIGKILL)
            kills.append(pid)

    monkeypatch.setattr(Store, "write_schedule_group", write_and_kill)
    rc = _study([str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--backend", "dask",
                 "--scheduler", cluster.scheduler_address, "--engine", "single"])
    assert rc == 0 and kills
    recs = _records(tmp_path / "out")
    assert all(r.status == "done" for r in recs.values())
    _assert_same_store(local_store("single"), recs)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker


def test_cli_unreachable_scheduler_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "spec.toml").write_text(SPEC)
    monkeypatch.setenv("SGDLAB_DASK_TIMEOUT", "1")
    rc = _study([str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--backend", "dask",
                 "--scheduler", f"tcp://127.0.0.1:{closed_port()}"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgdlab: error: --scheduler: cannot reach the Dask scheduler"), err
    assert not (tmp_path / "out" / "results.sqlite").exists()  # no empty store left to refuse a retry


def test_cli_without_dask_says_how_to_install(tmp_path, monkeypatch, capsys):
    (tmp_path / "spec.toml").write_text(SPEC)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if dask were not installed
    monkeypatch.delitem(sys.modules, "sgdlab.study.dask_backend")
    rc = _study([str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--backend", "dask",
                 "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and 'pip install "sgdlab[dask]"' in err, err
    assert not (tmp_path / "out").exists()  # refused before any store was made
