"""The public Python API refuses user mistakes at the boundary: one SgdlabError naming the bad
value and what is valid, never a numpy/AttributeError traceback from inside the engine, never a
silently wrong result. Each case below failed one of those ways before it was fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sgdlab
from sgdlab import Network, RunConfig, SgdlabError, gradcheck, open_study, run_study, train
from sgdlab.data import Dataset
from sgdlab.nn import one_hot
from sgdlab.report import render
from sgdlab.study.api import as_spec

RNG = np.random.default_rng(0)
X30 = RNG.standard_normal((30, 4))
Y30 = np.arange(30) % 3
SMALL = RunConfig(hidden=(5,), epochs=1, lr=0.1)


def dataset(**parts) -> Dataset:
    """A 3-class, 4-feature Dataset built by hand, with ``parts`` replacing its fields."""
    fields = dict(name="hand", X_train=X30, y_train=Y30, X_val=X30[:9], y_val=Y30[:9], X_test=X30[:9],
                  y_test=Y30[:9], classes=np.arange(3))
    fields.update(parts)
    return Dataset(**fields)


def network(sizes=(4, 5, 3), **kw) -> Network:
    return Network(list(sizes), **kw).initialize("xavier", "normal", np.random.default_rng(0))


def _with_nan(a):
    a = a.astype(float).copy()
    a[1, 2] = np.nan
    return a


# -- RunConfig ----------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    ({"hidden": 32}, r"hidden: expected a sequence like \(32, 16\), got 32"),          # was: 'int' not iterable
    ({"hidden": None}, r"hidden: expected a sequence like \(32, 16\), got None"),
    ({"hidden": "32"}, r"hidden: expected a sequence like \(32, 16\), got '32'"),       # was: sizes ('3', '2')
    ({"split": None}, r"split: expected a sequence like \(0.6, 0.2, 0.2\), got None"),
    ({"split": (float("nan"), 0.5, 0.5)}, r"split: three fractions .* got \(nan, 0.5, 0.5\)"),  # was: accepted
    ({"split_seed": 2**32}, r"split_seed: must be below 4294967296, got 4294967296"),  # was: an error about the split
    ({"dataset": 3}, r"dataset: expected a name .* or a file path, got 3"),             # was: accepted
    ({"dataset": None}, r"dataset: expected a name .* got None"),
    ({"label": 3}, r"label: expected a column name .* got 3"),                         # was: accepted, then ignored
], ids=lambda v: str(v)[:40])
def test_runconfig_refuses(kw, match):
    with pytest.raises(SgdlabError, match=match):
        RunConfig(**kw)


def test_runconfig_takes_numpy_sizes_and_paths_as_plain_values():
    """Numpy integers and Paths are what a user has at hand; the run key (JSON) needs plain values."""
    config = RunConfig(hidden=np.array([8, 4]), dataset=Path("iris.csv"))
    assert config.hidden == (8, 4) and all(type(h) is int for h in config.hidden)
    assert config.dataset == "iris.csv"
    assert config.key() == RunConfig(hidden=(8, 4), dataset="iris.csv").key()


# -- train(config, data) --------------------------------------------------------------------

@pytest.mark.parametrize("parts, match", [
    ({"X_train": X30[:, 0]}, r"data.X_train: expected a 2-D array \(n_samples, n_features\), got shape \(30,\)"),
    ({"X_train": X30.reshape(30, 2, 2)}, r"data.X_train: expected a 2-D array .* got shape \(30, 2, 2\)"),
    ({"X_train": _with_nan(X30)}, r"data.X_train: row 1 holds NaN or infinity"),         # was: trained, 'diverged'
    ({"X_train": np.where(X30 > 1, np.inf, X30)}, r"data.X_train: row \d+ holds NaN or infinity"),
    ({"X_val": np.full((9, 4), np.nan)}, r"data.X_val: row 0 holds NaN or infinity"),     # was: NaN val metrics
    ({"X_train": np.zeros((0, 4)), "y_train": np.zeros(0, int)}, r"data.X_train: no rows"),
    ({"X_train": np.full((30, 4), "a")}, r"data.X_train: expected numbers, got an array of <U1 \(e.g. 'a'\)"),
    ({"X_val": RNG.standard_normal((9, 5))}, r"data.X_val: 5 features per row, data.X_train has 4"),
    ({"X_test": RNG.standard_normal((9, 5))}, r"data.X_test: 5 features per row, data.X_train has 4"),
    ({"y_train": np.arange(31) % 3}, r"data.y_train: 31 labels for 30 samples"),
    ({"y_train": np.arange(29) % 3}, r"data.y_train: 29 labels for 30 samples"),
    ({"y_test": np.arange(8) % 3}, r"data.y_test: 8 labels for 9 samples"),
    ({"y_train": np.arange(30) % 5}, r"data.y_train: label 3 is not a class index; valid: 0..2 \(3 classes\)"),
    ({"y_train": np.arange(30) % 3 - 1}, r"data.y_train: label -1 is not a class index"),  # was: -1 = last class
    ({"y_val": np.arange(9) + 3}, r"data.y_val: label 3 is not a class index"),
    ({"y_train": Y30 + 0.5}, r"data.y_train: labels must be class indices 0..2, got 0.5"),
    ({"y_train": np.array(list("abc") * 10)}, r"data.y_train: expected numbers"),
    ({"y_train": Y30 == 0}, r"data.y_train: labels must be class indices 0..2, got booleans"),
    ({"y_train": np.eye(3)[Y30]}, r"data.y_train: expected a 1-D array .* Y.argmax\(axis=1\)"),
    ({"classes": 3}, r"data.classes: expected the class labels"),
    ({"classes": np.array([])}, r"data.classes: no classes"),
], ids=lambda v: ",".join(v) if isinstance(v, dict) else "")
def test_train_refuses_bad_data(parts, match):
    with pytest.raises(SgdlabError, match=match):
        train(SMALL, dataset(**parts), diagnostics=False)


def test_train_takes_lists_and_whole_float_labels():
    """What converts exactly is converted: a list of rows, labels 0.0, 1.0, 2.0."""
    data = dataset(X_train=X30.tolist(), y_train=Y30.astype(float))
    assert train(SMALL, data, diagnostics=False).history.epochs == 1


@pytest.mark.parametrize("args, kw, match", [
    (({"epochs": 1}, None), {}, r"config: expected an sgdlab.RunConfig, got dict; build one with RunConfig\(\*\*d\)"),
    ((None, None), {}, r"config: expected an sgdlab.RunConfig, got NoneType"),
    ((SMALL, (X30, Y30)), {}, r"data: expected an sgdlab.Dataset, got tuple"),
    ((SMALL, "iris"), {}, r"data: expected an sgdlab.Dataset, got str; load it with sgdlab.load_dataset"),
    ((SMALL, None), {"on_epoch": 3}, r"on_epoch: expected a function"),  # was: failed after the first epoch
], ids=["config-dict", "config-none", "data-tuple", "data-name", "on_epoch"])
def test_train_refuses_bad_arguments(args, kw, match):
    config, data = args
    with pytest.raises(SgdlabError, match=match):
        train(config, dataset() if data is None else data, **kw)


def test_train_refuses_a_network_too_big_for_memory():
    """Was a MemoryError from numpy's allocator."""
    with pytest.raises(SgdlabError, match=r"config.hidden: the network \(4-1000000000000-3, .* needs at least .* "
                                          r"use smaller hidden layer sizes"):
        train(RunConfig(hidden=(10**12,), epochs=1), dataset())


