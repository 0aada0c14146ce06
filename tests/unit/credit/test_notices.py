"""The principal reasons of an adverse-action notice (credit/notices.py): a reviewer's codes
first, then the decline rules that fired (their own reasons, else their conditions'), then
the features that raised the PD, largest first; one reason per code; at most four."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from credit.adverse import ADVERSE_REASONS, feature_reason
from credit.notices import MAX_REASONS, RIGHTS, build_notice, principal_reasons
from credit.policy import default_policy, policy_from_dict
from credit.reviews import Action, Review


def _r(feature: str, contribution: float | None, text: str | None = None) -> dict[str, Any]:
    return {"feature": feature, "contribution": contribution, "text": text or f"{feature} text"}


def _rule(name: str, kind: str = "decline", **kw: Any) -> dict[str, Any]:
    return {"rule": name, "kind": kind, "text": f"{name} text", **kw}


def codes(reasons: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in reasons]


def test_feature_reasons_come_largest_contribution_first() -> None:
    out = principal_reasons(
        [
            _r("months_of_history", 0.1),  # AA01
            _r("supplier_dpd_mean_365d", 0.5),  # AA03
            _r("past_default_count", 0.3),  # AA04
        ],
        [],
    )
    assert codes(out) == ["AA03", "AA04", "AA01"]
    assert out[0] == {
        "code": "AA03",
        "text": ADVERSE_REASONS["AA03"],
        "details": ["supplier_dpd_mean_365d text"],
        "basis": [{"kind": "feature", "feature": "supplier_dpd_mean_365d", "contribution": 0.5}],
    }


def test_review_codes_then_rules_then_features() -> None:
    out = principal_reasons(
        [_r("months_of_history", 0.9)],
        [_rule("thin_file_overdue", reasons=["AA11"])],
        review_codes=["AA13"],
        review_id="rev_1",
    )
    assert codes(out) == ["AA13", "AA11", "AA01"]
    assert out[0]["basis"] == [{"kind": "review", "review_id": "rev_1"}]
    assert out[0]["details"] == []  # a reviewer's note is not printed
    assert out[1]["basis"] == [{"kind": "rule", "rule": "thin_file_overdue"}]
    assert out[1]["details"] == ["thin_file_overdue text"]


def test_only_positive_contributions_of_mapped_features_count() -> None:
    out = principal_reasons(
        [
            _r("supplier_dpd_mean_365d", -0.4),  # lowered the PD
            _r("months_of_history", 0.0),
            _r("past_default_count", None),
            _r("not_a_catalog_feature", 2.0),  # a bring-your-own model's feature: no reason
            _r("thin_file_flag", 0.2),
        ],
        [],
    )
    assert codes(out) == ["AA11"]
    assert feature_reason("not_a_catalog_feature") is None


def test_reasons_sharing_a_code_are_one_reason_with_several_bases() -> None:
    # supplier_dpd_mean_365d and supplier_on_time_share_365d are both payment discipline
    out = principal_reasons(
        [
            _r("supplier_dpd_mean_365d", 0.5, "Suppliers are paid late"),
            _r("supplier_on_time_share_365d", 0.2, "Suppliers are paid late"),
        ],
        [_rule("thin_file_overdue", reasons=["AA03"])],
    )
    assert codes(out) == ["AA03"]
    (reason,) = out
    assert [b["kind"] for b in reason["basis"]] == ["rule", "feature", "feature"]
    assert [b.get("feature") for b in reason["basis"][1:]] == [
        "supplier_dpd_mean_365d",
        "supplier_on_time_share_365d",
    ]
    # the same detail once
    assert reason["details"] == ["thin_file_overdue text", "Suppliers are paid late"]


def test_at_most_four_reasons_but_every_basis_of_those_four() -> None:
    features = [
        "supplier_dpd_mean_365d",  # AA03
        "past_default_count",  # AA04
        "months_of_history",  # AA01
        "thin_file_flag",  # AA11
        "loans_outstanding_usd",  # AA10: a fifth code, left out
        "supplier_on_time_share_365d",  # AA03 again: a basis of the first reason
    ]
    out = principal_reasons([_r(f, 1.0 - i / 10) for i, f in enumerate(features)], [])
    assert len(out) == MAX_REASONS == 4
    assert codes(out) == ["AA03", "AA04", "AA01", "AA11"]
    assert [b["feature"] for b in out[0]["basis"]] == [
        "supplier_dpd_mean_365d",
        "supplier_on_time_share_365d",
    ]
    # the cap holds for review codes and rules too
    out = principal_reasons(
        [],
        [_rule("many", reasons=["AA05", "AA06", "AA07"])],
        review_codes=["AA01", "AA02"],
    )
    assert codes(out) == ["AA01", "AA02", "AA05", "AA06"]


def test_a_rule_gives_its_own_reasons_in_order() -> None:
    out = principal_reasons(
        [],
        [
            _rule(
                "thin_file_overdue",
                conditions=["thin_file", "overdue_supplier_invoices"],
                reasons=["AA11", "AA03"],
            )
        ],
    )
    assert codes(out) == ["AA11", "AA03"]  # its reasons, not its conditions'
    assert all(r["basis"] == [{"kind": "rule", "rule": "thin_file_overdue"}] for r in out)


def test_a_rule_without_reasons_gives_its_conditions_reasons() -> None:
    out = principal_reasons(
        [],
        [_rule("combo", conditions=["young_firm", "past_default", "loan_arrears"], reasons=[])],
    )
    # young_firm reads firm_age_days (tenure: AA01); past_default and loan_arrears are both
    # credit obligations (AA04): one reason, one basis
    assert codes(out) == ["AA01", "AA04"]
    assert out[1]["basis"] == [{"kind": "rule", "rule": "combo"}]
    assert out[1]["details"] == ["combo text"]


def test_a_rule_without_reasons_or_conditions_leaves_it_to_the_features() -> None:
    out = principal_reasons(
        [_r("months_of_history", 0.3)],
        [_rule("pd_ceiling", conditions=[], reasons=[], detail="PD 0.51 at or above 0.5")],
    )
    assert codes(out) == ["AA01"]
    assert out[0]["basis"][0]["kind"] == "feature"


def test_refer_and_approve_rules_and_unknown_codes_are_no_reasons() -> None:
    out = principal_reasons(
        [],
        [
            _rule("loan_arrears", kind="refer", conditions=["loan_arrears"]),
            _rule("approve.grade_at_least", kind="refer"),
            _rule("approve.max_amount", kind="approve"),
        ],
        review_codes=["RA01", "ZZ99"],
    )
    assert out == []


def test_a_reason_s_bases_are_its_own_objects() -> None:
    out = principal_reasons([], [_rule("both", reasons=["AA11", "AA03"])])
    out[0]["basis"][0]["rule"] = "changed"
    assert out[1]["basis"] == [{"kind": "rule", "rule": "both"}]


# --- build_notice ---------------------------------------------------------------------------


def _decision(**kw: Any) -> dict[str, Any]:
    return {
        "decision_id": "dec_" + "1" * 32,
        "firm_id": "F00001",
        "scored_at": "2026-12-01T10:00:00Z",
        "score": 512,
        "grade": "F",
        "reasons": [_r("supplier_dpd_mean_365d", 0.5)],
        "rules": [_rule("pd_ceiling")],
        "policy": {"name": "default", "version": "1"},
        **kw,
    }


def _review(outcome: str, codes_by_action: list[list[str]]) -> Review:
    at = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    return Review(
        review_id="rev_" + "2" * 32,
        decision_id="dec_" + "1" * 32,
        tenant="default",
        firm_id="F00001",
        status="closed",
        recommendation="declined",
        grade="F",
        exposure=1000.0,
        terms={},
        opened_at=at,
        pending_outcome=None,
        outcome=outcome,
        closed_at=at,
        version=1,
        actions=tuple(
            Action("Ana", None, "http", outcome, c, "note", "closed", at) for c in codes_by_action
        ),
    )


def test_an_automatic_notice() -> None:
    policy = default_policy()
    n = build_notice(_decision(amount=20000.0), policy)
    assert n["decided_by"] == "automatic" and n["review_id"] is None
    assert n["date"] == "2026-12-01T10:00:00Z"
    assert n["action"] == "declined"
    assert n["action_taken"] == "Your application for 20,000 USD of credit was declined."
    assert policy.lender is not None and n["lender"]["name"] == policy.lender.name
    assert codes(n["reasons"]) == ["AA03"]
    assert n["score"] == {"score": 512, "grade": "F"}
    assert n["rights"] == list(RIGHTS)
    assert build_notice(_decision(), policy)["action_taken"] == (
        "Your application for credit was declined."
    )


def test_a_reviewed_notice_gives_the_reviewers_codes_first() -> None:
    n = build_notice(
        _decision(), default_policy(), _review("declined", [["AA02"], ["AA13", "AA02"]])
    )
    assert n["decided_by"] == "review" and n["review_id"] == "rev_" + "2" * 32
    assert n["date"] == "2026-12-02T09:30:00Z"
    assert codes(n["reasons"]) == ["AA02", "AA13", "AA03"]
    # an approved review is no decline by review
    approved = build_notice(_decision(), default_policy(), _review("approved", [["RA01"]]))
    assert approved["decided_by"] == "automatic"


def test_without_a_lender_the_notice_names_the_policy() -> None:
    data = default_policy().model_dump(exclude_none=True)
    data.pop("lender")
    data["name"] = "plain-policy"
    n = build_notice(_decision(), policy_from_dict(data))
    assert n["lender"] == {
        "name": "plain-policy",
        "address": "",
        "email": "",
        "phone": "",
        "regulator": "",
    }
