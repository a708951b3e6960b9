"""``sgdlab predict MODEL --input FILE``: class predictions for raw CSV/NPZ/IDX features.

The model file's scaling (fitted on its training part) is applied to the features first.
"""

from __future__ import annotations

import csv
import sys


def register(sub):
    p = sub.add_parser("predict", help="predict classes with a saved network",
                       description="Predict with a network saved by 'sgdlab train --save'.")
    p.add_argument("model", help="a .npz file written by sgdlab train --save")
    p.add_argument("--input", required=True, help="raw features (scaled as the model's training data was) as .csv "
                   "(header row), .npz (array X) or an IDX images file")
    p.add_argument("--proba", action="store_true", help="also print the output activations")
    p.set_defaults(func=run)


def run(args) -> int:
    import warnings

    import numpy as np

    from ..data import read_features
    from ..io import NoPreprocessingWarning, load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoPreprocessingWarning)
        net, meta = load(args.model)
    for w in caught:  # one line, not Python's two-line warning format
        print(f"sgdlab: warning: {w.message}", file=sys.stderr)
    names = meta.get("features")
    if names is not None and (not isinstance(names, list) or len(names) != net.sizes[0]):
        names = None  # a damaged list: fall back on the column count
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    label = extra.get("label_column") if isinstance(extra.get("label_column"), str) else None
    X = read_features(args.input, n_features=net.sizes[0], names=names, label=label)
    from ..data.datasets import scale_finite

    # the model's own scaling, fitted on its training part; an overflow would predict from NaN
    X = scale_finite(meta["scaler"], X, args.input).astype(net.dtype)
    out = net.predict_proba(X)
    idx = np.argmax(out, axis=1)
    classes = meta.get("classes") or list(range(net.sizes[-1]))
    # The csv module quotes labels holding commas or quotes; a label a spreadsheet would run
    # as a formula (=, +, -, @ first, and not a number) gets a leading apostrophe.
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["prediction", *(safe_cell(f"p{c}") for c in classes)] if args.proba else ["prediction"])
    for i, row in zip(idx, out):
        w.writerow([safe_cell(classes[i]), *(f"{v:.6g}" for v in row)] if args.proba else [safe_cell(classes[i])])
    return 0


def safe_cell(value) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text
