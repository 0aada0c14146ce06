"""The offer engine on hand-worked cases: limits, APR, cost, expected loss and declines.

The test policy uses a 360-day year and a 360-day PD horizon so that the numbers work out
by hand: a PD of 0.0199 over 360 days is a term PD of exactly 1 - sqrt(0.9801) = 0.01 over
180 days, and a PD of 0.19 is a term PD of 1 - sqrt(0.81) = 0.1.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from credit.offers import (
    FirmBases,
    OfferError,
    make_offers,
    term_pd,
)
from credit.policy import Policy, default_policy, policy_from_dict

AS_OF = datetime(2025, 6, 1)


def _policy(**wca: Any) -> Policy:
    base_wca = {
        "title": "Working-capital advance",
        "advance_rate": 0.5,
        "grade_factors": {"A": 1.0, "B": 0.8, "C": 0.6, "E": 0.2},
        "term_days": {"A": 180, "B": 180, "C": 120, "E": 90},
        "max_holdback": 0.5,
        "pd_cutoff": 0.2,
        "lgd": 0.6,
        "operating_cost": 0.02,
        "margin": 0.03,
        "min_amount": 1000,
        "max_amount": 250000,
        "min_history_months": 6,
    }
    base_wca.update(wca)
    return policy_from_dict(
        {
            "name": "test",
            "version": "7",
            "cost_of_funds": 0.06,
            "pd_horizon_days": 360,
            "days_per_year": 360,
            "round_to": 100,
            "products": {
                "working_capital_advance": base_wca,
                "receivables_financing": {
                    "title": "Invoice financing",
                    "advance_rate": 0.85,
                    "grade_factors": {"A": 1.0, "B": 0.95, "E": 0.5},
                    "term_days": 180,
                    "min_term_days": 30,
                    "grace_days": 15,
                    "pd_cutoff": 0.2,
                    "lgd": 0.45,
                    "operating_cost": 0.015,
                    "margin": 0.025,
                    "min_amount": 1000,
                    "max_amount": 500000,
                },
                "tax_refund_advance": {
                    "title": "Tax-refund advance",
                    "advance_rate": 0.9,
                    "grade_factors": {"A": 1.0, "B": 1.0, "E": 0.6},
                    "term_days": 90,
                    "pd_cutoff": 0.25,
                    "lgd": 0.3,
                    "operating_cost": 0.01,
                    "margin": 0.02,
                    "min_amount": 500,
                    "max_amount": 300000,
                    "min_history_months": 3,
                },
            },
        }
    )


def _decision(pd: float = 0.0199, grade: str = "B", **kw: Any) -> dict[str, Any]:
    d = {"firm_id": "F1", "as_of": AS_OF, "pd": pd, "score": 640, "grade": grade}
    d.update(kw)
    return d


def _bases(**kw: Any) -> FirmBases:
    d: dict[str, Any] = {"as_of": AS_OF, "months_of_history": 24.0}
    d.update(kw)
    return FirmBases(**d)


def _by_product(items: list[Any]) -> dict[str, Any]:
    return {x.product: x for x in items}


def test_term_pd_scales_the_horizon_pd_with_a_constant_hazard() -> None:
    assert term_pd(0.0199, 180, 360) == pytest.approx(0.01, abs=1e-12)
    assert term_pd(0.19, 180, 360) == pytest.approx(0.1, abs=1e-12)
    assert term_pd(0.05, 365, 365) == pytest.approx(0.05, abs=1e-12)  # full horizon: itself
    assert term_pd(1.0, 90, 365) == 1.0
    with pytest.raises(OfferError, match="between 0 and 1"):
        term_pd(1.5, 90, 365)


def test_working_capital_advance_limited_by_the_advance_rate() -> None:
    # settlements 120,000 x advance 0.5 x grade B factor 0.8 = 48,000.
    # term 180 (grade B); term PD 0.01; risk cost 0.01 x 0.6 x 360/180 = 0.012;
    # APR 0.06 + 0.012 + 0.02 + 0.03 = 0.122; cost factor 0.122 x 180/360 = 0.061.
    # holdback cap 0.5 x (120,000 x 180/180) / 1.061 = 56,550.42 > 48,000, so the rate binds.
    res = make_offers(_decision(), _bases(settlements_180d=120_000.0), _policy())
    o = _by_product(res.offers)["working_capital_advance"]
    assert o.amount == 48_000.0
    assert o.limited_by == "advance_rate"
    assert o.term_days == 180
    assert o.term_pd == pytest.approx(0.01, abs=1e-12)
    assert o.apr_breakdown.risk_cost == pytest.approx(0.012, abs=1e-12)
    assert o.apr == pytest.approx(0.122, abs=1e-12)
    assert o.total_cost == 2928.0  # 48,000 x 0.061
    assert o.total_repayable == 50_928.0
    assert o.expected_loss == 288.0  # 0.01 x 0.6 x 48,000
    assert o.repayment.method == "settlement_holdback"
    assert o.repayment.holdback_rate == pytest.approx(0.4244, abs=1e-12)  # 50,928 / 120,000
    assert o.repayment.due_date == date(2025, 11, 28)  # 1 June + 180 days
    assert o.currency == "USD"
    assert "42%" in o.repayment.summary


def test_working_capital_advance_cut_to_fit_the_holdback() -> None:
    # Same price (APR 0.122, cost factor 0.061); max holdback 0.3:
    # cap 0.3 x 120,000 / 1.061 = 33,930.25 -> rounded down to 33,900.
    res = make_offers(_decision(), _bases(settlements_180d=120_000.0), _policy(max_holdback=0.3))
    o = _by_product(res.offers)["working_capital_advance"]
    assert o.limited_by == "holdback"
    assert o.amount == 33_900.0
    assert o.total_cost == pytest.approx(2067.9, abs=0.005)  # 33,900 x 0.061
    assert o.repayment.holdback_rate == pytest.approx(35_967.9 / 120_000, abs=1e-9)
    assert o.repayment.holdback_rate is not None and o.repayment.holdback_rate <= 0.3


def test_working_capital_advance_capped_at_the_maximum() -> None:
    # 1,000,000 x 0.5 x 0.8 = 400,000 > max 250,000.
    res = make_offers(_decision(), _bases(settlements_180d=1_000_000.0), _policy())
    o = _by_product(res.offers)["working_capital_advance"]
    assert (o.amount, o.limited_by) == (250_000.0, "max_amount")


def test_grade_sets_the_factor_and_the_term() -> None:
    # Grade C: factor 0.6 and term 120. PD 0.03: term PD 1 - 0.97^(120/360).
    tpd = 1 - 0.97 ** (1 / 3)  # 0.0100501...
    res = make_offers(_decision(pd=0.03, grade="C"), _bases(settlements_180d=100_000.0), _policy())
    o = _by_product(res.offers)["working_capital_advance"]
    assert o.term_days == 120
    assert o.amount == 30_000.0  # 100,000 x 0.5 x 0.6; holdback cap 0.5 x 66,667 / 1.04 higher
    assert o.term_pd == pytest.approx(tpd, rel=1e-12)
    assert o.apr == pytest.approx(0.06 + tpd * 0.6 * 3 + 0.05, rel=1e-12)  # 360/120 = 3
    assert o.expected_loss == pytest.approx(tpd * 0.6 * 30_000, abs=0.005)


def test_receivables_term_follows_the_invoices_and_is_priced_for_risk() -> None:
    # Open invoices 50,000 due in 165 days on average: term 165 + 15 grace = 180 (max 180).
    # PD 0.19 -> term PD 0.1; risk 0.1 x 0.45 x 2 = 0.09; APR 0.06 + 0.09 + 0.015 + 0.025 = 0.19.
    # Grade E factor 0.5: 50,000 x 0.85 x 0.5 = 21,250 -> 21,200.
    bases = _bases(open_receivables=50_000.0, receivables_count=3, receivables_days_to_due=165.0)
    res = make_offers(_decision(pd=0.19, grade="E"), bases, _policy())
    o = _by_product(res.offers)["receivables_financing"]
    assert o.term_days == 180
    assert o.apr == pytest.approx(0.19, abs=1e-12)
    assert o.amount == 21_200.0
    assert o.total_cost == pytest.approx(2014.0, abs=0.005)  # 21,200 x 0.19 x 0.5
    assert o.expected_loss == pytest.approx(954.0, abs=0.005)  # 0.1 x 0.45 x 21,200
    assert o.repayment.method == "invoice_collection"
    assert "3 open invoice(s)" in o.repayment.summary


def test_receivables_term_has_a_floor() -> None:
    # Invoices due in 4.2 days: ceil(4.2) + 15 = 20 days, raised to the 30-day minimum.
    bases = _bases(open_receivables=10_000.0, receivables_count=1, receivables_days_to_due=4.2)
    o = _by_product(make_offers(_decision(), bases, _policy()).offers)["receivables_financing"]
    assert o.term_days == 30


def test_tax_refund_advance() -> None:
    # Pending refunds 20,000 x 0.9 x grade B 1.0 = 18,000; term 90.
    bases = _bases(pending_tax_refunds=20_000.0, tax_refund_count=4)
    o = _by_product(make_offers(_decision(), bases, _policy()).offers)["tax_refund_advance"]
    tpd = 1 - 0.9801**0.25
    assert o.amount == 18_000.0
    assert o.term_days == 90
    assert o.apr == pytest.approx(0.06 + tpd * 0.3 * 4 + 0.03, rel=1e-12)
    assert o.repayment.method == "tax_refund"


def test_policy_currency_converts_the_bases() -> None:
    p = _policy().model_copy(update={"currency": "CNY", "usd_rate": 7.0})
    o = _by_product(make_offers(_decision(), _bases(settlements_180d=10_000.0), p).offers)[
        "working_capital_advance"
    ]
    assert o.currency == "CNY"
    assert o.base_amount == 70_000.0
    assert o.amount == 28_000.0  # 70,000 x 0.5 x 0.8


def test_pd_above_cutoff_declines_with_the_reason() -> None:
    res = make_offers(
        _decision(pd=0.21, grade="E"),
        _bases(settlements_180d=120_000.0, pending_tax_refunds=10_000.0),
        _policy(),
    )
    d = _by_product(res.declines)
    assert [r.code for r in d["working_capital_advance"].reasons] == ["pd_above_cutoff"]
    assert "21.0%" in d["working_capital_advance"].reasons[0].message
    assert "20.0%" in d["working_capital_advance"].reasons[0].message
    # The tax-refund advance has a higher cutoff (0.25) and is still offered.
    assert "tax_refund_advance" in _by_product(res.offers)


def test_thin_file_declines() -> None:
    res = make_offers(
        _decision(months_of_history=4),
        _bases(settlements_180d=120_000.0, pending_tax_refunds=10_000.0),
        _policy(),
    )
    d = _by_product(res.declines)
    assert [r.code for r in d["working_capital_advance"].reasons] == ["thin_file"]
    assert "4 months" in d["working_capital_advance"].reasons[0].message
    # 3 months suffice for the tax-refund advance.
    assert "tax_refund_advance" in _by_product(res.offers)
    # The scoring service's own thin-file flag declines every product.
    flagged = make_offers(_decision(thin_file=True), _bases(settlements_180d=120_000.0), _policy())
    assert not flagged.offers
    assert all(any(r.code == "thin_file" for r in x.reasons) for x in flagged.declines)


def test_volume_too_small_and_nothing_to_finance() -> None:
    # 1,500 x 0.5 x 0.8 = 600 < minimum 1,000; no invoices; no refunds.
    res = make_offers(_decision(), _bases(settlements_180d=1_500.0), _policy())
    assert not res.offers
    d = _by_product(res.declines)
    wca = d["working_capital_advance"].reasons
    assert [r.code for r in wca] == ["volume_too_small"]
    assert "1,500" in wca[0].message and "1,000" in wca[0].message
    assert d["receivables_financing"].reasons[0].message == "no open B2B invoices to finance"


def test_grade_not_eligible_and_several_reasons_at_once() -> None:
    res = make_offers(
        _decision(pd=0.5, grade="F", months_of_history=2), _bases(settlements_180d=1e5), _policy()
    )
    codes = [r.code for r in _by_product(res.declines)["working_capital_advance"].reasons]
    assert codes == ["thin_file", "pd_above_cutoff", "grade_not_eligible"]


def test_offer_set_carries_the_decision_and_policy() -> None:
    res = make_offers(
        _decision(
            decision_id="d-1", data_sufficiency={"thin_file": False, "months_of_history": 30}
        ),
        _bases(settlements_180d=50_000.0),
        _policy(),
    )
    assert (res.firm_id, res.decision_id, res.grade, res.score) == ("F1", "d-1", "B", 640)
    assert res.policy == {"name": "test", "version": "7"}
    assert len(res.offers) + len(res.declines) == 3  # one entry per enabled product
    assert res.model_dump(mode="json")["offers"][0]["product"] == "working_capital_advance"


def test_default_policy_makes_offers() -> None:
    res = make_offers(
        _decision(pd=0.015, grade="B"),
        _bases(settlements_180d=200_000.0, open_receivables=40_000.0, receivables_days_to_due=45),
        default_policy(),
    )
    names = [o.product for o in res.offers]
    assert names == ["working_capital_advance", "receivables_financing"]
    for o in res.offers:
        assert 0 < o.apr < 0.5
        assert o.total_repayable == pytest.approx(o.amount + o.total_cost, abs=0.01)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"pd": 1.5}, "pd must be between 0 and 1"),
        ({"pd": None}, "lacks pd"),
        ({"as_of": "not a date"}, "not a date"),
    ],
)
def test_bad_decisions_are_refused(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(OfferError, match=message):
        make_offers(_decision(**bad), _bases(), _policy())
