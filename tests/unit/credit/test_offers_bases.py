"""The amounts offers are sized on, from a hand-written timeline, point in time.

As of 2025-06-01 00:00 UTC, with the availability lags of ``features.pit`` (customs 3 days,
shipments and payments 1 day): a fact dated ``t`` is known when ``t + lag < as_of``. Every
row has a comment saying whether and why it counts.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from credit.offers import OfferError, compute_bases, monthly_activity, visible_records

AS_OF = "2025-06-01"


def _pay(
    kind: str,
    amount: float,
    occurred: str,
    due: str | None = None,
    paid: str | None = None,
    direction: str = "in",
) -> dict[str, Any]:
    return {
        "firm_id": "F1",
        "kind": kind,
        "direction": direction,
        "amount_usd": amount,
        "occurred_at": occurred,
        "due_at": due,
        "paid_at": paid,
    }


PAYMENTS = [
    _pay("settlement", 10_000.0, "2025-05-30", paid="2025-05-30"),  # counts: known 31 May
    _pay("settlement", 4_000.0, "2024-12-03", paid="2024-12-03"),  # counts: exactly 180 days
    _pay("settlement", 9_999.0, "2024-12-02", paid="2024-12-02"),  # out: 181 days before
    _pay("settlement", 7_777.0, "2025-05-31", paid="2025-05-31"),  # out: lands on 1 June
    _pay("b2b_receipt", 6_000.0, "2025-05-01", due="2025-06-11", paid="2025-06-05"),  # open
    _pay("b2b_receipt", 2_000.0, "2025-05-10", due="2025-07-11"),  # open: unpaid, due in 40 days
    _pay("b2b_receipt", 3_000.0, "2025-04-01", due="2025-06-01", paid="2025-05-20"),  # out: paid
    _pay("b2b_receipt", 1_500.0, "2025-04-02", due="2025-06-20", paid="2025-05-31"),  # open:
    # the payment of 31 May is known only on 1 June
    _pay("b2b_receipt", 5_000.0, "2025-03-01", due="2025-05-01"),  # out: overdue, not "not yet due"
    _pay("refund", 300.0, "2025-05-15", paid="2025-05-15", direction="out"),  # chart only
]


def _cus(declared: str, refund: float, status: str, settled: str | None) -> dict[str, Any]:
    return {
        "firm_id": "F1",
        "declared_at": declared,
        "direction": "export",
        "tax_refund_usd": refund,
        "tax_refund_status": status,
        "tax_refund_settled_at": settled,
    }


CUSTOMS = [
    _cus("2025-03-01", 1_000.0, "pending", None),  # pending
    _cus("2025-03-02", 2_000.0, "paid", "2025-07-01"),  # pending as of June: paid later
    _cus("2025-03-03", 4_000.0, "denied", "2025-05-01"),  # out: denied before as_of
    _cus("2025-02-01", 8_000.0, "paid", "2025-04-01"),  # out: paid before as_of
    _cus("2025-05-30", 16_000.0, "pending", None),  # out: customs data lands 3 days late
    _cus("2025-05-28", 500.0, "pending", None),  # counts: known 31 May
    _cus("2025-03-04", 700.0, "paid", "2025-05-30"),  # pending: the payment is known 2 June
    _cus("2024-01-01", 900.0, "pending", None),  # out: declared over 455 days ago
    _cus("2025-01-10", 0.0, "none", None),  # out: no refund claimed
]


def _shp(
    shipped: str, value: float, status: str, closed: str | None, dest: str = "overseas_warehouse"
) -> dict[str, Any]:
    return {
        "firm_id": "F1",
        "shipped_at": shipped,
        "closed_at": closed,
        "destination_type": dest,
        "declared_value_usd": value,
        "status": status,
    }


SHIPMENTS = [
    _shp("2025-05-01", 5_000.0, "delivered", "2025-05-20"),  # in stock
    _shp("2025-05-10", 3_000.0, "returned", "2025-06-10"),  # in stock: returned after as_of
    _shp("2025-05-12", 700.0, "lost", "2025-05-25"),  # out: lost before as_of
    _shp("2025-05-20", 250.0, "returned", "2025-05-31"),  # in stock: return known on 1 June
    _shp("2025-02-20", 900.0, "delivered", "2025-03-10"),  # out: over 90 days ago, taken as sold
    _shp("2025-05-15", 400.0, "delivered", "2025-05-20", dest="consumer"),  # out: not a warehouse
    _shp("2023-06-01", 10.0, "delivered", "2023-06-10", dest="consumer"),  # first record: history
]

RECORDS = {"payments": PAYMENTS, "customs": CUSTOMS, "shipments": SHIPMENTS}


def test_bases_from_a_hand_written_timeline() -> None:
    b = compute_bases(RECORDS, AS_OF)
    assert b.settlements_180d == 14_000.0  # 10,000 + 4,000
    assert b.open_receivables == 9_500.0  # 6,000 + 2,000 + 1,500
    assert b.receivables_count == 3
    # due in 10, 40 and 19 days: (6,000 x 10 + 2,000 x 40 + 1,500 x 19) / 9,500
    assert b.receivables_days_to_due == pytest.approx(168_500 / 9_500)
    assert b.pending_tax_refunds == 4_200.0  # 1,000 + 2,000 + 500 + 700
    assert b.tax_refund_count == 4
    assert b.warehouse_stock == 8_250.0  # 5,000 + 3,000 + 250
    assert b.warehouse_shipments == 3
    # first record 2023-06-01: 731 days = 24.0 months
    assert b.months_of_history == pytest.approx(731 / (365.25 / 12))


def test_records_on_or_after_as_of_change_nothing() -> None:
    before = compute_bases(RECORDS, AS_OF)
    later = {
        "payments": PAYMENTS
        + [
            _pay("settlement", 1e6, "2025-06-01", paid="2025-06-01"),
            _pay("b2b_receipt", 1e6, "2025-06-02", due="2025-08-01"),
        ],
        "customs": CUSTOMS + [_cus("2025-06-01", 1e6, "pending", None)],
        "shipments": SHIPMENTS + [_shp("2025-06-01", 1e6, "in_transit", None)],
    }
    assert compute_bases(later, AS_OF) == before


def test_state_is_rebuilt_as_of_the_date() -> None:
    vis = visible_records(RECORDS, AS_OF)
    pay = vis["payments"].set_index("amount_usd")
    assert pd.isna(pay.loc[6_000.0, "paid_at"])  # paid 5 June: unpaid on 1 June
    assert pd.isna(pay.loc[1_500.0, "paid_at"])  # paid 31 May, known 1 June: unpaid
    assert pay.loc[3_000.0, "paid_at"] == pd.Timestamp("2025-05-20")
    shp = vis["shipments"].set_index("declared_value_usd")
    assert shp.loc[3_000.0, "status"] == "in_transit"  # returned 10 June
    assert shp.loc[250.0, "status"] == "in_transit"  # returned 31 May, known 1 June
    assert shp.loc[5_000.0, "status"] == "delivered"
    cus = vis["customs"].set_index("tax_refund_usd")
    assert cus.loc[2_000.0, "tax_refund_status"] == "pending"  # paid 1 July
    assert 16_000.0 not in cus.index  # not yet available


def test_timezones_and_dataframes_are_accepted() -> None:
    df = pd.DataFrame(PAYMENTS)
    df["occurred_at"] = pd.to_datetime(df["occurred_at"]).dt.tz_localize("Asia/Shanghai")
    # 2025-05-31 00:00 Shanghai is 2025-05-30 16:00 UTC: the 7,777 is now known before a
    # UTC as_of, and 2024-12-03 00:00 Shanghai is 2024-12-02 16:00 UTC: the 4,000 falls out of
    # the 180-day window that starts at 2024-12-03 00:00 UTC.
    b = compute_bases({"payments": df}, "2025-06-01T00:00:00Z")
    assert b.settlements_180d == 10_000.0 + 7_777.0


def test_empty_records() -> None:
    b = compute_bases({}, AS_OF)
    assert (b.settlements_180d, b.open_receivables, b.months_of_history) == (0.0, 0.0, 0.0)


def test_monthly_activity() -> None:
    m = monthly_activity(RECORDS, AS_OF, months=3).set_index("month")
    # As of 1 June 00:00 the last month is May (June has not begun).
    assert list(m.index) == [pd.Timestamp(f"2025-0{i}-01") for i in (3, 4, 5)]
    may = m.loc[pd.Timestamp("2025-05-01")]
    # sales in May: settlement 10,000 + invoices issued 6,000 (1 May) + 2,000 (10 May);
    # the settlement of 31 May is not known yet
    assert may["sales"] == 18_000.0
    assert may["refunds"] == 300.0
    # shipped in May: 5,000 + 3,000 + 700 + 250 + 400 (every shipment, whatever became of it)
    assert may["shipments"] == 9_350.0
    assert m.loc[pd.Timestamp("2025-04-01"), "sales"] == 4_500.0  # invoices of 1 and 2 April
    assert m.loc[pd.Timestamp("2025-03-01")].sum() == 5_000.0  # the invoice issued 1 March
    # Mid-month, the current month is the last (partial) one.
    mid = monthly_activity(RECORDS, "2025-06-15", months=2)
    assert list(mid["month"]) == [pd.Timestamp("2025-05-01"), pd.Timestamp("2025-06-01")]
    with pytest.raises(OfferError, match="at least 1"):
        monthly_activity(RECORDS, AS_OF, months=0)
