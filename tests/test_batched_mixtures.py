"""The batched engine against the single engine on random mixtures of runs (hypothesis).

``tests/test_batched.py`` compares hand-picked groups. Here hypothesis draws whole mixtures:
one to three groups (hidden sizes, hidden and output activation, batch size, dtype), each with
members of several seeds that differ in cost and ce convention, initialisation, learning rate
(up to diverging ones), momentum, Nesterov, L2, patience and number of epochs, so models leave
their stacks at different epochs (finished, stopped early, diverged) and seed blocks empty
while others go on. Each mixture is trained with ``train_many`` three ways (one call, a
budget that cuts it into stacks of at most three models, two threads) and every run alone with
``sgdlab.train``; every run must agree with its single-engine twin.

How close is "agree"? The engines sum in other orders, so they differ by rounding, amplified
by the training as much as that run amplifies rounding. The test measures the amplification
instead of assuming it: each run is trained again on the single engine three times, each time
moved by one rounding step of its dtype (every training input times ``1 + eps``; every
training input times ``1 +- eps``, random signs; every initial weight times ``1 +- eps``).

- What no probe changed must be identical: status, epoch of divergence, epoch of early
  stopping, number of epochs, and the train/validation/test accuracy of every epoch.
- Every loss of the history, every diagnostic and the final weights must be within
  ``RATIO * max(s, 10 eps)`` relative (to ``max(1, |value|)``), where ``s`` is the largest
  relative move of any probe, and with the same pattern of non-finite values. Measured on
  4,375 runs of mixtures drawn like these (2,895 float64, 1,480 float32), the batched/single
  difference was at most 10x that bound's ``max(s, 10 eps)``; ``RATIO`` = 100 leaves a 10x
  margin. A diverged run's history is its epochs before divergence (no final weights).

The engines' kernels differ in one place: the batched engine computes ``tanh(z)`` as
``1 - 2 / (1 + exp(2 z))``, within 2.5e-16 *absolute* of ``np.tanh`` (``docs/batched.md``).
Where a tanh output saturates under cross-entropy, the loss takes ``log(1 - a)`` and that
absolute error is a relative one of order 1 in ``1 - a`` (a test loss moved by 5e-11 relative
on a run whose probes above moved by 1e-15; with ``np.tanh`` in the stack, by 7e-16). No
rounding of the inputs or weights reproduces it, so runs with tanh units get a fourth probe:
the single engine with the batched engine's tanh kernel.

Cross-entropy on an output other than sigmoid (tanh, ReLU, softmax under ``ce``) has a
gradient of about ``-1 / a`` at a small output ``a`` (``sgdlab.nn.costs``), down to the clip
at ``eps``. Its runs amplify rounding in directions no probe samples: tanh hidden units,
softmax output, ``ce``, lr 3, batch 7, seed 0 on 60 training rows moved 1.9e-9 after one epoch
(probes: at most 1.6e-11) and 0.97 after four (probes: 7e-4). Traced step by step, the two
engines' output deltas agree to 2e-16 at the first minibatch and the gap grows smoothly as
softmax outputs fall to 1e-14 .. 1e-22 (a wrong formula would differ at once; with
``np.tanh`` in the stack the numbers are the same); another run of the family moved 1e5x its
probes. No multiple of the probes bounds this family, so its runs are compared by outcome, as
``tests/test_clipped_gradients.py`` compares its sensitive runs: status, epochs, divergence and
early stopping, where no probe moves them (not the accuracies, nor the trajectory).

A single probe is not enough: on ReLU-like outputs under cross-entropy the gradient is about
``1 / a`` for a small output ``a``, and which rounding errors excite it depends on the
direction; the coherent ``1 + eps`` input probe missed runs that the random-sign probes caught,
and the other way round.
"""

from __future__ import annotations

import dataclasses
import math
from unittest import mock

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sgdlab.choices import BIAS_INITS, DTYPES, HIDDEN_ACTIVATIONS, INITS, OUTPUTS  # noqa: E402
from sgdlab.config import RunConfig  # noqa: E402
from sgdlab.engine import train  # noqa: E402
from sgdlab.engine.batched import bytes_per_model, plan, train_many  # noqa: E402
from sgdlab.engine import packed  # noqa: E402
from sgdlab.engine.kernels import forward_into  # noqa: E402
from sgdlab.engine.loop import build_network  # noqa: E402

