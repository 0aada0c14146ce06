"""Properties of the offer engine over many random firms, under the default policy.

Whatever the inputs: an offer never exceeds its caps, costs add up, the working-capital
repayment fits the holdback limit, a riskier PD never gets a cheaper or larger offer, and
every product is either offered or declined with at least one reason.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from credit.offers import FirmBases, make_offers, price
from credit.policy import default_policy

POLICY = default_policy()
AMOUNT = st.floats(min_value=0, max_value=5e7, allow_nan=False)
PD = st.floats(min_value=0, max_value=1, allow_nan=False)
GRADE = st.sampled_from(["A", "B", "C", "D", "E", "F"])


def _bases(s: float, r: float, days: float, t: float, w: float, months: float) -> FirmBases:
    return FirmBases(
        as_of=datetime(2025, 7, 1),
        settlements_180d=s,
        open_receivables=r,
        receivables_count=1 if r else 0,
        receivables_days_to_due=days if r else 0.0,
        pending_tax_refunds=t,
        warehouse_stock=w,
        months_of_history=months,
    )


def _decision(pd: float, grade: str) -> dict[str, object]:
    return {"firm_id": "F1", "as_of": "2025-07-01", "pd": pd, "score": 600, "grade": grade}


@settings(max_examples=300, deadline=None)
@given(PD, GRADE, AMOUNT, AMOUNT, st.floats(0, 400), AMOUNT, AMOUNT, st.floats(0, 120))
def test_offers_respect_their_caps_and_add_up(
    pd: float, grade: str, s: float, r: float, days: float, t: float, w: float, months: float
) -> None:
    res = make_offers(_decision(pd, grade), _bases(s, r, days, t, w, months), POLICY)
    products = POLICY.enabled_products()
    # one entry per enabled product, offered or declined
    assert {o.product for o in res.offers} | {d.product for d in res.declines} == set(products)
    assert all(d.reasons for d in res.declines)
    for o in res.offers:
        p = products[o.product]
        assert p.min_amount <= o.amount <= p.max_amount
        assert o.amount <= o.base_amount * p.advance_rate * p.grade_factors[grade] + 1e-6
        assert o.amount % POLICY.round_to == 0
        assert pd < p.pd_cutoff
        assert abs(o.total_repayable - o.amount - o.total_cost) <= 0.011  # cents rounding
        assert o.expected_loss <= o.amount * p.lgd + 0.01
        assert o.apr >= POLICY.cost_of_funds + p.operating_cost + p.margin
        if o.repayment.holdback_rate is not None:
            assert o.repayment.holdback_rate <= p.max_holdback + 1e-9  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(
    PD,
    PD,
    st.sampled_from([30, 90, 120, 180, 365]),
    st.sampled_from(list(POLICY.enabled_products())),
)
def test_a_riskier_pd_is_never_cheaper(pd1: float, pd2: float, term: int, product: str) -> None:
    lo, hi = sorted((pd1, pd2))
    p = POLICY.enabled_products()[product]
    apr_lo, _, tpd_lo = price(lo, term, p, POLICY)
    apr_hi, _, tpd_hi = price(hi, term, p, POLICY)
    assert apr_lo <= apr_hi + 1e-15
    assert tpd_lo <= tpd_hi + 1e-15


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 0.19), st.floats(0, 0.19), AMOUNT, AMOUNT, AMOUNT, AMOUNT)
def test_a_riskier_pd_never_gets_more_money(
    pd1: float, pd2: float, s: float, r: float, t: float, w: float
) -> None:
    lo, hi = sorted((pd1, pd2))
    bases = _bases(s, r, 45.0, t, w, 36.0)
    safer = {o.product: o for o in make_offers(_decision(lo, "C"), bases, POLICY).offers}
    riskier = {o.product: o for o in make_offers(_decision(hi, "C"), bases, POLICY).offers}
    assert set(riskier) <= set(safer)
    for name, o in riskier.items():
        assert o.amount <= safer[name].amount
        assert o.apr >= safer[name].apr - 1e-15
