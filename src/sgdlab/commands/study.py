"""``sgdlab study SPEC --out DIR``: run every run of a TOML study spec into a SQLite store,
then render the report (tables, figures, report.html), through :mod:`sgdlab.workflow`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .common import path_arg, positive_int, print_rendered


def add_run_args(p, default_engine="batched"):
    """Flags shared by ``study`` and ``reproduce``: how to run, resume and report."""
    g = p.add_argument_group("running")
    g.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="local worker processes (default: all cores); results do not depend on it")
    g.add_argument("--resume", action="store_true",
                   help="continue the study already in --out, skipping its finished runs (failed runs are retried)")
    g.add_argument("--force", action="store_true",
                   help="delete the store already in --out (whatever study it holds) and start over")
    g.add_argument("--engine", choices=("batched", "single"), default=default_engine,
                   help="batched: the runs that share a minibatch schedule trained together; "
                        "single: one network at a time (default: %(default)s)")
    g.add_argument("--backend", choices=("local", "dask"), default="local",
                   help="local processes (joblib) or a Dask cluster (default: local)")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                   help="the Dask scheduler for --backend dask (default: $SGDLAB_DASK_SCHEDULER)")
    g.add_argument("--max-runs", type=positive_int, default=None, metavar="N",
                   help="refuse a spec that expands to more runs than this (default: 200000)")
    g.add_argument("--no-report", action="store_true", help="store the results only; render later with sgdlab report DIR")
    g.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def register(sub):
    p = sub.add_parser("study", help="run a study spec (grid x seeds) into a resumable store, then report",
                       description="Run every run of a TOML study spec (see docs/study.md) on local processes "
                                   "or a Dask cluster; results go to DIR/results.sqlite, one row per finished run; "
                                   "then tables, figures and report.html are rendered under DIR.")
    p.add_argument("spec", metavar="SPEC", help="the study spec (TOML)")
    p.add_argument("--out", type=path_arg, metavar="DIR", default=None, help="study folder (default: results/<spec name>)")
    add_run_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..study.spec import load_spec

    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path("results") / spec.name
    hint = f"sgdlab study {shlex.quote(args.spec)} --out {shlex.quote(str(out))} --resume"
    return run_and_report(spec, out, args, resume_hint=hint)


def run_and_report(spec, out: Path, args, resume_hint: str, resume_same: bool = False) -> int:
    """Run ``spec`` into ``out`` as the flags say, print a summary, then render the report."""
    from ..study.runner import StudyInterrupted
    from ..workflow import run_and_render

    try:
        _, done = run_and_render(spec, out, report=not args.no_report, on_stored=lambda res: _summary(spec, res),
                                 jobs=args.jobs, resume=args.resume, force=args.force, engine=args.engine,
                                 backend=args.backend, scheduler=args.scheduler, progress=not args.quiet,
                                 resume_same=resume_same, max_runs=args.max_runs)
    except StudyInterrupted as e:
        r = e.run
        stored = sum(r.counts.values())
        print(f"sgdlab: interrupted: {stored} of {r.total} runs are stored in {r.store}; "
              f"resume with: {resume_hint}", file=sys.stderr)
        return 130
    if done is None:
        print(f"report not rendered (--no-report); render it with: sgdlab report {shlex.quote(str(out))}")
    else:
        print_rendered(done)
    return 0


def _summary(spec, res) -> None:
    stored = sum(res.counts.values())
    counts = ", ".join(f"{n} {'at chance' if s == 'chance' else s}" for s, n in res.counts.items() if n)
    if res.ran:
        where = f"{res.jobs} process{'es' if res.jobs > 1 else ''}" if res.backend == "local" else "dask"
        did = f"{res.ran} trained now in {_duration(res.seconds)} on {where} ({res.engine} engine)"
    else:
        did = "nothing left to run"
    if res.already:
        did += f"; {res.already} were already stored"
    print(f"study {spec.name}: {stored}/{res.total} runs in {res.store} ({counts or 'none'}); {did}", flush=True)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f} s"
    return f"{s // 60}m{s % 60:02d}s"
