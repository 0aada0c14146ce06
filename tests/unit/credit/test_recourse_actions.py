"""The seller-recourse action library (:mod:`credit.actions`) on hand-written records.

One firm, scored as of T = 2025-01-01, with records chosen so that every rule of the
library is visible: what "as it stands" keeps and resets, what a projection repeats and
how, which invoices each action pays and when, the texts and parameters it reports, and
that nothing given to it is changed in place.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pandas as pd
import pytest

from credit import actions as act
from credit.actions import (
    ACTION_NAMES,
    ACTIONS,
    EXPRESS_DAYS,
    EXPRESS_PREMIUM_USD_PER_KG,
    FIXED_FEATURES,
    NOW_DAYS,
    Book,
    Cost,
    Step,
    action,
    apply_plan,
    apply_steps,
    as_it_stands,
    project,
    start,
)
from credit.ingest import validate_records
from features.catalog import feature_names
from features.pipeline import compute
from tests.record_support import payment

T = pd.Timestamp("2025-01-01")
DAY = pd.Timedelta(days=1)
FIRM = {
    "firm_id": "F1",
    "registered_at": "2021-05-01",
    "business_model": "mixed",
    "main_category": "home_furnishings",
    "home_region": "CN-ZJ",
}


def _decl(
    did: str,
    declared: str,
    value: float,
    direction: str = "export",
    refund: float = 0.0,
    refund_status: str = "none",
    settled: str | None = None,
) -> dict[str, Any]:
    return {
        "declaration_id": did,
        "firm_id": "F1",
        "declared_at": declared,
        "direction": direction,
        "regime": "9610",
        "hs_code": "940360",
        "origin_country": "CN" if direction == "export" else "VN",
        "destination_country": "US" if direction == "export" else "CN",
        "value_usd": value,
        "quantity": 5.0,
        "status": "cleared",
        "tax_refund_usd": refund,
        "tax_refund_status": refund_status,
        "tax_refund_settled_at": settled,
    }


def _ship(
    sid: str,
    shipped: str,
    closed: str | None,
    status: str,
    kg: float,
    declaration: str | None = None,
) -> dict[str, Any]:
    return {
        "shipment_id": sid,
        "firm_id": "F1",
        "declaration_id": declaration,
        "shipped_at": shipped,
        "closed_at": closed,
        "mode": "postal",
        "origin_country": "CN",
        "destination_country": "US",
        "destination_type": "consumer",
        "weight_kg": kg,
        "declared_value_usd": 120.0,
        "status": status,
    }


def records() -> dict[str, list[dict[str, Any]]]:
    """The firm's records (timestamps as ISO strings, as a provider sends them).

    With a 90-day horizon the projection repeats what is dated from 2024-10-03 on.
    """
    payments = [
        # supplier invoices overdue and unpaid at T (S2 is paid after T: unpaid at T)
        payment("S1", "supplier_payment", 100.0, "2024-09-01", "2024-10-01", None, "SUP1"),
        payment("S2", "supplier_payment", 300.0, "2024-10-01", "2024-11-01", "2025-01-10", "SUP2"),
        payment("S3", "supplier_payment", 200.0, "2024-11-01", "2024-12-01", None, "SUP1"),
        # due after T, unpaid
        payment("S4", "supplier_payment", 50.0, "2024-12-01", "2025-01-15", None, "SUP3"),
        # paid late, before T: history
        payment("S5", "supplier_payment", 70.0, "2024-08-01", "2024-09-01", "2024-09-20", "SUP2"),
        # paid early (its copy is paid on time), and paid late (its copy is late)
        payment("S8", "supplier_payment", 40.0, "2024-12-01", "2024-12-31", "2024-12-20", "SUP3"),
        payment("S9", "supplier_payment", 60.0, "2024-10-10", "2024-11-10", "2024-12-01", "SUP3"),
        # issued after T: not known
        payment("S6", "supplier_payment", 999.0, "2025-01-05", "2025-02-05", None, "SUP1"),
        # issued exactly at T: not known either
        payment("S7", "supplier_payment", 888.0, "2025-01-01", "2025-02-01", None, "SUP1"),
        # receivables overdue and unpaid
        payment("B1", "b2b_receipt", 500.0, "2024-10-15", "2024-11-15", None, "BUY1"),
        payment("B2", "b2b_receipt", 250.0, "2024-11-15", "2024-12-15", None, "BUY2"),
        # a receivable not yet due, and one collected
        payment("B3", "b2b_receipt", 150.0, "2024-12-10", "2025-01-10", None, "BUY1"),
        payment("B4", "b2b_receipt", 400.0, "2024-09-15", "2024-10-15", "2024-10-20", "BUY2"),
        # a loan: disbursed, one instalment paid, one paid after T, one due later
        payment("LD1", "loan_disbursement", 1200.0, "2024-11-01", None, "2024-11-01", "LEND1"),
        payment("LR1", "loan_repayment", 400.0, "2024-11-01", "2024-12-01", "2024-12-01", "LEND1"),
        payment("LR2", "loan_repayment", 400.0, "2024-11-01", "2024-12-31", "2025-01-02", "LEND1"),
        payment("LR3", "loan_repayment", 400.0, "2024-11-01", "2025-01-31", None, "LEND1"),
        # platform money
        payment("P1", "settlement", 1000.0, "2024-12-10", None, "2024-12-10", "AMAZON"),
        payment("R1", "refund", 80.0, "2024-12-20", None, "2024-12-20", "AMAZON"),
        payment("R0", "refund", 30.0, "2024-09-20", None, "2024-09-20", "AMAZON"),
    ]
    customs = [
        _decl("C0", "2024-08-01", 2000.0),
        _decl("C1", "2024-11-28", 1000.0, refund=100.0, refund_status="paid", settled="2024-12-15"),
        # refund paid after T: pending at T
        _decl("C2", "2024-12-10", 500.0, refund=50.0, refund_status="paid", settled="2025-01-20"),
        # refund denied after T: pending at T
        _decl("C5", "2024-12-12", 400.0, refund=40.0, refund_status="denied", settled="2025-02-01"),
        _decl("C3", "2024-12-01", 300.0, direction="import"),
        _decl("C4", "2025-01-02", 700.0),
    ]
    shipments = [
        _ship("SH0", "2024-09-01", "2024-09-20", "delivered", 1.0, "C0"),
        _ship("SH1", "2024-12-01", "2024-12-20", "delivered", 2.0, "C1"),
        _ship("SH2", "2024-11-15", "2024-12-30", "lost", 3.0),
        _ship("SH3", "2024-10-20", "2024-12-01", "returned", 4.0, "C0"),
        _ship("SH4", "2024-12-29", "2025-01-05", "delivered", 5.0),  # in transit at T
        _ship("SH5", "2024-10-05", "2024-11-01", "damaged", 6.0),
        _ship("SH6", "2024-12-27", "2024-12-31", "delivered", 7.0),
        _ship("SH7", "2025-01-03", None, "in_transit", 8.0),
    ]
    loans = [
        {
            "loan_id": "LN1",
            "firm_id": "F1",
            "product": "working_capital_advance",
            "applied_at": "2024-10-25",
            "disbursed_at": "2024-11-01",
            "amount_usd": 1200.0,
            "term_days": 90,
            "defaulted": None,
            "default_at": None,
        },
        {  # disbursed after T: not disbursed yet, outcome unknown
            "loan_id": "LN2",
            "firm_id": "F1",
            "product": "receivables_financing",
            "applied_at": "2024-12-20",
            "disbursed_at": "2025-01-03",
            "amount_usd": 800.0,
            "term_days": 60,
            "defaulted": True,
            "default_at": "2025-04-10",
        },
        {  # defaulted after T: outcome unknown at T
            "loan_id": "LN0",
            "firm_id": "F1",
            "product": "tax_refund_advance",
            "applied_at": "2023-01-01",
            "disbursed_at": "2023-01-10",
            "amount_usd": 500.0,
            "term_days": 120,
            "defaulted": True,
            "default_at": "2025-02-01",
        },
        {  # applied after T
            "loan_id": "LN3",
            "firm_id": "F1",
            "product": "working_capital_advance",
            "applied_at": "2025-01-05",
            "disbursed_at": None,
            "amount_usd": 300.0,
            "term_days": 30,
            "defaulted": None,
            "default_at": None,
        },
    ]
    return {"customs": customs, "shipments": shipments, "payments": payments, "loans": loans}


ID = {"customs": "declaration_id", "shipments": "shipment_id", "payments": "payment_id",
      "loans": "loan_id"}  # fmt: skip


def _by_id(book: Book, kind: str) -> dict[str, dict[str, Any]]:
    return {str(r[ID[kind]]): r for r in book.records[kind]}


def _pays(book: Book) -> dict[str, dict[str, Any]]:
    return _by_id(book, "payments")


@pytest.fixture
def book() -> Book:
    return as_it_stands(records(), FIRM, T)


def _ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


# -- as it stands -----------------------------------------------------------------------------


def test_as_it_stands_leaves_out_what_is_dated_at_or_after_t(book: Book) -> None:
    assert book.as_of == T and book.horizon_days == NOW_DAYS and book.scored_at == T + 7 * DAY
    assert book.projected == set()
    assert "S6" not in _pays(book) and "S7" not in _pays(book)
    assert "C4" not in _by_id(book, "customs")
    assert "SH7" not in _by_id(book, "shipments")
    assert "LN3" not in _by_id(book, "loans")
    assert len(book.records["payments"]) == len(records()["payments"]) - 2
    # timestamps become naive pandas timestamps
    s1 = _pays(book)["S1"]
    assert s1["occurred_at"] == _ts("2024-09-01") and isinstance(s1["occurred_at"], pd.Timestamp)
    assert s1["due_at"] == _ts("2024-10-01") and s1["paid_at"] is None


def test_as_it_stands_resets_states_reached_at_or_after_t(book: Book) -> None:
    pays = _pays(book)
    assert pays["S2"]["paid_at"] is None  # paid 2025-01-10
    assert pays["LR2"]["paid_at"] is None  # paid 2025-01-02
    assert pays["S5"]["paid_at"] == _ts("2024-09-20")  # paid before T: kept
    assert pays["LR3"]["due_at"] == _ts("2025-01-31")  # a contract term may be future
    customs = _by_id(book, "customs")
    assert customs["C1"]["tax_refund_status"] == "paid"
    assert customs["C1"]["tax_refund_settled_at"] == _ts("2024-12-15")
    for did in ("C2", "C5"):  # paid / denied after T: pending
        assert customs[did]["tax_refund_status"] == "pending"
        assert customs[did]["tax_refund_settled_at"] is None
    assert customs["C0"]["tax_refund_status"] == "none"
    ships = _by_id(book, "shipments")
    assert ships["SH4"]["status"] == "in_transit" and ships["SH4"]["closed_at"] is None
    assert ships["SH2"]["status"] == "lost" and ships["SH2"]["closed_at"] == _ts("2024-12-30")
    loans = _by_id(book, "loans")
    assert loans["LN1"]["disbursed_at"] == _ts("2024-11-01") and loans["LN1"]["defaulted"] is None
    assert loans["LN2"]["disbursed_at"] is None
    assert loans["LN2"]["defaulted"] is None and loans["LN2"]["default_at"] is None
    assert loans["LN0"]["disbursed_at"] == _ts("2023-01-10")
    assert loans["LN0"]["defaulted"] is None and loans["LN0"]["default_at"] is None


def test_a_state_reached_exactly_at_t_is_not_reached() -> None:
    recs = {"payments": [payment("X1", "supplier_payment", 10.0, "2024-12-01", "2024-12-15",
                              "2025-01-01T00:00:00")]}  # fmt: skip
    b = as_it_stands(recs, None, "2025-01-01")
    assert b.records["payments"][0]["paid_at"] is None
    assert b.firm is None
    assert b.records["customs"] == [] and b.records["loans"] == []


def test_as_it_stands_takes_tz_aware_times_dataframes_and_copies_the_firm() -> None:
    recs = records()
    frames = {k: pd.DataFrame(v) for k, v in recs.items()}
    a = as_it_stands(recs, FIRM, "2025-01-01T08:00:00+08:00")  # = T in UTC
    b = as_it_stands(frames, FIRM, T)
    assert a.as_of == T
    assert sorted(_pays(a)) == sorted(_pays(b))
    assert _pays(b)["S2"]["paid_at"] is None
    assert _by_id(b, "shipments")["SH4"]["status"] == "in_transit"
    tz = {"payments": [payment("X1", "settlement", 5.0, "2024-12-31T23:30:00-02:00", None,
                            "2024-12-31T23:30:00-02:00")]}  # fmt: skip
    assert as_it_stands(tz, None, T).records["payments"] == []  # 01:30 UTC on Jan 1st
    assert a.firm == FIRM and a.firm is not FIRM
    with pytest.raises(ValueError, match="as_of"):
        as_it_stands(recs, FIRM, None)


# -- projection -------------------------------------------------------------------------------


def test_project_repeats_the_last_horizon_shifted_forward(book: Book) -> None:
    p = project(book, 90)
    shift = 90 * DAY
    assert p.horizon_days == 90 and p.as_of == T and p.scored_at == _ts("2025-04-01")
    pays = _pays(p)
    # trade payments from 2024-10-03 on repeat; loan flows and older ones do not
    copied = {i.removesuffix(".p90") for i in pays if i.endswith(".p90")}
    assert copied == {"S3", "S4", "S8", "S9", "B1", "B2", "B3", "P1", "R1"}
    assert p.projected == (
        {f"{i}.p90" for i in copied}
        | {"C1.p90", "C2.p90", "C5.p90", "C3.p90"}
        | {"SH1.p90", "SH2.p90", "SH3.p90", "SH4.p90", "SH5.p90", "SH6.p90"}
    )
    for kind, (event, states, terms) in act.TIMES.items():
        if kind == "loans":
            continue
        originals = _by_id(book, kind)
        for rid, r in _by_id(p, kind).items():
            if rid not in p.projected:
                assert r is originals[rid]  # the records as they stand are kept as they are
                continue
            o = originals[rid.removesuffix(".p90")]
            assert r[event] == o[event] + shift and r[event] >= T
            for col in (*states, *terms):
                assert r[col] == (None if o[col] is None else o[col] + shift)
            same = set(o) - {event, *states, *terms, ID[kind], "declaration_id"}
            assert {c: r[c] for c in same} == {c: o[c] for c in same}
    # unknown at T stays unknown in the copy
    assert pays["S3.p90"]["paid_at"] is None
    assert pays["S9.p90"]["paid_at"] == _ts("2024-12-01") + shift
    ships = _by_id(p, "shipments")
    assert ships["SH4.p90"]["status"] == "in_transit" and ships["SH4.p90"]["closed_at"] is None
    customs = _by_id(p, "customs")
    assert customs["C2.p90"]["tax_refund_status"] == "pending"
    assert customs["C2.p90"]["tax_refund_settled_at"] is None
    # loans are never projected
    assert p.records["loans"] == book.records["loans"]
    assert book.projected == set() and "S3.p90" not in _pays(book)  # book unchanged


def test_a_copied_shipment_points_at_the_copied_declaration_only(book: Book) -> None:
    ships = _by_id(project(book, 90), "shipments")
    assert ships["SH1.p90"]["declaration_id"] == "C1.p90"  # C1 repeated too
    assert ships["SH3.p90"]["declaration_id"] == "C0"  # C0 is older than 90 days
    assert ships["SH2.p90"]["declaration_id"] is None


def test_project_keeps_copied_ids_within_64_characters() -> None:
    long_id = "X" * 62
    recs = {"payments": [payment(long_id, "settlement", 5.0, "2024-12-20", None, "2024-12-20")]}
    p = project(as_it_stands(recs, None, T), 180)
    ids = [r["payment_id"] for r in p.records["payments"]]
    assert ids[0] == long_id
    assert len(ids[1]) == 64 and ids[1] == "X" * 59 + ".p180"
    assert p.projected == {ids[1]}


def test_project_over_no_time_adds_nothing(book: Book) -> None:
    p = project(book, 0)
    assert p.horizon_days == 0 and p.projected == set()
    assert p.records == book.records and p.records is not book.records


# -- start, apply_steps, apply_plan -------------------------------------------------------------


def test_start_projects_only_past_a_week(book: Book) -> None:
    now, applied = start(book, NOW_DAYS)
    assert applied == [] and now.projected == set() and now.scored_at == T + 7 * DAY
    assert now.records == book.records
    later, applied = start(book, 90)
    assert later.projected == project(book, 90).projected
    assert [a.action for a in applied] == ["keep_trading"]
    kt = applied[0]
    # exports of the projection: C1, C2, C5 repeated (the import C3 does not count)
    assert kt.params == {"months": 3, "export_value_usd": 1900.0}
    assert kt.text == (
        "Keep exporting at your current level for 3 more months (about $633 of declared "
        "exports a month), then ask again."
    )
    assert kt.cost == Cost(days=90, effort="3 months of trading as now")
    assert kt.records == len(later.projected)
    assert start(book, 180)[1][0].params["months"] == 6


def test_apply_plan_reports_each_applied_step_and_leaves_out_the_rest() -> None:
    recs = records()
    _, applied = apply_plan(recs, FIRM, T, NOW_DAYS, [Step("repay_loans", 1.0)])
    assert [a.action for a in applied] == ["repay_loans"]
    # a firm without supplier arrears: the step does not apply and is left out
    clean = {"payments": [p for p in recs["payments"] if p["kind"] != "supplier_payment"]}
    book, applied = apply_plan(
        clean, FIRM, T, 90, [Step("settle_supplier_arrears", 1.0), Step("cut_refunds", 0.5)]
    )
    assert [a.action for a in applied] == ["keep_trading", "cut_refunds"]
    assert book.scored_at == _ts("2025-04-01")


def test_apply_steps_reuses_a_started_book_without_changing_it(book: Book) -> None:
    started = start(book, 90)
    snapshot = copy.deepcopy(started[0].records)
    out, applied = apply_steps(book, 90, [Step("cut_refunds", 0.5)], started=started)
    assert [a.action for a in applied] == ["keep_trading", "cut_refunds"]
    assert started[0].records == snapshot and len(started[1]) == 1
    assert _pays(out)["R1.p90"]["amount_usd"] == 40.0


def test_over_time_actions_need_a_horizon_past_a_week() -> None:
    for name in ("pay_suppliers_on_time", "cut_refunds", "ship_tracked_express"):
        assert action(name).timing == "over_time"
        with pytest.raises(ValueError, match=f"{name} takes time"):
            apply_plan(records(), FIRM, T, NOW_DAYS, [Step(name, action(name).levels[0])])
    # the now actions run at a week
    for name in ("settle_supplier_arrears", "collect_receivables", "repay_loans"):
        assert action(name).timing == "now"
        apply_plan(records(), FIRM, T, NOW_DAYS, [Step(name, 1.0)])


def test_action_lookup() -> None:
    assert [a.name for a in ACTIONS] == [
        "settle_supplier_arrears",
        "collect_receivables",
        "repay_loans",
        "pay_suppliers_on_time",
        "cut_refunds",
        "ship_tracked_express",
    ]
    assert (*(a.name for a in ACTIONS), "keep_trading") == ACTION_NAMES
    for a in ACTIONS:
        assert action(a.name) is a
        assert a.levels and all(0 < x <= 1 for x in a.levels)
        assert set(a.side_effects) <= set(feature_names())
    assert action("settle_supplier_arrears").levels == (0.5, 1.0)
    assert action("cut_refunds").levels == (0.5, 0.2)
    with pytest.raises(KeyError) as err:
        action("pay_taxes")
    msg = str(err.value)
    assert "pay_taxes" in msg and all(a.name in msg for a in ACTIONS)
    assert "keep_trading" not in msg
    with pytest.raises(KeyError, match="keep_trading is not a step"):
        action("keep_trading")
    with pytest.raises(KeyError):
        apply_plan(records(), FIRM, T, NOW_DAYS, [Step("pay_taxes", 1.0)])


def test_fixed_features_are_catalog_features_no_action_discloses() -> None:
    names = set(feature_names())
    assert set(FIXED_FEATURES) <= names and len(set(FIXED_FEATURES)) == len(FIXED_FEATURES)
    assert {"firm_age_days", "months_of_history", "past_default_count"} <= set(FIXED_FEATURES)
    for a in ACTIONS:
        assert not set(a.side_effects) & set(FIXED_FEATURES), a.name


# -- settle supplier arrears -------------------------------------------------------------------


def test_settle_half_pays_the_oldest_overdue_invoices_up_to_half(book: Book) -> None:
    out, applied = apply_steps(book, NOW_DAYS, [Step("settle_supplier_arrears", 0.5)])
    pays = _pays(out)
    # overdue at T: S1 (due Oct 1st, $100), S2 (Nov 1st, $300), S3 (Dec 1st, $200) = $600;
    # half is $300: S1 then S2 ($400 >= $300)
    assert pays["S1"]["paid_at"] == T and pays["S2"]["paid_at"] == T
    assert pays["S3"]["paid_at"] is None and pays["S4"]["paid_at"] is None
    (a,) = applied
    assert a.action == "settle_supplier_arrears"
    assert a.params == {"invoices": 2, "amount_usd": 400.0, "all": False}
    assert (
        a.text == "Pay your 2 oldest overdue supplier invoices ($400 of the 3 overdue) this week."
    )
    assert a.cost == Cost(cash_usd=400.0, effort="a payment run") and a.records == 2


def test_settle_all_pays_every_overdue_invoice_and_nothing_else(book: Book) -> None:
    out, (a,) = apply_steps(book, NOW_DAYS, [Step("settle_supplier_arrears", 1.0)])
    before, after = _pays(book), _pays(out)
    paid_now = {i for i, r in after.items() if r["paid_at"] != before[i]["paid_at"]}
    assert paid_now == {"S1", "S2", "S3"}
    assert all(after[i]["paid_at"] == T for i in paid_now)
    assert a.params == {"invoices": 3, "amount_usd": 600.0, "all": True}
    assert a.text == "Pay all 3 overdue supplier invoices ($600) this week."
    assert a.cost.cash_usd == 600.0 and a.cost.days == 0


def test_settle_pays_at_least_one_invoice(book: Book) -> None:
    b = book.copy()
    a = act.settle_supplier_arrears(b, 0.0)
    assert a is not None and a.params == {"invoices": 1, "amount_usd": 100.0, "all": False}
    assert a.text == "Pay your oldest overdue supplier invoice ($100 of the 3 overdue) this week."
    assert _pays(b)["S1"]["paid_at"] == T and _pays(b)["S2"]["paid_at"] is None


def test_settle_one_overdue_invoice_and_ties_by_id() -> None:
    one = {"payments": [payment("S1", "supplier_payment", 1234.4, "2024-09-01", "2024-10-01")]}
    _, (a,) = apply_plan(one, None, T, NOW_DAYS, [Step("settle_supplier_arrears", 0.5)])
    assert a.text == "Pay the overdue supplier invoice ($1,234) this week."
    assert a.params == {"invoices": 1, "amount_usd": 1234.4, "all": True}
    tied = {"payments": [
        payment("Sb", "supplier_payment", 100.0, "2024-09-01", "2024-10-01"),
        payment("Sa", "supplier_payment", 100.0, "2024-09-01", "2024-10-01"),
    ]}  # fmt: skip
    out, (a,) = apply_plan(tied, None, T, NOW_DAYS, [Step("settle_supplier_arrears", 0.5)])
    assert {r["payment_id"]: r["paid_at"] for r in out.records["payments"]} == {
        "Sa": T,
        "Sb": None,
    }


def test_settle_does_not_apply_without_overdue_supplier_invoices() -> None:
    # due at T exactly is not overdue; paid before T is not unpaid
    recs = {"payments": [
        payment("S1", "supplier_payment", 10.0, "2024-12-01", "2025-01-01"),
        payment("S2", "supplier_payment", 10.0, "2024-11-01", "2024-12-01", "2024-12-20"),
        payment("S3", "supplier_payment", 10.0, "2024-11-01", None),
    ]}  # fmt: skip
    b = as_it_stands(recs, None, T)
    assert act.settle_supplier_arrears(b, 1.0) is None
    assert b.records == as_it_stands(recs, None, T).records


def test_settle_leaves_projected_copies_unpaid(book: Book) -> None:
    out, applied = apply_steps(book, 90, [Step("settle_supplier_arrears", 1.0)])
    assert applied[-1].params["invoices"] == 3
    assert _pays(out)["S3.p90"]["paid_at"] is None
    assert _pays(out)["S3"]["paid_at"] == T


# -- collect receivables, repay loans --------------------------------------------------------


def test_collect_receivables(book: Book) -> None:
    out, (a,) = apply_steps(book, NOW_DAYS, [Step("collect_receivables", 1.0)])
    pays = _pays(out)
    assert pays["B1"]["paid_at"] == T and pays["B2"]["paid_at"] == T
    assert pays["B3"]["paid_at"] is None  # not yet due
    assert pays["B4"]["paid_at"] == _ts("2024-10-20")  # collected before
    assert pays["S1"]["paid_at"] is None  # supplier invoices are not receivables
    assert a.params == {"invoices": 2, "amount_usd": 750.0, "buyers": 2}
    assert a.text == (
        "Collect the 2 overdue invoices your buyers owe you ($750, 2 buyers) this week."
    )
    assert a.cost == Cost(effort="chasing 2 buyers") and a.records == 2
    b = book.copy()
    one = act.collect_receivables(b, 0.0)  # at least one: the oldest
    assert one is not None and one.params == {"invoices": 1, "amount_usd": 500.0, "buyers": 1}
    assert one.text == "Collect the overdue invoice your buyer owes you ($500) this week."
    assert one.cost.effort == "chasing 1 buyer"
    assert act.collect_receivables(as_it_stands({}, None, T), 1.0) is None


def test_repay_loans_pays_every_unpaid_instalment_today(book: Book) -> None:
    out, (a,) = apply_steps(book, NOW_DAYS, [Step("repay_loans", 1.0)])
    pays = _pays(out)
    assert pays["LR2"]["paid_at"] == T and pays["LR3"]["paid_at"] == T
    assert pays["LR1"]["paid_at"] == _ts("2024-12-01")
    assert pays["LD1"]["paid_at"] == _ts("2024-11-01")
    assert a.params == {"instalments": 2, "amount_usd": 800.0, "lenders": 1}
    assert a.text == "Repay your outstanding loan now: the 2 remaining instalments ($800)."
    assert a.cost == Cost(cash_usd=800.0, effort="an early repayment") and a.records == 2
    # two lenders, one instalment each
    recs = {"payments": [
        payment("L1", "loan_repayment", 100.0, "2024-11-01", "2025-02-01", None, "LEND1"),
        payment("L2", "loan_repayment", 50.0, "2024-11-01", "2025-03-01", None, "LEND2"),
        payment("L3", "loan_repayment", 50.0, "2024-11-01", None, None, "LEND2"),  # no due date
    ]}  # fmt: skip
    out, (a,) = apply_plan(recs, None, T, NOW_DAYS, [Step("repay_loans", 1.0)])
    assert a.text == "Repay your outstanding loans now: the 2 remaining instalments ($150)."
    assert a.params["lenders"] == 2
    assert _pays(out)["L3"]["paid_at"] is None
    _, applied = apply_plan(records(), FIRM, "2024-11-01", NOW_DAYS, [Step("repay_loans", 1.0)])
    assert applied == []  # no instalment is known before the loan


# -- over-time actions ---------------------------------------------------------------------------


def test_pay_suppliers_on_time_pays_on_the_due_date_within_the_horizon(book: Book) -> None:
    out, applied = apply_steps(book, 90, [Step("pay_suppliers_on_time", 1.0)])
    before = _pays(project(book, 90))
    after = _pays(out)
    changed = {i for i in after if after[i]["paid_at"] != before[i]["paid_at"]}
    # due in [2025-01-01, 2025-04-01): S4 (Jan 15th), S3.p90 (Mar 1st, unpaid), S9.p90
    # (due Feb 8th, paid late Mar 1st); S8.p90 was paid early and S4.p90 is due in April
    assert changed == {"S4", "S3.p90", "S9.p90"}
    for i in changed:
        assert after[i]["paid_at"] == after[i]["due_at"]
    assert after["S9.p90"]["paid_at"] == _ts("2025-02-08")
    assert after["S8.p90"]["paid_at"] == _ts("2025-03-20")
    assert after["S1"]["paid_at"] is None  # already overdue: settle_supplier_arrears' job
    a = applied[-1]
    assert a.action == "pay_suppliers_on_time"
    assert a.params == {"invoices": 3, "amount_usd": 310.0, "months": 3}
    assert a.text == (
        "Pay every supplier invoice on its due date for the next 3 months (3 invoices, about $310)."
    )
    assert a.cost == Cost(cash_usd=310.0, days=90, effort="paying on the due date")
    assert a.records == 3


def test_pay_suppliers_on_time_does_not_apply_when_nothing_falls_due() -> None:
    recs = {"payments": [payment("S1", "supplier_payment", 10.0, "2024-06-01", "2024-07-01")]}
    _, applied = apply_plan(recs, None, T, 90, [Step("pay_suppliers_on_time", 1.0)])
    assert [a.action for a in applied] == ["keep_trading"]
    one = {"payments": [payment("S1", "supplier_payment", 10.0, "2024-12-20", "2025-01-20")]}
    # S1 is due in the horizon, its copy S1.p90 (due 2025-04-20) is not
    out, applied = apply_plan(one, None, T, 90, [Step("pay_suppliers_on_time", 1.0)])
    assert applied[-1].text == (
        "Pay every supplier invoice on its due date for the next 3 months (1 invoice, about $10)."
    )
    assert _pays(out)["S1"]["paid_at"] == _ts("2025-01-20")
    assert _pays(out)["S1.p90"]["paid_at"] is None


def test_cut_refunds_scales_the_projected_refunds_only(book: Book) -> None:
    for level, cut, amount, saved in ((0.5, 50, 40.0, 40.0), (0.2, 80, 16.0, 64.0)):
        out, applied = apply_steps(book, 90, [Step("cut_refunds", level)])
        pays = _pays(out)
        assert pays["R1.p90"]["amount_usd"] == pytest.approx(amount)
        assert pays["R1"]["amount_usd"] == 80.0 and pays["R0"]["amount_usd"] == 30.0
        assert pays["P1.p90"]["amount_usd"] == 1000.0
        a = applied[-1]
        assert a.action == "cut_refunds" and a.records == 1
        assert a.params == {"reduce_by_percent": cut, "months": 3, "refunds_usd_saved": saved}
        assert a.text == (
            f"Cut refunds by {cut}% over the next 3 months (about ${saved:,.0f} less refunded): "
            "clearer listings, quality checks."
        )
        assert a.cost == Cost(days=90, effort="fewer returns and disputes")
    # no refund in the last 90 days: nothing projected to cut
    old = {"payments": [payment("R0", "refund", 30.0, "2024-09-20", None, "2024-09-20")]}
    _, applied = apply_plan(old, None, T, 90, [Step("cut_refunds", 0.5)])
    assert [a.action for a in applied] == ["keep_trading"]


def test_ship_tracked_express_changes_the_projected_shipments(book: Book) -> None:
    assert EXPRESS_DAYS == 5
    out, applied = apply_steps(book, 90, [Step("ship_tracked_express", 1.0)])
    ships = _by_id(out, "shipments")
    express = 5 * DAY
    # closed five days after shipping, lost -> delivered, returned and damaged stay
    expected = {
        "SH1.p90": (_ts("2025-03-01") + express, "delivered"),
        "SH2.p90": (_ts("2025-02-13") + express, "delivered"),  # was lost
        "SH3.p90": (_ts("2025-01-18") + express, "returned"),
        "SH5.p90": (_ts("2025-01-03") + express, "damaged"),
        # closing at or after the scoring date (2025-04-01): still in transit
        "SH4.p90": (None, "in_transit"),  # shipped Mar 29th
        "SH6.p90": (None, "in_transit"),  # shipped Mar 27th: closes exactly on Apr 1st
    }
    for sid, (closed, status) in expected.items():
        r = ships[sid]
        assert (r["mode"], r["closed_at"], r["status"]) == ("express", closed, status), sid
    assert ships["SH6.p90"]["shipped_at"] + express == out.scored_at
    # the shipments as they stand are untouched
    for sid in ("SH0", "SH1", "SH2", "SH3", "SH4", "SH5", "SH6"):
        assert ships[sid] == _by_id(book, "shipments")[sid]
    a = applied[-1]
    kg = 2.0 + 3.0 + 4.0 + 5.0 + 6.0 + 7.0
    assert a.params == {"shipments": 6, "months": 3, "weight_kg": kg}
    assert a.text == (
        "Send your next 6 shipments by tracked express (3 months; roughly $81 more in freight)."
    )
    assert a.cost == Cost(cash_usd=kg * EXPRESS_PREMIUM_USD_PER_KG, days=90,
                          effort="switching carriers")  # fmt: skip
    assert a.records == 6


def test_ship_tracked_express_one_shipment_and_none() -> None:
    one = {"shipments": [_ship("X1", "2024-12-01", "2024-12-20", "lost", 1.5)]}
    out, applied = apply_plan(one, None, T, 90, [Step("ship_tracked_express", 1.0)])
    assert applied[-1].text == (
        "Send your next 1 shipment by tracked express (3 months; roughly $4 more in freight)."
    )
    copy_ = _by_id(out, "shipments")["X1.p90"]
    assert copy_["status"] == "delivered" and copy_["closed_at"] == _ts("2025-03-06")
    old = {"shipments": [_ship("X1", "2024-06-01", "2024-06-20", "lost", 1.5)]}
    _, applied = apply_plan(old, None, T, 90, [Step("ship_tracked_express", 1.0)])
    assert [a.action for a in applied] == ["keep_trading"]


# -- what a plan leaves alone ---------------------------------------------------------------------

ALL_NOW = [Step("settle_supplier_arrears", 1.0), Step("collect_receivables", 1.0),
           Step("repay_loans", 1.0)]  # fmt: skip
ALL_STEPS = [
    *ALL_NOW,
    Step("pay_suppliers_on_time", 1.0),
    Step("cut_refunds", 0.5),
    Step("ship_tracked_express", 1.0),
]


def test_records_given_to_a_plan_are_never_changed_in_place() -> None:
    recs = records()
    firm = dict(FIRM)
    before = copy.deepcopy(recs)
    book, applied = apply_plan(recs, firm, T, 90, ALL_STEPS)
    assert [a.action for a in applied] == ["keep_trading", *(s.action for s in ALL_STEPS)]
    assert recs == before and firm == FIRM
    # the book a plan starts from is not changed either (its records are replaced)
    base = as_it_stands(recs, firm, T)
    lists = {k: list(v) for k, v in base.records.items()}
    snapshot = copy.deepcopy(base.records)
    for horizon in (NOW_DAYS, 90, 180):
        steps = ALL_NOW if horizon == NOW_DAYS else ALL_STEPS
        apply_steps(base, horizon, steps)
        assert base.records == snapshot and base.projected == set()
        for k, v in base.records.items():
            assert all(a is b for a, b in zip(v, lists[k], strict=True))


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}


def test_acting_now_changes_nothing_before_t_but_paid_at_set_to_t() -> None:
    base = as_it_stands(records(), FIRM, T)
    out, applied = apply_plan(records(), FIRM, T, NOW_DAYS, ALL_NOW)
    assert [a.action for a in applied] == [s.action for s in ALL_NOW]
    assert out.firm == base.firm and out.projected == set()
    changed = set()
    for kind in ("customs", "shipments", "payments", "loans"):
        old, new = _by_id(base, kind), _by_id(out, kind)
        assert set(old) == set(new)
        for rid, r in old.items():
            d = _diff(r, new[rid])
            if d:
                assert kind == "payments" and set(d) == {"paid_at"}, (rid, d)
                assert d["paid_at"] == (None, T)
                changed.add(rid)
    assert changed == {"S1", "S2", "S3", "B1", "B2", "LR2", "LR3"}


def test_a_plan_over_time_changes_the_past_only_by_payments_from_t_on() -> None:
    base = as_it_stands(records(), FIRM, T)
    out, _ = apply_plan(records(), FIRM, T, 90, ALL_STEPS)
    for kind in ("customs", "shipments", "payments", "loans"):
        old, new = _by_id(base, kind), _by_id(out, kind)
        assert set(old) <= set(new)
        for rid in set(new) - set(old):
            assert rid in out.projected and rid.endswith(".p90")
            event = act.TIMES[kind][0]
            assert new[rid][event] >= T
        for rid, r in old.items():
            d = _diff(r, new[rid])
            if d:
                assert kind == "payments" and set(d) == {"paid_at"}, (rid, d)
                assert d["paid_at"][0] is None and d["paid_at"][1] >= T
    assert _pays(out)["S4"]["paid_at"] == _ts("2025-01-15")  # on its due date


# -- recomputed features and the data contract ------------------------------------------------


def _plain(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}


def _payload(book: Book) -> dict[str, list[dict[str, Any]]]:
    assert book.firm is not None
    return {
        "firms": [_plain(book.firm)],
        **{k: [_plain(r) for r in v] for k, v in book.records.items()},
    }


def test_settling_all_arrears_clears_the_overdue_feature_and_passes_the_contract(
    book: Book,
) -> None:
    base, _ = start(book, NOW_DAYS)
    settled, _ = apply_steps(book, NOW_DAYS, [Step("settle_supplier_arrears", 1.0)])
    assert base.scored_at == settled.scored_at == T + 7 * DAY
    v0 = compute(base.records, base.scored_at, firm=base.firm)
    v1 = compute(settled.records, settled.scored_at, firm=settled.firm)
    assert v0["supplier_overdue_unpaid_usd"] == 600.0  # S1 + S2 + S3
    assert v1["supplier_overdue_unpaid_usd"] == 0.0
    for f in FIXED_FEATURES:
        assert v0[f] == v1[f] or (math.isnan(v0[f]) and math.isnan(v1[f])), f
    for b in (settled, apply_plan(records(), FIRM, T, 90, ALL_STEPS)[0]):
        check = validate_records(_payload(b), ingestion_date=b.scored_at.date())
        assert not check.rejected, check.rejected[:3]
        assert {k: len(v) for k, v in check.accepted.items()} == {
            "firms": 1,
            **{k: len(v) for k, v in b.records.items()},
        }
