"""credit.fastpath.lightgbm_row: one row through LightGBM's C API gives Booster.predict's
numbers, bit for bit (raw score and TreeSHAP contributions; missing values, categorical
splits, unseen categories, the best iteration)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from credit.fastpath.lightgbm_row import (
    SINGLE_THREAD_ROWS,
    SingleRowPredictor,
    predict_threads,
    single_row_predictor,
)

N_FEATURES = 6
CAT = 5  # the categorical column: codes 0..3 in training
THREADS: list[dict[str, Any]] = [{"num_threads": 1}, {}]  # one thread; LightGBM's default


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[:, CAT] = rng.integers(0, 4, n)
    z = X[:, 0] - 0.7 * X[:, 1] + 0.8 * (X[:, CAT] == 2) + 0.3 * X[:, 2] * X[:, 3]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    X[rng.uniform(size=X.shape) < 0.1] = np.nan  # the trees learn default branches
    return X, y


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    X, y = _data(800, 0)
    params = {
        "objective": "binary",
        "num_leaves": 8,
        "min_data_in_leaf": 10,
        "min_data_per_group": 5,
        "cat_smooth": 1.0,
        "verbose": -1,
        "seed": 1,
        "num_threads": 1,
    }
    ds = lgb.Dataset(X, y, categorical_feature=[CAT], free_raw_data=False)
    b = lgb.train(params, ds, num_boost_round=40)
    assert '"decision_type": "=="' in str(b.dump_model()).replace("'", '"')  # a category split
    return b


def _rows(seed: int, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=2.0, size=(n, N_FEATURES))
    X[:, CAT] = rng.integers(-1, 7, n)  # known, unseen (4..6) and negative (missing) codes
    X[rng.uniform(size=X.shape) < 0.15] = np.nan
    X[0] = np.nan  # every value missing
    return X


def _assert_same_as_booster(fast: SingleRowPredictor, b: lgb.Booster, X: np.ndarray) -> None:
    for row in X:
        one = row.reshape(1, -1)
        for threads in THREADS:
            np.testing.assert_array_equal(fast.raw(row), b.predict(one, raw_score=True, **threads))
            np.testing.assert_array_equal(
                fast.contrib(row), b.predict(one, pred_contrib=True, **threads)
            )


def test_equals_booster_predict_bit_for_bit(booster: lgb.Booster) -> None:
    fast = single_row_predictor(booster, N_FEATURES)
    assert fast is not None  # this LightGBM build has the fast path
    _assert_same_as_booster(fast, booster, _rows(1))
    assert fast.raw(_rows(2)[1]).shape == (1,)
    assert fast.contrib(_rows(2)[1]).shape == (1, N_FEATURES + 1)


def test_uses_the_best_iteration_as_booster_predict_does(booster: lgb.Booster) -> None:
    b = lgb.Booster(model_str=booster.model_to_string())
    b.best_iteration = 12
    fast = SingleRowPredictor(b, N_FEATURES)
    X = _rows(3, n=40)
    _assert_same_as_booster(fast, b, X)
    all_trees = SingleRowPredictor(booster, N_FEATURES)
    assert any(fast.raw(r)[0] != all_trees.raw(r)[0] for r in X)  # 12 trees, not 40


def test_refuses_a_row_of_the_wrong_length(booster: lgb.Booster) -> None:
    fast = SingleRowPredictor(booster, N_FEATURES)
    with pytest.raises(ValueError, match="one row of 6 values"):
        fast.raw(np.zeros(N_FEATURES - 1))  # C would read past the end
    with pytest.raises(ValueError, match="one row of 6 values"):
        fast.contrib(np.zeros((2, N_FEATURES)))


def test_no_fast_path_means_none(booster: lgb.Booster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lightgbm.basic._LIB", object())  # a build without the C entry points
    assert single_row_predictor(booster, N_FEATURES) is None


def test_few_rows_predict_on_one_thread() -> None:
    assert predict_threads(1) == {"num_threads": 1}
    assert predict_threads(SINGLE_THREAD_ROWS - 1) == {"num_threads": 1}
    assert predict_threads(SINGLE_THREAD_ROWS) == {}
