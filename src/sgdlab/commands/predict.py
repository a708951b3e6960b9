"""``sgdlab predict MODEL --input FILE``: class predictions for raw CSV/NPZ/IDX features.

The model file's scaling (fitted on its training part) is applied to the features first.
"""

from __future__ import annotations

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
    import numpy as np

    from ..data import read_features
    from ..io import load

    import warnings

    from ..io import NoPreprocessingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoPreprocessingWarning)
        net, meta = load(args.model)
    for w in caught:  # one line, not Python's two-line warning format
        print(f"sgdlab: warning: {w.message}", file=sys.stderr)
    X = read_features(args.input, n_features=net.sizes[0])
    X = meta["scaler"].transform(X).astype(net.dtype)
    out = net.predict_proba(X)
    idx = np.argmax(out, axis=1)
    classes = meta.get("classes") or list(range(net.sizes[-1]))
    w = sys.stdout
    w.write("prediction" + "".join(f",p{c}" for c in classes) * args.proba + "\n")
    for i, row in zip(idx, out):
        w.write(str(classes[i]) + ("".join(f",{v:.6g}" for v in row) if args.proba else "") + "\n")
    return 0
