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


def auc_difference(
    y: npt.ArrayLike, p_a: npt.ArrayLike, p_b: npt.ArrayLike, level: float = 0.95
) -> dict[str, float]:
    """Is model A's AUC really higher than model B's on the same loans?

    DeLong's test for two correlated ROC curves (DeLong, DeLong & Clarke-Pearson 1988), in the
    midrank form of Sun & Xu (2014). The two AUCs are scored on the same rows, so the
    variance of their difference takes their covariance into account: that is what makes a
    gain of 0.002 on 8,000 loans distinguishable from noise, or not.

    Returns ``auc_a``, ``auc_b``, ``diff`` (A - B), ``se`` (of the difference), ``ci_low``
    and ``ci_high`` (normal interval at ``level``) and the two-sided ``p_value``.
    """
    from scipy.stats import norm, rankdata

    yy = np.asarray(y).astype(bool)
    scores = np.vstack([np.asarray(p_a, np.float64), np.asarray(p_b, np.float64)])
    if scores.shape[1] != yy.shape[0]:
        raise ValueError(f"{scores.shape[1]} predictions for {yy.shape[0]} outcomes")
    m, n = int(yy.sum()), int((~yy).sum())
    if m < 2 or n < 2:
        raise ValueError("an AUC comparison needs at least 2 defaults and 2 non-defaults")
    pos, neg = scores[:, yy], scores[:, ~yy]
    # midranks: within all rows, within the defaults, within the non-defaults
    tz = rankdata(np.hstack([pos, neg]), axis=1)
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # per default: share of non-defaults ranked below it
    v01 = 1.0 - (tz[:, m:] - ty) / m  # per non-default: share of defaults ranked above it
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    se = math.sqrt(max(var, 0.0))
    z = float(norm.ppf(0.5 + level / 2))
    # se == 0 only when both rankings are degenerate (perfect or constant): the difference is exact
    p_value = float(2 * norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
    return {
        "auc_a": float(auc[0]),
        "auc_b": float(auc[1]),
        "diff": diff,
        "se": se,
        "ci_low": diff - z * se,
        "ci_high": diff + z * se,
        "p_value": p_value,
        "n": float(m + n),
        "level": float(level),
    }


def compare_auc(
    y: npt.ArrayLike, p_a: npt.ArrayLike, p_b: npt.ArrayLike, level: float = 0.95
) -> dict[str, float] | None:
    """:func:`auc_difference`, or ``None`` when the rows hold fewer than 2 defaults or 2
    non-defaults (nothing to compare: the training command, the registry and the report then
    leave the comparison out)."""
    yy = np.asarray(y).astype(bool)
    if min(int(yy.sum()), int((~yy).sum())) < 2:
        return None
    return auc_difference(yy, p_a, p_b, level)


def describe_auc_difference(d: Mapping[str, float], a: str = "A", b: str = "B") -> str:
    """One line for people: the two AUCs, the difference with its interval, and whether it
    is more than noise (at 1 - ``level``)."""
    pct = round(100 * d["level"])
    verdict = "significant" if d["p_value"] < 1 - d["level"] else "not significant"
    return (
        f"AUC {a} {d['auc_a']:.4f} vs {b} {d['auc_b']:.4f}: {a} - {b} = {d['diff']:+.4f} "
        f"({pct}% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}, DeLong p = {d['p_value']:.2g}, "
        f"{int(d['n']):,} rows; {verdict} at the {100 - pct}% level)"
    )


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
