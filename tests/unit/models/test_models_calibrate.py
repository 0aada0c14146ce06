"""Calibration: strictly increasing maps, chosen by log loss, calibrated on held-out data."""

from __future__ import annotations

import numpy as np
import pytest

from credit.scoring import Calibrator
from models.calibrate import choose_calibrator, fit_isotonic, fit_platt
from models.evaluate import ece, metrics, psi


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Raw scores that are over-confident by a factor 2: the truth is sigmoid(z / 2 - 1).
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(z / 2 - 1)))).astype(int)
    return z, y


def test_calibration_on_held_out_data() -> None:
    z_val, y_val = _data(4000, 0)
    z_test, y_test = _data(4000, 1)
    cal, losses = choose_calibrator(z_val, y_val)
    assert set(losses) == {"platt", "isotonic"}
    assert cal.method == min(losses, key=losses.get)
    p = cal(z_test)
    uncal = 1 / (1 + np.exp(-z_test))
    assert ece(y_test, p) < 0.02
    assert ece(y_test, p) < ece(y_test, uncal) / 3
    assert p.mean() == pytest.approx(y_test.mean(), abs=0.02)


@pytest.mark.parametrize("fit", [fit_platt, fit_isotonic])
def test_calibrators_are_strictly_increasing(fit) -> None:
    z, y = _data(3000, 2)
    cal = fit(z, y)
    grid = np.linspace(-20, 20, 4001)
    assert np.all(np.diff(cal.logit(grid)) > 0)  # no ties, even beyond the fitted range
    rt = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(rt(grid), cal(grid))


def test_calibrator_rejects_ranking_changes() -> None:
    with pytest.raises(ValueError, match="slope must be positive"):
        Calibrator(method="platt", a=-1.0)
    with pytest.raises(ValueError, match="increase strictly"):
        Calibrator(method="isotonic", x=(0.0, 1.0), y=(0.5, 0.2))


def test_one_class_window_is_refused() -> None:
    with pytest.raises(ValueError, match="only one class"):
        choose_calibrator(np.zeros(10), np.zeros(10, dtype=int))


def test_metrics_on_a_worked_case() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = metrics(y, p, ece_bins=2)
    assert m["auc"] == pytest.approx(0.75)
    assert m["gini"] == pytest.approx(0.5)
    assert m["ks"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    # bins {0.1, 0.35} and {0.4, 0.8}: |0.5 - 0.225| and |0.5 - 0.6|, weighted equally
    assert m["ece"] == pytest.approx((0.275 + 0.1) / 2)
    assert psi([1, 2, 3, 4] * 25, [1, 2, 3, 4] * 25) == pytest.approx(0.0)
