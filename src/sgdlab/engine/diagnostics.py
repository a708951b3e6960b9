"""Per-layer diagnostics of training, epoch by epoch: what happens inside the network.

One implementation for both engines: every function works on arrays with a leading model
axis (``K`` models; the single engine is a stack of one). The engines call it from their
training loop (gradient norms, per minibatch) and from the evaluation pass that already runs
each epoch (activation statistics, on the validation set).

What is recorded (:data:`NAMES`), per epoch and per weight layer (layer 0 is input -> first
hidden layer, the output layer last); row 0 is epoch 0 (the initial weights, before any
step), row ``i`` the state after epoch ``i``; NaN where a metric does not apply to a layer:

``grad_w_mean``, ``grad_w_last``, ``grad_b_mean``, ``grad_b_last``
    L2 norm of the layer's averaged minibatch gradient of the cost (L2 decay not included)
    for its weights ``W`` and its biases ``b``: the mean over the epoch's minibatches, and
    the last minibatch's. NaN at epoch 0.
``weight_norm``
    Frobenius norm of ``W`` (biases excluded).
``update_ratio``
    ``lr * grad_w_mean / weight_norm`` of the weights the epoch started from: the mean
    size of a plain SGD step relative to the weights (``||lr grad_W|| / ||W||``). NaN at
    epoch 0.
``saturated``
    Sigmoid and tanh layers: the share of unit activations on the validation set (units x
    rows) where ``f'(z)`` is below :data:`SATURATION` (1 %) of its maximum, i.e. where the
    unit passes back less than 1 % of the gradient it could: sigmoid ``a (1 - a) < 0.0025``
    (``|z| > 5.99``), tanh ``1 - a^2 < 0.01`` (``|z| > 2.99``).
``dead_units``
    ReLU layers: the share of units that are 0 on every validation row (they get no gradient
    from any of those rows).
``dead_rows``
    ReLU layers: the share of validation rows on which every unit of the layer is 0 (the
    layers above see the same input, the bias alone, for all of them).
``clipped``
    Output layer under cost ``ce`` with an output activation other than sigmoid: the share
    of output values on the validation set outside ``[eps, 1 - eps]``, where the cross
    entropy clips them (:func:`sgdlab.nn.costs.ce_inside`; under the default ``clip``
    convention they get no gradient). NaN otherwise.

A run that finishes with its validation accuracy no more than :data:`CHANCE_MARGIN` above the
majority-class rate is at chance (:func:`at_chance`, status ``chance``); :func:`diagnose`
writes a one-line explanation for runs at chance and for diverged runs.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import SgdlabError

NAMES = ("grad_w_mean", "grad_w_last", "grad_b_mean", "grad_b_last", "weight_norm", "update_ratio",
         "saturated", "dead_units", "dead_rows", "clipped")

#: a unit is saturated where f'(z) is below this share of the activation's largest derivative
SATURATION = 0.01

# f'(z) < SATURATION * max f'  <=>  the output a is outside [low, high]:
# sigmoid a (1 - a) < 0.25 SATURATION  <=>  |a - 1/2| > sqrt(1/4 - 0.25 SATURATION);
# tanh 1 - a^2 < SATURATION  <=>  |a| > sqrt(1 - SATURATION).
_SATURATING = {"sigmoid": (0.5 - math.sqrt(0.25 - 0.25 * SATURATION), 0.5 + math.sqrt(0.25 - 0.25 * SATURATION)),
               "tanh": (-math.sqrt(1.0 - SATURATION), math.sqrt(1.0 - SATURATION))}


def layer_kinds(activation: str, output: str, n_layers: int) -> list[str]:
    """The activation of each weight layer: the hidden one, then the output's."""
    return [activation] * (n_layers - 1) + [output]


def clips(cost: str, output: str) -> bool:
    """Does ``clipped`` apply: cross-entropy on an output that is not a sigmoid."""
    return cost == "ce" and output != "sigmoid"


# -- on the validation set ----------------------------------------------------------------------

def saturated_count(a: np.ndarray, kind: str) -> np.ndarray:
    """Per model, how many entries of ``a`` ``(K, rows, units)`` (the outputs of a sigmoid or
    tanh layer) are saturated (see the module docstring); shape ``(K,)``."""
    low, high = _SATURATING[kind]
    return _count((a < low) | (a > high))


