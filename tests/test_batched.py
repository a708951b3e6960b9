"""The batched engine (sgdlab.engine.batched) against the single engine, run by run."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from sgdlab.config import RunConfig
from sgdlab.errors import SgdlabError
from sgdlab.nn.activations import ACTIVATIONS
from sgdlab.engine import train
from sgdlab.engine.batched import (bytes_per_model, chunk_size, n_params, plan, train_many)
from sgdlab.nn.costs import get_cost
from sgdlab.engine.kernels import ce_times_into, forward_into, loss_sums, times_derivative
from sgdlab.study.sensitivity import perturbed  # inputs moved by one rounding step

PARTS = ("train", "val", "test")


@pytest.fixture(scope="module")
def small(digits):
    """A quarter of digits' training set: the same checks, four times faster."""
    d = digits
    return type(d)(d.name, d.X_train[:270], d.y_train[:270], d.X_val, d.y_val, d.X_test, d.y_test, d.classes)


def cfg(**kw):
    kw.setdefault("epochs", 2)
    return RunConfig(**kw)


def rel_close(a, b, rtol=1e-9):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max(initial=0))))


def assert_same_run(rb, rs, rtol=1e-9):
    """Final weights within rtol relative, identical status and history (allclose rtol)."""
    hb, hs = rb.history, rs.history
    assert hb.status == hs.status and hb.diverged_epoch == hs.diverged_epoch
    assert hb.stopped_epoch == hs.stopped_epoch and hb.epochs == hs.epochs
    for part in PARTS:
        assert rel_close(getattr(hb, f"{part}_loss"), getattr(hs, f"{part}_loss"), rtol)
        assert getattr(hb, f"{part}_acc") == pytest.approx(getattr(hs, f"{part}_acc"), abs=1e-12)
    if hs.status in ("done", "chance"):
        for pb, ps in zip(rb.network.params, rs.network.params):
            assert pb.shape == ps.shape and pb.dtype == ps.dtype
            assert rel_close(pb, ps, rtol)


MIXED = (
    # sigmoid output under mse and ce (shortcut a - y), several lrs, both inits
    [cfg(activation=a, output="sigmoid", cost=c, init=i, lr=lr, seed=s)
     for a in ("sigmoid", "relu") for c in ("mse", "ce")
     for i, lr, s in (("xavier", 1.0, 0), ("gaussian", 0.05, 1))]
    # softmax + cce
    + [cfg(activation="tanh", output="softmax", cost="cce", init=i, lr=0.05, seed=1)
       for i in ("xavier", "gaussian")]
    # the paper's tanh output under ce: the general chain rule
    + [cfg(activation="tanh", cost="ce", init="xavier", lr=lr, seed=0) for lr in (0.1, 0.001)]
    # a group with a member that diverges at epoch 2 (identity output, mse, lr 1, gaussian)
    + [cfg(activation="tanh", output="identity", cost="mse", init="gaussian", lr=lr, seed=s)
       for lr, s in ((1.0, 0), (0.01, 0), (0.001, 1))]
)


def max_rel_diff(ra, rb) -> float:
    return max(float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))
               for a, b in zip(ra.network.params, rb.network.params))


@pytest.fixture(scope="module")
def mixed(digits):
    batched = train_many(MIXED, digits)
    single = [train(c, digits) for c in MIXED]
    # How far the single engine itself moves when its inputs move by one rounding step: the
    # batched engine sums in another order, so only runs that are insensitive to that (the
    # "well-conditioned" ones) can be held to 1e-9; the others are compared by outcome.
    moved = train_many(MIXED, perturbed(digits))  # (any engine: only the order of magnitude matters)
    sensitive = [rs.history.status == "done" and max_rel_diff(rm, rs) > 1e-12 for rm, rs in zip(moved, single)]
    return batched, single, sensitive


