"""Decision outcomes by segment, adverse impact ratio, overrides: numbers on hand-made frames."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from credit.reviews import Action, Review
from models.outcomes import (
    apply_policy,
    direction,
    flagged,
    outcome_rates,
    outcome_table,
    override_table,
    reviews_frame,
    segments,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)


# --- segments ---------------------------------------------------------------------------------


def test_segments_bands_markets_and_unknowns() -> None:
    f = pd.DataFrame(
        {
            "business_model": ["b2b", "b2c", None, "both", "b2b", "b2b", "b2c", "b2b"],
            "home_region": ["CN-GD", None, "CN-ZJ", "", "CN-GD", "CN-GD", "CN-GD", "CN-GD"],
            "firm_age_days": [0, 364, 365, 1094, 1095, 1824, 1825, np.nan],
            "us_export_share_365d": [0.5, 0.2, 0.3, 0.0, np.nan, 0.49, 0.6, np.nan],
            "eu_export_share_365d": [0.1, 0.5, 0.3, 0.0, np.nan, 0.5, 0.4, 0.7],
        }
    )
    s = segments(f)
    assert list(s.columns) == ["business_model", "main_market", "region", "firm_age_band"]
    assert s["firm_age_band"].tolist() == [
        "<1y", "<1y", "1-3y", "1-3y", "3-5y", "3-5y", "5y+", "unknown",
    ]  # fmt: skip
    # 0.5 is "at least half"; 0/0 shares: exports to other markets; NaN: no exports
    assert s["main_market"].tolist() == ["US", "EU", "other", "other", "none", "EU", "US", "EU"]
    assert s["business_model"].tolist()[:4] == ["b2b", "b2c", "unknown", "both"]
    assert s["region"].tolist()[:4] == ["CN-GD", "unknown", "CN-ZJ", "unknown"]
    assert (s.index == f.index).all()


def test_segments_without_the_columns_are_unknown() -> None:
    s = segments(pd.DataFrame({"x": [1, 2]}))
    assert (s == "unknown").all().all()


# --- outcome rates and adverse impact -----------------------------------------------------


def _frame(groups: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    """Rows per group: (approved, declined, referred)."""
    rows = []
    for g, (a, d, r) in groups.items():
        rows += [(g, "approved")] * a + [(g, "declined")] * d + [(g, "referred")] * r
    return pd.DataFrame(rows, columns=["business_model", "outcome"])


def test_outcome_table_rates_air_and_four_fifths() -> None:
    f = _frame(
        {
            "b2b": (40, 5, 5),  # 50 rows, approval 0.80: the reference
            "b2c": (24, 10, 6),  # 40 rows, 0.60: AIR 0.75, flagged
            "both": (21, 6, 3),  # 30 rows, 0.70: AIR 0.875
            "tiny": (1, 9, 0),  # 10 rows, 0.10: small, never flagged
            "unknown": (40, 0, 0),  # approval 1.0 but not a population: never the reference
        }
    )
    # decisions made before decisioning (no outcome) are left out
    f = pd.concat([f, pd.DataFrame({"business_model": ["b2b"] * 7, "outcome": [None] * 7})])
    t = outcome_table(f, ["business_model"]).set_index("group")
    assert t.index.tolist() == ["b2b", "b2c", "both", "tiny", "unknown"]
    assert t.loc["b2b", "n"] == 50
    assert t.loc["b2b", ["approval_rate", "decline_rate", "referral_rate"]].tolist() == [
        0.8, 0.1, 0.1,
    ]  # fmt: skip
    assert t.loc["b2c", "approval_rate"] == pytest.approx(0.6)
    assert t.loc["b2c", "decline_rate"] == pytest.approx(0.25)
    assert t.loc["b2c", "air"] == pytest.approx(0.75)
    assert t.loc["both", "air"] == pytest.approx(0.875)
    assert t.loc["tiny", "air"] == pytest.approx(0.125)
    assert t.loc["unknown", "air"] == pytest.approx(1.25)
    assert t["status"].to_dict() == {
        "b2b": "reference", "b2c": "below four-fifths", "both": "ok", "tiny": "small",
        "unknown": "unknown",
    }  # fmt: skip
    assert t["four_fifths_flag"].to_dict() == {
        "b2b": False, "b2c": True, "both": False, "tiny": False, "unknown": False,
    }  # fmt: skip
    assert flagged(t.reset_index()) == ["business_model=b2c"]


def test_air_of_exactly_four_fifths_is_not_flagged_and_min_n_is_configurable() -> None:
    f = _frame({"a": (50, 50, 0), "b": (40, 60, 0)})  # 0.5 and 0.4: AIR exactly 0.8
    t = outcome_table(f, ["business_model"]).set_index("group")
    assert t.loc["b", "air"] == pytest.approx(0.8)
    assert not t.loc["b", "four_fifths_flag"] and t.loc["b", "status"] == "ok"
    # with min_n above both groups there is no reference: no AIR, every group small
    t = outcome_table(f, ["business_model"], min_n=101).set_index("group")
    assert t["air"].isna().all() and (t["status"] == "small").all()
    assert not t["four_fifths_flag"].any()


def test_outcome_table_over_several_segments_and_overall_rates() -> None:
    f = pd.DataFrame(
        {
            "business_model": ["b2b"] * 60 + ["b2c"] * 40,
            "firm_age_band": ["5y+"] * 30 + ["<1y"] * 70,
            "outcome": ["approved"] * 50 + ["declined"] * 20 + ["referred"] * 30,
        }
    )
    t = outcome_table(f, ["business_model", "firm_age_band"])
    assert t["segment"].tolist() == ["business_model"] * 2 + ["firm_age_band"] * 2
    age = t[t["segment"] == "firm_age_band"].set_index("group")
    assert age.index.tolist() == ["<1y", "5y+"]  # band order, not alphabetical
    assert age.loc["5y+", "approval_rate"] == 1.0
    assert age.loc["<1y", "approval_rate"] == pytest.approx(20 / 70)
    assert age.loc["<1y", "air"] == pytest.approx(20 / 70)
    assert age.loc["<1y", "four_fifths_flag"]
    bm = t[t["segment"] == "business_model"].set_index("group")
    assert bm.loc["b2c", "approval_rate"] == 0.0 and bm.loc["b2c", "referral_rate"] == 0.75
    r = outcome_rates(f).set_index("outcome")
    assert r["n"].tolist() == [50, 20, 30]
    assert r["rate"].tolist() == [0.5, 0.2, 0.3]


def test_empty_outcome_table_has_its_columns() -> None:
    t = outcome_table(pd.DataFrame({"business_model": ["b2b"], "outcome": [None]}),
                      ["business_model"])  # fmt: skip
    assert t.empty and "air" in t.columns
    assert outcome_rates(pd.DataFrame({"outcome": [None]}))["rate"].isna().all()


# --- overrides ------------------------------------------------------------------------------


def _review(rid: str, rec: str, out: str, grade: str, *holders: str) -> Review:
    acts = [
        Action(h, None, "api", out, ["X"], "n", "awaiting_second", T0) for h in holders[:-1]
    ] + [Action(holders[-1], None, "api", out, ["X"], "n", "closed", T0)]
    return Review(
        review_id=rid,
        decision_id="d" + rid[1:],
        tenant="t",
        firm_id="F" + rid,
        status="closed",
        recommendation=rec,
        grade=grade,
        exposure=10_000.0,
        terms={},
        opened_at=T0,
        pending_outcome=None,
        outcome=out,
        closed_at=T0,
        version=len(holders),
        actions=tuple(acts),
    )


@pytest.fixture
def reviewed() -> tuple[list[Review], pd.DataFrame]:
    reviews = [
        _review("r1", "declined", "approved", "D", "alice"),
        _review("r2", "declined", "approved", "E", "bob"),
        _review("r3", "approved", "declined", "C", "alice"),
        _review("r4", "approved", "approved", "B", "bob"),
        _review("r5", "declined", "declined", "D", "alice"),
        _review("r6", "declined", "approved", "D", "alice", "carol"),  # four eyes
    ]
    decisions = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(1, 12)],
            "outcome": ["referred"] * 6 + ["approved"] * 4 + ["declined"],
            # loan outcome: r1 defaulted, r2 repaid, r3 unknown, r4 repaid, r5/r6 unknown;
            # automatic approvals d7..d10: 1, 0, 0, unknown; d11 declined automatically
            "defaulted": [1, 0, np.nan, 0, np.nan, np.nan, 1, 0, 0, np.nan, 1],
        }
    )
    return reviews, decisions


def test_reviews_frame_names_the_closing_reviewer(reviewed) -> None:  # type: ignore[no-untyped-def]
    rv = reviews_frame(reviewed[0]).set_index("review_id")
    assert rv.loc["r6", "reviewer"] == "carol" and rv.loc["r6", "reviewers"] == 2
    assert rv.loc["r1", "reviewer"] == "alice" and rv.loc["r1", "reviewers"] == 1
    assert direction(rv["recommendation"], rv["outcome"]).tolist() == [
        "decline->approve", "decline->approve", "approve->decline", "none", "none",
        "decline->approve",
    ]  # fmt: skip


def test_override_rates_by_reviewer_grade_and_direction(reviewed) -> None:  # type: ignore[no-untyped-def]
    reviews, decisions = reviewed
    t = override_table(reviews, decisions, grades="ABCDEF")
    by_rev = t["by_reviewer"].set_index("reviewer")
    assert by_rev.index.tolist() == ["alice", "bob", "carol"]
    assert by_rev["reviews"].tolist() == [3, 2, 1]
    assert by_rev["overrides"].tolist() == [2, 1, 1]
    assert by_rev["override_rate"].tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    by_grade = t["by_grade"].set_index("grade")
    assert by_grade.index.tolist() == ["B", "C", "D", "E"]  # scale order, graded ones only
    assert by_grade["reviews"].tolist() == [1, 1, 3, 1]
    assert by_grade["overrides"].tolist() == [0, 1, 2, 1]
    assert by_grade.loc["D", "override_rate"] == pytest.approx(2 / 3)
    by_dir = t["by_direction"].set_index("direction")
    assert by_dir["reviews"].to_dict() == {"decline->approve": 3, "approve->decline": 1,
                                           "none": 2}  # fmt: skip
    assert by_dir["share"].tolist() == pytest.approx([0.5, 1 / 6, 1 / 3])


def test_overridden_loans_performance(reviewed) -> None:  # type: ignore[no-untyped-def]
    reviews, decisions = reviewed
    perf = override_table(reviews, decisions)["performance"].set_index("group")
    over = perf.loc["approved: override (model said decline)"]
    assert (over["n"], over["known"], over["defaults"]) == (3, 2, 1)  # r6 not known yet
    assert over["default_rate"] == 0.5
    agreed = perf.loc["approved: reviewer agreed with the model"]
    assert (agreed["n"], agreed["known"], agreed["defaults"], agreed["default_rate"]) == (
        1, 1, 0, 0.0,
    )  # fmt: skip
    auto = perf.loc["approved automatically (no review)"]
    assert (auto["n"], auto["known"], auto["defaults"]) == (4, 3, 1)
    assert auto["default_rate"] == pytest.approx(1 / 3)
    declined = perf.loc["declined: override (model said approve)"]
    assert (declined["n"], declined["known"]) == (1, 0)
    assert math.isnan(declined["default_rate"])  # not known: NaN, not 0


def test_overrides_without_outcomes_or_reviews() -> None:
    t = override_table([], None)
    assert t["by_reviewer"].empty and t["by_grade"].empty
    assert t["by_direction"]["reviews"].tolist() == [0, 0, 0]
    assert t["by_direction"]["share"].isna().all()
    perf = t["performance"]
    assert perf["n"].tolist() == [0, 0, 0, 0] and perf["default_rate"].isna().all()


# --- a policy applied to a scored table -----------------------------------------------------


def test_apply_policy_outcomes_rules_and_amounts() -> None:
    model = SimpleNamespace(
        feature_names=["thin_file_flag", "supplier_overdue_unpaid_usd", "loan_dpd_max_90d"],
        scale=SimpleNamespace(grades=("A", "B", "C", "D", "E", "F")),
    )
    f = pd.DataFrame(
        {
            "pd": [0.01, 0.35, 0.05, 0.12, 0.01, 0.04],
            "grade": ["A", "F", "B", "D", "A", "B"],
            "thin_file_flag": [0, 0, 0, 0, 0, 1],
            "supplier_overdue_unpaid_usd": [0, 0, 0, 0, 0, 500],
            "loan_dpd_max_90d": [0, 0, 45, 0, 0, np.nan],
            "amount_usd": [20_000, 20_000, 20_000, 20_000, 150_000, np.nan],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    out = apply_policy(model, f)  # type: ignore[arg-type]
    assert out.index.tolist() == [10, 11, 12, 13, 14, 15]
    assert out["outcome"].tolist() == [
        "approved", "declined", "referred", "referred", "referred", "declined",
    ]  # fmt: skip
    assert out["recommendation"].tolist() == [
        "approved", "declined", "approved", "declined", "approved", "declined",
    ]  # fmt: skip
    assert out["rule"].tolist() == [
        "", "pd_ceiling", "loan_arrears", "approve.grade_at_least", "approve.max_amount",
        "thin_file_overdue",
    ]  # fmt: skip
    # no amount column: every amount within the automatic limit
    assert apply_policy(model, f.drop(columns="amount_usd")).loc[14, "outcome"] == "approved"  # type: ignore[arg-type]


def test_apply_policy_scores_with_the_model_when_no_pd_is_given() -> None:
    from tests.model.helpers import make_frame, train_tiny

    model, _, _ = train_tiny(600, seed=5)
    f = make_frame(200, seed=9)
    out = apply_policy(model, f)
    s = model.predict(model.encode(f))
    assert np.allclose(out["pd"], s.pd) and (out["grade"].to_numpy() == s.grade).all()
    good = out["grade"].isin(["A", "B", "C"])
    # no catalog conditions among these features: grade and PD ceiling decide alone
    assert (out.loc[good, "outcome"] == "approved").all()
    assert (out.loc[out["pd"] >= 0.30, "outcome"] == "declined").all()
    rest = ~good & (out["pd"] < 0.30)
    assert (out.loc[rest, "outcome"] == "referred").all()
    assert (out.loc[rest, "recommendation"] == "declined").all()


# --- the monitoring section -----------------------------------------------------------------


def test_monitor_decision_section_from_recorded_decisions(reviewed) -> None:  # type: ignore[no-untyped-def]
    from models.monitor import MonitorReport, decision_section, render_html

    reviews, decisions = reviewed
    n = 80
    frame = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(1, n + 1)],
            "firm_id": [f"F{i % 40}" for i in range(n)],
            "features": [
                {
                    "firm_age_days": 100.0 if i < 40 else 2000.0,
                    "us_export_share_365d": 0.8,
                    "eu_export_share_365d": None,
                }
                for i in range(n)
            ],  # fmt: skip
            "defaulted": list(decisions["defaulted"]) + [np.nan] * (n - 11),
        }
    )
    # d1..d40 young firms: 10 approved; d41..d80 older: 30 approved; d80: before decisioning
    outcome = ["approved"] * 10 + ["referred"] * 30 + ["approved"] * 30 + ["declined"] * 9
    verdicts = pd.DataFrame({"decision_id": frame["decision_id"][: n - 1], "outcome": outcome})
    firms = pd.DataFrame(
        {
            "firm_id": [f"F{i}" for i in range(20)],
            "business_model": ["b2b"] * 20,
            "home_region": ["CN-GD"] * 20,
        }
    )
    rv = reviews_frame(reviews)
    sec = decision_section(frame, verdicts, firms, rv, grades="ABCDEF")
    assert (sec.decisions, sec.judged, sec.reviews) == (80, 79, 6)
    assert sec.firms_known == 40  # F0..F19, twice each (d80, F39, has no outcome)
    assert sec.rates.set_index("outcome")["n"].tolist() == [40, 9, 30]
    age = sec.segments[sec.segments["segment"] == "firm_age_band"].set_index("group")
    assert age.loc["<1y", "approval_rate"] == 0.25 and age.loc["<1y", "n"] == 40
    assert age.loc["5y+", "approval_rate"] == pytest.approx(30 / 39)
    assert age.loc["<1y", "air"] == pytest.approx(0.25 / (30 / 39))
    assert sec.flagged == ["firm_age_band=<1y"]
    bm = sec.segments[sec.segments["segment"] == "business_model"].set_index("group")
    assert bm.loc["b2b", "n"] == 40 and bm.loc["unknown", "n"] == 39
    # firms without a row: approved 10 of 39, AIR 0.34, but an unknown group is not judged
    assert bm.loc["unknown", "air"] == pytest.approx((10 / 39) / 0.75)
    assert bm.loc["unknown", "status"] == "unknown" and not bm.loc["unknown", "four_fifths_flag"]
    mm = sec.segments[sec.segments["segment"] == "main_market"].set_index("group")
    assert mm.index.tolist() == ["US"] and mm.loc["US", "n"] == 79
    perf = sec.overrides["performance"].set_index("group")
    # automatic approvals: d7..d10 and d41..d70 (no review); outcomes known for d7..d9
    auto = perf.loc["approved automatically (no review)"]
    assert (auto["n"], auto["known"], auto["defaults"]) == (34, 3, 1)
    assert perf.loc["approved: override (model said decline)", "default_rate"] == 0.5

    body = json.loads(json.dumps(sec.to_dict()))
    assert body["four_fifths_flagged"] == ["firm_age_band=<1y"]
    assert body["overrides"]["by_reviewer"][0] == {
        "reviewer": "alice", "reviews": 3, "overrides": 2, "override_rate": pytest.approx(2 / 3)
    }  # fmt: skip
    assert body["overrides"]["performance"][3]["default_rate"] is None

    rep = MonitorReport(since=T0, decisions=80, decisioning=sec)
    page = render_html(rep)
    assert "<section id='decisioning'>" in page
    assert "Outcome rates by segment, adverse impact ratio" in page
    assert "firm_age_band=&lt;1y" in page and "below four-fifths" in page
    assert "By reviewer (who closed the review)" in page and "carol" in page
