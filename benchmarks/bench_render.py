"""Rendering a large study: time and peak memory of ``sgdlab report`` on a synthetic store.

Usage: python benchmarks/bench_render.py N_RUNS [DIR]. Writes a store of N_RUNS synthetic
30-epoch runs (digits, 10 lrs x N/10 seeds), then renders it in a child process and prints
the wall time and its peak resident memory (ru_maxrss).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(n_runs: int, out: Path) -> None:
    from sgdlab.study.expand import expand, schedule_groups
    from sgdlab.study.records import RunRecord
    from sgdlab.study.spec import parse_spec
    from sgdlab.study.store import Store
    from sgdlab.engine.loop import History

    seeds = max(1, n_runs // 10)
    spec = parse_spec(f'name = "big"\nepochs = 30\nseeds = {seeds}\n'
                      'lr = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]\n'
                      'init = "xavier"\ncost = "ce"\nactivation = "sigmoid"\noutput = "sigmoid"\n', source="big.toml")
    runs = expand(spec, max_runs=10**7)
    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    from sgdlab.outdir import OutDir

    OutDir(out).claim().add("results.sqlite")
    st = Store.create(out / "results.sqlite", spec)
    idx = {r.key: r.index for r in runs}
    for g in schedule_groups(runs):
        recs = []
        for r in g.runs:
            acc = list(np.clip(np.linspace(0.1, 0.9, 30) + rng.normal(0, 0.02, 30), 0, 1))
            h = History(train_loss=list(rng.random(30)), train_acc=acc, val_loss=list(rng.random(30)), val_acc=acc,
                        test_loss=list(rng.random(30)), test_acc=acc, seconds=[0.01] * 30)
            recs.append(RunRecord(r.key, r.mode, r.config, "done", h.final(), h,
                                  test_predictions=[int(x) for x in rng.integers(0, 10, 359)]))
        st.write_schedule_group(recs, g.id, idx)
    st.close()


def main() -> None:
    n = int(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "big"
    t0 = time.perf_counter()
    build(n, out)
    print(f"store of {n} runs written in {time.perf_counter() - t0:.1f} s "
          f"({(out / 'results.sqlite').stat().st_size / 1e6:.0f} MB)")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sgdlab", "report", str(out)], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3
    print(f"sgdlab report: rc {proc.returncode}, {dt:.1f} s, peak RSS {peak:.0f} MB")
    if proc.returncode:
        print(proc.stderr[-2000:])


if __name__ == "__main__":
    main()
