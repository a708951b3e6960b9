"""Cost functions: value averaged over samples, and gradient with respect to the output.

``value(a, y)`` is the cost of a minibatch, ``1/n sum_s C_s``; ``grad(a, y)`` is the
per-sample ``dC_s/da`` (rows are samples), *not* divided by ``n``: the network averages
the parameter gradients over the minibatch (paper, step 6).

Every gradient here is the exact derivative of the value computed here. Where the value
clips its input (``ce`` clips outputs to ``[eps, 1 - eps]``, ``cce`` clips the label's output
below at ``eps``), the clipped cost is flat, so its gradient there is 0, as autograd of
``clamp`` gives.

The paper's cross-entropy is undefined for outputs outside (0, 1) (a tanh or relu output
layer) and the paper does not say what it did there. ``CE_OUTSIDE`` names the conventions:

- ``clip`` (default): outputs clipped to ``[eps, 1 - eps]`` in the value; the gradient is
  the clipped cost's (0 where an output is clipped);
- ``nielsen``: the output delta is ``a - y`` whatever the output activation, as
  ``CrossEntropyCost.delta`` in Nielsen's ``network2.py`` (which the paper cites); the
  reported value is the clipped one;
- ``none``: eq. 5 as written, unclipped; an output outside (0, 1) gives a non-finite value
  and the run is reported ``diverged``.

The shortcut ``dC/dz = a - y`` is exact for three output/cost pairs only
(``SHORTCUTS``): sigmoid + ce, softmax + cce and identity + mse (times the clip mask
where the value clips). Every other pair, the paper's tanh or relu output under ce among
them, goes through the chain rule of eq. 5-6 unless ``ce_outside = "nielsen"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import SgdlabError, choose

#: how cross-entropy treats outputs outside (0, 1); the first is the default
CE_OUTSIDE = ("clip", "nielsen", "none")


def _eps(a):
    return np.finfo(a.dtype).eps


def _clip01(a):
    eps = _eps(a)
    return np.clip(a, eps, 1 - eps)


def ce_inside(a):
    """1 where ``eps <= a <= 1 - eps`` (the clipped cross-entropy is not flat), else 0."""
    eps = _eps(a)
    return ((a >= eps) & (a <= 1 - eps)).astype(a.dtype)


def cce_inside(a, y):
    """Per row, 1 where the label's output is at least ``eps`` (``cce`` is not clipped), else 0;
    shape ``(..., 1)``."""
    label = np.sum(a * y, axis=-1, keepdims=True)
    return (label >= _eps(a)).astype(a.dtype)


def mse_value(a, y):
    """MSE = 1/(2n) sum_s ||y_s - a_s||^2 (paper)."""
    d = a - y
    return 0.5 * np.sum(d * d, axis=-1).mean(axis=-1)


def mse_grad(a, y):
    return a - y


def ce_value(a, y):
    """CE = -1/n sum_s sum_j [y log c + (1-y) log(1-c)] (paper), c = clip(a, eps, 1-eps)."""
    return ce_value_unclipped(_clip01(a), y)


def ce_grad(a, y):
    """dCE/da of :func:`ce_value`: ``(c - y) / (c (1 - c))`` where ``a`` is inside
    ``[eps, 1 - eps]``, 0 where it is clipped (the value is flat there)."""
    return ce_grad_unclipped(_clip01(a), y) * ce_inside(a)


def ce_value_unclipped(a, y):
    """Eq. 5 as written: NaN or inf for outputs outside (0, 1)."""
    return -np.sum(y * np.log(a) + (1 - y) * np.log1p(-a), axis=-1).mean(axis=-1)


def ce_grad_unclipped(a, y):
    return (a - y) / (a * (1 - a))


def cce_value(a, y):
    """CCE = -1/n sum_s sum_j y log a (softmax output), the label's output clipped below at eps."""
    return -np.sum(y * np.log(np.maximum(a, _eps(a))), axis=-1).mean(axis=-1)


def cce_grad(a, y):
    """dCCE/da of :func:`cce_value`: ``-y / a`` at the label, 0 where its output is clipped."""
    return -y / np.maximum(a, _eps(a)) * cce_inside(a, y)