def clipped_count(a: np.ndarray) -> np.ndarray:
    """Per model, how many outputs ``a`` ``(K, rows, units)`` are outside ``[eps, 1 - eps]``."""
    eps = np.finfo(a.dtype).eps
    return _count((a < eps) | (a > 1 - eps))


def _count(mask: np.ndarray) -> np.ndarray:
    """Per model, the True entries of ``mask`` ``(K, rows, units)``. Rows first: the engines'
    evaluation arrays hold rows outermost in memory, so that sum is a fast vector add."""
    return mask.sum(axis=1, dtype=np.intp).sum(axis=1)


class ValidationStats:
    """Counts over the validation rows for ``K`` models, accumulated chunk by chunk.

    The engine calls :meth:`add` with each layer's outputs ``(k, rows, units)`` for the
    models ``k0 : k0 + k`` as its evaluation pass computes them; :meth:`result` gives the
    shares.
    """

    def __init__(self, kinds: Sequence[str], sizes: Sequence[int], clip: np.ndarray):
        K, L = len(clip), len(kinds)
        self.kinds, self.clip = list(kinds), np.asarray(clip, dtype=bool)
        self.units = list(sizes[1:])
        self.rows = np.zeros(K)
        self.saturated = np.zeros((K, L))
        self.dead_rows = np.zeros((K, L))
        self.alive = [np.zeros((K, u), dtype=bool) if k == "relu" else None for k, u in zip(kinds, self.units)]
        self.clipped = np.zeros(K)
        self._clip_any = bool(self.clip.any())

    def add(self, l: int, a: np.ndarray, k0: int = 0) -> None:
        """Layer ``l``'s outputs ``a`` ``(k, rows, units)`` of models ``k0 : k0 + k`` (any strides)."""
        kind, k1 = self.kinds[l], k0 + a.shape[0]
        if l == 0:
            self.rows[k0:k1] += a.shape[1]
        if kind in _SATURATING:
            self.saturated[k0:k1, l] += saturated_count(a, kind)
        elif kind == "relu":
            live = a > 0
            self.alive[l][k0:k1] |= live.any(axis=1)
            self.dead_rows[k0:k1, l] += a.shape[1] - live.any(axis=2).sum(axis=1)
        if l == len(self.kinds) - 1 and self._clip_any:
            self.clipped[k0:k1] += clipped_count(a)

    def result(self) -> dict[str, np.ndarray]:
        """``saturated``, ``dead_units``, ``dead_rows``, ``clipped`` as ``(K, L)`` shares (NaN where
        a metric does not apply, or with no validation rows)."""
        K, L = self.saturated.shape
        rows = np.where(self.rows > 0, self.rows, np.nan)[:, None]
        out = {n: np.full((K, L), np.nan) for n in ("saturated", "dead_units", "dead_rows", "clipped")}
        for l, (kind, units) in enumerate(zip(self.kinds, self.units)):
            if kind in _SATURATING:
                out["saturated"][:, l] = self.saturated[:, l] / (rows[:, 0] * units)
            elif kind == "relu":
                dead = units - np.count_nonzero(self.alive[l], axis=1)
                out["dead_units"][:, l] = np.where(self.rows > 0, dead / units, np.nan)
                out["dead_rows"][:, l] = self.dead_rows[:, l] / rows[:, 0]
        out["clipped"][:, -1] = np.where(self.clip, self.clipped / (rows[:, 0] * self.units[-1]), np.nan)
        return out


# -- gradients, per minibatch ---------------------------------------------------------------------

