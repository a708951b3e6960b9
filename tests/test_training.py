"""The training loop: seeds, minibatch order, the paper's headline result, options."""

from __future__ import annotations

import numpy as np
import pytest

from sgdlab.engine import trainer as trainer_module
from sgdlab import RunConfig, train
from sgdlab.config import rng_streams
from sgdlab.engine.packed import PackedNetwork
from sgdlab.nn.network import one_hot
from sgdlab.engine.loop import History, build_network, epoch_batches
from sgdlab.engine.optim import SGD


def _params_equal(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.params, b.params))


def test_same_seed_gives_bit_identical_weights(digits):
    config = RunConfig(epochs=2, seed=7)
    a, b = train(config, digits), train(config, digits)
    assert _params_equal(a.network, b.network)
    assert a.history.train_loss == b.history.train_loss


def test_different_seed_differs(digits):
    a = train(RunConfig(epochs=1, seed=1), digits).network
    b = train(RunConfig(epochs=1, seed=2), digits).network
    assert not any(np.array_equal(p, q) for p, q in zip(a.params, b.params))


class _Recorder(PackedNetwork):
    """Records which training rows each minibatch holds."""

    batches: list

    def gradient(self, Xa, Y):
        self.batches.append(Xa[:, :-1].copy())
        return super().gradient(Xa, Y)


def _minibatch_rows(monkeypatch, config, data):
    seen = []
    rec = type("Rec", (_Recorder,), {"batches": seen})
    monkeypatch.setattr(trainer_module, "PackedNetwork", rec)
    train(config, data)
    index = {row.tobytes(): i for i, row in enumerate(np.asarray(data.X_train, dtype=config.dtype))}
    assert len(index) == len(data.X_train)  # rows are distinct, so a row names its index
    return [[index[r.tobytes()] for r in b] for b in seen]


def test_minibatch_order_is_the_shuffle_stream_whatever_the_settings(monkeypatch, digits):
    """The order is rng_streams(seed)[1].permutation(n) per epoch, cut into batches with the
    last smaller one included, and does not depend on init, cost, activation or lr."""
    base = dict(epochs=2, seed=4)
    orders = [_minibatch_rows(monkeypatch, RunConfig(**base, **kw), digits) for kw in
              ({}, {"init": "gaussian", "bias_init": "zeros"}, {"cost": "mse", "lr": 0.1},
               {"activation": "tanh", "output": "softmax", "cost": "cce", "lr": 0.01},
               {"momentum": 0.5, "l2": 1e-4})]
    assert all(o == orders[0] for o in orders[1:])
    n = len(digits.y_train)
    _, shuffle = rng_streams(4)
    expected = [b.tolist() for _ in range(2) for b in epoch_batches(n, 10, shuffle)]
    assert orders[0] == expected
    assert [len(b) for b in orders[0][:108]] == [10] * 107 + [8]  # 1078 = 107 * 10 + 8


def test_init_stream_does_not_depend_on_the_shuffle(digits):
    a = build_network(RunConfig(seed=3), digits.n_features, digits.n_classes)
    init_rng, _ = rng_streams(3)
    b = build_network(RunConfig(seed=3, lr=0.1, cost="mse"), digits.n_features, digits.n_classes, init_rng)
    assert _params_equal(a, b)


def test_paper_headline_configuration_reaches_95_percent(digits):
    """64-32-16-10, sigmoid hidden and output, ce, xavier, lr 1.0, batch 10, 30 epochs, seed 0."""
    config = RunConfig(hidden=(32, 16), activation="sigmoid", output="same", cost="ce", init="xavier",
                       lr=1.0, batch_size=10, epochs=30, seed=0)
    result = train(config, digits)
    hist = result.history
    assert result.network.sizes == [64, 32, 16, 10]
    assert hist.status == "done" and hist.epochs == 30
    assert hist.val_acc[-1] >= 0.95
    assert hist.test_acc[-1] >= 0.90
    assert hist.train_loss[-1] < hist.train_loss[0]
    # every validation accuracy is a multiple of 1/360, as in the paper
    assert all(abs(a * 360 - round(a * 360)) < 1e-9 for a in hist.val_acc)


def test_fast_path_equals_the_reference_loop(digits):
    """train() (PackedNetwork + SGD.step_flat) follows the plain loop over Network.gradients
    and SGD.step to float rounding, with momentum and L2 on. (A well-conditioned setting:
    with an effective step of lr / (1 - momentum) = 2 this pairing is already chaotic, and
    1e-16 differences grow to 1e-3 in an epoch whichever two implementations you compare.)"""
    config = RunConfig(activation="tanh", output="softmax", cost="cce", lr=0.02, epochs=2, seed=9,
                       momentum=0.9, nesterov=True, l2=1e-3)
    fast = train(config, digits).network
    net = build_network(config, digits.n_features, digits.n_classes)
    opt = SGD(config.lr, config.momentum, config.nesterov, config.l2)
    Y = one_hot(digits.y_train, digits.n_classes)
    _, shuffle = rng_streams(config.seed)
    for _ in range(config.epochs):
        for idx in epoch_batches(len(Y), config.batch_size, shuffle):
            opt.step(net.weights, net.biases, net.gradients(digits.X_train[idx], Y[idx]))
    worst = max(np.max(np.abs(p - q)) for p, q in zip(fast.params, net.params))
    assert worst < 1e-10


