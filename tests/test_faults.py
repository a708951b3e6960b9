"""Fault injection: a study killed at random points, a full disk, a read-only folder, a
damaged store, a second writer, a lost Dask scheduler. Each case ends with the store equal
to an uninterrupted study's, or with one clear line (exit 2) and nothing lost.

Everything here runs unprivileged: the full disk is SQLite's own ``max_page_count`` (a
real ``SQLITE_FULL``) and ``OSError(ENOSPC)`` from the file-opening calls; a read-only
folder is ``chmod`` where that stops the test's user, and the same ``OSError(EROFS)``
injection where it does not (root). Kill points come from ``random.Random(SEED)``;
``SGDLAB_FAULT_SEED`` picks another set.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sgdlab.cli import main
from sgdlab.study import Store
from _helpers import comparable, stored_group_sizes

SEED = int(os.environ.get("SGDLAB_FAULT_SEED", "15"))
# 2 lrs x 6 seeds = 12 runs in 6 groups of 2
SPEC = """\
name = "faults"
epochs = 6
hidden = [16]
seeds = 6
lr = [0.5, 1.0]
init = "xavier"
cost = "ce"
activation = "sigmoid"
output = "sigmoid"
"""
TOTAL = 12


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("sgdlab: error: "), err
    return lines[0]


def study(spec, out, *more) -> int:
    return main(["study", str(spec), "--out", str(out), "--jobs", "1", "--quiet", "--no-report", *map(str, more)])


def rows(out) -> dict:
    with Store(out) as st:
        return comparable(st.records())


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    spec = d / "faults.toml"
    spec.write_text(SPEC)
    assert study(spec, d / "out") == 0
    got = rows(d / "out")
    assert len(got) == TOTAL
    return spec, got


@pytest.fixture
def finished(reference, tmp_path):
    """A finished, rendered copy of the reference study in a fresh folder."""
    spec, _ = reference
    out = tmp_path / "out"
    assert main(["study", str(spec), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    return spec, out


def stored_rows(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return 0
    try:
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def start(spec, out, *more):
    return subprocess.Popen([sys.executable, "-m", "sgdlab", "study", str(spec), "--out", str(out), "--quiet",
                             "--no-report", *more], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


# --------------------------------------------------------------------------- kills

def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_study(reference, tmp_path):
    spec, expected = reference
    out = tmp_path / "out"
    rng = random.Random(SEED)
    for delay in (rng.uniform(0.0, 1.0), rng.uniform(1.0, 2.5), rng.uniform(1.5, 4.0)):
        proc = start(spec, out, "--resume", "--jobs", "2")
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, at once
        proc.communicate(timeout=60)
        db = out / "results.sqlite"
        if db.exists():  # either no store or a valid one, holding whole groups only
            sizes = stored_group_sizes(db)
            assert all(n == 2 for n in sizes), sizes
    assert study(spec, out, "--resume") == 0
    assert rows(out) == expected


# --------------------------------------------------------------------------- full disk

def test_disk_full_while_storing_is_one_line_and_resume_completes(reference, tmp_path, monkeypatch, capsys):
    spec, expected = reference
    out = tmp_path / "out"
    real = sqlite3.connect

    def small_disk(path, *a, **kw):
        con = real(path, *a, **kw)
        if str(path).endswith("results.sqlite"):  # the writable store: room for a few groups (with diagnostics)
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            con.execute(f"PRAGMA max_page_count = {pages + 8}")
        return con

    monkeypatch.setattr(sqlite3, "connect", small_disk)
    assert study(spec, out) == 2
    line = one_line(capsys.readouterr().err)
    assert "database or disk is full" in line and "--resume" in line
    monkeypatch.setattr(sqlite3, "connect", real)
    kept = rows(out)
    assert 0 < len(kept) < TOTAL and all(expected[k] == v for k, v in kept.items())
    assert study(spec, out, "--resume") == 0
    assert rows(out) == expected


def failing_writes(under: Path, code: int, monkeypatch):
    """Opening a file under ``under`` for writing raises ``OSError(code)``: os.open (locks,
    temp files), open() and io.open (reports, figures)."""
    under = str(under.resolve())

    def hit(path, writing):
        try:
            p = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return writing and (p == under or p.startswith(under + os.sep))

    real_os_open, real_open = os.open, builtins.open

    def os_open(path, flags, *a, **kw):
        if hit(path, flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            raise OSError(code, os.strerror(code), str(path))
        return real_os_open(path, flags, *a, **kw)

    def py_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, bytes, os.PathLike)) and hit(file, any(c in mode for c in "wax+")):
            raise OSError(code, os.strerror(code), str(file))
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", py_open)
    monkeypatch.setattr(io, "open", py_open)


def test_disk_full_while_rendering_is_one_line_and_a_rerender_works(finished, monkeypatch, capsys):
    spec, out = finished
    before = file_digest(out / "results.sqlite")
    failing_writes(out / "figures", errno.ENOSPC, monkeypatch)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "the disk is full" in line and f"sgdlab report {out}" in line
    monkeypatch.undo()
    assert file_digest(out / "results.sqlite") == before
    assert main(["report", str(out)]) == 0  # what the stopped rendering wrote is still its own
    assert (out / "report.html").is_file()


# --------------------------------------------------------------------------- read-only

def read_only(folder: Path, monkeypatch) -> None:
    """Make ``folder`` read-only: chmod where that stops this user, else inject EROFS."""
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir():
            p.chmod(0o555)
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return  # chmod holds
    probe.unlink()
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    failing_writes(folder, errno.EROFS, monkeypatch)


def test_read_only_out_is_one_line(reference, tmp_path, monkeypatch, capsys):
    spec, _ = reference
    out = tmp_path / "ro"
    out.mkdir()
    read_only(out, monkeypatch)
    try:
        assert study(spec, out) == 2
        line = one_line(capsys.readouterr().err)
        assert "cannot write in" in line and ("read-only" in line or "permission denied" in line)
    finally:
        monkeypatch.undo()
        out.chmod(0o755)
    assert list(out.iterdir()) == []


def test_report_in_a_read_only_folder_is_one_line(finished, monkeypatch, capsys):
    spec, out = finished
    before = file_digest(out / "results.sqlite")
    html = (out / "report.html").read_bytes()
    read_only(out, monkeypatch)
    try:
        capsys.readouterr()
        assert main(["report", str(out)]) == 2
        one_line(capsys.readouterr().err)
    finally:
        monkeypatch.undo()
        for p in [out, *out.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
    assert file_digest(out / "results.sqlite") == before and (out / "report.html").read_bytes() == html


# --------------------------------------------------------------------------- damaged store

def test_damaged_rows_are_one_line_in_report_and_retrained_on_resume(reference, finished, capsys):
    spec, expected = reference
    _, out = finished
    con = sqlite3.connect(out / "results.sqlite")
    with con:
        con.execute("UPDATE runs SET history = '{broken' WHERE idx = 3")
    con.close()
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert f"1 of {TOTAL} stored runs are damaged" in one_line(capsys.readouterr().err)
    assert study(spec, out, "--resume") == 0
    assert "1 trained now" in capsys.readouterr().out
    assert rows(out) == expected


def test_damaged_pages_are_one_line_and_the_file_is_left_alone(reference, finished, capsys):
    spec, out = finished
    db = out / "results.sqlite"
    data = bytearray(db.read_bytes())
    rng = random.Random(SEED)
    for page in range(1, len(data) // 4096):  # every page but the header's: garbage
        for i in range(page * 4096, page * 4096 + 64):
            data[i] = rng.randrange(256)
    db.write_bytes(bytes(data))
    before = file_digest(db)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert "damaged study store (database disk image is malformed)" in one_line(capsys.readouterr().err)
    assert study(spec, out, "--resume") == 2
    assert "damaged study store (database disk image is malformed); move it away" in one_line(
        capsys.readouterr().err)
    assert file_digest(db) == before


# --------------------------------------------------------------------------- second writer

def test_a_concurrent_second_writer_is_refused_and_the_first_completes(reference, tmp_path, capsys):
    spec, expected = reference
    out = tmp_path / "out"
    proc = start(spec, out, "--jobs", "1")
    t0 = time.monotonic()
    while not (out / ".sgdlab.lock").exists() or stored_rows(out / "results.sqlite") == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 60
        time.sleep(0.02)
    rc = study(spec, out, "--force")
    err = capsys.readouterr().err
    assert proc.wait(timeout=120) == 0, proc.communicate()
    assert rc == 2
    assert f"in use by another sgdlab (pid {proc.pid}" in one_line(err)
    assert rows(out) == expected


# --------------------------------------------------------------------------- Dask

def slow_task(task):
    time.sleep(0.3)
    return [task]


def test_losing_the_dask_scheduler_is_one_line():
    distributed = pytest.importorskip("distributed")
    from sgdlab.errors import SgdlabError
    from sgdlab.study.dask_backend import run_tasks

    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                       silence_logs=50)
    got = []

    def on_result(records):
        got.extend(records)
        if len(got) == 1:
            cluster.close()  # the scheduler goes away mid-study

    with pytest.raises(SgdlabError) as e:
        run_tasks(list(range(6)), slow_task, on_result, cluster.scheduler_address)
    assert "lost the Dask scheduler" in str(e.value) and "--resume" in str(e.value)
    assert "\n" not in str(e.value) and got == [0]
