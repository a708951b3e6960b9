"""``sgdlab reproduce``: run the paper's study (the bundled ``configs/paper.toml``), both
modes, and render its report. Run again on the same folder, it resumes (and, when the study
is complete, only re-renders the report)."""

from __future__ import annotations

import shlex
from pathlib import Path

from .common import path_arg, positive_int
from .study import add_run_args, run_and_report

DEFAULT_OUT = "results/paper"


def register(sub):
    p = sub.add_parser("reproduce", help="run the paper's whole study (both modes) and render its report",
                       description="Run the bundled paper spec (sgdlab/configs/paper.toml): 64-32-16-10 on digits, "
                                   "costs x activations x inits x 6 learning rates x seeds, in paper mode "
                                   "(output = hidden activation) and corrected mode (sigmoid/softmax output). "
                                   "A folder holding the same study is resumed.")
    p.add_argument("--out", type=path_arg, metavar="DIR", default=DEFAULT_OUT, help=f"study folder (default: {DEFAULT_OUT})")
    p.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                   help="seeds per cell (default: the spec's, 5)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="epochs per run (default: the spec's, 30)")
    add_run_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..study.spec import load_spec, paper_spec_path

    overrides = {k: v for k, v in (("seeds", args.seeds), ("epochs", args.epochs)) if v is not None}
    spec = load_spec(paper_spec_path(), overrides=overrides or None)
    out = Path(args.out)
    hint = "sgdlab reproduce --out " + shlex.quote(str(out))
    hint += "".join(f" --{k} {v}" for k, v in overrides.items())
    # Reproducing is idempotent: the same study in --out is resumed without --resume.
    return run_and_report(spec, out, args, resume_hint=hint, resume_same=True)
