"""PD <-> score (points to double the odds) and grade bands."""

from __future__ import annotations

import numpy as np
import pytest

from credit.scale import ScoreScale


def test_anchor_and_points_to_double_the_odds() -> None:
    s = ScoreScale()  # 600 at 50:1 good:bad, 20 points to double
    assert s.score([1 / 51])[0] == pytest.approx(600.0)
    assert s.score([1 / 101])[0] == pytest.approx(620.0)  # 100:1
    assert s.score([1 / 26])[0] == pytest.approx(580.0)  # 25:1


def test_clamped_and_rounded() -> None:
    s = ScoreScale()
    assert s.score([1e-12, 0.999999])[0] == 850.0
    assert s.score([0.999999])[0] == 300.0
    assert s.score_int([1 / 51]).tolist() == [600]
    assert s.score_int([0.5]).dtype == np.int64


def test_inverse_inside_the_clamp() -> None:
    s = ScoreScale()
    p = np.array([0.001, 0.01, 0.05, 0.2, 0.6])
    np.testing.assert_allclose(s.pd_from_score(s.score(p)), p, rtol=1e-9)


def test_grade_bands_at_their_edges() -> None:
    s = ScoreScale()  # A < 1% <= B < 2% <= C < 5% <= D < 10% <= E < 20% <= F
    pds = [0.0, 0.0099, 0.01, 0.0199, 0.02, 0.049, 0.05, 0.0999, 0.1, 0.19, 0.2, 1.0]
    assert s.grade(pds).tolist() == ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E", "F", "F"]


def test_from_config_round_trip_and_validation() -> None:
    s = ScoreScale.from_dict(
        {"base_score": 500, "pdo": 40, "bands": [["low", 0.05], ["high", 1.0]]}
    )
    assert s.score([1 / 51])[0] == pytest.approx(500.0)
    assert s.grade([0.01, 0.5]).tolist() == ["low", "high"]
    assert ScoreScale.from_dict(s.to_dict()) == s
    assert ScoreScale.from_dict(None) == ScoreScale()
    with pytest.raises(ValueError, match="unknown score scale keys"):
        ScoreScale.from_dict({"points": 20})
    with pytest.raises(ValueError, match="must increase strictly"):
        ScoreScale.from_dict({"bands": [["A", 0.1], ["B", 0.05]]})
    with pytest.raises(ValueError, match="pdo must be positive"):
        ScoreScale(pdo=0)
