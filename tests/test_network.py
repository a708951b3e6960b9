"""A Network pickles: its activation and cost functions are looked up again from their names."""

import pickle

import numpy as np
import pytest

from sgdlab import RunConfig, train


@pytest.mark.parametrize("activation, output, cost", [("sigmoid", "same", "ce"), ("tanh", "softmax", "cce")])
def test_a_trained_network_pickles_and_predicts_the_same(activation, output, cost):
    config = RunConfig(dataset="iris", hidden=[5], activation=activation, output=output, cost=cost,
                       epochs=2, lr=0.5, seed=3)
    net = train(config, diagnostics=False).network
    back = pickle.loads(pickle.dumps(net))
    X = np.random.default_rng(0).standard_normal((7, net.sizes[0]))
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    assert (back.rule, back.shortcut, back.output) == (net.rule, net.shortcut, net.output)