def _nan_network():
    net = network()
    net.weights[0][0, 0] = np.nan
    return net


def _cut_network():
    net = network()
    net.weights[0] = net.weights[0][:, :4]
    return net


@pytest.mark.parametrize("make, match", [
    (lambda: network((5, 5, 3)), r"network: layer sizes \[5, 5, 3\], but the config \(hidden=\(5,\)\) on this data "
                                 r"\(4 features, 3 classes\) describes \[4, 5, 3\]"),
    (lambda: network((4, 5, 4)), r"network: layer sizes \[4, 5, 4\]"),
    (lambda: network((4, 7, 3)), r"network: layer sizes \[4, 7, 3\]"),          # was: trained, config misdescribed it
    (lambda: network(activation="tanh"), r"network: its activation is 'tanh', the config's is 'sigmoid'"),  # same
    (lambda: network(output="softmax", cost="cce"), r"network: its output is 'softmax', the config's is 'sigmoid'"),
    (lambda: Network([4, 5, 3]), r"network: not initialised \(no weights\); call network.initialize"),
    (_cut_network, r"network: weights\[0\] has shape \(4, 4\), its sizes \[4, 5, 3\] need \(4, 5\)"),
    (_nan_network, r"network: its parameters hold NaN or infinity"),           # was: 'diverged at epoch 1'
    (lambda: "net", r"network: expected an sgdlab.Network, got str"),
], ids=["inputs", "outputs", "hidden", "activation", "output", "uninitialised", "shape", "nan", "type"])
def test_train_refuses_a_network_the_config_does_not_describe(make, match):
    with pytest.raises(SgdlabError, match=match):
        train(SMALL, dataset(), network=make(), diagnostics=False)


