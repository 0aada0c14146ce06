"""The policy's decision rules: validated with the field named, applied in order."""

from __future__ import annotations

from typing import Any

import pytest

from credit.decisioning import evaluate
from credit.policy import PolicyError, _default_data, default_policy, policy_from_dict

GRADES = ("A", "B", "C", "D", "E", "F")


def _with(**decision: Any) -> Any:
    data = dict(_default_data())
    data["decision"] = {**data["decision"], **decision}
    return policy_from_dict(data, source="test.yaml")


def test_a_hard_decline_comes_first_and_names_its_rule() -> None:
    v = evaluate(default_policy(), 0.31, "F", {"thin_file_flag": 0}, 1000, GRADES)
    assert v.outcome == "declined" and v.recommendation == "declined"
    assert [r["rule"] for r in v.rules] == ["pd_ceiling"]
    assert "0.3100 at or above 0.3" in v.rules[0]["detail"]


def test_named_catalog_conditions_must_all_hold() -> None:
    both = {"thin_file_flag": 1, "supplier_overdue_unpaid_usd": 500.0}
    v = evaluate(default_policy(), 0.01, "B", both, None, GRADES)
    assert v.outcome == "declined" and v.rules[0]["rule"] == "thin_file_overdue"
    assert v.rules[0]["reasons"] == ["AA11", "AA03"]
    one = {"thin_file_flag": 1, "supplier_overdue_unpaid_usd": 0.0}
    assert evaluate(default_policy(), 0.01, "B", one, None, GRADES).outcome == "approved"
    # a missing value never meets a condition
    missing = {"thin_file_flag": 1, "supplier_overdue_unpaid_usd": None}
    assert evaluate(default_policy(), 0.01, "B", missing, None, GRADES).outcome == "approved"


def test_approval_needs_the_grade_and_the_amount() -> None:
    p = default_policy()  # grade C or better, up to 100,000
    assert evaluate(p, 0.03, "C", {}, 100_000, GRADES).outcome == "approved"
    over = evaluate(p, 0.03, "C", {}, 100_001, GRADES)
    assert (over.outcome, over.recommendation) == ("referred", "approved")
    assert [r["rule"] for r in over.rules] == ["approve.max_amount"]
    low = evaluate(p, 0.06, "D", {}, None, GRADES)
    assert (low.outcome, low.recommendation) == ("referred", "declined")
    assert low.exposure == 100_000  # no amount: the approval limit is what is at stake
    # a refer rule sends an approvable firm to a person
    arrears = evaluate(p, 0.015, "B", {"loan_dpd_max_90d": 45}, None, GRADES)
    assert arrears.outcome == "referred" and arrears.rules[0]["rule"] == "loan_arrears"


def test_grades_follow_the_models_scale_order() -> None:
    p = _with(approve={"grade_at_least": "BB", "max_amount": 10})
    scale = ("AAA", "AA", "BB", "CCC")
    assert evaluate(p, 0.01, "AA", {}, None, scale).outcome == "approved"
    assert evaluate(p, 0.01, "CCC", {}, None, scale).outcome == "referred"
    with pytest.raises(PolicyError, match="grade 'BB'.*does not have"):
        evaluate(p, 0.01, "A", {}, None, GRADES)


@pytest.mark.parametrize(
    ("decision", "words"),
    [
        ({"decline": [{"name": "x", "text": "t", "when": ["nope"]}]}, "decision.decline.0.when"),
        ({"decline": [{"name": "x", "text": "t", "when": ["nope"]}]}, "unknown condition 'nope'"),
        ({"decline": [{"name": "x", "text": "t"}]}, "rule x has no condition"),
        (
            {"decline": [{"name": "x", "text": "t", "pd_at_least": 0.2, "reasons": ["ZZ"]}]},
            "unknown adverse reason 'ZZ'",
        ),  # fmt: skip
        ({"approve": {"grade_at_least": "c?", "max_amount": 5}}, "approve.grade_at_least"),
        ({"approve": {"grade_at_least": "C", "max_amount": -5}}, "decision.approve.max_amount"),
        ({"review": {"outcomes": ["maybe"]}}, "decision.review.outcomes.0"),
        (
            {"refer": [{"name": "pd_ceiling", "text": "t", "when": ["thin_file"]}]},
            "repeated: pd_ceiling",
        ),
    ],
)
def test_an_invalid_decision_section_names_the_field(decision: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError) as err:
        _with(**decision)
    assert words in str(err.value)


def test_a_policy_without_a_decision_section_takes_the_shipped_rules() -> None:
    data = {k: v for k, v in _default_data().items() if k != "decision"}
    p = policy_from_dict(data)
    assert p.decision == default_policy().decision
