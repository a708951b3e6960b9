"""``sgdlab compare``: the paper's models in sgdlab, scikit-learn, PyTorch and TensorFlow/Keras."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import SgdlabError
from .common import add_data_args, path_arg, positive_int, require_label_fits


def register(sub):
    p = sub.add_parser(
        "compare", help="train the paper's models in sgdlab, scikit-learn, PyTorch and TensorFlow side by side",
        description="Train the paper's model (sigmoid + ce) and the corrected one (softmax + cce), "
                    "64-32-16-10, xavier, plain SGD lr 1.0, batch 10, in every selected framework for every "
                    "seed; write a table (Markdown + CSV) and a figure (PNG + SVG) per model under OUT/compare/. "
                    "A framework that is not installed becomes a row saying how to install it.")
    p.add_argument("--out", type=path_arg, default="results", metavar="DIR",
                   help="write under DIR/compare/ (a study directory works: its report picks them up; "
                        "default: results)")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N", help="seeds 0..N-1 (default: 3)")
    p.add_argument("--epochs", type=positive_int, default=30, metavar="N", help="epochs (default: 30, the paper's)")
    p.add_argument("--frameworks", default="sgdlab,sklearn,torch,tensorflow", metavar="LIST",
                   help="comma-separated: sgdlab, sklearn, torch, tensorflow (default: all four)")
    p.add_argument("--models", default="paper,corrected", metavar="LIST",
                   help="comma-separated: paper (sigmoid + ce), corrected (softmax + cce) (default: both)")
    p.add_argument("--no-sklearn-defaults", action="store_true",
                   help="leave out MLPClassifier with its default settings (up to 200 epochs of adam; the slowest rows)")
    add_data_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..baselines.common import parse_frameworks, parse_models
    from ..baselines.compare import run_compare, table_markdown, write_compare
    from ..data import load_dataset
    from ..study.runner import STORE_NAME

    frameworks = parse_frameworks(args.frameworks)  # bad names fail before any data is loaded
    models = parse_models(args.models)
    require_label_fits(args.dataset, args.label)
    data = load_dataset(args.dataset, args.split, args.split_seed, args.label, args.scale)
    folder = Path(args.out) / "compare"
    try:  # fail before minutes of training, not after
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SgdlabError(f"--out: cannot create {folder}: {e.strerror or e}") from None
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    results = run_compare(data, model_names=models, frameworks=frameworks, seeds=range(args.seeds),
                          epochs=args.epochs, progress=progress, dataset_name=args.dataset, split=args.split,
                          split_seed=args.split_seed, sklearn_defaults=not args.no_sklearn_defaults)
    paths = write_compare(results, args.out)
    for mc in results.values():
        print(f"\n{mc.model.title}\n")
        print(table_markdown(mc.rows()))
    print("\nwrote " + ", ".join(str(p) for p in paths))
    if (Path(args.out) / STORE_NAME).is_file():  # a study directory: its report shows the new tables
        from ..workflow import render_report

        print(f"report: {render_report(args.out).html} (now with the frameworks section)")
    return 0