# -- Network ------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes", ["43", [4, True, 3]])
def test_network_refuses_sizes_that_only_look_like_integers(sizes):
    """Was: "43" -> [4, 3], True -> 1."""
    with pytest.raises(SgdlabError, match="layer sizes must be positive integers"):
        Network(sizes)


NET = network()


@pytest.mark.parametrize("call, match", [
    (lambda: NET.predict(X30[:, :3]), r"X: 3 features per row, the network takes 4"),
    (lambda: NET.predict(X30[0]), r"X: expected a 2-D array .* got shape \(4,\); one sample is X.reshape\(1, -1\)"),
    (lambda: NET.predict_proba(np.full((2, 4), "a")), r"X: expected numbers"),
    (lambda: NET.predict(_with_nan(X30)), r"X: row 1 holds NaN or infinity"),        # was: class 0, silently
    (lambda: Network([4, 3]).predict(X30), r"network: not initialised"),             # was: zeros, silently
    (lambda: NET.evaluate(X30, Y30 + 2), r"y: label 3 is not a class index; valid: 0..2"),
    (lambda: NET.evaluate(X30, Y30 - 1), r"y: label -1 is not a class index"),      # was: a loss and an accuracy
    (lambda: NET.evaluate(X30, Y30[:-1]), r"y: 29 labels for 30 samples"),
    (lambda: NET.evaluate(X30, Y30 + 0.5), r"y: labels must be class indices 0..2, got 0.5"),
    (lambda: NET.loss(X30, np.zeros((30, 4))), r"Y: expected shape \(30, 3\) .* got \(30, 4\)"),
    (lambda: NET.gradients(X30, np.zeros((30, 4))), r"Y: expected shape \(30, 3\) .* got \(30, 4\)"),
], ids=["features", "1-D", "text", "nan", "uninitialised", "label-high", "label-negative", "label-count",
        "label-fraction", "loss-Y", "gradients-Y"])
def test_network_methods_refuse_bad_inputs(call, match):
    with pytest.raises(SgdlabError, match=match):
        call()


def test_network_predicts_lists_and_no_rows():
    assert NET.predict(X30[:2].tolist()).tolist() == NET.predict(X30[:2]).tolist()
    assert NET.predict(np.zeros((0, 4))).shape == (0,)


# -- gradcheck ----------------------------------------------------------------------------

ONE_HOT = one_hot(Y30, 3)


