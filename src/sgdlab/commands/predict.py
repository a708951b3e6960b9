"""``sgdlab predict MODEL --input FILE``: class predictions for CSV/NPZ features."""

from __future__ import annotations

import sys


def register(sub):
    p = sub.add_parser("predict", help="predict classes with a saved network",
                       description="Predict with a network saved by 'sgdlab train --save'.")
    p.add_argument("model", help="a .npz file written by sgdlab train --save")
    p.add_argument("--input", required=True, help="features as .csv (header row), .npz (array X) or an IDX images file")
    p.add_argument("--proba", action="store_true", help="also print the output activations")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from ..data import read_features
    from ..io import load

    net, meta = load(args.model)
    X = read_features(args.input, n_features=net.sizes[0]).astype(net.dtype)
    out = net.predict_proba(X)
    idx = np.argmax(out, axis=1)
    classes = meta.get("classes") or list(range(net.sizes[-1]))
    w = sys.stdout
    w.write("prediction" + "".join(f",p{c}" for c in classes) * args.proba + "\n")
    for i, row in zip(idx, out):
        w.write(str(classes[i]) + ("".join(f",{v:.6g}" for v in row) if args.proba else "") + "\n")
    return 0
