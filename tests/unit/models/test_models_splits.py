"""Splits: time order is never violated, unknown and unmatured outcomes are never labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.splits import matured, stratified_folds, stratified_holdout, time_split


def _times(days: list[int]) -> pd.Series:
    return pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"))


def test_no_later_application_in_an_earlier_part() -> None:
    rng = np.random.default_rng(0)
    days = rng.integers(0, 700, 500).tolist()  # many applications share a day
    t = _times(days)
    y = (rng.uniform(size=500) < 0.3).astype(int)
    sp = time_split(t, y, 0.2, 0.2, outcome_window_months=0)
    assert t.iloc[sp.train].max() < t.iloc[sp.validation].min()
    assert t.iloc[sp.validation].max() < t.iloc[sp.oot].min()
    assert t.iloc[sp.validation].min() == sp.validation_start
    assert t.iloc[sp.oot].min() == sp.oot_start
    # same-day applications land on the same side of each cut
    for cut in (sp.validation_start, sp.oot_start):
        same = np.flatnonzero((t == cut).to_numpy())
        assert set(same) <= set(sp.validation) | set(sp.oot)
    assert len(set(sp.train) | set(sp.validation) | set(sp.oot)) == 500


def test_unmatured_and_unknown_outcomes_are_excluded() -> None:
    # 40 applications a month for 36 months; outcome window 12 months; horizon = last day.
    days = [m * 30 + k % 28 for m in range(36) for k in range(40)]
    t = _times(days)
    y = np.tile([0, 0, 0, 1], len(days) // 4)
    y[5] = -1  # outcome unknown: never labelled good
    horizon = pd.Timestamp("2026-12-31")
    sp = time_split(t, y, 0.2, 0.2, outcome_window_months=12, horizon=horizon)
    used = np.concatenate([sp.train, sp.validation, sp.oot])
    assert 5 not in used
    ends = t.iloc[used] + pd.DateOffset(months=12)
    assert (ends <= horizon).all()
    unmatured = np.flatnonzero(~matured(t, horizon, 12))
    assert len(unmatured) > 0 and not set(unmatured) & set(used)


def test_a_split_without_both_outcomes_is_refused() -> None:
    t = _times(list(range(100)))
    y = np.zeros(100, dtype=int)
    y[:10] = 1  # all defaults in the oldest rows: the out-of-time window has none
    with pytest.raises(ValueError, match="lacks one of the two outcomes"):
        time_split(t, y, 0.2, 0.2, outcome_window_months=0)


def test_stratified_folds_skip_unknown_and_cover_the_rest() -> None:
    y = np.array([0, 1] * 50 + [-1] * 7)
    folds = stratified_folds(y, 5, seed=1)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(100))
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert y[te].mean() == pytest.approx(0.5)
    fit, hold = stratified_holdout(np.arange(100), y, 0.2, seed=0)
    assert len(hold) == 20 and y[hold].mean() == pytest.approx(0.5)
    assert not set(fit) & set(hold)
