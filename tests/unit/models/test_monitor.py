"""Drift monitoring: PSI against hand-computed values, shifted vs unshifted populations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.baseline import Bins, build_baseline, fit_bins, psi, status
from models.monitor import compare, grade_migration, outcomes_by_grade
from tests.model.helpers import make_frame, train_tiny


def test_psi_two_bins_by_hand() -> None:
    # (0.4 - 0.5) ln(0.4 / 0.5) + (0.6 - 0.5) ln(0.6 / 0.5)
    expected = -0.1 * math.log(0.8) + 0.1 * math.log(1.2)
    assert psi([0.5, 0.5], [0.4, 0.6]) == pytest.approx(expected, abs=1e-12)
    assert psi([0.5, 0.5], [0.4, 0.6]) == pytest.approx(0.0405465, abs=1e-7)


def test_psi_empty_bin_is_floored() -> None:
    # the third bin is empty now: its share is raised to 1e-4 so the log stays finite
    expected = 2 * (0.25 * math.log(0.5 / 0.25)) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert psi([0.25, 0.25, 0.5], [0.5, 0.5, 0.0]) == pytest.approx(expected, abs=1e-12)


def test_psi_identical_is_zero_and_lengths_must_match() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    with pytest.raises(ValueError, match="one length"):
        psi([0.5, 0.5], [1.0])


def test_quantile_bins_and_psi_of_a_sample_by_hand() -> None:
    b = fit_bins(np.arange(100, dtype=float), bins=4)
    # edges are observed values: 0..23 | 24..48 | 49..73 | 74..99 | missing
    assert b.edges == (24.0, 49.0, 74.0)
    assert b.proportions == (0.24, 0.25, 0.25, 0.26, 0.0)
    now = np.array([1.0, 2.0, 3.0, np.nan])  # three in the first bin, one missing
    assert b.shares(now).tolist() == [0.75, 0.0, 0.0, 0.0, 0.25]
    expected = (
        (0.75 - 0.24) * math.log(0.75 / 0.24)
        + (1e-4 - 0.25) * math.log(1e-4 / 0.25) * 2
        + (1e-4 - 0.26) * math.log(1e-4 / 0.26)
        + (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    )
    assert b.psi(now) == pytest.approx(expected, abs=1e-12)


def test_flag_gets_two_bins_and_categories_count_unseen_as_missing() -> None:
    flag = fit_bins([0, 0, 0, 1], bins=10)
    assert flag.edges == (1.0,)
    assert flag.proportions == (0.75, 0.25, 0.0)
    cat = fit_bins([0, 1, 1, np.nan], labels=["EU", "US"])
    assert cat.proportions == (0.25, 0.5, 0.25)
    assert cat.counts([0, 5, -1, np.nan]).tolist() == [1, 0, 3]  # codes 5 and -1: unseen
    assert Bins.from_dict(cat.to_dict()) == cat
    with pytest.raises(ValueError, match="proportions"):
        Bins.from_dict({"kind": "numeric", "edges": [1.0], "proportions": [1.0]})


def test_status_thresholds() -> None:
    assert [status(v) for v in (0.05, 0.1, 0.2, 0.25, math.nan)] == [
        "ok", "warn", "warn", "alert", "n/a",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tiny() -> tuple:
    model, data, _ = train_tiny(900, seed=3)
    return model, data


def _population(model, seed: int, shift: float = 0.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    f = make_frame(2000, seed=seed)
    f["late_share"] = f["late_share"] + shift
    f["revenue"] = f["revenue"] - 2 * shift
    return model.encode(f)


def test_unshifted_population_raises_no_alert(tiny) -> None:  # type: ignore[no-untyped-def]
    model, data = tiny
    base = build_baseline(model, data.X)
    r = compare(base, model, _population(model, seed=11))
    assert r.alerts == []
    assert r.score_psi < 0.1
    assert list(r.psi["variable"])[0] == "score"
    assert set(r.psi["variable"]) == {"score", *model.feature_names}


def test_shifted_population_raises_the_alert(tiny) -> None:  # type: ignore[no-untyped-def]
    model, data = tiny
    base = build_baseline(model, data.X)
    r = compare(base, model, _population(model, seed=11, shift=0.6))
    assert "score" in r.alerts
    assert {"late_share", "revenue"} <= set(r.alerts)
    assert "noise" not in r.alerts and "region" not in r.alerts
    # risk went up: the riskiest grade gained share
    worst = r.grades.iloc[-1]
    assert worst["current"] > worst["baseline"]


def test_thresholds_are_configurable_and_validated(tiny) -> None:  # type: ignore[no-untyped-def]
    model, data = tiny
    base = build_baseline(model, data.X)
    X = _population(model, seed=11)
    strict = compare(base, model, X, warn=1e-6, alert=1e-5)
    assert "score" in strict.alerts
    with pytest.raises(ValueError, match="warn <= alert"):
        compare(base, model, X, warn=0.3, alert=0.2)


def test_grade_migration_of_firms_scored_twice() -> None:
    firms = ["a", "a", "b", "b", "b", "c"]
    times = ["2025-01-01", "2025-02-01", "2025-01-05", "2025-03-01", "2025-02-01", "2025-01-01"]
    grades = ["A", "C", "B", "B", "F", "D"]  # b: B (Jan) -> F (Feb) -> B (Mar); c once
    m = grade_migration(firms, times, grades, ["A", "B", "C", "D", "E", "F"])
    assert m.loc["A", "C"] == 1  # a: A -> C
    assert m.loc["B", "B"] == 1  # b: first B, latest B
    assert int(m.to_numpy().sum()) == 2  # c was scored once: not a migration


def test_outcomes_by_grade_against_predicted_pd() -> None:
    grades = ["A"] * 100 + ["F"] * 10
    pds = [0.01] * 100 + [0.5] * 10
    y = [0] * 99 + [1] + [1] * 9 + [np.nan]  # one F outcome unknown
    t = outcomes_by_grade(grades, pds, y, ["A", "F"])
    a, f = t.set_index("grade").loc["A"], t.set_index("grade").loc["F"]
    assert (a["n"], a["defaults"], a["default_rate"]) == (100, 1, 0.01)
    assert a["status"] == "ok"
    assert (f["n"], f["defaults"]) == (9, 9)
    assert f["status"] == "above"  # 100% observed vs 50% predicted on 9 loans
    assert isinstance(t, pd.DataFrame)


def test_alert_on_score_only_ignores_feature_alerts(tiny) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from models.monitor import MonitorReport

    model, data = tiny
    base = build_baseline(model, data.X)
    X = _population(model, seed=11)
    X[:, model.feature_names.index("noise")] += 3.0  # a feature moves, the score barely does
    r = compare(base, model, X)
    assert r.alerts == ["noise"]
    rep = MonitorReport(since=datetime(2025, 1, 1, tzinfo=UTC), decisions=r.rows, results=[r])
    assert rep.alerting("any") and not rep.alerting("score")
    with pytest.raises(ValueError, match="alert-on"):
        rep.alerting("feature")


def test_outcomes_count_only_loans_whose_window_closed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    from models.monitor import attach_outcomes

    store = tmp_path / "records.duckdb"
    loans = pd.DataFrame(
        {
            "firm_id": ["a", "b", "c"],
            # a: settled repayment; b: default known early, window still open; c: too late
            "applied_at": pd.to_datetime(["2024-01-10", "2024-09-10", "2024-03-01"]),
            "defaulted": [False, True, True],
        }
    )
    with duckdb.connect(str(store)) as con:
        con.register("f", loans)
        con.execute("CREATE TABLE loans AS SELECT * FROM f")
    decisions = pd.DataFrame(
        {"firm_id": ["a", "b", "c", "d"],
         "as_of": pd.to_datetime(["2024-01-01", "2024-09-01", "2024-01-01", "2024-01-01"],
                                 utc=True)}
    )  # fmt: skip
    got = attach_outcomes(decisions, store, days=31, outcome_window_months=12,
                          horizon=pd.Timestamp("2025-02-01"))  # fmt: skip
    # c applied 60 days after its score: not this decision's loan; d has no loan
    assert got[0] == 0.0
    assert np.isnan(got[1]) and np.isnan(got[2]) and np.isnan(got[3])