def test_history_records_every_epoch(digits):
    seen = []
    hist = train(RunConfig(epochs=3, seed=0), digits, on_epoch=lambda e, h: seen.append((e, h.epochs))).history
    assert seen == [(1, 1), (2, 2), (3, 3)]
    for m in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds"):
        assert len(getattr(hist, m)) == 3
    assert History.from_dict(hist.to_dict()) == hist
    f = hist.final()
    assert f["val_acc"] == hist.val_acc[-1] and f["epochs"] == 3 and f["status"] == "done"




def test_metrics_are_those_of_the_returned_network(digits):
    result = train(RunConfig(epochs=2, seed=0), digits)
    loss, acc = result.network.evaluate(digits.X_val, digits.y_val)
    assert acc == result.history.val_acc[-1]
    assert loss == pytest.approx(result.history.val_loss[-1], rel=1e-12)


def test_continue_training_a_given_network(digits):
    config = RunConfig(epochs=1, seed=0)
    first = train(config, digits).network
    arrays = first.params
    second = train(config, digits, network=first)
    assert second.network is first
    assert all(a is b for a, b in zip(arrays, first.params))  # updated in place
    assert second.history.train_loss[0] < train(config, digits).history.train_loss[0]


def test_early_stopping_stops(digits):
    """A learning rate so small that validation accuracy cannot improve after epoch 1:
    with patience 2 the run stops at epoch 3."""
    config = RunConfig(epochs=30, seed=0, lr=1e-12, patience=2)
    hist = train(config, digits).history
    assert hist.stopped_epoch == 3 and hist.epochs == 3 and hist.status == "chance"  # lr 1e-12 learns nothing: at chance


def test_early_stopping_waits_while_improving(digits):
    hist = train(RunConfig(epochs=4, seed=0, patience=3), digits).history
    assert hist.stopped_epoch is None and hist.epochs == 4


def test_float32_trains(digits):
    result = train(RunConfig(epochs=5, seed=0, dtype="float32"), digits)
    assert all(p.dtype == np.float32 for p in result.network.params)
    assert result.history.val_acc[-1] > 0.8


@pytest.mark.parametrize("batch_size", [1, 7, 2000])
def test_any_batch_size(batch_size, digits):
    hist = train(RunConfig(epochs=1, seed=0, batch_size=batch_size, lr=0.5), digits).history
    assert hist.status in ("done", "chance") and np.isfinite(hist.train_loss[0])


def test_continue_a_float32_network_under_a_float64_config(digits):
    net = build_network(RunConfig(dtype="float32"), digits.n_features, digits.n_classes)
    result = train(RunConfig(epochs=1, seed=0), digits, network=net)
    assert all(p.dtype == np.float32 for p in result.network.params)
    assert result.history.status == "done"


def test_small_networks_train_on_one_blas_thread(digits):
    """A second BLAS thread only burns a core on the paper's products; big ones keep BLAS's own setting."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from sgdlab.engine.blas import is_small

    assert is_small([64, 32, 16, 10], 1797)
    assert not is_small([784, 256, 10], 60000)
    seen = []

    def on_epoch(epoch, hist):
        seen.append(blas())

    def blas():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas()
        if 2 not in before:
            pytest.skip(f"BLAS would not take 2 threads here ({before})")
        train(RunConfig(hidden=(8,), epochs=1), digits, on_epoch=on_epoch)
        after = blas()
    assert seen and all(n == 1 for n in seen[0])
    assert after == before  # restored


def test_trainer_epochs_are_train_and_a_pickled_trainer_continues_the_same(digits):
    """sgdlab.engine.Trainer is train()'s state: its epochs give train()'s parameters, and a
    Trainer pickled between epochs (network, velocity, shuffle stream) continues identically."""
    import pickle

    from sgdlab.engine import Trainer
    from sgdlab.engine.kernels import augment

    config = RunConfig(epochs=3, seed=5, momentum=0.9, l2=1e-4, hidden=[16])
    expected = train(config, digits, diagnostics=False).network
    init_rng, shuffle_rng = rng_streams(config.seed)
    net = build_network(config, digits.n_features, digits.n_classes, init_rng)
    trainer = Trainer(net, config, shuffle_rng)
    Xa, Y = augment(digits.X_train), one_hot(digits.y_train, digits.n_classes)
    with trainer.running(len(Y)):
        trainer.epoch(Xa, Y)
        trainer.unpack()
        copy = pickle.loads(pickle.dumps(trainer))
        for t in (trainer, copy):
            t.epoch(Xa, Y)
            t.epoch(Xa, Y)
            t.unpack()
    for t in (trainer, copy):
        for p, q in zip(t.network.params, expected.params):
            np.testing.assert_array_equal(p, q)