def test_mixed_group_matches_single_engine(mixed):
    batched, single, sensitive = mixed
    assert len(batched) == len(MIXED)
    assert sum(sensitive) <= len(MIXED) // 4  # most of the group is held to 1e-9
    for c, rb, rs, chaotic in zip(MIXED, batched, single, sensitive):
        assert rb.config == c
        assert rb.network.sizes == rs.network.sizes and rb.network.output == rs.network.output
        if chaotic:  # e.g. saturating outputs under ce: compare the outcome, not the trajectory
            assert rb.history.status == rs.history.status and rb.history.epochs == rs.history.epochs
            assert abs(rb.history.val_acc[-1] - rs.history.val_acc[-1]) <= 0.05
        else:
            assert_same_run(rb, rs)


def test_diverging_member_marked_and_others_undisturbed(mixed, digits):
    batched, single, _ = mixed
    i = MIXED.index(cfg(activation="tanh", output="identity", cost="mse", init="gaussian", lr=1.0, seed=0))
    assert single[i].history.status == "diverged"  # the premise: this run does diverge
    assert batched[i].history.status == "diverged"
    assert batched[i].history.diverged_epoch == single[i].history.diverged_epoch == 2
    assert batched[i].history.epochs == 1  # the epochs before divergence are kept
    # its group mates, trained alone, give the same runs as beside it
    mates = [j for j, c in enumerate(MIXED) if c.output == "identity" and j != i]
    alone = train_many([MIXED[j] for j in mates], digits)
    for j, r in zip(mates, alone):
        assert batched[j].history.status in ("done", "chance")
        assert np.isfinite(batched[j].network.params[0]).all()
        assert_same_run(batched[j], r, rtol=1e-12)


def test_chunking_and_threads_do_not_change_results(small):
    configs = [cfg(activation="sigmoid", output="sigmoid", cost=c, init=i, lr=lr, seed=s)
               for c in ("mse", "ce") for i in ("xavier", "gaussian") for lr in (1.0, 0.1) for s in (0, 1, 2)]
    sizes = [small.n_features, 32, 16, small.n_classes]
    per = bytes_per_model(sizes, 10)
    chunks = plan(configs, small, max_bytes=5 * per)
    assert len(chunks) >= 5 and max(len(m) for _, m in chunks) <= 5  # really several chunks
    one = train_many(configs, small)
    assert len(plan(configs, small)) == 1
    # a BLAS product may sum in another order for another width: equal within rounding
    for other in (train_many(configs, small, max_bytes=5 * per),
                  train_many(configs, small, max_bytes=1),  # one model per chunk
                  train_many(configs, small, threads=2),
                  train_many(configs, small, processes=2)):
        for a, b in zip(other, one):
            assert_same_run(a, b, rtol=1e-12)
    # order of the configs does not matter either
    rev = train_many(configs[::-1], small)
    for a, b in zip(rev[::-1], one):
        assert_same_run(a, b, rtol=1e-12)


def test_momentum_nesterov_l2_per_model(small):
    configs = [cfg(activation="sigmoid", output="sigmoid", cost="ce", lr=0.1, seed=s, **kw)
               for s in (0, 1)
               for kw in ({}, {"momentum": 0.9}, {"momentum": 0.5, "nesterov": True}, {"l2": 1e-3},
                          {"momentum": 0.9, "l2": 1e-2}, {"momentum": 0.9, "nesterov": True, "l2": 1e-3})]
    batched = train_many(configs, small)
    for c, rb in zip(configs, batched):
        assert_same_run(rb, train(c, small))


def test_float32(small):
    configs = [cfg(activation=a, output="sigmoid", cost="ce", lr=lr, seed=0, dtype="float32")
               for a in ("sigmoid", "relu") for lr in (1.0, 0.1)]
    configs.append(cfg(activation="sigmoid", output="sigmoid", cost="ce", lr=0.1, seed=0))  # a float64 mate
    batched = train_many(configs, small)
    for c, rb in zip(configs, batched):
        want = np.float32 if c.dtype == "float32" else np.float64
        assert all(p.dtype == want for p in rb.network.params)
        rs = train(c, small)
        assert rb.history.status == rs.history.status in ("done", "chance")
        for part in PARTS:
            np.testing.assert_allclose(getattr(rb.history, f"{part}_loss"), getattr(rs.history, f"{part}_loss"),
                                       rtol=1e-4)
        for pb, ps in zip(rb.network.params, rs.network.params):
            np.testing.assert_allclose(pb, ps, rtol=1e-3, atol=1e-4)


