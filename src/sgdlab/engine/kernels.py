"""The one table of in-place kernels that every fast path uses (the single engine's
:class:`~sgdlab.engine.packed.PackedNetwork` and the batched engine), written into
preallocated buffers: activations (:func:`forward_into`), their chain rule
(:data:`TIMES_DERIVATIVE`), the column of ones (:func:`augment`), the output delta
(:func:`output_delta_into`) and the losses (:func:`loss_sums`).

Units are the last axis (the batched engine's ``(samples, models, units)``, or ``(samples,
units)``); the elementwise kernels take any layout (the single engine keeps samples as columns
and passes softmax its transposed views). Where the fast paths once had two copies, one was
kept, for the reasons below; the readable reference is :mod:`sgdlab.nn` and
``tests/test_batched.py`` checks every kernel against it:

- ``tanh(z)`` is ``1 - 2 / (1 + exp(2 z))``, not ``np.tanh``: numpy's float64 ``exp`` is about
  twice as fast as its ``tanh`` on this kind of machine (neither is vectorised without
  AVX-512). The result is within 4e-16 *absolute* of ``np.tanh`` (relative error grows for
  ``|z| << 1``, where the absolute error is what reaches the next layer's sums). On small
  arrays (``forward_into(name, small=True)``, the single engine's) the seven numpy calls cost
  more than ``np.tanh``'s one, so there it is ``np.tanh``;
- ``sigmoid(z)`` is ``1 / (1 + exp(-z))`` with ``-z`` clamped at 40: ``1 / (1 + exp(-40))``
  is already 1.0 in float32 and float64, so the clamp changes no value and keeps ``exp`` fast;
- derivatives come from the outputs (``a (1 - a)``, ``1 - a^2``);
- softmax normalises over the last axis.

Constants are 0-d arrays of the buffer's dtype (:data:`ONES`): a Python number in a ufunc
call costs about as much as the operation itself on the single engine's small arrays.

The losses (:func:`loss_sums`) take the one-hot targets as a boolean mask, so the
cross-entropy takes one term per output (``a`` at the label, ``1 - a`` elsewhere) and, in
float64, one ``log`` per row (of the product of its terms) instead of two per output.
"""

from __future__ import annotations

import numpy as np

from ..nn.activations import LEAKY_SLOPE, get_activation
from ..nn.costs import RULES, shortcut_mask, uses_shortcut


def _consts(value) -> dict:
    return {np.dtype(t): np.array(value, dtype=t) for t in (np.float64, np.float32)}


ONES, TWOS, _EXP_FLOOR, _TANH_BOUND = _consts(1), _consts(2), _consts(-40), _consts(80)


def augment(X) -> np.ndarray:
    """``[X, 1]``: the rows of ``X`` with a column of ones appended (for the packed bias row)."""
    X = np.asarray(X)
    out = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
    out[:, :-1] = X
    out[:, -1] = 1
    return out


# -- activations, in place ------------------------------------------------------------------

# exp's arguments are kept where the result is the same and exp is fast: libm's exp takes
# 3-4 times longer when its result underflows (and twice as long when it overflows), and in
# the paper's grid a fifth of the tanh units sit below z = -354 (where exp(2 z) underflows).

def _sigmoid_into(z, out):
    one = ONES[out.dtype]
    np.negative(z, out=out)
    np.maximum(out, _EXP_FLOOR[out.dtype], out=out)  # 1 / (1 + exp(-40)) is already 1.0
    np.exp(out, out=out)
    np.add(out, one, out=out)
    np.reciprocal(out, out=out)


def _tanh_into(z, out):
    two, bound = TWOS[out.dtype], _TANH_BOUND[out.dtype]
    np.multiply(z, two, out=out)
    np.minimum(out, bound, out=out)  # 1 - 2 / (1 + exp(-+80)) is already -+1.0
    np.maximum(out, -bound, out=out)
    np.exp(out, out=out)
    np.add(out, ONES[out.dtype], out=out)
    np.divide(two, out, out=out)
    np.subtract(ONES[out.dtype], out, out=out)


