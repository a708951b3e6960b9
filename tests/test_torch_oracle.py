"""PyTorch (float64) as an oracle for whole SGD trajectories.

The same initial weights, the same minibatch order (``rng_streams(seed)[1].permutation(n)``
each epoch), one epoch of SGD on the digits training set: every parameter must equal
torch's within 1e-10. The settings are well conditioned on purpose: where outputs saturate
and get clipped (the paper's tanh output under ce) trajectories are chaotic and a 1e-15
perturbation grows to 1e-2 in one epoch, so no oracle could agree.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is a test extra (pip install torch==2.13.0); "
                                            "the PyTorch oracle needs it")

from sgdlab import RunConfig, train  # noqa: E402
from sgdlab.config import rng_streams  # noqa: E402
from sgdlab.nn.network import one_hot  # noqa: E402
from sgdlab.engine.loop import build_network  # noqa: E402
from sgdlab.engine.optim import SGD  # noqa: E402

@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny minibatches: torch's thread pool only adds hand-off costs (and on a busy 2-core
    machine makes these tests ten times slower). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TORCH_ACT = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def _torch_model(net):
    """nn.Sequential with sgdlab's initial parameters (Linear.weight is W.T)."""
    layers = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(*W.shape, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        last = l == len(net.weights) - 1
        name = net.output if last else net.activation
        if name != "softmax":  # softmax is folded into the cce loss below
            layers.append(TORCH_ACT[name]())
    return torch.nn.Sequential(*layers)


def _loss(cost, out, y):
    n = out.shape[0]
    if cost == "ce":  # sgdlab's ce: binary CE summed over outputs, mean over samples
        return torch.nn.functional.binary_cross_entropy(out, y, reduction="sum") / n
    if cost == "mse":  # 1/(2n) sum ||y - a||^2
        return 0.5 * ((out - y) ** 2).sum() / n
    if cost == "cce":  # softmax + categorical CE on the logits
        return torch.nn.functional.cross_entropy(out, y.argmax(dim=1), reduction="mean")
    raise AssertionError(cost)


def _torch_sgd(model, config):
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    biases = [m.bias for m in model if isinstance(m, torch.nn.Linear)]
    # L2 on weights only, as sgdlab does: two parameter groups
    return torch.optim.SGD([{"params": weights, "weight_decay": config.l2},
                            {"params": biases, "weight_decay": 0.0}],
                           lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)


def _torch_train(net, config, data, steps=None):
    model = _torch_model(net)
    opt = _torch_sgd(model, config)
    X = torch.from_numpy(data.X_train)
    Y = torch.from_numpy(one_hot(data.y_train, data.n_classes))
    n = len(data.y_train)
    _, shuffle_rng = rng_streams(config.seed)
    done = 0
    for _ in range(config.epochs):
        perm = torch.from_numpy(shuffle_rng.permutation(n))
        for i in range(0, n, config.batch_size):
            idx = perm[i:i + config.batch_size]
            opt.zero_grad()
            _loss(config.cost, model(X[idx]), Y[idx]).backward()
            opt.step()
            done += 1
            if steps is not None and done == steps:
                return model
    return model


def _assert_same(net, model, tol=1e-10):
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    worst = 0.0
    for W, b, lin in zip(net.weights, net.biases, lins):
        worst = max(worst, np.max(np.abs(W - lin.weight.detach().numpy().T)),
                    np.max(np.abs(b - lin.bias.detach().numpy())))
    assert worst <= tol, f"largest parameter difference from torch: {worst:.3e}"
    return worst


CASES = {
    "sigmoid-ce": dict(activation="sigmoid", output="same", cost="ce", lr=1.0),  # the paper's best
    "tanh-mse": dict(activation="tanh", output="same", cost="mse", lr=0.05),
    "relu-cce": dict(activation="relu", output="softmax", cost="cce", lr=0.1, init="he"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_epoch_of_sgd_matches_torch(case, digits):
    config = RunConfig(**CASES[case], epochs=1, seed=3)
    init_net = build_network(config, digits.n_features, digits.n_classes)
    model = _torch_train(init_net.copy(), config, digits)
    result = train(config, digits)
    moved = max(np.max(np.abs(a - b)) for a, b in zip(result.network.params, init_net.params))
    assert moved > 1e-2  # the epoch really trained
    _assert_same(result.network, model)


@pytest.mark.parametrize("momentum,nesterov,l2", [(0.9, False, 0.0), (0.9, True, 0.0), (0.0, False, 1e-3),
                                                  (0.8, True, 1e-2)])
def test_momentum_nesterov_l2_match_torch_optim_sgd(momentum, nesterov, l2, digits):
    """The training loop's flat update and SGD.step both follow torch.optim.SGD
    (dampening 0; L2 through weight_decay on the weights' parameter group only)."""
    config = RunConfig(activation="sigmoid", cost="ce", lr=0.3, epochs=1, seed=5, momentum=momentum,
                       nesterov=nesterov, l2=l2)
    init_net = build_network(config, digits.n_features, digits.n_classes)
    model = _torch_train(init_net.copy(), config, digits)
    _assert_same(train(config, digits).network, model)

    # the list-based SGD.step, a few steps by hand
    steps = 5
    net, opt = init_net.copy(), SGD(config.lr, momentum, nesterov, l2)
    _, shuffle_rng = rng_streams(config.seed)
    perm = shuffle_rng.permutation(len(digits.y_train))
    Y = one_hot(digits.y_train, digits.n_classes)
    for i in range(steps):
        idx = perm[i * 10:(i + 1) * 10]
        opt.step(net.weights, net.biases, net.gradients(digits.X_train[idx], Y[idx]))
    _assert_same(net, _torch_train(init_net.copy(), config, digits, steps=steps), tol=1e-13)


def test_forward_and_gradients_match_torch_autograd(digits):
    """One minibatch: outputs and every gradient of the paper's pair against autograd."""
    config = RunConfig(seed=1)
    net = build_network(config, digits.n_features, digits.n_classes)
    X, Y = digits.X_train[:10], one_hot(digits.y_train[:10], digits.n_classes)
    model = _torch_model(net)
    out = model(torch.from_numpy(X))
    _loss("ce", out, torch.from_numpy(Y)).backward()
    np.testing.assert_allclose(net.predict_proba(X), out.detach().numpy(), rtol=0, atol=1e-14)
    g = net.gradients(X, Y)
    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
    for gw, gb, lin in zip(g.weights, g.biases, lins):
        np.testing.assert_allclose(gw, lin.weight.grad.numpy().T, rtol=0, atol=1e-14)
        np.testing.assert_allclose(gb, lin.bias.grad.numpy(), rtol=0, atol=1e-14)