def test_patience_epochs_and_on_epoch(small):
    configs = [cfg(activation="sigmoid", output="sigmoid", cost="ce", lr=lr, seed=0, epochs=e, patience=p)
               for lr, e, p in ((1e-5, 8, 2), (0.5, 8, 2), (0.1, 3, None), (1e-4, 5, 1))]
    seen = []
    batched = train_many(configs, small, on_epoch=lambda i, e, h: seen.append((i, e, h.epochs)))
    for c, rb in zip(configs, batched):
        assert_same_run(rb, train(c, small))
    assert batched[0].history.stopped_epoch is not None  # lr 1e-5 barely moves: patience ends it
    assert batched[2].history.epochs == 3
    for i, rb in enumerate(batched):
        mine = [(e, n) for j, e, n in seen if j == i]
        assert mine == [(e, e) for e in range(1, rb.history.epochs + 1)]
    # in worker processes: the same runs, and on_epoch replayed here epoch by epoch
    seen_p = []
    in_processes = train_many(configs, small, processes=2, on_epoch=lambda i, e, h: seen_p.append((i, e, h.epochs)))
    for rp, rb in zip(in_processes, batched):
        assert_same_run(rp, rb, rtol=1e-12)
        assert rp.network.predict(small.X_test).tolist() == rb.network.predict(small.X_test).tolist()
    assert sorted(seen_p) == sorted(seen)


def test_network_outputs_are_usable(mixed, digits):
    batched, single, _ = mixed
    j = 0
    np.testing.assert_array_equal(batched[j].network.predict(digits.X_test), single[j].network.predict(digits.X_test))
    assert batched[j].network.evaluate(digits.X_val, digits.y_val) == pytest.approx(
        (batched[j].history.val_loss[-1], batched[j].history.val_acc[-1]), rel=1e-12)


def test_empty_and_bad_threads(small):
    assert train_many([], small) == []
    with pytest.raises(SgdlabError, match="threads"):
        train_many([cfg()], small, threads=0)
    with pytest.raises(SgdlabError, match="processes"):
        train_many([cfg()], small, processes=True)


# -- kernels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_training_kernels_match_activations(name):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((7, 3, 10)) * 4  # (samples, models, units)
    z[0, 0, :3] = (1e-9, -40.0, 400.0)  # tiny, saturated, overflowing exp(2 z)
    out = np.empty_like(z)
    forward_into(name)(z, out)
    want = ACTIVATIONS[name].fn(z)
    # tanh as 1 - 2 / (1 + exp(2 z)): exact to 4e-16 absolute (what the next layer sums)
    np.testing.assert_allclose(out, want, rtol=1e-14, atol=4e-16 if name == "tanh" else 1e-300)
    inplace = z.copy()
    forward_into(name)(inplace, inplace)
    np.testing.assert_array_equal(inplace, out)
    times = times_derivative(name)
    if ACTIVATIONS[name].derivative is not None:
        g = rng.standard_normal(z.shape)
        want = ACTIVATIONS[name].backward(z, out, g)  # elementwise: any layout
        if times is None:
            np.testing.assert_array_equal(want, g)  # identity
        else:
            delta = g.copy()
            times(delta, z, out, np.empty_like(z))
            np.testing.assert_allclose(delta, want, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("cost", ["mse", "ce", "cce"])
def test_loss_kernel_matches_costs(cost):
    rng = np.random.default_rng(2)
    n, k, u = 9, 4, 5
    a = rng.uniform(-0.2, 1.2, (n, k, u))  # outside [0, 1] too: the ce clip
    if cost == "cce":
        a = np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True)
    y = rng.integers(0, u, n)
    Y = np.eye(u)[y]
    got = loss_sums(cost, a, Y[:, None, :].astype(bool), np.empty_like(a)) / n
    want = [get_cost(cost).value(a[:, j], Y) for j in range(k)]
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("output", ["tanh", "relu", "identity"])
def test_ce_delta_kernel_matches_chain_rule(output):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 3, 4)) * 2
    a = ACTIVATIONS[output].fn(z)
    Y = np.eye(4)[rng.integers(0, 4, 6)][:, None, :]
    want = ACTIVATIONS[output].backward(z, a, get_cost("ce").grad(a, Y))
    got = np.empty_like(z)
    times = times_derivative(output) or (lambda d, z, a, t: None)
    ce_times_into(got, a, Y, times, z, np.empty_like(z))
    np.testing.assert_allclose(got, want, rtol=1e-13)


