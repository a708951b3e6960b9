"""Per-layer diagnostics (sgdlab.engine.diagnostics): each value against a direct computation
on hand-made networks, the single and batched engines against each other, the paper's
mechanism on digits, runs at chance, the CLI's JSON and old stores."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from sgdlab.cli import main
from sgdlab.config import RunConfig, rng_streams
from sgdlab.data.datasets import Dataset
from sgdlab.nn.activations import get_activation
from sgdlab.nn.network import Network, one_hot
from sgdlab import run_study
from sgdlab.study import Store
from sgdlab.engine import History, train
from sgdlab.engine import diagnostics as D
from sgdlab.engine.batched import train_many


def toy_data(X_val):
    """Two inputs, two classes; the validation rows are given (the diagnostics are taken there)."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (23, 2))
    y = (X[:, 0] > X[:, 1]).astype(np.int64)
    X_val = np.asarray(X_val, dtype=float)
    y_val = (X_val[:, 0] > X_val[:, 1]).astype(np.int64)
    return Dataset("toy", X, y, X_val, y_val, X[:5], y[:5], np.array([0, 1]))


def hand_made(sizes, activation, output, cost, weights, biases):
    net = Network(sizes, activation, output, cost)
    net.weights = [np.asarray(w, dtype=float) for w in weights]
    net.biases = [np.asarray(b, dtype=float) for b in biases]
    return net


def direct_values(net, X):
    """Saturation, dead units, dead rows and clipped outputs computed plainly from z and f'(z)."""
    out = {k: [] for k in ("saturated", "dead_units", "dead_rows", "clipped")}
    a = X
    L = len(net.weights)
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        kind = net.output if l == L - 1 else net.activation
        z = a @ W + b
        a = get_activation(kind).fn(z)
        fprime = {"sigmoid": lambda: a * (1 - a), "tanh": lambda: 1 - np.tanh(z) ** 2}.get(kind)
        peak = {"sigmoid": 0.25, "tanh": 1.0}.get(kind)
        out["saturated"].append(float(np.mean(fprime() < 0.01 * peak)) if fprime else math.nan)
        out["dead_units"].append(float(np.mean(np.all(a == 0, axis=0))) if kind == "relu" else math.nan)
        out["dead_rows"].append(float(np.mean(np.all(a == 0, axis=1))) if kind == "relu" else math.nan)
        eps = np.finfo(float).eps
        clipped = l == L - 1 and net.cost == "ce" and kind != "sigmoid"
        out["clipped"].append(float(np.mean((a < eps) | (a > 1 - eps))) if clipped else math.nan)
    return out


def replay_gradients(net, data, config):
    """Epoch 1 replayed with the reference Network.gradients and plain SGD: the norms of every
    minibatch's weight and bias gradients per layer, and the network after the epoch."""
    net = net.copy()
    _, shuffle = rng_streams(config.seed)
    perm = shuffle.permutation(len(data.y_train))
    Y = one_hot(data.y_train, data.n_classes)
    norms = []
    for i in range(0, len(perm), config.batch_size):
        rows = perm[i:i + config.batch_size]
        g = net.gradients(data.X_train[rows], Y[rows])
        norms.append([[np.linalg.norm(w), np.linalg.norm(b)] for w, b in zip(g.weights, g.biases)])
        for p, gp in zip(net.params, [x for wb in zip(g.weights, g.biases) for x in wb]):
            p -= config.lr * gp
    return np.asarray(norms), net  # (batches, L, 2)


