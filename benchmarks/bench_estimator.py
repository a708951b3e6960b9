"""Time ``SGDNetClassifier.fit`` on digits (all 1,797 rows, 64-32-16-10, softmax + cce,
batch 10, 30 epochs, the estimator's defaults otherwise).

    python benchmarks/bench_estimator.py [--epochs N] [--repeat N] [--against SRC]

``--against SRC`` times the sgdlab under ``SRC`` (e.g. an older checkout's ``src``) too,
alternating the two in fresh processes round by round so that both see the same load, and
prints both and their ratio. Times are the median over the rounds, wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(epochs: int) -> dict:
    """One timed ``fit`` in this process (after a one-epoch warm-up)."""
    import numpy as np
    from sklearn.datasets import load_digits

    import sgdlab
    from sgdlab import SGDNetClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    names = SGDNetClassifier().get_params()
    epochs_name = "max_iter" if "max_iter" in names else "epochs"  # the names before and after issue 11
    SGDNetClassifier(random_state=0, **{epochs_name: 1}).fit(X, y)
    est = SGDNetClassifier(random_state=0, **{epochs_name: epochs})
    t, c = time.perf_counter(), time.process_time()
    est.fit(X, y)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"wall_s": wall, "cpu_s": cpu, "train_acc": float(np.mean(est.predict(X) == y)),
            "src": os.path.dirname(os.path.dirname(sgdlab.__file__))}


def _in_subprocess(src: str, epochs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run([sys.executable, __file__, "--epochs", str(epochs), "--one"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--against", metavar="SRC", default=None)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(measure(a.epochs)))
        return 0
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    srcs = [here] + ([a.against] if a.against else [])
    runs: dict[str, list[dict]] = {s: [] for s in srcs}
    for _ in range(a.repeat):
        for s in (srcs if _ % 2 == 0 else srcs[::-1]):
            runs[s].append(_in_subprocess(s, a.epochs))
    med = {s: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "train_acc")}
           for s, rs in runs.items()}
    print(f"SGDNetClassifier.fit, digits 1797 x 64, {a.epochs} epochs, median of {a.repeat} "
          f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}):")
    for s, m in med.items():
        print(f"  {s}: {m['wall_s']:.3f} s wall, {m['cpu_s']:.3f} s CPU, train accuracy {m['train_acc']:.4f}")
    if a.against:
        new, old = med[here], med[a.against]
        print(f"  speed-up of this tree: {old['wall_s'] / new['wall_s']:.2f}x wall, "
              f"{old['cpu_s'] / new['cpu_s']:.2f}x CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