# -- memory ------------------------------------------------------------------------------------

def test_ten_thousand_paper_models_fit_in_two_gigabytes():
    sizes = [64, 32, 16, 10]
    assert n_params(sizes) == 65 * 32 + 33 * 16 + 17 * 10
    for momentum, l2 in ((False, False), (True, True)):
        per = bytes_per_model(sizes, 10, "float64", momentum, l2)
        assert 10_000 * per < 2 * 2**30
        assert chunk_size(sizes, 10, "float64", momentum, l2) >= 10_000  # the default budget takes them at once
    assert chunk_size(sizes, 10, max_bytes=1) == 1
    assert chunk_size(sizes, 10, max_bytes=10 * bytes_per_model(sizes, 10)) == 10


def test_memory_formula_bounds_the_real_peak(small):
    """Measured peak of a 400-model stack, over what 200 models take: the per-model cost
    stays within the formula plus the returned network."""
    d = small
    tiny = type(d)(d.name, d.X_train[:60], d.y_train[:60], d.X_val[:60], d.y_val[:60], d.X_test[:60],
                   d.y_test[:60], d.classes)

    def peak(k):
        configs = [cfg(activation="sigmoid", output="sigmoid", cost="ce", lr=0.1, seed=i % 3, epochs=1)
                   for i in range(k)]
        tracemalloc.start()
        train_many(configs, tiny)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    sizes = [small.n_features, 32, 16, small.n_classes]
    per_model = (peak(400) - peak(200)) / 200
    allowed = bytes_per_model(sizes, 10) + 8 * n_params(sizes)  # + the TrainResult's own copy
    assert 0 < per_model <= allowed * 1.1, (per_model, allowed)


# -- the study runner uses it -------------------------------------------------------------------

STUDY = """\
name = "engines"
dataset = "iris"
epochs = 3
batch_size = 4
seeds = 2
lr = [0.5, 0.05]
init = ["xavier", "gaussian"]

[[grid]]
mode = "corrected"
cost = ["mse", "ce"]
activation = ["sigmoid", "relu"]
output = "sigmoid"
"""


def test_study_engines_give_the_same_tables(tmp_path):
    from sgdlab import run_study, study
    from sgdlab.cli import main
    from sgdlab.study.analysis import grid_rows, summarize_cells

    spec = tmp_path / "s.toml"
    spec.write_text(STUDY)
    assert main(["study", str(spec), "--out", str(tmp_path / "b"), "--jobs", "1", "--quiet"]) == 0
    batched = study.open_study(tmp_path / "b")
    assert {r.engine for r in batched.records} == {"batched"}  # the default engine
    single = run_study(STUDY, tmp_path / "s", jobs=1, engine="single", progress=False)
    assert {r.engine for r in single.records} == {"single"}

    def table(res):
        rows = grid_rows(summarize_cells(res.records))
        return sorted((json.dumps({k: v for k, v in r.items() if "second" not in k}, sort_keys=True, default=str)
                       for r in rows))

    def finals(res):
        return {r.key: (r.status, [r.final[k] for k in ("train_loss", "val_loss", "test_loss", "val_acc", "test_acc")],
                        r.test_predictions) for r in res.records}

    fb, fs = finals(batched), finals(single)
    assert fb.keys() == fs.keys() and len(fb) == 32
    for k in fb:
        assert fb[k][0] == fs[k][0] and fb[k][2] == fs[k][2]
        assert rel_close(fb[k][1], fs[k][1])
    assert table(batched) == table(single)


# -- sgdlab bench --------------------------------------------------------------------------------