CASES = {
    # sigmoid hidden: unit 0 saturated wherever |100 (x0 + x1)| > 5.99, unit 1 never (z = 0),
    # unit 2 where |10 x0| > 5.99; tanh output under ce: values below 0 are clipped
    "sigmoid-tanh-ce": ([2, 3, 2], "sigmoid", "tanh", "ce",
                        [[[100, 0, 10], [100, 0, 0]], [[1, -1], [0, 0], [3, -3]]],
                        [[0, 0, 0], [-0.5, 0.2]]),
    # relu hidden: unit 0 dead everywhere (bias -100), unit 1 zero where x0 <= 0, unit 2 where
    # x1 <= 0; rows with x0 <= 0 and x1 <= 0 are dead rows; relu output under mse
    "relu-relu-mse": ([2, 3, 2], "relu", "relu", "mse",
                      [[[1, 1, 0], [1, 0, 1]], [[1, 0], [0, 1], [1, -1]]],
                      [[-100, 0, 0], [0, 0.1]]),
    # tanh hidden, some units pushed to |z| > 2.99
    "tanh-sigmoid-ce": ([2, 3, 2], "tanh", "sigmoid", "ce",
                        [[[5, 0.1, -4], [0, 0.1, 2]], [[1, -1], [2, 0], [0, 1]]],
                        [[0, 0, 1], [0, 0]]),
}
X_VAL = [[1, 1], [-1, 0.5], [0.3, 0.2], [0.7, -1], [-0.2, -0.9], [0.05, -0.02], [-0.8, -0.1], [0.9, 0.4]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_diagnostic_matches_a_direct_computation(case):
    sizes, act, out, cost, W, b = CASES[case]
    net = hand_made(sizes, act, out, cost, W, b)
    data = toy_data(X_VAL)
    config = RunConfig(hidden=tuple(sizes[1:-1]), activation=act, output=out, cost=cost, lr=0.05,
                       batch_size=4, epochs=1, seed=3)
    expect0 = direct_values(net, data.X_val)
    norms, after = replay_gradients(net, data, config)
    expect1 = direct_values(after, data.X_val)
    hist = train(config, data, network=net.copy()).history
    d = hist.diagnostics
    assert set(d) == set(D.NAMES) and all(len(v) == 2 for v in d.values())
    for name in ("saturated", "dead_units", "dead_rows", "clipped"):
        np.testing.assert_allclose(d[name][0], expect0[name], rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(d[name][1], expect1[name], rtol=0, atol=1e-12, err_msg=name)
    # the hand-made cases do hit what they were made for
    flat0 = {n: np.nan_to_num(np.asarray(d[n][0]), nan=0.0) for n in D.NAMES}
    if act == "relu":
        assert flat0["dead_units"][0] == pytest.approx(1 / 3) and flat0["dead_rows"][0] > 0
    else:
        assert 0 < flat0["saturated"][0] < 1
    if case == "sigmoid-tanh-ce":
        assert 0 < flat0["clipped"][-1] < 1
    np.testing.assert_allclose(d["weight_norm"][0], [np.linalg.norm(w) for w in net.weights], rtol=1e-13)
    np.testing.assert_allclose(d["weight_norm"][1], [np.linalg.norm(w) for w in after.weights], rtol=1e-12)
    assert all(math.isnan(x) for n in ("grad_w_mean", "grad_b_last", "update_ratio") for x in d[n][0])
    np.testing.assert_allclose(d["grad_w_mean"][1], norms[:, :, 0].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(d["grad_b_mean"][1], norms[:, :, 1].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(d["grad_w_last"][1], norms[-1, :, 0], rtol=1e-12)
    np.testing.assert_allclose(d["grad_b_last"][1], norms[-1, :, 1], rtol=1e-12)
    np.testing.assert_allclose(d["update_ratio"][1], 0.05 * norms[:, :, 0].mean(axis=0) / d["weight_norm"][0],
                               rtol=1e-12)


def test_stacked_kernels_match_direct_sums():
    """The batched engine's kernels on two models, one of them with a first layer whose bias
    gradient dwarfs its weight gradient (summed row by row instead of by subtraction), and
    validation counts added in chunks of rows and models."""
    rng = np.random.default_rng(0)
    K, n_in, h1 = 2, 5, 3
    first = rng.standard_normal((K * h1, n_in + 1))
    first[h1:, :-1] *= 1e-9  # model 1: tiny weight gradients, ordinary bias gradients
    blocks = [rng.standard_normal((K, h1 + 1, 4)), rng.standard_normal((K, 5, 2))]
    out = np.empty((3, 2, K))
    D.StackedNorms(first, blocks, K)(out)
    for k in range(K):
        rows = first[k * h1:(k + 1) * h1]
        np.testing.assert_allclose(out[0, :, k], [np.sum(rows[:, :-1] ** 2), np.sum(rows[:, -1] ** 2)], rtol=1e-13)
        for l, blk in enumerate(blocks, start=1):
            np.testing.assert_allclose(out[l, :, k], [np.sum(blk[k, :-1] ** 2), np.sum(blk[k, -1] ** 2)], rtol=1e-13)

    kinds, sizes = ["relu", "tanh", "sigmoid"], [3, 4, 3, 2]
    acts = [rng.standard_normal((K, 7, u)) * 4 for u in sizes[1:]]
    acts[0] = np.maximum(acts[0], 0)
    acts[0][:, :, 0] = 0  # a dead unit in both models
    acts[0][1, 2] = 0  # a dead row in model 1
    acts[1] = np.tanh(acts[1])
    acts[2] = 1 / (1 + np.exp(-acts[2]))
    stats = D.ValidationStats(kinds, sizes, np.array([True, False]))
    for r0, r1 in ((0, 3), (3, 7)):  # chunks of rows, and of models (k0)
        for k in range(K):
            for l in range(3):
                stats.add(l, acts[l][k:k + 1, r0:r1], k)
    res = stats.result()
    for k in range(K):
        a0, a1, a2 = (a[k] for a in acts)
        assert res["dead_units"][k, 0] == np.mean(np.all(a0 == 0, axis=0))
        assert res["dead_rows"][k, 0] == np.mean(np.all(a0 == 0, axis=1))
        assert res["saturated"][k, 1] == np.mean(1 - a1 ** 2 < 0.01)
        assert res["saturated"][k, 2] == np.mean(a2 * (1 - a2) < 0.0025)
    assert res["clipped"][0, 2] == np.mean((acts[2][0] < 2.2e-16) | (acts[2][0] > 1 - 2.2e-16))
    assert math.isnan(res["clipped"][1, 2]) and np.isnan(res["saturated"][:, 0]).all()


WELL_CONDITIONED = [
    RunConfig(activation="sigmoid", output="sigmoid", cost="mse", lr=0.5, epochs=3, seed=0),
    RunConfig(activation="sigmoid", output="sigmoid", cost="mse", lr=0.5, epochs=3, seed=1),
    RunConfig(activation="relu", output="softmax", cost="cce", lr=0.05, epochs=3, seed=0),
    RunConfig(activation="tanh", output="sigmoid", cost="ce", lr=0.05, momentum=0.9, epochs=3, seed=2),
    RunConfig(activation="sigmoid", output="tanh", cost="ce", lr=0.001, epochs=3, seed=0),
]


def test_single_and_batched_engines_record_equal_diagnostics(digits):
    batched = train_many(WELL_CONDITIONED, digits)
    for c, rb in zip(WELL_CONDITIONED, batched):
        hs, hb = train(c, digits).history, rb.history
        assert hs.status == hb.status and hs.diagnosis == hb.diagnosis
        np.testing.assert_allclose(hb.val_loss, hs.val_loss, rtol=1e-9)  # well-conditioned indeed
        assert set(hs.diagnostics) == set(hb.diagnostics) == set(D.NAMES)
        for name in D.NAMES:
            np.testing.assert_allclose(hb.diagnostics[name], hs.diagnostics[name], rtol=1e-9, atol=1e-12,
                                       equal_nan=True, err_msg=f"{c}: {name}")
    # what applies where: clipped only for the ce + tanh output, dead units only for relu
    clipped = [np.isfinite(r.history.diagnostics["clipped"][0][-1]) for r in batched]
    assert clipped == [False, False, False, False, True]
    assert np.isfinite(batched[2].history.diagnostics["dead_units"][1][:2]).all()


def test_diagnostics_off_leaves_them_empty(digits):
    c = RunConfig(epochs=2, lr=0.5)
    assert train(c, digits, diagnostics=False).history.diagnostics == {}
    assert train_many([c], digits, diagnostics=False)[0].history.diagnostics == {}
    on = train(c, digits).history
    off = train(c, digits, diagnostics=False).history
    assert on.val_loss == off.val_loss  # recording changes nothing in the training


def test_gaussian_init_saturates_more_first_layer_units_than_xavier(digits):
    sat = {}
    for init in ("gaussian", "xavier"):
        h = train(RunConfig(activation="sigmoid", output="sigmoid", init=init, epochs=1, seed=0), digits).history
        sat[init] = h.diagnostics["saturated"][0][0]
    assert sat["gaussian"] > sat["xavier"] + 0.05, sat


def test_relu_mse_at_lr_1_is_at_chance_with_dead_units(digits):
    c = RunConfig(activation="relu", output="same", cost="mse", lr=1.0, epochs=5, seed=0)
    for hist in (train(c, digits).history, train_many([c], digits)[0].history):
        assert hist.status == "chance"
        assert max(hist.diagnostics["dead_units"][-1]) >= 0.5
        assert hist.diagnosis.startswith("at chance since epoch 1") and "dead" in hist.diagnosis
        assert "smaller lr" in hist.diagnosis


def test_chance_rule_is_the_one_the_report_uses():
    from sgdlab.study import analysis

    assert analysis.at_chance is D.at_chance and analysis.majority_rate is D.majority_rate
    rate = 37 / 360
    assert D.at_chance(rate + D.CHANCE_MARGIN, rate) and not D.at_chance(rate + D.CHANCE_MARGIN + 1e-9, rate)
    assert D.at_chance(0.0, rate) and not D.at_chance(0.5, None)
    assert D.majority_rate([0, 1, 1, 2]) == 0.5


def test_diverged_run_gets_a_diagnosis(digits):
    c = RunConfig(activation="identity", output="identity", cost="mse", lr=0.1, epochs=5)
    for hist in (train(c, digits).history, train_many([c], digits)[0].history):
        assert hist.status == "diverged" and hist.diverged_epoch == 1
        assert hist.diagnosis == "diverged in epoch 1 (a non-finite loss or weight); try a smaller lr than 0.1"
        assert len(hist.diagnostics["weight_norm"]) == hist.epochs + 1 == 1  # epoch 0 only


def test_history_round_trip_and_old_dicts():
    h = History(train_loss=[1.0], status="chance", diagnosis="why",
                diagnostics={"saturated": [[0.1, math.nan], [0.2, 0.3]]})
    back = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.diagnosis == "why" and back.status == "chance"
    np.testing.assert_array_equal(back.diagnostics["saturated"], h.diagnostics["saturated"])
    old = {k: v for k, v in h.to_dict().items() if k not in ("diagnostics", "diagnosis")}
    assert History.from_dict(old).diagnostics == {} and History.from_dict(old).diagnosis is None
    nulls = History.from_dict({"diagnostics": {"clipped": [[None, 0.5]]}})  # --json writes NaN as null
    assert math.isnan(nulls.diagnostics["clipped"][0][0])


def test_train_json_carries_diagnostics_and_the_diagnosis_line(capsys):
    assert main(["train", "--activation", "relu", "--cost", "mse", "--lr", "1", "--epochs", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["final"]["status"] == "chance" and "dead" in doc["history"]["diagnosis"]
    hist = History.from_dict(doc["history"])
    assert len(hist.diagnostics["dead_units"]) == 3 and len(hist.diagnostics["dead_units"][0]) == 3
    assert main(["train", "--activation", "relu", "--cost", "mse", "--lr", "1", "--epochs", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("diagnosis: at chance since epoch 1") for line in lines)


OLD = """\
name = "old"
epochs = 2
seeds = 2
lr = [0.5, 1e-6]
init = "xavier"
cost = "ce"
activation = "sigmoid"
output = "sigmoid"
"""


def test_old_stores_open_report_and_resume(tmp_path):
    out = tmp_path / "study"
    run_study(OLD, out, engine="batched", progress=False)
    db = out / "results.sqlite"
    with Store(db) as st:
        recs = {r.key: r for r in st.records()}
    assert all(len(r.history.diagnostics["weight_norm"]) == 3 for r in recs.values())
    assert {r.status for r in recs.values()} == {"done", "chance"}  # lr 1e-6 learns nothing in 2 epochs
    con = sqlite3.connect(db)
    # the status column keeps its three values; the runs' history JSON never held the diagnostics
    assert {s for (s,) in con.execute("SELECT status FROM runs")} == {"done"}
    assert all("diagnostics" not in json.loads(h) for (h,) in con.execute("SELECT history FROM runs"))
    # make it a store of before the diagnostics: no such table
    with con:
        con.execute("DROP TABLE diagnostics")
        con.execute("DELETE FROM runs WHERE lr = 0.5 AND seed = 1")
    con.close()
    with Store(db) as st:  # read-only open: the table is not created
        old = st.records()
    assert len(old) == 3 and all(r.history.diagnostics == {} for r in old)
    assert {r.status for r in old} == {"done", "chance"}
    from sgdlab.report import render

    html = render(out)
    assert html.is_file() and "Mechanism" in (out / "report.md").read_text()
    run_study(OLD, out, resume=True, engine="batched", progress=False)
    with Store(db) as st:
        recs = st.records()
    assert len(recs) == 4
    fresh = [r for r in recs if r.config.lr == 0.5 and r.config.seed == 1]
    assert len(fresh) == 1 and len(fresh[0].history.diagnostics["weight_norm"]) == 3
    assert sum(r.history.diagnostics == {} for r in recs) == 3
    render(out)
