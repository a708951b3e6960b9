"""Resume: a study killed with SIGKILL part-way (a real subprocess), or stopped with Ctrl-C,
then resumed, ends with exactly the runs of an uninterrupted study, bit for bit."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sgdlab.cli import main
from sgdlab.study import Store
from _helpers import comparable, stored_group_sizes

# 2 lrs x 10 seeds = 20 runs in 10 groups of 2 (a group is one seed)
SPEC = """\
name = "resume"
epochs = 4
seeds = 10
lr = [0.5, 1.0]
init = "xavier"
cost = "ce"
activation = "sigmoid"
output = "sigmoid"
"""
TOTAL, GROUPS = 20, 10


def stored_rows(db) -> int:
    """Rows in the store right now (0 while it does not exist yet); closes what it opens."""
    con = None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    finally:
        if con is not None:
            con.close()


def start(spec, out, jobs):
    # SIGINT must reach Python's handler even if pytest itself was started with it ignored.
    return subprocess.Popen([sys.executable, "-m", "sgdlab", "study", str(spec), "--out", str(out), "--jobs",
                             str(jobs), "--no-report", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_some(proc, db, at_least=1, timeout=120):
    """Poll until the store holds some but not all runs; returns the count seen."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the study ended (rc {proc.returncode}) before it could be interrupted: {err[-500:]}")
        n = stored_rows(db)
        if at_least <= n < TOTAL:
            return n
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the study stored nothing in time")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    spec = d / "resume.toml"
    spec.write_text(SPEC)
    assert main(["study", str(spec), "--out", str(d / "out"), "--jobs", "1", "--quiet", "--no-report"]) == 0
    with Store(d / "out") as st:
        records = st.records()
    assert len(records) == TOTAL
    return spec, comparable(records)


def check_whole_groups(db):
    sizes = stored_group_sizes(db)
    assert sizes and all(n == TOTAL // GROUPS for n in sizes), sizes  # never half a group
    return sum(sizes)


def test_sigkill_then_resume_equals_an_uninterrupted_study(reference, tmp_path, capsys):
    spec, expected = reference
    out = tmp_path / "out"
    db = out / "results.sqlite"
    proc = start(spec, out, jobs=1)
    wait_for_some(proc, db, at_least=2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    kept = check_whole_groups(db)
    assert 0 < kept < TOTAL
    with Store(db) as st:
        before = {r.key: r for r in st.records()}

    assert main(["study", str(spec), "--out", str(out), "--resume", "--jobs", "1", "--quiet", "--no-report"]) == 0
    assert f"{TOTAL - kept} trained now" in capsys.readouterr().out
    with Store(db) as st:
        after = st.records()
    assert comparable(after) == expected
    for r in after:  # what was stored before the kill was kept, not retrained
        if r.key in before:
            assert r.history.seconds == before[r.key].history.seconds


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_resumes(reference, tmp_path):
    spec, expected = reference
    out = tmp_path / "out"
    db = out / "results.sqlite"
    proc = start(spec, out, jobs=2)  # the joblib path: workers must stop too
    wait_for_some(proc, db, at_least=2)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and f"resume with: sgdlab study {spec} --out {out} --resume" in err
    assert "Traceback" not in err
    kept = check_whole_groups(db)
    assert 0 < kept <= TOTAL

    assert main(["study", str(spec), "--out", str(out), "--resume", "--jobs", "1", "--quiet", "--no-report"]) == 0
    with Store(db) as st:
        assert comparable(st.records()) == expected