@dataclass(frozen=True)
class Cost:
    """A cost: ``value(a, y)`` (mean over rows) and ``grad(a, y)`` (dC_s/da per row).

    ``name`` is the cost (``mse``, ``ce``, ``cce``); ``rule`` names the cost together with
    its cross-entropy convention (``ce``, ``ce:nielsen``, ``ce:none``; the others as their
    name), the unit the engines dispatch on.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]
    rule: str = ""


COSTS: dict[str, Cost] = {
    "mse": Cost("mse", mse_value, mse_grad, "mse"),
    "ce": Cost("ce", ce_value, ce_grad, "ce"),
    "cce": Cost("cce", cce_value, cce_grad, "cce"),
}

#: every (cost, convention) rule: the engines' unit of dispatch
RULES: dict[str, Cost] = {
    **COSTS,
    "ce:nielsen": Cost("ce", ce_value, ce_grad, "ce:nielsen"),
    "ce:none": Cost("ce", ce_value_unclipped, ce_grad_unclipped, "ce:none"),
}

# (output activation, cost) pairs for which dC/dz = a - y exactly (times the clip mask
# where the cost clips).
SHORTCUTS = {("sigmoid", "ce"), ("softmax", "cce"), ("identity", "mse")}


def cost_rule(cost: str, ce_outside: str = "clip") -> str:
    """The rule name of ``cost`` under ``ce_outside`` (see :data:`RULES`)."""
    return f"ce:{ce_outside}" if cost == "ce" and ce_outside != "clip" else cost


def get_cost(name: str, ce_outside: str = "clip") -> Cost:
    cost = choose("cost", name, COSTS)
    choose("ce_outside convention", ce_outside, dict.fromkeys(CE_OUTSIDE))
    return RULES[cost_rule(cost.name, ce_outside)]


def uses_shortcut(output: str, rule: str) -> bool:
    """Is the output delta ``a - y`` (before any clip mask) for this output and cost rule?"""
    return rule == "ce:nielsen" or (output, rule.split(":")[0]) in SHORTCUTS


def shortcut_mask(rule: str, a, y):
    """The factor that makes ``a - y`` the exact gradient of the clipped value, or None:
    :func:`ce_inside` for clipped ce, :func:`cce_inside` for cce."""
    if rule == "ce":
        return ce_inside(a)
    if rule == "cce":
        return cce_inside(a, y)
    return None


def output_delta(output: str, rule: str, activation, z, a, y):
    """dC_s/dz at the output layer per sample (paper eq. 5-6), for any layout whose last axis
    holds the units: ``a - y`` for the shortcut pairs (times the clip mask), ``a - y`` under
    ``ce:nielsen``, the chain rule ``f'(z) * dC/da`` otherwise. ``activation`` is the output
    layer's :class:`~sgdlab.nn.activations.Activation`."""
    if uses_shortcut(output, rule):
        mask = shortcut_mask(rule, a, y)  # None under ce:nielsen and for mse
        return a - y if mask is None else (a - y) * mask
    return activation.backward(z, a, RULES[rule].grad(a, y))


def pairing_problem(output: str, cost: str, ce_outside: str = "clip") -> tuple[str, str] | None:
    """What is wrong with an output/cost pair, as ``(key at fault, why)``, or None if it is valid.

    The one statement of the rule: ``cce`` needs a softmax output, and a cross-entropy
    convention other than ``clip`` applies to ``ce`` only."""
    if cost == "cce" and output != "softmax":
        return "cost", f"'cce' needs a softmax output layer, not {output!r}; use output softmax, or cost 'ce' or 'mse'"
    if ce_outside not in CE_OUTSIDE:
        return "ce_outside", f"unknown value {ce_outside!r}; valid: {', '.join(CE_OUTSIDE)}"
    if ce_outside != "clip" and cost != "ce":
        return "ce_outside", f"{ce_outside!r} applies to cost 'ce' only, not {cost!r}; leave it at 'clip'"
    return None


def check_pairing(output: str, cost: str, ce_outside: str = "clip") -> None:
    """Raise :class:`SgdlabError` where :func:`pairing_problem` finds one."""
    problem = pairing_problem(output, cost, ce_outside)
    if problem is not None:
        raise SgdlabError(f"{problem[0]}: {problem[1]}")
