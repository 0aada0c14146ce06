"""Out-of-time metrics: discrimination, calibration, stability, by segment and by month."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

_EPS = 1e-6


def ece(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-count bins of predicted PD."""
    yy = np.asarray(y, dtype=np.float64)
    pp = np.asarray(p, dtype=np.float64)
    order = np.argsort(pp, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(float(yy[chunk].mean()) - float(pp[chunk].mean()))
    return total / max(len(yy), 1)


def ks(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Kolmogorov-Smirnov statistic between the PD distributions of defaults and non-defaults."""
    fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(p))
    return float(np.max(tpr - fpr))


def calibration_slope_intercept(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[float, float]:
    """Logistic recalibration ``logit P(y) = intercept + slope * logit(p)`` (ideal: 0, 1)."""
    pp = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    z = (np.log(pp) - np.log1p(-pp)).reshape(-1, 1)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(z, np.asarray(y, dtype=np.int64))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (decile bins of expected)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    ei = np.bincount(np.searchsorted(edges, e, side="right"), minlength=len(edges) + 1) / len(e)
    ai = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1) / len(a)
    ei, ai = np.clip(ei, 1e-4, None), np.clip(ai, 1e-4, None)
    return float(np.sum((ai - ei) * np.log(ai / ei)))


def metrics(y: npt.ArrayLike, p: npt.ArrayLike, ece_bins: int = 10) -> dict[str, float]:
    """AUC, Gini, KS, Brier, log loss, ECE, calibration slope/intercept, default rates."""
    yy = np.asarray(y, dtype=np.int64)
    pp = np.asarray(p, dtype=np.float64)
    out: dict[str, float] = {
        "n": float(len(yy)),
        "default_rate": float(yy.mean()) if len(yy) else math.nan,
        "mean_pd": float(pp.mean()) if len(pp) else math.nan,
    }
    if len(yy) == 0 or yy.min() == yy.max():
        return out
    auc = float(roc_auc_score(yy, pp))
    slope, intercept = calibration_slope_intercept(yy, pp)
    out.update(
        auc=auc,
        gini=2 * auc - 1,
        ks=ks(yy, pp),
        brier=float(brier_score_loss(yy, pp)),
        log_loss=float(log_loss(yy, np.clip(pp, _EPS, 1 - _EPS), labels=[0, 1])),
        ece=ece(yy, pp, ece_bins),
        calibration_slope=slope,
        calibration_intercept=intercept,
    )
    return out


def by_group(
    y: npt.ArrayLike, p: npt.ArrayLike, groups: pd.Series, min_rows: int = 50
) -> pd.DataFrame:
    """Rows, default rate, mean PD and AUC per group (groups with fewer rows are skipped)."""
    df = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p), "g": groups.to_numpy()})
    rows: list[dict[str, Any]] = []
    for g, part in df.groupby("g", dropna=False, sort=True):
        if len(part) < min_rows:
            continue
        row: dict[str, Any] = {
            "group": str(g),
            "n": len(part),
            "default_rate": float(part["y"].mean()),
            "mean_pd": float(part["p"].mean()),
            "auc": math.nan,
        }
        if part["y"].nunique() == 2:
            row["auc"] = float(roc_auc_score(part["y"], part["p"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["group", "n", "default_rate", "mean_pd", "auc"])


def evaluate(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    segments: Mapping[str, pd.Series] | None = None,
    times: pd.Series | None = None,
    train_scores: npt.ArrayLike | None = None,
    scores: npt.ArrayLike | None = None,
    ece_bins: int = 10,
    psi_bins: int = 10,
    min_segment_rows: int = 50,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """The full out-of-time report: headline metrics and per-segment / per-month tables."""
    head = metrics(y, p, ece_bins)
    tables: dict[str, pd.DataFrame] = {}
    for name, col in (segments or {}).items():
        tables[f"by_{name}"] = by_group(y, p, col.reset_index(drop=True), min_segment_rows)
    if times is not None:
        month = pd.Series(pd.to_datetime(times).to_numpy()).dt.to_period("M").astype(str)
        tables["by_month"] = by_group(y, p, month, min_rows=min(min_segment_rows, 20))
    if train_scores is not None and scores is not None:
        head["psi_score"] = psi(train_scores, scores, psi_bins)
    return head, tables
