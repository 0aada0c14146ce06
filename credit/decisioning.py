"""Approve, decline or refer: a lender's decision rules applied to one scored firm.

The rules come from the tenant's policy file (``decision`` in :mod:`credit.policy`): hard
declines first (a PD ceiling, a grade floor, named catalog conditions), then the rules that
refer an application to a person whatever its grade, then automatic approval (grade at or
better than a level and the amount within a limit); everything else is referred.

Every decision also carries the model's **recommendation**: ``declined`` when a decline
rule fired or the grade is below the approval level, else ``approved``. A reviewer who decides
against it overrides the model (``credit.reviews``), which is what override reports count and
what four-eyes review is about.

Examples
--------
>>> from credit.policy import default_policy
>>> v = evaluate(default_policy(), 0.012, "B", {"thin_file_flag": 0}, None, "ABCDEF")
>>> v.outcome, v.recommendation, [r["rule"] for r in v.rules]
('approved', 'approved', ['approve.grade_at_least', 'approve.max_amount'])
>>> v = evaluate(default_policy(), 0.35, "F", {}, None, "ABCDEF")
>>> v.outcome, v.rules[0]["rule"]
('declined', 'pd_ceiling')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credit.policy import DecisionPolicy, Outcome, Policy, PolicyError
from features.catalog import condition


@dataclass(frozen=True)
class Verdict:
    """The outcome of one application under a policy, and why."""

    outcome: Outcome
    recommendation: Outcome  # approved or declined: the model's score under the policy
    rules: list[dict[str, Any]]  # the rules that fired: rule, kind, text, and their reasons
    amount: float | None  # the amount applied for (policy currency), if any
    limit: float  # the largest amount approved automatically
    policy: dict[str, str]  # name, version

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "recommendation": self.recommendation,
            "rules": self.rules,
            "amount": self.amount,
            "limit": self.limit,
            "policy": self.policy,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            outcome=d["outcome"],
            recommendation=d["recommendation"],
            rules=list(d.get("rules") or []),
            amount=d.get("amount"),
            limit=float(d["limit"]),
            policy=dict(d["policy"]),
        )

    @property
    def exposure(self) -> float:
        """The amount at stake: applied for, else the automatic-approval limit."""
        return self.amount if self.amount is not None else self.limit


def _rank(grade: str, grades: Sequence[str], where: str) -> int:
    try:
        return list(grades).index(grade)
    except ValueError:
        raise PolicyError(
            f"the policy's {where} names grade {grade!r}, which the model's scale does not "
            f"have (its grades: {', '.join(grades)})"
        ) from None


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _conditions_hold(names: Sequence[str], features: Mapping[str, Any]) -> list[str] | None:
    """The texts of the conditions when every one holds, else ``None``."""
    texts = []
    for n in names:
        c = condition(n)
        if not c.holds(features.get(c.feature)):
            return None
        texts.append(f"{n}: {c.text}")
    return texts


def evaluate(
    policy: Policy,
    pd: float,
    grade: str,
    features: Mapping[str, Any],
    amount: float | None,
    grades: Sequence[str],
) -> Verdict:
    """The outcome of an application scored ``pd``/``grade`` with ``features``.

    Parameters
    ----------
    policy : the lender's policy (its ``decision`` section).
    pd, grade : the model's PD and grade.
    features : the feature vector (named conditions read it).
    amount : the amount applied for in the policy's currency (``None``: not given).
    grades : the model's grades, best first (its scale).

    Raises
    ------
    PolicyError
        The policy names a grade the model's scale does not have.
    """
    rules: DecisionPolicy = policy.decision
    ident = {"name": policy.name, "version": policy.version}
    rank = _rank(grade, grades, "score") if grade in grades else len(grades)
    fired: list[dict[str, Any]] = []
    for rule in rules.decline:
        details = []
        if rule.pd_at_least is not None:
            if pd < rule.pd_at_least:
                continue
            details.append(f"PD {pd:.4f} at or above {rule.pd_at_least:g}")
        if rule.grade_worse_than is not None:
            floor = _rank(rule.grade_worse_than, grades, f"rule {rule.name}")
            if rank <= floor:
                continue
            details.append(f"grade {grade} worse than {rule.grade_worse_than}")
        texts = _conditions_hold(rule.when, features)
        if texts is None:
            continue
        fired.append(
            {
                "rule": rule.name,
                "kind": "decline",
                "text": rule.text,
                "detail": "; ".join(details + texts),
                "conditions": list(rule.when),
                "reasons": list(rule.reasons),
            }
        )
    limit = rules.approve.max_amount
    if fired:
        return Verdict("declined", "declined", fired, amount, limit, ident)
    at_least = rules.approve.grade_at_least
    grade_ok = rank <= _rank(at_least, grades, "approve.grade_at_least")
    grade_rule = {
        "rule": "approve.grade_at_least",
        "kind": "approve" if grade_ok else "refer",
        "text": f"Grade {grade} is {'at or better than' if grade_ok else 'below'} {at_least}",
    }
    amount_ok = amount is None or amount <= limit
    amount_rule = {
        "rule": "approve.max_amount",
        "kind": "approve" if amount_ok else "refer",
        "text": (
            f"No amount applied for: approved up to {_money(limit)} {policy.currency}"
            if amount is None
            else f"Amount {_money(amount)} {policy.currency} is "
            f"{'within' if amount_ok else 'above'} the limit of {_money(limit)}"
        ),
    }
    referred = []
    for r in rules.refer:
        texts = _conditions_hold(r.when, features)
        if texts is not None:
            referred.append(
                {
                    "rule": r.name,
                    "kind": "refer",
                    "text": r.text,
                    "detail": "; ".join(texts),
                    "conditions": list(r.when),
                }
            )
    recommendation: Outcome = "approved" if grade_ok else "declined"
    if grade_ok and amount_ok and not referred:
        return Verdict("approved", "approved", [grade_rule, amount_rule], amount, limit, ident)
    failed = [r for r in (grade_rule, amount_rule) if r["kind"] == "refer"]
    return Verdict("referred", recommendation, referred + failed, amount, limit, ident)


def judge_frame(policy: Policy, grades: Sequence[str], features: Any, scored: Any) -> Any:
    """``outcome``, ``recommendation`` and ``rules`` (the names of the rules that fired,
    ``;``-separated) per row of a batch score table (``credit score --batch``): ``scored``
    holds ``pd`` and ``grade``, ``features`` the feature table it was scored from (same rows,
    same order; an ``amount`` column, when present, is the amount applied for)."""
    import pandas as pd

    rows = features.to_dict("records")
    amounts = features["amount"].tolist() if "amount" in features.columns else [None] * len(rows)
    out = []
    for row, pd_, grade, amount in zip(
        rows, scored["pd"].tolist(), scored["grade"].tolist(), amounts, strict=True
    ):
        a = None if amount is None or amount != amount else float(amount)
        v = evaluate(policy, float(pd_), str(grade), row, a, grades)
        out.append((v.outcome, v.recommendation, ";".join(r["rule"] for r in v.rules)))
    return pd.DataFrame(out, columns=["outcome", "recommendation", "rules"], index=scored.index)