RATIO = 100  # allowed batched/single difference, in units of the measured rounding sensitivity
HIDDEN = ((5,), (6,), (7, 4))
LRS = (1e-3, 0.05, 0.5, 3.0, 50.0)  # 3 and 50 diverge or saturate on many configurations
MIXTURES = settings(max_examples=60, derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def parts(digits):
    """Slices of digits: 97 training rows (no batch size divides it: a last smaller minibatch)
    or 60; 40 validation rows or none (patience then never stops a run); 40 test rows."""
    def cut(n_train, n_val):
        d = digits
        return dataclasses.replace(d, X_train=d.X_train[:n_train], y_train=d.y_train[:n_train],
                                   X_val=d.X_val[:n_val], y_val=d.y_val[:n_val], X_test=d.X_test[:40],
                                   y_test=d.y_test[:40])
    return {(n, v): cut(n, v) for n in (60, 97) for v in (0, 40)}


@st.composite
def members(draw, output_activation: str, seeds: list[int]):
    cost = draw(st.sampled_from(("mse", "ce", "cce") if output_activation == "softmax" else ("mse", "ce")))
    momentum = draw(st.sampled_from((0.0, 0.0, 0.5, 0.9)))
    return dict(cost=cost, ce_outside=draw(st.sampled_from(("clip", "nielsen", "none"))) if cost == "ce" else "clip",
                init=draw(st.sampled_from(INITS)), bias_init=draw(st.sampled_from(BIAS_INITS)),
                lr=draw(st.sampled_from(LRS)), epochs=draw(st.integers(1, 4)), seed=draw(st.sampled_from(seeds)),
                momentum=momentum, nesterov=momentum > 0 and draw(st.booleans()),
                l2=draw(st.sampled_from((0.0, 0.0, 1e-3, 0.1))), patience=draw(st.sampled_from((None, None, 1, 2))))


@st.composite
def mixtures(draw):
    """``(data key, configs)``: one to three groups of one to ten runs, shuffled together."""
    configs = []
    for _ in range(draw(st.integers(1, 3))):
        group = dict(hidden=draw(st.sampled_from(HIDDEN)), activation=draw(st.sampled_from(HIDDEN_ACTIVATIONS)),
                     output=draw(st.sampled_from(OUTPUTS)), batch_size=draw(st.sampled_from((7, 16, 128))),
                     dtype=draw(st.sampled_from(DTYPES)))
        out = group["activation"] if group["output"] == "same" else group["output"]
        seeds = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True))
        configs += [RunConfig(**group, **m) for m in draw(st.lists(members(out, seeds), min_size=1, max_size=10))]
    order = draw(st.permutations(range(len(configs))))
    return (draw(st.sampled_from((60, 97))), draw(st.sampled_from((0, 40)))), [configs[i] for i in order]


# -- comparing two runs ---------------------------------------------------------------------------

def outcome(r) -> dict:
    h = r.history
    return {"status": h.status, "diverged_epoch": h.diverged_epoch, "stopped_epoch": h.stopped_epoch,
            "epochs": h.epochs, "train_acc": h.train_acc, "val_acc": h.val_acc, "test_acc": h.test_acc}


def arrays(r, epochs: int) -> dict[str, np.ndarray]:
    """The run's values compared within a tolerance: losses and diagnostics of its first
    ``epochs`` epochs, and its final weights unless it diverged."""
    h = r.history
    out = {f"{p}_loss": np.asarray(getattr(h, f"{p}_loss")[:epochs], dtype=float) for p in ("train", "val", "test")}
    for name, rows in h.diagnostics.items():
        out[name] = np.asarray(rows[:epochs + 1], dtype=float)
    if h.status != "diverged" and h.epochs == epochs:
        out.update({f"param{i}": np.asarray(p, dtype=float) for i, p in enumerate(r.network.params)})
    return out


def moved(a, b) -> tuple[float, str]:
    """How far run ``a`` is from run ``b`` over their common epochs: the largest
    ``|a - b| / max(1, max |b|)`` of any compared array, and its name; inf where the
    non-finite values differ."""
    epochs = min(a.history.epochs, b.history.epochs)
    A, B = arrays(a, epochs), arrays(b, epochs)
    worst, where = 0.0, ""
    for name in sorted(B.keys() & A.keys()):
        x, y = A[name], B[name]
        if x.shape != y.shape or not np.array_equal(np.isfinite(x), np.isfinite(y)) \
                or not np.array_equal(np.isnan(x), np.isnan(y)):
            return math.inf, name
        fin = np.isfinite(y)
        x, y = x[fin], y[fin]
        if y.size:
            d = float(np.max(np.abs(x - y))) / max(1.0, float(np.max(np.abs(y))))
            if d > worst:
                worst, where = d, name
    if A.keys() != B.keys():
        return math.inf, str(sorted(A.keys() ^ B.keys()))
    return worst, where