def _leaky_relu_into(z, out):
    np.maximum(z, z * LEAKY_SLOPE, out=out)  # max(z, slope z) for 0 < slope < 1; out may be z


def _softmax_into(z, out):
    np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)


FORWARD_INTO = {
    "sigmoid": _sigmoid_into,
    "tanh": _tanh_into,
    "relu": lambda z, out: np.maximum(z, 0, out=out),
    "leaky_relu": _leaky_relu_into,
    "identity": lambda z, out: np.copyto(out, z),
    "softmax": _softmax_into,
}


# -- the chain rule, in place: delta *= f'(z), from the output a where that is cheaper ----------

def sigmoid_times(delta, z, a, tmp):
    np.subtract(ONES[tmp.dtype], a, out=tmp)
    tmp *= a
    delta *= tmp


def tanh_times(delta, z, a, tmp):
    np.multiply(a, a, out=tmp)
    np.subtract(ONES[tmp.dtype], tmp, out=tmp)
    delta *= tmp


def relu_times(delta, z, a, tmp):
    np.greater(z, 0, out=tmp)  # 1.0 or 0.0
    delta *= tmp


def leaky_relu_times(delta, z, a, tmp):
    np.greater(z, 0, out=tmp)
    tmp *= 1 - LEAKY_SLOPE
    tmp += LEAKY_SLOPE  # 1.0 where z > 0, LEAKY_SLOPE elsewhere
    delta *= tmp


TIMES_DERIVATIVE = {
    "sigmoid": sigmoid_times,
    "tanh": tanh_times,
    "relu": relu_times,
    "leaky_relu": leaky_relu_times,
    "identity": None,
}


#: the kernels that differ where arrays are small and call overhead outweighs a call's speed
SMALL_FORWARD_INTO = {"tanh": lambda z, out: np.tanh(z, out=out)}


def forward_into(name: str, small: bool = False):
    """``f(z, out)``: activation ``name`` of ``z`` written into ``out`` (units on the last axis);
    ``small``: the arrays are small (the single engine's), see :data:`SMALL_FORWARD_INTO`."""
    return SMALL_FORWARD_INTO.get(name, FORWARD_INTO[name]) if small else FORWARD_INTO[name]


def times_derivative(name: str):
    """``g(delta, z, a, tmp)``: ``delta *= f'(z)`` in place (``tmp`` is scratch of ``delta``'s
    shape), from :data:`TIMES_DERIVATIVE`; None for the identity (f' = 1) and for softmax (not
    elementwise)."""
    return TIMES_DERIVATIVE.get(name)


# -- the output delta ---------------------------------------------------------------------------

def output_delta_into(output: str, rule: str, z, a, Y, out, tmp) -> None:
    """dC_s/dz at the output layer into ``out`` (eq. 5-6), as the reference
    :func:`sgdlab.nn.costs.output_delta`, in place where the output is elementwise. Units on the
    last axis; ``Y`` broadcasts against ``a``; ``tmp`` is scratch of ``out``'s shape."""
    times = TIMES_DERIVATIVE.get(output)
    if uses_shortcut(output, rule):
        np.subtract(a, Y, out=out)
        mask = shortcut_mask(rule, a, Y)  # which rules clip is said once, in nn/costs.py
        if mask is not None:
            out *= mask
    elif rule == "mse" and times is not None:
        np.subtract(a, Y, out=out)
        times(out, z, a, tmp)
    elif rule == "ce" and times is not None:
        ce_times_into(out, a, Y, times, z, tmp)
    else:
        out[...] = get_activation(output).backward(z, a, RULES[rule].grad(a, Y))


# -- costs ------------------------------------------------------------------------------------

