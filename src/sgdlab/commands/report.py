"""``sgdlab report DIR``: re-render a study's tables, figures and report from its store."""

from __future__ import annotations

from pathlib import Path

from .common import print_rendered


def register(sub):
    p = sub.add_parser("report", help="re-render a study's tables, figures and report (no training)",
                       description="Read DIR/results.sqlite (written by 'sgdlab study' or 'sgdlab reproduce') "
                                   "and write DIR/tables, DIR/figures, DIR/report.md and a self-contained "
                                   "DIR/report.html. Nothing is trained.")
    p.add_argument("dir", metavar="DIR", help="the study directory (holds results.sqlite)")
    p.add_argument("--diverged", choices=("zero", "last"), default="zero",
                   help="how a diverged run counts: accuracy 0 (default), or its last finite epoch")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..report import build

    print_rendered(build(Path(args.dir), diverged=args.diverged))
    return 0
