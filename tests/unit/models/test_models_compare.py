"""DeLong's paired AUC comparison (models.evaluate.auc_difference)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.evaluate import auc_difference, compare_auc, describe_auc_difference


def test_hand_computed_variance() -> None:
    # Defaults score 0.9 and 0.4; non-defaults 0.5, 0.1, 0.2. Per default, the share of
    # non-defaults below it: 1, 2/3 (sample variance 1/18); per non-default, the share of
    # defaults above it: 1/2, 1, 1 (sample variance 1/12). AUC = 5/6 and
    # Var(AUC) = (1/18)/2 + (1/12)/3 = 1/18. A constant score has AUC 1/2 and no variance.
    y = np.array([1, 1, 0, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.1, 0.2])
    d = auc_difference(y, a, np.full(5, 0.3))
    assert d["auc_a"] == pytest.approx(5 / 6)
    assert d["auc_b"] == pytest.approx(0.5)
    assert d["diff"] == pytest.approx(1 / 3)
    assert d["se"] ** 2 == pytest.approx(1 / 18)


def _two_models(n: int, seed: int, noise_b: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.1
    signal = rng.normal(size=n) + 1.0 * y
    a = signal + 0.5 * rng.normal(size=n)
    b = signal + noise_b * rng.normal(size=n)
    return y, a, b


def test_aucs_match_sklearn_with_ties() -> None:
    y, a, b = _two_models(1500, 1, 0.8)
    a, b = np.round(a, 1), np.round(b, 1)  # many tied scores
    d = auc_difference(y, a, b)
    assert d["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert d["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert d["n"] == 1500


def test_standard_error_agrees_with_a_paired_bootstrap() -> None:
    y, a, b = _two_models(3000, 0, 0.8)
    d = auc_difference(y, a, b)
    rng = np.random.default_rng(7)
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert d["se"] == pytest.approx(np.std(boot), rel=0.15)
    # the correlation between the two models is what makes the paired interval narrow:
    # far narrower than if the two AUCs were independent
    alone = [auc_difference(y, s, np.zeros(len(y)))["se"] for s in (a, b)]
    assert d["se"] < 0.8 * np.hypot(*alone)


def test_a_clearly_better_model_is_significant_and_the_order_matters() -> None:
    y, a, b = _two_models(3000, 0, 0.8)
    d = auc_difference(y, a, b)
    assert d["diff"] > 0 and d["ci_low"] > 0 and d["p_value"] < 0.01
    r = auc_difference(y, b, a)
    assert r["diff"] == pytest.approx(-d["diff"])
    assert r["p_value"] == pytest.approx(d["p_value"])
    assert r["ci_high"] < 0
    text = describe_auc_difference(d, "LightGBM", "scorecard")
    assert "LightGBM - scorecard = +0.0" in text and "significant at the 5% level" in text
    assert "not significant" not in text


def test_the_same_model_twice_and_a_noise_level_gain() -> None:
    y, a, _ = _two_models(2000, 2, 0.8)
    same = auc_difference(y, a, a.copy())
    assert same["diff"] == 0 and same["se"] == 0 and same["p_value"] == 1.0
    # two models of the same quality (the same signal, different noise of the same size):
    # some difference, within the interval
    y, a, b = _two_models(2000, 2, 0.5)
    d = auc_difference(y, a, b)
    assert d["diff"] != 0
    assert d["ci_low"] < 0 < d["ci_high"] and d["p_value"] > 0.05
    assert "not significant at the 5% level" in describe_auc_difference(d)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2 defaults and 2 non-defaults"):
        auc_difference([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3], [0.5, 0.4, 0.3, 0.2])
    with pytest.raises(ValueError, match="3 predictions for 4 outcomes"):
        auc_difference([1, 1, 0, 0], [0.9, 0.1, 0.2], [0.5, 0.4, 0.3])


def test_compare_auc_leaves_out_rows_with_too_few_of_an_outcome() -> None:
    assert compare_auc([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3], [0.5, 0.4, 0.3, 0.2]) is None
    y, a, b = [1, 1, 0, 0], [0.9, 0.1, 0.2, 0.3], [0.5, 0.4, 0.3, 0.2]
    assert compare_auc(y, a, b) == auc_difference(y, a, b)
