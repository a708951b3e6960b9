"""SGDNetClassifier: scikit-learn's own estimator checks, and use inside sklearn's tools."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import sgdlab
from sgdlab import RunConfig, SGDNetClassifier, load_dataset, train

CHECKED = [
    SGDNetClassifier(),  # the defaults: softmax + cce, 30 epochs
    SGDNetClassifier(hidden_layer_sizes=(16,), out_activation="sigmoid", cost="ce", max_iter=10, random_state=0),
    SGDNetClassifier(hidden_layer_sizes=(8, 8), activation="tanh", max_iter=8, momentum=0.9,
                     nesterovs_momentum=True, alpha=1e-4, early_stopping=True, dtype="float32", random_state=1),
]


def _expected_failures(est):
    if est.dtype == "float32":
        return {
            # The check compares predict_proba on permuted rows with rtol=1e-7, finer than
            # float32's resolution (~6e-8 relative per op): BLAS may sum the rows of a
            # permuted matrix in another order. Non-strict xfail: on some BLAS it passes.
            "check_methods_sample_order_invariance": "float32 rounding differs with row order, rtol 1e-7",
        }
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_fit_matches_sgdlab_train():
    # Same init and shuffling streams, same fast path (the packed gradient and SGD.step_flat):
    # the estimator's fit is sgdlab.train, bit for bit.
    data = load_dataset("digits", (0.6, 0.2, 0.2), 0, None)
    config = RunConfig(activation="sigmoid", output="sigmoid", cost="ce", lr=0.5, epochs=3, seed=7, momentum=0.5,
                       l2=1e-3)
    ref = train(config, data)
    est = SGDNetClassifier(activation="sigmoid", out_activation="sigmoid", cost="ce", learning_rate_init=0.5,
                           max_iter=3, momentum=0.5, alpha=1e-3, random_state=7,
                           bias_init="normal").fit(data.X_train, data.y_train)
    for a, b in zip(ref.network.params, est.network_.params):
        np.testing.assert_array_equal(b, a)
    assert est.loss_curve_ == ref.history.train_loss
    assert est.history_.train_acc == ref.history.train_acc
    assert est.n_iter_ == 3 and est.t_ == 3 * len(data.y_train)  # samples seen, as MLPClassifier counts
    # a different seed gives a different network: the comparison above can fail
    other = SGDNetClassifier(out_activation="sigmoid", cost="ce", learning_rate_init=0.5, max_iter=1, random_state=8)
    assert not np.allclose(other.fit(data.X_train, data.y_train).coefs_[0], ref.network.weights[0], atol=1e-3)


def test_fit_trains_on_the_fast_path_not_network_gradients(monkeypatch):
    from sgdlab.nn.network import Network

    def slow(*a, **k):
        raise AssertionError("fit used the reference Network.gradients")

    monkeypatch.setattr(Network, "gradients", slow)
    X, y = load_iris(return_X_y=True)
    est = SGDNetClassifier(max_iter=2, random_state=0).fit(X, y)
    est.partial_fit(X, y)
    assert est.n_iter_ == 3


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = load_iris(return_X_y=True)
    SGDNetClassifier(max_iter=3, random_state=0, verbose=True, early_stopping=True, n_iter_no_change=10).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]
    assert all("loss = " in ln and "validation score = " in ln for ln in lines)


def test_parameter_names_are_mlpclassifiers_where_the_meaning_is():
    from sklearn.neural_network import MLPClassifier

    shared = {"hidden_layer_sizes", "activation", "learning_rate_init", "max_iter", "alpha", "batch_size",
              "momentum", "nesterovs_momentum", "early_stopping", "validation_fraction", "n_iter_no_change",
              "random_state", "verbose"}
    assert shared <= set(SGDNetClassifier().get_params()) & set(MLPClassifier().get_params())
    assert set(SGDNetClassifier().get_params()) - shared == {"out_activation", "cost", "init", "bias_init",
                                                             "ce_outside", "dtype", "scale"}


def test_grid_search_in_pipeline_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), SGDNetClassifier(max_iter=6, batch_size=20, random_state=0))
    grid = GridSearchCV(pipe, {"sgdnetclassifier__learning_rate_init": [0.001, 0.3],
                               "sgdnetclassifier__activation": ["sigmoid", "tanh"]}, cv=3)
    grid.fit(X_train, y_train)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.85
    # lr 0.001 for 6 epochs barely moves: the search must see that and pick 0.3
    assert grid.best_params_["sgdnetclassifier__learning_rate_init"] == 0.3
    scores = grid.cv_results_["mean_test_score"]
    lrs = grid.cv_results_["param_sgdnetclassifier__learning_rate_init"]
    assert max(scores[lrs == 0.001]) < min(scores[lrs == 0.3])
    assert grid.score(X_test, y_test) > 0.85


def test_cross_val_score_with_string_labels():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    pipe = make_pipeline(StandardScaler(), SGDNetClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0))
    scores = cross_val_score(pipe, X, names, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    est = pipe.fit(X, names)[-1]
    assert est.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert set(pipe.predict(X)) <= set(names)


def test_binary_problem_and_probabilities():
    X, y = load_iris(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[y > 0]), y[y > 0]
    for output in ("softmax", "sigmoid"):
        est = SGDNetClassifier(out_activation=output, max_iter=30, random_state=0).fit(X, y)
        proba = est.predict_proba(X)
        assert proba.shape == (len(y), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], est.predict(X))
        assert est.score(X, y) > 0.85


def test_predict_proba_only_for_probabilistic_outputs():
    est = SGDNetClassifier(activation="tanh", out_activation="same")
    assert not hasattr(est, "predict_proba")
    assert hasattr(SGDNetClassifier(out_activation="sigmoid"), "predict_proba")


def test_dataframe_sets_feature_names():
    pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    est = SGDNetClassifier(max_iter=2, random_state=0).fit(X, y)
    assert list(est.feature_names_in_) == list(X.columns)
    assert est.n_features_in_ == 4
    assert [w.shape for w in est.coefs_] == [(4, 32), (32, 16), (16, 3)]
    assert [b.shape for b in est.intercepts_] == [(32,), (16,), (3,)]
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X.rename(columns=lambda c: c.upper()))


def test_partial_fit_continues_training():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = SGDNetClassifier(momentum=0.9, learning_rate_init=0.01, random_state=3)
    losses = []
    for _ in range(6):
        est.partial_fit(X, y, classes=[0, 1, 2])
        losses.append(est.loss_curve_[-1])
    assert est.n_iter_ == 6 and len(est.loss_curve_) == 6
    assert losses[-1] < losses[0] and all(b < a for a, b in zip(losses, losses[1:]))
    # the same streams and the same optimizer (momentum velocity kept between calls): six
    # partial_fit epochs are exactly six fit epochs
    ref = SGDNetClassifier(momentum=0.9, learning_rate_init=0.01, random_state=3, max_iter=6).fit(X, y)
    for a, b in zip(ref.coefs_ + ref.intercepts_, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_needs_classes_first_and_rejects_new_labels():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="classes"):
        SGDNetClassifier().partial_fit(X, y)
    est = SGDNetClassifier().partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert est.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        est.partial_fit(X[:3], [0, 7, 1])
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y, classes=[0, 1])


def test_random_state_reproducible_and_none_is_fresh():
    X, y = load_iris(return_X_y=True)
    a = SGDNetClassifier(max_iter=2, random_state=5).fit(X, y)
    b = SGDNetClassifier(max_iter=2, random_state=5).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.seed_ == 5
    c = SGDNetClassifier(max_iter=2).fit(X, y)
    d = SGDNetClassifier(max_iter=2).fit(X, y)
    assert c.seed_ != d.seed_ and not np.array_equal(c.coefs_[0], d.coefs_[0])
    e = SGDNetClassifier(max_iter=2, random_state=c.seed_).fit(X, y)
    np.testing.assert_array_equal(c.coefs_[0], e.coefs_[0])


def test_early_stopping_keeps_best_epoch():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = SGDNetClassifier(early_stopping=True, validation_fraction=0.2, n_iter_no_change=2, max_iter=200,
                           random_state=0).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.history_.stopped_epoch == est.n_iter_ < 200
    # n_iter_ is best epoch + patience: the run stopped because nothing improved after it
    assert est.validation_scores_.index(max(est.validation_scores_)) == est.n_iter_ - 1 - 2
    assert SGDNetClassifier(max_iter=3, random_state=0).fit(X, y).validation_scores_ is None


def test_divergence_warns_and_is_recorded():
    X, y = load_iris(return_X_y=True)
    est = SGDNetClassifier(activation="relu", out_activation="identity", cost="mse", learning_rate_init=1e3, max_iter=20,
                           random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est.fit(X, y)
    assert est.history_.status == "diverged" and est.history_.diverged_epoch is not None
    assert len(est.loss_curve_) < 20


def test_pickle_round_trip_then_continue():
    X, y = load_iris(return_X_y=True)
    est = SGDNetClassifier(max_iter=3, momentum=0.5, random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.coefs_ is back.network_.weights
    est.partial_fit(X, y)
    back.partial_fit(X, y)
    np.testing.assert_array_equal(back.coefs_[0], est.coefs_[0])


@pytest.mark.parametrize("param, value", [
    ("hidden_layer_sizes", (8, 0)), ("hidden_layer_sizes", "big"), ("activation", "softmax"),
    ("activation", "swish"), ("out_activation", "gelu"), ("cost", "hinge"), ("init", "orthogonal"),
    ("bias_init", "ones"), ("learning_rate_init", 0), ("learning_rate_init", -1.0), ("learning_rate_init", float("nan")),
    ("batch_size", 0), ("batch_size", 2.5), ("max_iter", 0), ("momentum", 1.0), ("momentum", -0.1),
    ("nesterovs_momentum", "yes"), ("alpha", -1e-3), ("early_stopping", 1), ("validation_fraction", 1.0),
    ("n_iter_no_change", 0), ("random_state", -1), ("random_state", "seed"), ("dtype", "float16"),
])
def test_bad_params_raise_value_error_naming_the_param(param, value):
    X, y = load_iris(return_X_y=True)
    est = SGDNetClassifier(max_iter=1).set_params(**{param: value})
    with pytest.raises(ValueError, match=param):
        est.fit(X, y)
    with pytest.raises(ValueError, match=param):
        est.partial_fit(X, y, classes=[0, 1, 2])


def test_bad_pairings_name_the_param():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="cost: 'cce' needs a softmax output layer"):
        SGDNetClassifier(out_activation="sigmoid", cost="cce").fit(X, y)
    with pytest.raises(ValueError, match="nesterov"):
        SGDNetClassifier(nesterovs_momentum=True).fit(X, y)
    with pytest.raises(sgdlab.SgdlabError, match="one class"):
        SGDNetClassifier().fit(X[:5], y[:5])


def test_auto_cost_follows_output():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        costs = {out: SGDNetClassifier(out_activation=out, max_iter=1, random_state=0).fit(X, y).network_.cost
                 for out in ("softmax", "sigmoid", "tanh")}
    assert costs == {"softmax": "cce", "sigmoid": "ce", "tanh": "mse"}
