"""``sgdlab rerun STUDY_DIR RUN``: retrain one stored run with the engine that produced it and
say whether the numbers came back bit for bit."""

from __future__ import annotations

import sys

from ..errors import SgdlabError
from .common import path_arg


def register(sub):
    p = sub.add_parser("rerun", help="retrain one stored run of a study and compare with the stored numbers",
                       description="Retrain exactly one stored run of a study (its key, or a unique prefix of "
                                   "it) with the engine that produced it (a batched run with the whole task it was "
                                   "trained in, as the study did), print its stored and new final metrics and "
                                   "whether they are identical. On the same machine they are, bit for bit; on "
                                   "another, a rounding-sensitive cell's run may differ (see the report).")
    p.add_argument("study", metavar="STUDY_DIR", help="a study folder (holding results.sqlite)")
    p.add_argument("run", metavar="RUN", help="a run key (mode:hash) or a unique prefix of it (or of its hash)")
    p.add_argument("--save", type=path_arg, metavar="FILE.npz", help="save the retrained network (with its scaling) here")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..study.rerun import COMPARED, rerun

    r = rerun(args.study, args.run)
    w = sys.stdout
    c = r.stored.config
    w.write(f"run {r.stored.key}: {r.stored.cell.label()}, lr {c.lr:g}, seed {c.seed}; "
            f"{r.stored.engine or 'single'} engine" + (f" (its task of {r.task_size} runs retrained with it)"
                                                       if r.task_size > 1 else "") + "\n")
    w.write(f"{'metric':<16}{'stored':>24}{'rerun':>24}\n")
    for k in COMPARED:
        a, b = r.stored.final.get(k), r.new.final.get(k)
        w.write(f"{k:<16}{_fmt(a):>24}{_fmt(b):>24}{'' if a == b or (a != a and b != b) else '  <- differs'}\n")
    diffs = r.differences()
    if diffs:
        w.write(f"different: {', '.join(diffs)} (a rounding-sensitive run on another machine or BLAS, or the "
                "code changed since the study)\n")
    else:
        w.write("identical: every final metric, the per-epoch history and the test predictions, bit for bit\n")
    if args.save:
        if r.network is None or r.new.status not in ("done", "chance"):
            raise SgdlabError(f"--save: run {r.stored.key} has no network to save (status {r.new.status})")
        from ..data.datasets import load_dataset
        from ..io import save

        data = load_dataset(c.dataset, c.split, c.split_seed, c.label, c.scale)
        path = save(r.network, args.save, classes=data.classes, scaler=data.scaler,
                    extra={"config": c.to_dict(), "study_run": r.stored.key})
        w.write(f"saved to {path}\n")
    return 0


def _fmt(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)
