"""Flags shared by the commands that describe a network and its training."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import fields

from ..choices import BIAS_INITS, CE_OUTSIDE, COSTS, DTYPES, HIDDEN_ACTIVATIONS, INITS, OUTPUTS
from ..config import RunConfig, check_field
from ..data import BUNDLED
from ..data.scale import DEFAULTS as SCALE_DEFAULTS
from ..data.scale import check_scale
from ..errors import SgdlabError


def argtype(convert, ok, expected):
    """An argparse ``type``: ``convert(text)`` if ``ok`` holds for it, else "expected ..., got ..."."""

    def check(text):
        try:
            v = convert(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v

    return check


# an empty path (an unset shell variable) would silently mean "no file" or "the current folder"
path_arg = argtype(str, str.strip, "a path")
positive_int = argtype(int, lambda v: v > 0, "a positive integer")
nonneg_int = argtype(int, lambda v: v >= 0, "an integer >= 0")
positive_float = argtype(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
nonneg_float = argtype(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")


def layer_list(text):
    """'32,16' -> (32, 16); '' or 'none' -> () (no hidden layer)."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:  # ConfigError is a ValueError too
        sizes = tuple(int(p) for p in text.split(","))  # int() ignores the spaces around a number
        check_field("hidden", sizes)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"hidden layer sizes must be positive integers separated by commas (e.g. 32,16), got {text!r}") from None
    return sizes


def split_fracs(text):
    try:
        parts = tuple(float(p) for p in text.split(","))
        check_field("split", parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three fractions train,val,test summing to 1, got {text!r}") from None
    return parts


def scale_name(text):
    try:
        return check_scale(text)
    except SgdlabError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("scale: ")) from None


def add_data_args(p):
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits",
                   help=f"one of {', '.join(BUNDLED)}, a .csv/.npz file, or an IDX images file (default: digits)")
    g.add_argument("--label", default=None, help="label column of a CSV (default: the last column); for an IDX "
                   "dataset, the labels file (default: found beside the images)")
    g.add_argument("--split", type=split_fracs, default=(0.6, 0.2, 0.2), metavar="TR,VA,TE",
                   help="train,validation,test fractions (default: 0.6,0.2,0.2)")
    g.add_argument("--split-seed", type=nonneg_int, default=0, help="seed of the data split (default: 0)")
    g.add_argument("--scale", type=scale_name, default="auto", metavar="HOW",
                   help="feature scaling, fitted on the training part and saved with the model: none, standard "
                        "(mean 0, sd 1), minmax ([0, 1]), divide:K, or auto, the dataset's default: "
                        + ", ".join(f"{k} {v}" for k, v in SCALE_DEFAULTS.items())
                        + ", a file none (an IDX file's byte pixels are divided by 255 when read) (default: auto)")


def add_network_args(p):
    g = p.add_argument_group("network")
    g.add_argument("--layers", type=layer_list, default=(32, 16), metavar="H1,H2,...",
                   help="hidden layer sizes (default: 32,16, the paper's)")
    g.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid", metavar="NAME",
                   help=f"hidden activation: {', '.join(HIDDEN_ACTIVATIONS)} (default: sigmoid)")
    g.add_argument("--output", choices=OUTPUTS, default="same", metavar="NAME",
                   help="output activation, or 'same' as the hidden one, the paper's choice (default: same)")
    g.add_argument("--cost", choices=COSTS, default="ce", help="cost (default: ce)")
    g.add_argument("--ce-outside", choices=CE_OUTSIDE, default="clip",
                   help="how ce treats outputs outside (0, 1), which the paper leaves undefined: clip (outputs "
                        "clipped to [eps, 1-eps], exact gradient of that cost), nielsen (delta = a - y whatever "
                        "the output, as Nielsen's network2.py), none (eq. 5 unclipped: non-finite -> diverged) "
                        "(default: clip)")
    g.add_argument("--init", choices=INITS, default="xavier", help="weight init (default: xavier)")
    g.add_argument("--bias-init", choices=BIAS_INITS, default="normal", help="bias init (default: normal)")
    g.add_argument("--dtype", choices=DTYPES, default="float64")
    g.add_argument("--seed", type=nonneg_int, default=0, help="seed of initial weights and shuffling (default: 0)")


def add_training_args(p):
    g = p.add_argument_group("training")
    g.add_argument("--lr", type=positive_float, default=1.0, help="learning rate (default: 1.0)")
    g.add_argument("--batch-size", type=positive_int, default=10, help="minibatch size (default: 10)")
    g.add_argument("--epochs", type=positive_int, default=30, help="epochs (default: 30)")
    g.add_argument("--momentum", type=nonneg_float, default=0.0, help="momentum in [0, 1) (default: 0)")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum (needs --momentum)")
    g.add_argument("--l2", type=nonneg_float, default=0.0, help="L2 weight decay on weights (default: 0)")
    g.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping: epochs without a better validation accuracy (default: off)")


def config_from_args(args) -> RunConfig:
    """The RunConfig of the flags a command has (``--layers`` is ``hidden``); RunConfig's defaults
    for the others."""
    flags = {f.name: "layers" if f.name == "hidden" else f.name for f in fields(RunConfig)}
    return RunConfig(**{name: getattr(args, flag) for name, flag in flags.items() if hasattr(args, flag)})


def print_json(obj) -> None:
    """One JSON object on stdout; NaN/inf become null so any JSON parser reads it."""

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if hasattr(o, "item"):
            return clean(o.item())
        return o

    json.dump(clean(obj), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


def print_rendered(done) -> None:
    """What a report rendering wrote (a :class:`sgdlab.report.Rendered`): its Answers, then where."""
    print(done.answers_text())
    print(f"report: {done.html}")


def is_tty(stream=None) -> bool:
    stream = stream or sys.stderr
    return hasattr(stream, "isatty") and stream.isatty()


def require_label_fits(dataset, label) -> None:
    """--label with a dataset that has no label column to choose (bundled, NPZ) is a mistake, not ignored."""
    from ..data.datasets import check_label

    problem = check_label(dataset, label)
    if problem:
        raise SgdlabError(f"--label: {problem}")


def require(cond, message):
    if not cond:
        raise SgdlabError(message)
