"""Load check of ``sgdlab lab``: 20 pages watching one running study, all on loopback.

Runs the same study three times with ``sgdlab study`` (a subprocess, as a user would):
alone, then while ``sgdlab lab`` (another subprocess) serves ``--clients`` concurrent
Server-Sent Event streams of that study's progress and a prober asks the lab for the
study's page data every ``--probe`` seconds, then alone again. Prints

- the study's wall time alone (mean of the two runs around the loaded one) and with the
  watchers, and the slowdown in percent (goal: under 10 %);
- the CPU time the lab process used meanwhile, and the watchers' and prober's (this
  process's) (the part of the slowdown it causes on a
  machine with no core to spare; on a busy shared machine the wall times are noisy);
- the lab's response latency seen by the prober while the study ran: median, 95th
  percentile and maximum (goal: under a second), and what the watchers received.

Bounded in count and time: ``--clients`` streams (default 20), one study of
``--seeds`` x 36 runs (default 3 seeds: 108 runs), ``--timeout`` seconds per study at most.
On a 2-core machine the study runs with ``--jobs 1`` so that the lab and its clients have a
core of their own, as on a student's laptop with the study in a terminal beside the lab.

    python benchmarks/bench_lab.py [--clients 20] [--seeds 3] [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

SPEC = """
name = "bench"
dataset = "digits"
hidden = [32, 16]
epochs = 30
batch_size = 10
seeds = {seeds}
lr = [1, 0.1, 0.01]
activation = ["sigmoid", "tanh", "relu"]
init = ["gaussian", "xavier"]

[[grid]]
mode = "corrected"
cost = ["mse", "ce"]
output = "sigmoid"
"""


def env():
    src = Path(__file__).resolve().parents[1] / "src"
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}


def run_study(spec: Path, out: Path, jobs: int, timeout: float) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sgdlab", "study", str(spec), "--out", str(out), "--jobs", str(jobs)],
                   check=True, env=env(), timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def watcher(base: str, name: str, stop: threading.Event, got: list, errors: list) -> None:
    try:
        with httpx.stream("GET", f"{base}/api/studies/{name}/events", timeout=60) as r:
            n = 0
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: {}":
                    n += 1
                if stop.is_set() or line.startswith("event: close"):
                    break
            got.append(n)
    except Exception as e:  # counted, not fatal: the figures say how many failed
        errors.append(repr(e))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--probe", type=float, default=0.25, help="seconds between latency probes")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds one study may take at most")
    a = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sgdlab-bench-lab-") as tmp:
        tmp = Path(tmp)
        spec = tmp / "bench.toml"
        spec.write_text(SPEC.format(seeds=a.seeds))
        alone = [run_study(spec, tmp / "alone1" / "bench", a.jobs, a.timeout)]
        print(f"study alone: {alone[0]:.1f} s", flush=True)

        store = tmp / "store"
        lab = subprocess.Popen([sys.executable, "-m", "sgdlab", "lab", "--port", "0", "--store", str(store)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        try:
            base = re.search(r"http://[\d.]+:\d+", lab.stdout.readline()).group(0)
            out = store / "bench"
            study = subprocess.Popen([sys.executable, "-m", "sgdlab", "study", str(spec), "--out", str(out),
                                      "--jobs", str(a.jobs)], env=env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            t0, lab_cpu0, own_cpu0 = time.perf_counter(), cpu_seconds(lab.pid), time.process_time()
            while not (out / "results.sqlite").is_file():  # the lab lists a study once its store exists
                time.sleep(0.05)
            stop, got, errors, threads = threading.Event(), [], [], []
            for _ in range(a.clients):
                t = threading.Thread(target=watcher, args=(base, "bench", stop, got, errors), daemon=True)
                t.start()
                threads.append(t)
            latencies, answers = [], 0
            with httpx.Client(timeout=10) as c:
                while study.poll() is None:
                    if time.perf_counter() - t0 > a.timeout:
                        study.kill()
                        raise SystemExit("the study ran past --timeout")
                    s = time.perf_counter()
                    r = c.get(f"{base}/api/studies/bench")
                    latencies.append(time.perf_counter() - s)
                    answers += r.status_code == 200
                    time.sleep(a.probe)
            loaded = time.perf_counter() - t0
            lab_cpu, own_cpu = cpu_seconds(lab.pid), time.process_time() - own_cpu0
            for t in threads:
                t.join(30)
            stop.set()
        finally:
            lab.send_signal(2)
            lab.wait(15)
        print(f"study with the lab and {a.clients} watchers: {loaded:.1f} s", flush=True)

        alone.append(run_study(spec, tmp / "alone2" / "bench", a.jobs, a.timeout))
        print(f"study alone again: {alone[1]:.1f} s", flush=True)

    base_s = statistics.mean(alone)
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    result = {
        "clients": a.clients, "runs": 36 * a.seeds, "jobs": a.jobs, "cpus": os.cpu_count(),
        "study_alone_s": [round(x, 2) for x in alone], "study_watched_s": round(loaded, 2),
        "slowdown_percent": round(100 * (loaded / base_s - 1), 1),
        "probes": len(lat), "probes_ok": answers, "latency_median_ms": round(1000 * statistics.median(lat), 1),
        "latency_p95_ms": round(1000 * p95, 1), "latency_max_ms": round(1000 * lat[-1], 1),
        "lab_cpu_s_while_watched": None if lab_cpu is None else round(lab_cpu - lab_cpu0, 2),
        "clients_cpu_s_while_watched": round(own_cpu, 2),
        "watchers_finished": len(got), "watcher_errors": len(errors),
        "updates_per_watcher": [min(got), max(got)] if got else None,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