def test_bench_command_prints_every_figure(capsys):
    from sgdlab.cli import main
    from sgdlab.benchlib import flops_per_epoch

    assert main(["bench", "--epochs", "1", "--seeds", "1", "--runs-sample", "2", "--matmul-size", "200"]) == 0
    out = capsys.readouterr().out
    for text in ("72 runs x 1 epochs", "batched engine", "single engine", "for 2 runs", "speed-up", "per CPU second",
                 "samples/s", "GFLOP/s achieved", "one float64 matmul", "floor", "float64 exp at",
                 "x the floor's CPU time", "diagnostics (per-layer, every epoch", "on costs"):
        assert text in out
    train, evaluation = flops_per_epoch([64, 32, 16, 10], 1078, 1797, 10)
    assert train == 12_456 * 1078 + 2 * 2778 * 108 and evaluation == 5556 * 1797


def test_kernel_floor_counts_one_exp_per_transcendental_unit(digits):
    from sgdlab.benchlib import kernel_floor

    configs = [RunConfig(hidden=(32, 16), activation=a, output=o, epochs=2, seed=0)
               for a, o in (("sigmoid", "same"), ("relu", "same"), ("relu", "softmax"), ("tanh", "sigmoid"))]
    results = train_many(configs, digits)
    sizes, n_train, n_eval = [64, 32, 16, 10], len(digits.y_train), 1797
    rows = 2 * (n_train + n_eval)
    f = kernel_floor(results, sizes, n_train, n_eval, 10)
    assert f.exps == rows * (58 + 0 + 10 + 58)
    assert f.exp_s == pytest.approx(f.exps * f.exp_ns * 1e-9)
    assert f.gemm_s > 0 and f.cpu_s == f.exp_s + f.gemm_s
    only_relu = kernel_floor(results[1:2], sizes, n_train, n_eval, 10)
    assert only_relu.exps == 0 and only_relu.exp_s == 0


def test_bench_rejects_bad_flags(capsys):
    from sgdlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["bench", "--epochs", "0"])
    assert e.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_large_training_sets_gather_minibatches_instead_of_permuted_copies(digits, monkeypatch):
    """Above PERMUTED_BYTES a stack reads each minibatch by its rows instead of copying the
    training set per seed: the same rows, so bit-for-bit the same results."""
    from sgdlab.engine.batched import step

    configs = [RunConfig(hidden=(8,), lr=lr, seed=s, epochs=2) for s in (0, 1) for lr in (0.5, 0.05, 0.01, 1.0)]
    copied = train_many(configs, digits)
    monkeypatch.setattr(step, "PERMUTED_BYTES", 0)
    gathered = train_many(configs, digits)
    for a, b in zip(copied, gathered):
        ha, hb = a.history.to_dict(), b.history.to_dict()
        ha.pop("seconds"), hb.pop("seconds")
        da, db = ha.pop("diagnostics"), hb.pop("diagnostics")
        assert ha == hb
        assert da.keys() == db.keys()
        for name in da:  # NaN where a metric does not apply: compare as arrays
            np.testing.assert_array_equal(da[name], db[name])
        for wa, wb in zip(a.network.params, b.network.params):
            np.testing.assert_array_equal(wa, wb)


def test_models_left_in_a_shared_stack_train_as_if_alone(small):
    """A shared stack of two seed blocks whose seed-0 models all finish after epoch 1: the
    seed-1 models go on as one seed block, each minibatch's targets in their own seed's order
    (not the departed seed's), so they end as they do trained without the seed-0 models."""
    from sgdlab.engine.batched.stack import MIN_SHARED

    lrs = (0.01, 0.05, 0.1, 0.2)
    first = [cfg(activation="tanh", hidden=(16,), lr=lr, seed=0, epochs=1) for lr in lrs]
    rest = [cfg(activation="tanh", hidden=(16,), lr=lr, seed=1, epochs=3) for lr in lrs]
    assert 2 * MIN_SHARED <= len(first + rest)  # the premise: the first layer is shared per seed block
    together = train_many(first + rest, small)
    alone = train_many(rest, small)
    for rt, ra in zip(together[len(first):], alone):
        assert rt.history.epochs == 3
        assert_same_run(rt, ra, rtol=1e-12)