def probes(c: RunConfig, data):
    """The single engine's run of ``c`` moved by one rounding step three ways, and with the
    batched engine's tanh kernel where ``c`` has tanh units (module docstring)."""
    eps = np.finfo(c.dtype).eps
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=data.X_train.shape)
    yield train(c, dataclasses.replace(data, X_train=data.X_train * (1 + eps)))
    yield train(c, dataclasses.replace(data, X_train=data.X_train * (1 + eps * signs)))
    net = build_network(c, data.n_features, data.n_classes)
    for p in net.params:
        p *= (1 + eps * rng.choice([-1.0, 1.0], size=p.shape)).astype(p.dtype)
    yield train(c, data, network=net)
    if "tanh" in (c.activation, c.output_activation):
        with mock.patch.object(packed, "forward_into", lambda name, small=False: forward_into(name)):
            yield train(c, data)


def assert_agrees(c, got: dict, want, moves: list, how_probes_moved: list[dict]) -> None:
    """``got``: the batched engine's runs of ``c`` by variant; ``want``: the single engine's."""
    eps = float(np.finfo(c.dtype).eps)
    s = max(m for m, _ in moves)
    clipped_ce = c.cost == "ce" and c.output_activation != "sigmoid"
    tol = math.inf if clipped_ce else RATIO * max(s, 10 * eps)
    stable = {k for k, v in outcome(want).items() if all(p[k] == v for p in how_probes_moved)}
    if clipped_ce:
        stable -= {"train_acc", "val_acc", "test_acc"}
    for variant, r in got.items():
        o, w = outcome(r), outcome(want)
        for k in stable:
            assert o[k] == w[k], f"{variant}: {k} {o[k]} != {w[k]} (stable under every probe)\n{c}"
        d, where = moved(r, want)
        assert d <= tol, (f"{variant}: {where} moved {d:.3g} > {RATIO} x max(sensitivity {s:.3g}, 10 eps)"
                          f"\n{c}")


@MIXTURES
@given(mixture=mixtures())
def test_random_mixtures_match_the_single_engine(mixture, parts):
    (n_train, n_val), configs = mixture
    data = parts[(n_train, n_val)]
    # a budget of at most three models per stack, for every group
    budget = 3 * min(bytes_per_model([data.n_features, *c.hidden, data.n_classes], c.batch_size, c.dtype)
                     for c in configs)
    assert all(len(m) <= 3 for _, m in plan(configs, data, max_bytes=budget))
    variants = {"one call": train_many(configs, data),
                "chunked": train_many(configs, data, max_bytes=budget),
                "threads": train_many(configs, data, threads=2)}
    for i, c in enumerate(configs):
        want = train(c, data)
        moved_runs = list(probes(c, data))
        assert_agrees(c, {v: rs[i] for v, rs in variants.items()}, want,
                      [moved(m, want) for m in moved_runs], [outcome(m) for m in moved_runs])
        for rs in variants.values():
            assert rs[i].config == c and rs[i].network.sizes == want.network.sizes


def test_float32_gradient_norms_do_not_overflow_in_the_batched_engine(digits):
    """Found by the test above: a float32 stack folds the learning rate into its gradients, and
    summed their squares in float32, so a gradient norm of 4e17 at lr 50 came out inf (NaN for
    the first layer's weights, whole minus biases: inf - inf) where the single engine records
    the value. The squares are summed in float64 in both engines now."""
    d = dataclasses.replace(digits, X_train=digits.X_train[:97], y_train=digits.y_train[:97])
    c = RunConfig(hidden=(6,), activation="leaky_relu", output="sigmoid", cost="ce", ce_outside="nielsen",
                  init="gaussian", lr=50.0, batch_size=7, epochs=1, seed=4, dtype="float32")
    got, want = train_many([c], d)[0].history, train(c, d).history
    assert got.status == want.status == "chance"  # finished (not diverged), at chance
    for name in ("grad_w_mean", "grad_w_last", "grad_b_mean", "grad_b_last"):
        assert np.isfinite(want.diagnostics[name][1]).all() and max(want.diagnostics[name][1]) > 1e17  # the premise
        np.testing.assert_allclose(got.diagnostics[name][1], want.diagnostics[name][1], rtol=1e-5, err_msg=name)
