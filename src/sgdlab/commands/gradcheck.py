"""``sgdlab gradcheck``: backprop against central finite differences (float64)."""

from __future__ import annotations

from .common import (add_data_args, add_network_args, config_from_args, positive_float, positive_int,
                     require_label_fits)


def register(sub):
    p = sub.add_parser("gradcheck", help="check backprop against finite differences",
                       description="Compare backprop's gradients with central differences in float64, "
                                   "on a minibatch of the dataset, at the initial weights.")
    add_data_args(p)
    add_network_args(p)
    p.add_argument("--samples", type=positive_int, default=10, help="minibatch size to check on (default: 10)")
    p.add_argument("--eps", type=positive_float, default=1e-6, help="finite-difference step (default: 1e-6)")
    p.add_argument("--tol", type=positive_float, default=1e-6,
                   help="pass when the norm-wise relative error is below this (default: 1e-6); exit 1 otherwise")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import load_dataset
    from ..nn.gradcheck import gradcheck
    from ..nn.network import one_hot
    from ..engine import build_network

    args.dtype = "float64"
    config = config_from_args(args)
    require_label_fits(config.dataset, config.label)
    data = load_dataset(config.dataset, config.split, config.split_seed, config.label, config.scale)
    net = build_network(config, data.n_features, data.n_classes)
    X = data.X_train[: args.samples]
    Y = one_hot(data.y_train[: args.samples], data.n_classes)
    r = gradcheck(net, X, Y, eps=args.eps)
    print(f"network {'-'.join(map(str, net.sizes))}, {net.activation}/{net.output} + {net.cost}, "
          f"{config.init}; {r.n_params} parameters, {len(X)} samples")
    for row in r.per_layer:
        print(f"  {row['param']:>4}: relative error {row['relative_error']:.3e}, "
              f"max |diff| {row['max_abs_diff']:.3e}")
    verdict = "PASS" if r.passed(args.tol) else "FAIL"
    print(f"relative error ||g - g_fd|| / (||g|| + ||g_fd||) = {r.relative_error:.3e}; "
          f"max |g - g_fd| = {r.max_abs_diff:.3e}; {verdict} (tol {args.tol:g})")
    return 0 if verdict == "PASS" else 1
