"""Adverse-action notices: the principal reasons a declined applicant is owed, in writing.

A notice is built from the recorded decision alone (and, for a reviewed decline, the recorded
review), so it says what the decision said when it was made:

1. a reviewer's decline gives the reviewer's reason codes first (basis ``review``);
2. each decline rule that fired gives the reasons it stands for (its ``reasons`` in the
   policy, else those of the catalog features its conditions read; basis ``rule``);
3. then the SHAP reasons of the decision: features whose contribution raised the PD, largest
   first, each mapped to the documented reason its catalog family supports (basis
   ``feature``, with the contribution).

Reasons sharing a code are one reason with several bases; at most :data:`MAX_REASONS` are
given. Every basis is checkable against the decision's own record: a feature basis has a
positive contribution in its explanation, a rule basis is a decline rule that fired, a review
basis is a reason code the reviewer recorded (``tests/unit/credit/test_notices.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from credit.adverse import ADVERSE_REASONS, feature_reason
from credit.policy import Policy
from features import catalog

MAX_REASONS = 4

#: The applicant's rights, printed on every notice.
RIGHTS = (
    "You have the right to a statement of the specific reasons for this decision. The "
    "principal reasons are listed above; if you want more detail, ask the lender at the "
    "address above within 60 days of this notice and it will answer within 30 days of "
    "receiving your request.",
    "The federal Equal Credit Opportunity Act prohibits creditors from discriminating against "
    "credit applicants on the basis of race, color, religion, national origin, sex, marital "
    "status or age (provided the applicant has the capacity to contract), because all or "
    "part of the applicant's income derives from any public assistance program, or because "
    "the applicant has in good faith exercised any right under the Consumer Credit "
    "Protection Act.",
    "This decision was made with the help of an automated credit model. You may ask for it "
    "to be reviewed by a person, give your point of view and contest it; records from a "
    "source you have not yet shared may change the outcome.",
)


def _feature_detail(feature: str) -> str:
    try:
        return str(catalog.get(feature).reason)
    except KeyError:
        return feature


def principal_reasons(
    reasons: Sequence[Mapping[str, Any]],
    rules: Sequence[Mapping[str, Any]],
    review_codes: Sequence[str] = (),
    review_id: str | None = None,
) -> list[dict[str, Any]]:
    """Up to four principal reasons from a decision's SHAP reasons, the decline rules that
    fired and a reviewer's codes (see the module's docstring for the order)."""
    out: dict[str, dict[str, Any]] = {}

    def add(code: str | None, basis: dict[str, Any], detail: str) -> None:
        if code is None:
            return
        if code not in out:
            if len(out) >= MAX_REASONS:
                return
            out[code] = {"code": code, "text": ADVERSE_REASONS[code], "details": [], "basis": []}
        entry = out[code]
        if basis not in entry["basis"]:
            entry["basis"].append(dict(basis))
        if detail and detail not in entry["details"]:
            entry["details"].append(detail)

    for code in review_codes:
        if code in ADVERSE_REASONS:
            add(code, {"kind": "review", "review_id": review_id}, "")
    for rule in rules:
        if rule.get("kind") != "decline":
            continue
        basis = {"kind": "rule", "rule": rule["rule"]}
        codes = list(rule.get("reasons") or [])
        if not codes:
            for name in rule.get("conditions") or []:
                try:
                    codes.append(feature_reason(catalog.condition(name).feature))
                except KeyError:
                    continue
        # two conditions may stand for one reason (past_default and loan_arrears): one basis
        for code in dict.fromkeys(codes):
            add(code, basis, str(rule.get("text") or ""))
    ranked = sorted(
        (r for r in reasons if (r.get("contribution") or 0.0) > 0.0),
        key=lambda r: -float(r["contribution"]),
    )
    for r in ranked:
        feature = str(r["feature"])
        add(
            feature_reason(feature),
            {"kind": "feature", "feature": feature, "contribution": float(r["contribution"])},
            str(r.get("text") or _feature_detail(feature)),
        )
    return list(out.values())


def build_notice(
    decision: Mapping[str, Any],
    policy: Policy,
    review: Any | None = None,
) -> dict[str, Any]:
    """The notice of a declined decision (a recorded decision as
    :meth:`credit.service.CreditService.recorded_decision` returns it), from the lender of
    ``policy``; ``review``: the closed review that declined it (``credit.reviews.Review``)."""
    codes: list[str] = []
    decided_by = "automatic"
    date = decision["scored_at"]
    review_id = None
    if review is not None and review.outcome == "declined":
        decided_by = "review"
        review_id = review.review_id
        date = review.to_dict()["closed_at"]
        for action in review.actions:
            if action.outcome == "declined":
                codes += [c for c in action.reason_codes if c not in codes]
    lender = policy.lender
    amount = decision.get("amount")
    currency = policy.currency
    action = (
        f"Your application for {amount:,.0f} {currency} of credit was declined."
        if amount
        else "Your application for credit was declined."
    )
    return {
        "decision_id": decision["decision_id"],
        "firm_id": decision["firm_id"],
        "date": date,
        "lender": {
            "name": lender.name if lender else policy.name,
            "address": lender.address if lender else "",
            "email": lender.email if lender else "",
            "phone": lender.phone if lender else "",
            "regulator": lender.regulator if lender else "",
        },
        "action": "declined",
        "action_taken": action,
        "decided_by": decided_by,
        "review_id": review_id,
        "reasons": principal_reasons(
            decision.get("reasons") or [], decision.get("rules") or [], codes, review_id
        ),
        "score": {"score": decision["score"], "grade": decision["grade"]},
        "rights": list(RIGHTS),
        "policy": decision.get("policy"),
    }
