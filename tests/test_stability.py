"""Numerical stability: no overflow warnings, finite costs at the edges, honest divergence."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from sgdlab import Network, RunConfig, train
from sgdlab.nn.activations import sigmoid, softmax
from sgdlab.nn.costs import cce_grad, cce_value, ce_grad, ce_value
from sgdlab.nn.network import one_hot


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_at_plus_minus_1e4(dtype):
    z = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is right
        a = sigmoid(z)
    assert a.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))
    assert a[0] == 0 and a[-1] == 1 and a[3] == 0.5
    assert a[2] > 0  # exp(-50) is representable: no premature flush to 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_at_plus_minus_1e4(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is right
        a = softmax(z)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(a, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], atol=1e-7)


@pytest.mark.parametrize("output,cost", [("sigmoid", "ce"), ("softmax", "cce"), ("sigmoid", "mse")])
def test_network_with_huge_inputs_stays_finite_without_warnings(output, cost):
    rng = np.random.default_rng(0)
    net = Network([3, 4, 2], "sigmoid", output, cost).initialize("gaussian", "normal", rng)
    X = np.array([[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4]])
    Y = one_hot(np.array([0, 1]), 2)
    a = net.predict_proba(X)
    assert np.all(np.isfinite(a))
    assert math.isfinite(net.loss(X, Y))
    g = net.gradients(X, Y)
    assert all(np.all(np.isfinite(p)) for p in [*g.weights, *g.biases])


def test_ce_at_outputs_exactly_zero_and_one_is_finite():
    a = np.array([[0.0, 1.0, 0.0, 1.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0]])  # right, right, wrong, wrong
    v = ce_value(a, y)
    g = ce_grad(a, y)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    # the confidently wrong outputs cost about -log(eps) each, the right ones about 0
    eps = np.finfo(np.float64).eps
    assert v[()] == pytest.approx(-2 * math.log(eps), rel=1e-6)
    assert cce_value(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])) == pytest.approx(-math.log(eps))
    assert np.all(np.isfinite(cce_grad(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))))


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_output_under_ce_at_lr_1_finishes(seed, digits):
    """The paper's relu output under ce: outputs leave (0, 1) and get clipped; the run must
    finish and report either a number or `diverged`, never crash or warn."""
    config = RunConfig(activation="relu", output="same", cost="ce", lr=1.0, epochs=5, seed=seed)
    hist = train(config, digits).history
    assert hist.status in ("done", "chance", "diverged")
    if hist.status == "diverged":
        assert hist.diverged_epoch is not None and hist.epochs == hist.diverged_epoch - 1
    else:
        assert hist.epochs == 5 and all(math.isfinite(v) for v in hist.train_loss)
    final = hist.final()
    assert final["status"] == hist.status


def test_divergence_is_detected_and_history_kept(digits):
    """identity layers with a large learning rate blow up: status `diverged`, the epoch it
    happened, and the epochs before it kept."""
    config = RunConfig(activation="identity", output="same", cost="mse", lr=5.0, epochs=20, seed=0)
    hist = train(config, digits).history
    assert hist.status == "diverged"
    assert hist.diverged_epoch == hist.epochs + 1
    assert all(math.isfinite(v) for v in hist.train_loss)
    assert hist.final()["status"] == "diverged"


def test_tanh_output_under_ce_finishes_float32(digits):
    config = RunConfig(activation="tanh", output="same", cost="ce", lr=1.0, epochs=3, dtype="float32")
    result = train(config, digits)
    assert result.history.status in ("done", "chance", "diverged")
    assert all(p.dtype == np.float32 for p in result.network.params)