@pytest.mark.parametrize("call, match", [
    (lambda: gradcheck(NET, X30[:3], Y30[:3]), r"Y: expected shape \(3, 3\) .* got \(3,\); class labels become "
                                               r"targets with sgdlab.nn.one_hot"),  # was: a passing result
    (lambda: gradcheck(NET, X30[:3], ONE_HOT[:4]), r"Y: expected shape \(3, 3\) .* got \(4, 3\)"),
    (lambda: gradcheck(NET, X30[:3, :3], ONE_HOT[:3]), r"X: 3 features per row, the network takes 4"),
    (lambda: gradcheck(NET, X30[:0], ONE_HOT[:0]), r"X: no samples"),                  # was: NaN error, silently
    (lambda: gradcheck(NET, np.full((3, 4), np.nan), ONE_HOT[:3]), r"X: row 0 holds NaN"),  # same
    (lambda: gradcheck(NET, X30[:3], ONE_HOT[:3], eps=0), r"eps: the finite-difference step must be a number > 0, "
                                                          r"got 0"),  # was: ZeroDivisionError
    (lambda: gradcheck(NET, X30[:3], ONE_HOT[:3], eps=-1e-6), r"eps: .* got -1e-06"),    # was: a wrong result
    (lambda: gradcheck(NET, X30[:3], ONE_HOT[:3], eps=float("nan")), r"eps: .* got nan"),
    (lambda: gradcheck(NET, X30[:3], ONE_HOT[:3], eps="1e-6"), r"eps: .* got '1e-6'"),
    (lambda: gradcheck(Network([4, 3]), X30[:3], ONE_HOT[:3]), r"network: not initialised"),
    (lambda: gradcheck("net", X30[:3], ONE_HOT[:3]), r"net: expected an sgdlab.Network, got str"),
], ids=["labels", "rows", "features", "empty", "nan", "eps0", "eps-negative", "eps-nan", "eps-text",
        "uninitialised", "type"])
def test_gradcheck_refuses_bad_arguments(call, match):
    with pytest.raises(SgdlabError, match=match):
        call()


# -- the study API and the report entry point ------------------------------------------------

SPEC = {"name": "t", "dataset": "iris", "epochs": 1, "seeds": 1, "hidden": [3],
        "grid": [{"mode": "paper", "cost": ["mse"], "activation": ["sigmoid"], "init": ["xavier"], "lr": [0.1]}]}


@pytest.mark.parametrize("spec", [None, 3, [SPEC]], ids=["none", "int", "list"])
def test_a_spec_of_the_wrong_type_is_named(spec):
    """Was: TypeError from pathlib about 'os.PathLike'."""
    with pytest.raises(SgdlabError, match=r"spec: expected a spec file's path, TOML text, a dict .* or a StudySpec, "
                                          rf"got {type(spec).__name__}"):
        as_spec(spec)


@pytest.mark.parametrize("kw, match", [
    ({"out": None}, r"out: expected a folder path \(str or pathlib.Path\), got None"),
    ({"out": 3}, r"out: expected a folder path .* got 3"),
    ({"resume": "yes"}, r"resume: expected True or False, got 'yes'"),   # was: taken as True
    ({"force": 1}, r"force: expected True or False, got 1"),
    ({"progress": "x"}, r"progress: expected True or False, got 'x'"),
    ({"report": "no"}, r"report: expected True or False, got 'no'"),      # was: 'no' rendered the report
], ids=lambda v: str(v)[:20])
def test_run_study_refuses_bad_arguments_before_training(kw, match, tmp_path):
    kw = {"out": tmp_path / "s", **kw}
    with pytest.raises(SgdlabError, match=match):
        run_study(SPEC, jobs=1, **kw)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("call, name", [(open_study, "directory"), (render, "out_dir"),
                                        (sgdlab.workflow.render_report, "out")])
def test_reading_a_study_needs_a_folder_path(call, name):
    """Was: TypeError from pathlib."""
    with pytest.raises(SgdlabError, match=rf"{name}: expected a folder path \(str or pathlib.Path\), got None"):
        call(None)


# -- the estimator --------------------------------------------------------------------------

def test_estimator_refuses_a_string_of_layer_sizes_at_fit():
    """Was: "32" read as layers ('3', '2')."""
    clf = sgdlab.SGDNetClassifier(hidden_layer_sizes="32")
    with pytest.raises(SgdlabError, match=r"hidden_layer_sizes: expected a tuple of positive integers, got '32'"):
        clf.fit(X30, Y30)
