"""The paper grid on the batched engine vs the single engine (what ``sgdlab bench`` prints).

    python benchmarks/bench_batched.py [--epochs N] [--seeds N] [--runs-sample N] [--dtype D]
                                       [--processes N | --threads N] [--matmul-size N]
"""

import argparse
import sys

from sgdlab.benchlib import bench, report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--runs-sample", type=int, default=12)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--processes", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--matmul-size", type=int, default=2000)
    a = p.parse_args(argv)
    print(report(bench(a.epochs, a.seeds, a.runs_sample, a.dtype, a.threads, a.matmul_size, a.processes)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
