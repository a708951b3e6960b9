"""A 2-2-1 network, sigmoid hidden and output, cross-entropy, one SGD step, by hand.

The weights are chosen so that every pre-activation of the first forward pass is 0,
hence every sigmoid is 1/2 and every sigma' = 1/2 * 1/2 = 1/4: all the numbers below are
exact in binary floating point, and the test asks for exact equality.

    x = (1, -1), y = 1, learning rate 1
    W0 = [[0.5, 1.0],      b0 = (0, 0)       (W0 is (fan_in, fan_out): row i = input i)
          [0.5, 1.0]]
    W1 = [[ 1.0],          b1 = (0,)
          [-1.0]]

forward (eq. 3):
    z1 = x @ W0 + b0 = (1*0.5 - 1*0.5, 1*1 - 1*1) = (0, 0)     a1 = sigma(z1) = (0.5, 0.5)
    z2 = a1 @ W1 + b1 = 0.5*1 + 0.5*(-1) + 0 = 0                a2 = sigma(0) = 0.5
    C  = -[y log a2 + (1-y) log(1-a2)] = -log 0.5 = log 2

backward (eq. 5-9), sigmoid + ce, so delta2 = a2 - y exactly:
    delta2 = 0.5 - 1 = -0.5
    dW1 = a1^T delta2 = [[0.5 * -0.5], [0.5 * -0.5]] = [[-0.25], [-0.25]]
    db1 = delta2 = -0.5
    delta1 = (delta2 W1^T) * a1 (1 - a1) = (-0.5 * 1, -0.5 * -1) * 0.25 = (-0.125, 0.125)
    dW0 = x^T delta1 = [[ 1 * -0.125,  1 * 0.125],     = [[-0.125,  0.125],
                        [-1 * -0.125, -1 * 0.125]]        [ 0.125, -0.125]]
    db0 = delta1 = (-0.125, 0.125)

update p <- p - 1 * dp:
    W0 = [[0.625, 0.875], [0.375, 1.125]]   b0 = (0.125, -0.125)
    W1 = [[1.25], [-0.75]]                  b1 = (0.5,)

Averaging over a minibatch (paper, step 6): add the sample x' = (0, 0) with target 0.
Then z1 = b0 = 0, a1 = (0.5, 0.5), a2 = 0.5 again, delta2' = 0.5 - 0 = +0.5,
dW1' = [[0.25], [0.25]], db1' = 0.5, delta1' = (0.5, -0.5) * 0.25 = (0.125, -0.125),
dW0' = 0 (x' = 0), db0' = (0.125, -0.125). The mean of the two samples:
dW1 = [[0], [0]], db1 = 0, dW0 = [[-0.0625, 0.0625], [0.0625, -0.0625]], db0 = (0, 0).
"""

from __future__ import annotations

import math

import numpy as np

from sgdlab import Network, RunConfig, train
from sgdlab.data import Dataset
from sgdlab.engine.optim import SGD


def _hand_network():
    net = Network([2, 2, 1], "sigmoid", "sigmoid", "ce")
    net.weights = [np.array([[0.5, 1.0], [0.5, 1.0]]), np.array([[1.0], [-1.0]])]
    net.biases = [np.zeros(2), np.zeros(1)]
    return net


X = np.array([[1.0, -1.0]])
Y = np.array([[1.0]])

W0_AFTER = np.array([[0.625, 0.875], [0.375, 1.125]])
B0_AFTER = np.array([0.125, -0.125])
W1_AFTER = np.array([[1.25], [-0.75]])
B1_AFTER = np.array([0.5])


def test_forward_and_loss():
    net = _hand_network()
    zs, acts = net.forward(X)
    np.testing.assert_array_equal(zs[0], [[0.0, 0.0]])
    np.testing.assert_array_equal(acts[1], [[0.5, 0.5]])
    np.testing.assert_array_equal(acts[2], [[0.5]])
    assert net.loss(X, Y) == math.log(2)


def test_gradients_by_hand():
    g = _hand_network().gradients(X, Y)
    np.testing.assert_array_equal(g.weights[1], [[-0.25], [-0.25]])
    np.testing.assert_array_equal(g.biases[1], [-0.5])
    np.testing.assert_array_equal(g.weights[0], [[-0.125, 0.125], [0.125, -0.125]])
    np.testing.assert_array_equal(g.biases[0], [-0.125, 0.125])


def test_one_sgd_step_by_hand():
    net = _hand_network()
    SGD(lr=1.0).step(net.weights, net.biases, net.gradients(X, Y))
    np.testing.assert_array_equal(net.weights[0], W0_AFTER)
    np.testing.assert_array_equal(net.biases[0], B0_AFTER)
    np.testing.assert_array_equal(net.weights[1], W1_AFTER)
    np.testing.assert_array_equal(net.biases[1], B1_AFTER)
    # and the loss went down: the new forward pass, by the formulas
    s = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    a2 = s(1.25 * s(0.375) - 0.75 * s(-0.375) + 0.5)
    assert math.isclose(net.loss(X, Y), -math.log(a2), rel_tol=1e-14)
    assert net.loss(X, Y) < math.log(2)


def test_one_step_through_the_training_loop():
    """The same step through train() (the packed fast path): one sample, batch 1, one epoch."""
    empty = np.empty((0, 2))
    data = Dataset("hand", X, np.array([0]), empty, np.array([], dtype=int), empty, np.array([], dtype=int),
                   classes=np.array([1]))
    config = RunConfig(hidden=(2,), activation="sigmoid", cost="ce", lr=1.0, batch_size=1, epochs=1)
    net = train(config, data, network=_hand_network()).network
    np.testing.assert_array_equal(net.weights[0], W0_AFTER)
    np.testing.assert_array_equal(net.biases[0], B0_AFTER)
    np.testing.assert_array_equal(net.weights[1], W1_AFTER)
    np.testing.assert_array_equal(net.biases[1], B1_AFTER)


def test_minibatch_gradients_are_averaged():
    X2 = np.array([[1.0, -1.0], [0.0, 0.0]])
    Y2 = np.array([[1.0], [0.0]])
    g = _hand_network().gradients(X2, Y2)
    np.testing.assert_array_equal(g.weights[1], [[0.0], [0.0]])
    np.testing.assert_array_equal(g.biases[1], [0.0])
    np.testing.assert_array_equal(g.weights[0], [[-0.0625, 0.0625], [0.0625, -0.0625]])
    np.testing.assert_array_equal(g.biases[0], [0.0, 0.0])
