"""Candidate choice: the best validation AUC, or a cheaper model that is as good."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from models.fitting import choose_candidate, explain_cost


def test_without_tolerance_the_best_auc_wins() -> None:
    assert choose_candidate([0.80, 0.81, 0.79], [1.0, 50.0, 0.5], 0.0) == 1


def test_within_tolerance_the_cheapest_to_explain_wins() -> None:
    aucs, costs = [0.8083, 0.8075, 0.8066], [129_000.0, 32_000.0, 13_700.0]
    assert choose_candidate(aucs, costs, 0.001) == 1  # 0.8066 is 0.0017 below the best
    assert choose_candidate(aucs, costs, 0.002) == 2
    assert choose_candidate([0.8, 0.8], [5.0, 5.0], 0.001) == 0  # a tie keeps the first


def _booster(depth: int, trees: int) -> lgb.Booster:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=2000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 31, "max_depth": depth, "verbose": -1}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=trees)


def test_explain_cost_grows_with_depth_and_trees() -> None:
    shallow, deep = _booster(2, 20), _booster(6, 20)
    assert explain_cost(shallow) == 20 * 4 * 2**2  # 20 trees of 4 leaves at depth 2
    assert explain_cost(deep) > explain_cost(shallow)
    assert explain_cost(_booster(2, 40)) == 2 * explain_cost(shallow)
