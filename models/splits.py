"""Splits: by application time (train < validation < out-of-time) or stratified folds.

The time split cuts at two instants, never inside the rows of one instant, so no application
made later can land in an earlier part. Rows whose outcome is unknown (target -1) or whose
outcome window has not closed by the data horizon are not labelled: they are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.model_selection import StratifiedKFold

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TimeSplit:
    """Row indices of each part and the cut instants."""

    train: IntArray
    validation: IntArray
    oot: IntArray
    validation_start: pd.Timestamp
    oot_start: pd.Timestamp
    horizon: pd.Timestamp


def matured(
    times: pd.Series, horizon: pd.Timestamp, outcome_window_months: int
) -> npt.NDArray[np.bool_]:
    """True where the application's outcome window closed on or before ``horizon``."""
    end = times + pd.DateOffset(months=outcome_window_months)
    out: npt.NDArray[np.bool_] = (end <= horizon).to_numpy(dtype=bool)
    return out


def time_split(
    times: pd.Series,
    y: npt.ArrayLike,
    validation_fraction: float = 0.2,
    oot_fraction: float = 0.2,
    outcome_window_months: int = 12,
    horizon: pd.Timestamp | None = None,
) -> TimeSplit:
    """Split labelled, matured rows by application time.

    Parameters
    ----------
    times : application time per row.
    y : 1/0 labels, -1 for unknown outcome (excluded everywhere).
    validation_fraction, oot_fraction : shares of the eligible rows, newest last.
    outcome_window_months : rows applied less than this long before ``horizon`` are excluded.
    horizon : the data's "now" (default: the latest application time).
    """
    if not 0 < validation_fraction < 1 or not 0 < oot_fraction < 1:
        raise ValueError("validation and out-of-time fractions must lie between 0 and 1")
    if validation_fraction + oot_fraction >= 1:
        raise ValueError("validation + out-of-time fractions must leave rows for training")
    t = pd.Series(pd.to_datetime(times)).reset_index(drop=True)
    yy = np.asarray(y, dtype=np.int64)
    if len(t) != len(yy):
        raise ValueError("times and labels differ in length")
    h = pd.Timestamp(horizon) if horizon is not None else t.max()
    ok = (yy >= 0) & matured(t, h, outcome_window_months)
    idx = np.flatnonzero(ok)
    if len(idx) < 30:
        raise ValueError(
            f"only {len(idx)} applications have a known, matured outcome "
            f"({outcome_window_months}-month window before {h.date()}); need at least 30"
        )
    tv = t.iloc[idx].to_numpy()
    sorted_t = np.sort(tv)
    n = len(sorted_t)
    oot_start = pd.Timestamp(sorted_t[int(np.floor(n * (1 - oot_fraction)))])
    val_start = pd.Timestamp(sorted_t[int(np.floor(n * (1 - oot_fraction - validation_fraction)))])
    train = idx[tv < val_start]
    val = idx[(tv >= val_start) & (tv < oot_start)]
    oot = idx[tv >= oot_start]
    for name, part in (("train", train), ("validation", val), ("out-of-time", oot)):
        labels = yy[part]
        if len(part) == 0 or labels.min() == labels.max():
            raise ValueError(
                f"the {name} window ({len(part)} rows) lacks one of the two outcomes; "
                "more history or other split fractions are needed"
            )
    return TimeSplit(train, val, oot, val_start, oot_start, h)


def stratified_folds(
    y: npt.ArrayLike, n_splits: int = 5, seed: int = 42
) -> list[tuple[IntArray, IntArray]]:
    """Stratified K-fold (train, test) indices over the labelled rows (label -1 left out)."""
    yy = np.asarray(y, dtype=np.int64)
    idx = np.flatnonzero(yy >= 0)
    lab = yy[idx]
    pos, neg = int(lab.sum()), int(len(lab) - lab.sum())
    if min(pos, neg) < n_splits:
        raise ValueError(
            f"the target has {pos} defaults and {neg} non-defaults: with {n_splits} folds a "
            "fold would hold a single class; use fewer folds (--param cv.folds=N) or more data"
        )
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(idx[a], idx[b]) for a, b in skf.split(np.zeros(len(idx)), lab)]


def stratified_holdout(
    idx: IntArray, y: npt.ArrayLike, fraction: float, seed: int = 0
) -> tuple[IntArray, IntArray]:
    """Split ``idx`` into (fit, holdout) keeping the default rate in both."""
    yy = np.asarray(y, dtype=np.int64)[idx]
    rng = np.random.default_rng(seed)
    fit_parts, hold_parts = [], []
    for cls in (0, 1):
        members = idx[yy == cls]
        members = members[rng.permutation(len(members))]
        k = max(1, int(round(len(members) * fraction)))
        hold_parts.append(members[:k])
        fit_parts.append(members[k:])
    return np.sort(np.concatenate(fit_parts)), np.sort(np.concatenate(hold_parts))