class GradNorms:
    """The squared L2 norms of each layer's weight and bias gradients, per minibatch, for ``K``
    models: the engine writes minibatch ``i``'s into :meth:`next` (shape ``(L, 2, K)``: layer,
    weights | biases, model) with one of the kernels below; :meth:`epoch` reduces them."""

    def __init__(self, K: int, L: int, n_batches: int):
        self.sq = np.zeros((n_batches, L, 2, K))
        self.i = 0

    def next(self) -> np.ndarray:
        out = self.sq[self.i]
        self.i += 1
        return out

    def epoch(self, scale: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Mean and last minibatch norms as ``(K, L)`` arrays, times ``scale`` ``(K,)`` if given
        (the batched engine's gradients carry the learning rate); starts a new epoch."""
        r = np.sqrt(self.sq[:self.i])
        mean, last = r.mean(axis=0), r[self.i - 1]
        self.i = 0
        if scale is not None:
            mean, last = mean * scale, last * scale
        return {"grad_w_mean": mean[:, 0].T, "grad_w_last": last[:, 0].T,
                "grad_b_mean": mean[:, 1].T, "grad_b_last": last[:, 1].T}


def flat_sq_norms(grad: np.ndarray, starts: np.ndarray, tmp: np.ndarray, out: np.ndarray) -> None:
    """One model's squared gradient norms from its flat gradient ``[W0, b0, W1, b1, ...]``
    (the single engine's layout): ``starts`` are the offsets of those segments, ``tmp``
    float64 scratch of ``grad``'s shape (the squares of a float32 gradient of 2e19 overflow
    in float32), ``out`` ``(L, 2, 1)``. Two numpy calls, cheap per minibatch."""
    np.square(grad, out=tmp, dtype=np.float64)
    np.add.reduceat(tmp, starts, out=out.reshape(-1))


def flat_starts(sizes: Sequence[int]) -> np.ndarray:
    """The offsets of ``W0, b0, W1, b1, ...`` in a flat parameter array (see :func:`flat_sq_norms`)."""
    starts, o = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        starts += [o, o + fan_in * fan_out]
        o += (fan_in + 1) * fan_out
    return np.asarray(starts, dtype=np.intp)


class StackedNorms:
    """``K`` models' squared gradient norms in the batched engine's layout, per minibatch.

    ``first`` ``(K * fan_out, n_in + 1)`` is the first layer's gradient (a row per unit: its
    weights, then its bias), ``blocks`` the later layers' ``(K, fan_in + 1, fan_out)``
    (contiguous, bias row last); views of the flat gradient that the engine rewrites each
    minibatch, so the operands are cut once here. Calling it writes ``(L, 2, K)`` into ``out``.

    Sums of squares are batched dot products (``np.matmul``: one BLAS dot per model and
    segment), which read the gradient once. A model's first-layer weights are not contiguous
    (each unit's row ends with its bias), so their sum is that of the whole layer minus the
    biases'; where the biases hold more than half of it, the subtraction could lose digits
    and those models are summed row by row instead. The sums are float64 whatever the stack's
    dtype: a float32 stack's gradients carry the learning rate (an lr of 50 times a gradient of
    4e17 squares past float32's largest value), and the single engine's are float64 too.
    """

    def __init__(self, first: np.ndarray, blocks: Sequence[np.ndarray], K: int):
        self.K = K
        self.first = first
        whole = first.reshape(K, 1, -1)
        bias = first[:, -1].reshape(K, 1, -1)
        self.pairs = [(whole, whole.swapaxes(1, 2)), (bias, bias.swapaxes(1, 2))]
        for blk in blocks:
            flat = blk.reshape(K, 1, -1)
            m = flat.shape[-1] - blk.shape[-1]
            for part in (flat[..., :m], flat[..., m:]):
                self.pairs.append((part, part.swapaxes(1, 2)))
        self.dots = np.empty((len(self.pairs), K, 1, 1))

    def __call__(self, out: np.ndarray) -> None:
        dots = self.dots
        for (x, xt), o in zip(self.pairs, dots):
            np.matmul(x, xt, out=o, dtype=np.float64)
        d = dots.reshape(len(self.pairs), self.K)
        np.subtract(d[0], d[1], out=out[0, 0])  # first layer: whole minus biases
        out[0, 1] = d[1]
        out[1:] = d[2:].reshape(-1, 2, self.K)
        bad = d[1] > out[0, 0]
        if bad.any():
            w = self.first[:, :-1].reshape(self.K, -1, self.first.shape[1] - 1)[bad]
            out[0, 0, bad] = np.einsum("kij,kij->k", w, w, dtype=np.float64)


def weight_norms(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Frobenius norm of each model's weights, ``(K, L)``, from the layers as ``(K, fan_in + 1,
    fan_out)`` (bias row last, excluded)."""
    return np.stack([np.sqrt(np.einsum("kio,kio->k", w[:, :-1], w[:, :-1])) for w in layers], axis=1)


# -- a run's rows -----------------------------------------------------------------------------------

class Recorder:
    """The diagnostics of ``K`` models trained together, one row per epoch (see :data:`NAMES`).

    Parameters
    ----------
    configs : sequence of RunConfig
        The models, in stack order (their lr and cost are read; they share their layer
        activations).
    sizes : sequence of int
        Layer sizes.
    n_batches : int
        Minibatches per epoch.
    """

    def __init__(self, configs, sizes: Sequence[int], n_batches: int):
        c0 = configs[0]
        self.sizes = list(sizes)
        self.L = len(sizes) - 1
        self.kinds = layer_kinds(c0.activation, c0.output_activation, self.L)
        self.n_batches = n_batches
        self._set(np.asarray([c.lr for c in configs], dtype=np.float64),
                  np.asarray([clips(c.cost, c.output_activation) for c in configs]), None)

    def _set(self, lr, clip, previous) -> None:
        self.lr, self.clip, self.previous = lr, clip, previous
        self.grads = GradNorms(len(lr), self.L, self.n_batches)

    def validation(self) -> ValidationStats:
        """A fresh accumulator for this epoch's validation pass."""
        return ValidationStats(self.kinds, self.sizes, self.clip)

    def row(self, layers: Sequence[np.ndarray], stats: ValidationStats, initial: bool = False,
            grad_scale: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """This epoch's values, ``name -> K lists of L floats``: the weights ``layers`` (as for
        :func:`weight_norms`) after the epoch, the validation ``stats``, and the gradient norms
        recorded since the last row (none for ``initial``, epoch 0)."""
        K = len(self.lr)
        norms = weight_norms(layers)
        if initial:
            out = {n: np.full((K, self.L), np.nan) for n in (*NAMES[:4], "update_ratio")}
        else:
            out = self.grads.epoch(grad_scale)
            out["update_ratio"] = self.lr[:, None] * out["grad_w_mean"] / self.previous
        out["weight_norm"] = norms
        out.update(stats.result())
        self.previous = norms
        return {name: out[name].tolist() for name in NAMES}

    def keep(self, mask: np.ndarray) -> None:
        """Drop the models where ``mask`` is False (they left the stack)."""
        self._set(self.lr[mask], self.clip[mask], None if self.previous is None else self.previous[mask])


def append_row(diagnostics: dict, row: dict[str, list], j: int = 0) -> None:
    """Append model ``j``'s values of ``row`` (from :meth:`Recorder.row`) to a history's
    ``diagnostics`` dict."""
    for name in NAMES:
        diagnostics.setdefault(name, []).append(row[name][j])


# -- at chance, and why ---------------------------------------------------------------------------

#: "at chance": accuracy at most this far above the majority-class rate (fraction)
CHANCE_MARGIN = 0.05


def majority_rate(labels) -> float:
    """The accuracy of always predicting the most frequent class of ``labels`` (fraction)."""
    y = np.asarray(labels)
    if y.size == 0:
        raise SgdlabError("majority_rate: no labels")
    return float(np.unique(y, return_counts=True)[1].max() / y.size)


def at_chance(accuracy: float, chance: float | None, margin: float = CHANCE_MARGIN) -> bool:
    """The one rule for "learns nothing": ``accuracy <= chance + margin``.

    ``chance`` is the majority-class rate of the split the accuracy is measured on
    (:func:`majority_rate`); below it counts too (a diverged run's 0). With ``chance`` None
    (the data could not be loaded) nothing is called at chance. The engines apply it to a
    finished run's final validation accuracy (status ``chance``), the report to a cell's mean.
    """
    if chance is None or accuracy is None or not math.isfinite(accuracy):
        return False
    return accuracy <= chance + margin + 1e-12


def conclude(history, config, y_val) -> None:
    """Set a finished run's ``status`` to ``chance`` when its final validation accuracy is at
    chance (:func:`at_chance` on ``y_val``), and its ``diagnosis`` when it is at chance or
    diverged (:func:`diagnose`)."""
    if history.status == "done" and history.val_acc and len(y_val):
        if at_chance(history.val_acc[-1], majority_rate(y_val)):
            history.status = "chance"
    if history.status in ("chance", "diverged"):
        history.diagnosis = diagnose(history, config, y_val)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _since(holds: Sequence[bool]) -> int:
    """The first epoch (row) from which ``holds`` stays True."""
    i = len(holds)
    while i > 0 and holds[i - 1]:
        i -= 1
    return i


def _layer(l: int, L: int) -> str:
    return "the output layer" if l == L - 1 else f"layer {l + 1}"


#: the smallest share of a layer :func:`blockage` calls blocked
BLOCKED = 0.5
#: below this largest update/weight ratio per step, :func:`blockage` says the weights barely move
TINY_STEP = 1e-4


def blockage(diagnostics: dict) -> tuple[str, int, float, int] | None:
    """What blocks learning at a run's last recorded epoch: ``(kind, layer, value, since)``.

    The gradient flows back from the output, so the blockage nearest it explains the most:
    from the output layer down, the first of ``clipped`` (ce outputs), ``dead_units``,
    ``dead_rows`` (ReLU) or ``saturated`` (sigmoid, tanh) that holds at least :data:`BLOCKED`
    of a layer, with its share and the epoch from which it held; else ``tiny_steps`` (largest
    update/weight ratio below :data:`TINY_STEP`) or ``none``, with that ratio (layer -1,
    since -1). None without diagnostics. The one rule behind :func:`diagnose` and the report.
    """
    if not diagnostics or not diagnostics.get("weight_norm"):
        return None
    final = {n: np.asarray(v[-1], dtype=float) for n, v in diagnostics.items() if v}
    L = len(final["weight_norm"])
    names = ("clipped", "dead_units", "dead_rows", "saturated")
    for l in range(L - 1, -1, -1):
        for name in names:
            v = final.get(name)
            if name == "clipped" and l != L - 1 or v is None or not np.isfinite(v[l]) or v[l] < BLOCKED:
                continue
            return name, l, float(v[l]), _since([r[l] >= v[l] for r in diagnostics[name]])
    ratio = final.get("update_ratio")
    r = float(np.nanmax(ratio)) if ratio is not None and np.isfinite(ratio).any() else math.nan
    return ("tiny_steps" if r < TINY_STEP else "none"), -1, r, -1


def diagnose(history, config, y_val=()) -> str | None:
    """One line on why a run is at chance or diverged, from its diagnostics (None otherwise).

    Layers are counted from 1 (layer 1: input -> first hidden layer). The finding is
    :func:`blockage`'s, with a suggestion.
    """
    d = history.diagnostics or {}
    lr = config.lr
    if history.status == "diverged":
        s = f"diverged in epoch {history.diverged_epoch} (a non-finite loss or weight)"
        ratio = d.get("update_ratio") or []
        if len(ratio) > 1:
            last = np.asarray(ratio[-1], dtype=float)
            if np.isfinite(last).any():
                l = int(np.nanargmax(last))
                s += (f"; in epoch {len(ratio) - 1} the mean step of {_layer(l, len(last))} was "
                      f"{last[l]:.2g} x its weights")
        return s + f"; try a smaller lr than {lr:g}"
    if history.status != "chance":
        return None
    accs = history.val_acc
    rate = majority_rate(y_val) if len(y_val) else None
    since = _since([at_chance(acc, rate) for acc in accs])
    head = f"at chance since epoch {since + 1}" if since < len(accs) else "at chance"
    if rate is not None:
        head += f" (val acc {accs[-1]:.3f}, majority class {rate:.3f})"
    if not d or not d.get("weight_norm"):
        return head + "; no diagnostics recorded"
    kind, l, share, held = blockage(d)  # not None: there are diagnostics
    L = len(d["weight_norm"][-1])
    hint = "try xavier init or a smaller lr" if config.init == "gaussian" else "try a smaller lr"
    finding = _FINDINGS[kind].format(pct=_pct(share), share=share, held=held, where=_layer(l, L), hint=hint,
                                     activation=layer_kinds(config.activation, config.output_activation, L)[l])
    return f"{head}; {finding}"


#: :func:`diagnose`'s finding for each kind of :func:`blockage`
_FINDINGS = {
    "clipped": ("{pct} of the {activation} outputs clipped by ce (no gradient there) from epoch {held}; "
                "try a sigmoid/softmax output or mse"),
    "dead_units": ("{pct} of the ReLUs of {where} dead (0 on every validation row) from epoch {held}; "
                   "try a smaller lr or a sigmoid/softmax output"),
    "dead_rows": ("every ReLU of {where} is 0 on {pct} of validation rows from epoch {held}; "
                  "try a smaller lr or a sigmoid/softmax output"),
    "saturated": ("{pct} of the {activation} units of {where} saturated (f' < 1 % of its maximum) "
                  "from epoch {held}; {hint}"),
    "tiny_steps": "the weights barely move (largest update/weight ratio {share:.1e} per step); try a larger lr",
    "none": ("no dead, saturated or clipped units (largest update/weight ratio {share:.1e} per step); "
             "try another lr or more epochs"),
}
