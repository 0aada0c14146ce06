"""Decision outcomes by segment, adverse impact and overrides: pure functions over DataFrames.

Used by the model report (the out-of-time set judged under the default policy,
:func:`apply_policy`) and by ``credit monitor`` (the decisions recorded in the audit log and
the reviews that closed them).

Segments (:func:`segments`)
---------------------------
``business_model``
    The firm's own row (``firms.business_model``); ``unknown`` when absent.
``region``
    The firm's region of registration (``firms.home_region``); ``unknown`` when absent.
``main_market``
    From the recorded feature vector: ``US`` when ``us_export_share_365d >= 0.5``, ``EU`` when
    ``eu_export_share_365d >= 0.5``, ``other`` when the firm exported in the last 365 days but
    neither share reaches one half, ``none`` when it did not export (both shares NaN: the
    catalog's value for no exports); ``unknown`` when the frame has neither feature.
``firm_age_band``
    From ``firm_age_days`` (years of 365 days): ``<1y``, ``1-3y``, ``3-5y``, ``5y+``;
    ``unknown`` when NaN or absent (firm not on record, or registered after the decision).

Adverse impact (:func:`outcome_table`)
--------------------------------------
Per segment column and group: the number of decisions and the approval, decline and referral
rates (fairlearn ``MetricFrame`` with the segment as the sensitive feature). The **adverse
impact ratio** (AIR) of a group is its approval rate over the approval rate of the *reference*
group: the group with the highest approval rate among those with at least ``min_n`` decisions,
``unknown`` excluded (a missing attribute is not a population). The **four-fifths rule** flags
a group whose AIR is below 0.8. Groups with fewer than ``min_n`` decisions (default 30) get
their AIR computed but are marked ``small`` and never flagged: their rates are too noisy to
act on. The ``unknown`` group is shown with its AIR but marked ``unknown`` and never flagged
either (a low AIR there says the missing data, not a population, is declined more). Without
any group large enough there is no reference and the AIR is NaN. This is a screening statistic
on observed rates, not a finding of discrimination: segments differ in risk, and the model's PD
is meant to differ with it.

Overrides (:func:`override_table`)
----------------------------------
A reviewer who decides against the model's recommendation overrides it
(:mod:`credit.reviews`). Rates by reviewer (the holder whose action closed the review), by
grade, and by direction (``decline->approve``: the model said decline, the human approved;
``approve->decline``: the other way; ``none``: agreed). And, once the outcome of the loan that
followed is known, the default rate of overridden approvals against approvals the reviewer made
with the model and those made automatically, with the number of loans whose outcome is known
in each cell (NaN where none is).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, selection_rate

if TYPE_CHECKING:
    from credit.policy import Policy
    from credit.reviews import Review
    from credit.scoring import ScoringModel

#: The segment columns :func:`segments` adds, in report order.
SEGMENT_COLUMNS = ("business_model", "main_market", "region", "firm_age_band")
#: Decisions a group needs before its AIR is judged (smaller groups are marked ``small``).
MIN_GROUP_N = 30
#: The four-fifths rule: an AIR below this is flagged.
FOUR_FIFTHS = 0.8
OUTCOMES = ("approved", "declined", "referred")
UNKNOWN = "unknown"
AGE_BANDS = ("<1y", "1-3y", "3-5y", "5y+")
MARKETS = ("US", "EU", "other", "none")
DIRECTIONS = ("decline->approve", "approve->decline", "none")

_ORDER: dict[str, Sequence[str]] = {"firm_age_band": AGE_BANDS, "main_market": MARKETS}


# ---------------------------------------------------------------------------------------------
# segments
# ---------------------------------------------------------------------------------------------


def _text(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame.columns:
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    s = frame[col].astype(object)
    s = s.where(s.notna() & (s.astype(str).str.strip() != ""), UNKNOWN)
    return s.astype(str)


def _num(frame: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(frame[col], errors="coerce").astype("float64")


def main_market(frame: pd.DataFrame) -> pd.Series:
    """``US``/``EU``/``other``/``none`` from the export shares (see the module docstring)."""
    has_us, has_eu = "us_export_share_365d" in frame, "eu_export_share_365d" in frame
    if not (has_us or has_eu):
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    nan = pd.Series(np.nan, index=frame.index, dtype="float64")
    us = _num(frame, "us_export_share_365d") if has_us else nan
    eu = _num(frame, "eu_export_share_365d") if has_eu else nan
    out = np.where(
        us >= 0.5,
        "US",
        np.where(eu >= 0.5, "EU", np.where(us.notna() | eu.notna(), "other", "none")),
    )
    return pd.Series(out, index=frame.index, dtype=object)


def firm_age_band(frame: pd.DataFrame) -> pd.Series:
    """``<1y``/``1-3y``/``3-5y``/``5y+``/``unknown`` from ``firm_age_days``."""
    if "firm_age_days" not in frame:
        return pd.Series(UNKNOWN, index=frame.index, dtype=object)
    days = _num(frame, "firm_age_days")
    bands = pd.cut(days, [-np.inf, 365, 3 * 365, 5 * 365, np.inf], right=False, labels=AGE_BANDS)
    return bands.astype(object).where(days.notna(), UNKNOWN).astype(str)


def segments(frame: pd.DataFrame) -> pd.DataFrame:
    """The segment columns (:data:`SEGMENT_COLUMNS`) of each row, same index as ``frame``.

    ``frame`` may hold ``business_model``, ``home_region``, ``firm_age_days``,
    ``us_export_share_365d`` and ``eu_export_share_365d``; a missing column gives ``unknown``.
    """
    return pd.DataFrame(
        {
            "business_model": _text(frame, "business_model"),
            "main_market": main_market(frame),
            "region": _text(frame, "home_region"),
            "firm_age_band": firm_age_band(frame),
        },
        index=frame.index,
    )


# ---------------------------------------------------------------------------------------------
# outcome rates and adverse impact
# ---------------------------------------------------------------------------------------------


def _metrics() -> dict[str, Any]:
    rate = {
        f"{name}_rate": functools.partial(selection_rate, pos_label=out)
        for name, out in (("approval", "approved"), ("decline", "declined"),
                          ("referral", "referred"))
    }  # fmt: skip
    return {"n": count, **rate}


def _judged(frame: pd.DataFrame, outcome_col: str) -> pd.DataFrame:
    return frame[frame[outcome_col].isin(OUTCOMES)]


def outcome_rates(frame: pd.DataFrame, outcome_col: str = "outcome") -> pd.DataFrame:
    """Overall: ``outcome``, ``n``, ``rate`` of approved/declined/referred (rows without one of
    these outcomes, e.g. decisions made before decisioning, are left out)."""
    y = _judged(frame, outcome_col)[outcome_col].astype(str)
    n = len(y)
    return pd.DataFrame(
        {
            "outcome": list(OUTCOMES),
            "n": [int((y == o).sum()) for o in OUTCOMES],
            "rate": [float((y == o).mean()) if n else np.nan for o in OUTCOMES],
        }
    )


def _group_order(col: str, groups: Iterable[str]) -> list[str]:
    gs = [str(g) for g in groups]
    fixed = list(_ORDER.get(col, ()))
    known = [g for g in fixed if g in gs] + sorted(g for g in gs if g not in fixed and g != UNKNOWN)
    return known + ([UNKNOWN] if UNKNOWN in gs else [])


_TABLE_COLUMNS = ["segment", "group", "n", "approval_rate", "decline_rate", "referral_rate",
                  "air", "four_fifths_flag", "status"]  # fmt: skip


def outcome_table(
    frame: pd.DataFrame,
    segment_cols: Sequence[str] = SEGMENT_COLUMNS,
    outcome_col: str = "outcome",
    min_n: int = MIN_GROUP_N,
    threshold: float = FOUR_FIFTHS,
) -> pd.DataFrame:
    """Per segment column and group: ``n``, approval/decline/referral rates, ``air`` (approval
    rate over the reference group's), ``four_fifths_flag`` (AIR below ``threshold`` in a group
    of at least ``min_n``) and ``status``: ``reference``, ``below four-fifths``, ``ok``,
    ``small`` (fewer than ``min_n``: not judged), ``unknown`` (the attribute is missing: not
    judged) or ``n/a`` (no reference group).

    Rows whose outcome is not approved/declined/referred are left out.
    """
    judged = _judged(frame, outcome_col)
    rows: list[dict[str, Any]] = []
    if judged.empty:
        return pd.DataFrame(columns=_TABLE_COLUMNS)
    y = judged[outcome_col].astype(str).to_numpy()
    for col in segment_cols:
        groups = judged[col].astype(str).to_numpy()
        mf = MetricFrame(metrics=_metrics(), y_true=y, y_pred=y, sensitive_features=groups)
        by = mf.by_group
        by.index = by.index.astype(str)
        eligible = by[(by["n"] >= min_n) & (by.index != UNKNOWN)]
        ref_rate = float(eligible["approval_rate"].max()) if len(eligible) else np.nan
        ref_group = str(eligible["approval_rate"].idxmax()) if len(eligible) else None
        if not (np.isfinite(ref_rate) and ref_rate > 0):  # nobody approved: no ratio
            ref_rate, ref_group = np.nan, None
        for g in _group_order(col, by.index):
            r = by.loc[g]
            n = int(r["n"])
            appr = float(r["approval_rate"])
            air = appr / ref_rate if np.isfinite(ref_rate) and ref_rate > 0 else np.nan
            small = n < min_n
            judged_group = not small and g != UNKNOWN
            flag = bool(judged_group and np.isfinite(air) and air < threshold)
            if g == UNKNOWN:
                st = UNKNOWN
            elif small:
                st = "small"
            elif g == ref_group:
                st = "reference"
            elif not np.isfinite(air):
                st = "n/a"
            else:
                st = "below four-fifths" if flag else "ok"
            rows.append(
                {
                    "segment": col,
                    "group": g,
                    "n": n,
                    "approval_rate": appr,
                    "decline_rate": float(r["decline_rate"]),
                    "referral_rate": float(r["referral_rate"]),
                    "air": air,
                    "four_fifths_flag": flag,
                    "status": st,
                }
            )
    return pd.DataFrame(rows, columns=_TABLE_COLUMNS)


def flagged(table: pd.DataFrame) -> list[str]:
    """``segment=group`` of every group the four-fifths rule flags in an :func:`outcome_table`."""
    t = table[table["four_fifths_flag"].astype(bool)] if len(table) else table
    return [f"{s}={g}" for s, g in zip(t["segment"], t["group"], strict=True)]


# ---------------------------------------------------------------------------------------------
# overrides
# ---------------------------------------------------------------------------------------------


def reviews_frame(reviews: Iterable[Review]) -> pd.DataFrame:
    """Closed reviews as rows: ``review_id``, ``decision_id``, ``firm_id``, ``grade``,
    ``recommendation``, ``outcome``, ``reviewer`` (the holder whose action closed it),
    ``reviewers`` (distinct holders who acted: 2 with four eyes), ``exposure``, ``closed_at``."""
    rows = []
    for r in reviews:
        if r.outcome is None:
            continue
        closing = [a.holder for a in r.actions if a.effect == "closed"]
        rows.append(
            {
                "review_id": r.review_id,
                "decision_id": r.decision_id,
                "firm_id": r.firm_id,
                "grade": r.grade,
                "recommendation": r.recommendation,
                "outcome": r.outcome,
                "reviewer": closing[-1] if closing else UNKNOWN,
                "reviewers": len({a.holder for a in r.actions}),
                "exposure": r.exposure,
                "closed_at": r.closed_at,
            }
        )
    cols = ["review_id", "decision_id", "firm_id", "grade", "recommendation", "outcome",
            "reviewer", "reviewers", "exposure", "closed_at"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def direction(recommendation: pd.Series, outcome: pd.Series) -> pd.Series:
    """``decline->approve``, ``approve->decline`` or ``none`` per review."""
    rec, out = recommendation.astype(str), outcome.astype(str)
    d = np.where(
        (rec == "declined") & (out == "approved"),
        "decline->approve",
        np.where((rec == "approved") & (out == "declined"), "approve->decline", "none"),
    )
    return pd.Series(d, index=recommendation.index, dtype=object)


def _rates(df: pd.DataFrame, by: str, order: Sequence[str] | None = None) -> pd.DataFrame:
    cols = [by, "reviews", "overrides", "override_rate"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby(by)["override"].agg(["size", "sum"])
    keys = [str(k) for k in g.index]
    if order is not None:
        keys = [k for k in order if k in keys] + sorted(k for k in keys if k not in order)
    else:
        keys = sorted(keys)
    g.index = g.index.astype(str)
    g = g.loc[keys]
    return pd.DataFrame(
        {
            by: keys,
            "reviews": g["size"].astype(int).to_numpy(),
            "overrides": g["sum"].astype(int).to_numpy(),
            "override_rate": (g["sum"] / g["size"]).astype(float).to_numpy(),
        }
    )


_PERFORMANCE_GROUPS = (
    ("approved: override (model said decline)", "decline->approve"),
    ("approved: reviewer agreed with the model", "agreed-approve"),
    ("approved automatically (no review)", "auto"),
    ("declined: override (model said approve)", "approve->decline"),
)


def override_table(
    reviews: pd.DataFrame | Iterable[Review],
    decisions: pd.DataFrame | None = None,
    grades: Sequence[str] | None = None,
    outcome_col: str = "outcome",
    label_col: str = "defaulted",
) -> dict[str, pd.DataFrame]:
    """Override rates and how overridden loans performed.

    Parameters
    ----------
    reviews : closed reviews (:func:`reviews_frame`, or ``Review`` objects).
    decisions : ``decision_id``, the policy ``outcome`` and ``defaulted`` (1 the loan that
        followed the decision defaulted, 0 repaid, NaN unknown); optional.
    grades : the model's grades, best first (orders ``by_grade``).

    Returns
    -------
    ``by_reviewer`` (reviewer, reviews, overrides, override_rate), ``by_grade`` (grade, ...),
    ``by_direction`` (direction, reviews, share) and ``performance`` (group, n, known,
    defaults, default_rate: NaN where no outcome is known).
    """
    rv = reviews if isinstance(reviews, pd.DataFrame) else reviews_frame(reviews)
    rv = rv[rv["outcome"].isin(("approved", "declined"))].copy()
    rv["direction"] = direction(rv["recommendation"], rv["outcome"])
    rv["override"] = rv["direction"] != "none"
    n = len(rv)
    by_direction = pd.DataFrame(
        {
            "direction": list(DIRECTIONS),
            "reviews": [int((rv["direction"] == d).sum()) for d in DIRECTIONS],
            "share": [float((rv["direction"] == d).mean()) if n else np.nan for d in DIRECTIONS],
        }
    )
    # performance: the loan outcome of each decision, when known
    labels: Mapping[Any, float] = {}
    dec = decisions if decisions is not None else pd.DataFrame(columns=["decision_id"])
    if label_col in dec.columns:
        labels = dict(
            zip(dec["decision_id"], pd.to_numeric(dec[label_col], errors="coerce"), strict=True)
        )
    rv["label"] = [labels.get(d, np.nan) for d in rv["decision_id"]]
    kinds = rv["direction"].where(
        rv["direction"] != "none",
        np.where(rv["outcome"] == "approved", "agreed-approve", "agreed-decline"),
    )
    reviewed = set(rv["decision_id"])
    if outcome_col in dec.columns and len(dec):
        auto_sel = (dec[outcome_col] == "approved") & ~dec["decision_id"].isin(reviewed)
        auto = pd.to_numeric(dec.loc[auto_sel, label_col], errors="coerce") if labels else None
        auto_n = int(auto_sel.sum())
    else:
        auto, auto_n = None, 0
    perf = []
    for name, kind in _PERFORMANCE_GROUPS:
        if kind == "auto":
            y = np.asarray(auto if auto is not None else [], dtype=np.float64)
            count_ = auto_n
        else:
            y = rv.loc[kinds == kind, "label"].to_numpy(dtype=np.float64)
            count_ = int((kinds == kind).sum())
        known = y[np.isfinite(y) & (y >= 0)]
        perf.append(
            {
                "group": name,
                "n": count_,
                "known": int(known.size),
                "defaults": int(known.sum()),
                "default_rate": float(known.mean()) if known.size else np.nan,
            }
        )
    return {
        "by_reviewer": _rates(rv, "reviewer"),
        "by_grade": _rates(rv, "grade", list(grades) if grades is not None else None),
        "by_direction": by_direction,
        "performance": pd.DataFrame(
            perf, columns=["group", "n", "known", "defaults", "default_rate"]
        ),
    }


# ---------------------------------------------------------------------------------------------
# a policy applied to a scored table (the model report's simulated world)
# ---------------------------------------------------------------------------------------------


def apply_policy(
    model: ScoringModel,
    frame: pd.DataFrame,
    policy: Policy | None = None,
    amount_col: str | None = "amount_usd",
) -> pd.DataFrame:
    """Each row of a feature table judged under ``policy`` (default: the shipped one) with
    :func:`credit.decisioning.evaluate`: columns ``pd``, ``grade``, ``outcome``,
    ``recommendation``, ``rule`` (the first rule that did not approve; empty when approved).

    ``frame`` holds the model's features (decoded, as a caller sends them); ``pd`` and
    ``grade`` columns are used when present, else the model scores the rows. ``amount_col``
    (US dollars) becomes the amount applied for at the policy's ``usd_rate``; without it no
    amount is given (approved up to the automatic limit).

    Raises
    ------
    credit.policy.PolicyError
        The policy names a grade the model's scale does not have.
    """
    from credit.decisioning import evaluate
    from credit.policy import default_policy

    policy = policy or default_policy()
    if "pd" in frame.columns and "grade" in frame.columns:
        pds = frame["pd"].to_numpy(dtype=np.float64)
        grades = frame["grade"].astype(str).to_numpy()
    else:
        s = model.predict(model.encode(frame))
        pds, grades = np.asarray(s.pd, dtype=np.float64), np.asarray(s.grade).astype(str)
    if amount_col and amount_col in frame.columns:
        amounts: list[float | None] = [
            None if not np.isfinite(a) else float(a) * policy.usd_rate
            for a in pd.to_numeric(frame[amount_col], errors="coerce").to_numpy(dtype=np.float64)
        ]
    else:
        amounts = [None] * len(frame)
    cols = [c for c in model.feature_names if c in frame.columns]
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in frame[cols].to_dict(orient="records")
    ]
    order = list(model.scale.grades)
    outcome, rec, rule = [], [], []
    for p, g, feats, a in zip(pds, grades, records, amounts, strict=True):
        v = evaluate(policy, float(p), str(g), feats, a, order)
        outcome.append(v.outcome)
        rec.append(v.recommendation)
        rule.append(next((r["rule"] for r in v.rules if r["kind"] != "approve"), ""))
    return pd.DataFrame(
        {"pd": pds, "grade": grades, "outcome": outcome, "recommendation": rec, "rule": rule},
        index=frame.index,
    )