def ce_times_into(delta, a, Y, times, z, tmp):
    """The clipped cross-entropy's output delta under an output that is not sigmoid (the
    paper's tanh or ReLU outputs), as :func:`sgdlab.nn.costs.ce_grad` and the chain rule:
    ``c = clip(a, eps, 1 - eps)``, ``delta = (c - y) / (c (1 - c)) * f'(z)`` where ``a`` is
    inside ``[eps, 1 - eps]``, 0 where it is clipped (the clipped value is flat there).
    ``Y`` broadcasts against ``a``."""
    eps = np.finfo(a.dtype).eps
    np.minimum(a, 1 - eps, out=tmp)  # np.clip, without its Python-level overhead
    np.maximum(tmp, eps, out=tmp)
    np.subtract(tmp, Y, out=delta)
    delta /= tmp
    np.subtract(1, tmp, out=tmp)
    delta /= tmp
    np.greater_equal(a, eps, out=tmp)  # 1.0 inside, 0.0 where clipped
    delta *= tmp
    np.less_equal(a, 1 - eps, out=tmp)
    delta *= tmp
    times(delta, z, a, tmp)


def ce_terms(Ymask, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(2 y - 1, 1 - y)`` in ``dtype`` for one-hot targets ``Ymask`` (bool): see :func:`loss_sums`."""
    return np.where(Ymask, 1, -1).astype(dtype), (~Ymask).astype(dtype)


def loss_sums(cost: str, a, Ymask, tmp, terms=None) -> np.ndarray:
    """Per-model sum over samples and units of the cost of outputs ``a`` ``(n, k, units)``
    against one-hot targets ``Ymask`` (bool, ``(n, 1, units)``): divide by ``n`` for the
    mean cost of :mod:`sgdlab.nn.costs` for the cost rule ``cost`` (``mse``: ``1/2 ||a - y||^2``; ``ce``: ``-[y log c +
    (1 - y) log(1 - c)]`` with ``c`` clipped to ``[eps, 1 - eps]``, unclipped under ``ce:none``; ``cce``: ``-log
    max(a_label, eps)``). ``tmp``: scratch of ``a``'s shape; ``terms``: ``ce_terms(Ymask,
    a.dtype)``, if the caller keeps it. Returns shape ``(k,)``.

    The cross-entropy's terms are ``c`` at the label and ``1 - c`` elsewhere, written as
    ``(1 - y) + (2 y - 1) c`` (exact: a sign and a 0 or 1). Where their product cannot
    underflow (every term is at least ``eps``, so when ``eps ** units`` is a normal number:
    float64 up to 19 units), a row takes one ``log`` of the product of its terms instead of
    one per unit; that sum of logs differs from the per-unit one by float rounding (about
    ``units`` ulps of 1, absolute, per row)."""
    eps = np.finfo(a.dtype).eps
    if cost == "mse":
        np.subtract(a, Ymask, out=tmp)
        return 0.5 * np.einsum("rku,rku->k", tmp, tmp)  # einsum: a fast reduction over axes 0 and 2
    if cost in ("ce", "ce:nielsen", "ce:none"):
        sign, offset = ce_terms(Ymask, a.dtype) if terms is None else terms
        clipped = cost != "ce:none"  # ce:none is eq. 5 unclipped: NaN or inf outside (0, 1)
        if clipped:
            np.minimum(a, 1 - eps, out=tmp)
            np.maximum(tmp, eps, out=tmp)
        np.multiply(tmp if clipped else a, sign, out=tmp)
        np.add(tmp, offset, out=tmp)  # c at the label, 1 - c elsewhere
        if clipped and float(eps) ** a.shape[-1] > np.finfo(a.dtype).tiny:
            return -np.log(tmp.prod(axis=-1)).sum(axis=0)
        np.log(tmp, out=tmp)
        return -np.einsum("rku->k", tmp)
    if cost == "cce":
        np.multiply(a, Ymask, out=tmp)
        label = np.maximum(np.einsum("rku->rk", tmp), eps)
        return -np.log(label).sum(axis=0)
    raise ValueError(f"unknown cost {cost!r}")
