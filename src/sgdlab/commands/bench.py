"""``sgdlab bench``: the paper's grid on the batched engine, against the single engine
(the measurements are :mod:`sgdlab.benchlib`'s)."""

from __future__ import annotations

from ..choices import DTYPES
from .common import positive_int


def register(sub):
    p = sub.add_parser("bench", help="time the paper grid: batched vs single engine",
                       description="Train the paper's 360-run grid (the first block of configs/paper.toml) with "
                                   "the batched engine, a sample of it with the single engine, and print seconds, "
                                   "ratio, samples/s and GFLOP/s.")
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs per run (default: 30, the paper's)")
    p.add_argument("--seeds", type=positive_int, default=5, help="seeds per cell (default: 5: 360 runs)")
    p.add_argument("--runs-sample", type=positive_int, default=12,
                   help="runs of the grid timed on the single engine, then scaled (default: 12)")
    p.add_argument("--dtype", choices=DTYPES, default="float64")
    p.add_argument("--processes", type=positive_int, default=None,
                   help="worker processes of the batched engine (default: the cores of this machine)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads of the batched engine instead of processes (default: none)")
    p.add_argument("--matmul-size", type=positive_int, default=2000,
                   help="size of the square float64 product taken as the machine's reference (default: 2000)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..benchlib import bench, report

    r = bench(args.epochs, args.seeds, args.runs_sample, args.dtype, args.threads, args.matmul_size, args.processes)
    print(report(r))
    return 0
