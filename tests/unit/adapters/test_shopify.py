"""The Shopify Payments adapter: both exports, detection, the round trip and idempotence."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from credit.adapters import FormatError, adapt, detect
from credit.adapters.base import Adapted, Context, SourceRow, contract_frame
from credit.adapters.fx import Rates
from credit.adapters.shopify import ADAPTER
from credit.records import RECORD_TYPES
from credit.simulator.exports import simulated_rates

SAMPLES = Path("samples/adapters")
TRANSACTIONS = SAMPLES / "shopify-payments" / "payment_transactions_export.csv"
PAYOUTS = SAMPLES / "shopify-payments" / "payouts_export.csv"
FMT = "shopify-payments"
HEADER = TRANSACTIONS.read_text().splitlines()[0]


def _rates() -> Rates:
    return Rates.load(SAMPLES / "fx.csv")


def _ctx() -> Context:
    return Context(firm_id="F000001", rates=_rates())


def _run(text: str) -> Adapted:
    return adapt(text, _ctx(), FMT)


def _by_id(a: Adapted) -> dict[str, dict[str, object]]:
    return {r["payment_id"]: r for r in a.records}


def _row(a: Adapted, line: int) -> SourceRow:
    return next(r for r in a.rows if r.line == line)


def _cad(value: float, day: str) -> float:
    return round(value * _rates().usd_per_unit("CAD", date.fromisoformat(day)), 2)


def test_transactions_sample_outcomes() -> None:
    a = _run(TRANSACTIONS.read_text())
    c = a.counts()
    assert c == {"read": 17, "mapped": 11, "rejected": 2, "skipped": 4}
    assert c["read"] == c["mapped"] + c["rejected"] + c["skipped"]
    assert len(a.records) == 18  # 6 charges and their fees, 3 refunds, a dispute and its fee, a fee
    recs = _by_id(a)
    # a charge paid out: due when available, paid on the payout date; its fee apart
    s = recs["shopify-charge-1002-20240305T204002-135.27"]
    assert (s["kind"], s["direction"], s["currency"]) == ("settlement", "in", "CAD")
    # the payout currency (CAD) is used, not the buyer's presentment currency (USD 99.95)
    assert s["amount_usd"] == _cad(135.27, "2024-03-05")
    assert s["occurred_at"] == "2024-03-05T20:40:02"  # 15:40:02 -0500 in UTC
    assert (s["due_at"], s["paid_at"]) == ("2024-03-08T00:00:00", "2024-03-11T00:00:00")
    assert s["counterparty_id"] == "shopify"
    fee = recs["shopify-charge-1002-20240305T204002-135.27-fee"]
    assert (fee["kind"], fee["amount_usd"]) == ("fee", _cad(4.22, "2024-03-05"))
    assert fee["paid_at"] == fee["occurred_at"] and fee["due_at"] is None
    # a scheduled or in-transit payout has not reached the bank
    assert recs["shopify-charge-1006-20240426T214500-310"]["paid_at"] is None
    assert recs["shopify-charge-1006-20240426T214500-310"]["due_at"] == "2024-04-30T00:00:00"
    usd = recs["shopify-charge-1007-20240327T160000-50"]
    assert (usd["paid_at"], usd["amount_usd"], _row(a, 5).usd_rate) == (None, 50.0, 1.0)
    # partial refunds, one order refunded twice: two records
    r = recs["shopify-refund-1001-20240308T140547-40"]
    assert (r["kind"], r["direction"], r["amount_usd"]) == ("refund", "out", _cad(40, "2024-03-08"))
    assert r["paid_at"] == r["occurred_at"] == "2024-03-08T14:05:47" and r["due_at"] is None
    assert {
        "shopify-refund-1003-20240314T143000-20",
        "shopify-refund-1003-20240319T153000-15",
    } <= set(recs)
    # a dispute: a chargeback and its chargeback fee; won back later: skipped
    cb = recs["shopify-dispute-1002-20240318T121500-135.27"]
    assert (cb["kind"], cb["amount_usd"]) == ("chargeback", _cad(135.27, "2024-03-18"))
    assert recs["shopify-dispute-1002-20240318T121500-135.27-fee"]["amount_usd"] == _cad(
        15, "2024-03-18"
    )
    assert _row(a, 3).outcome == "skipped" and "dispute won back" in _row(a, 3).reason
    # a fee Shopify takes as an adjustment
    adj = recs["shopify-adjustment-20240325T140000-25"]
    assert (adj["kind"], adj["amount_usd"]) == ("fee", _cad(25, "2024-03-25"))
    # the source row keeps the original currency, amount and rate
    src = _row(a, 16)
    assert (src.outcome, src.currency, src.amount) == ("mapped", "CAD", 135.27)
    assert src.usd_rate == pytest.approx(1.0877 / 1.4736)
    # reserve and payout rows are not trade flows
    assert "reserve" in _row(a, 8).reason and _row(a, 8).outcome == "skipped"
    assert "own bank account" in _row(a, 14).reason and _row(a, 14).outcome == "skipped"
    # a CAD charge on a Saturday: no rate, rejected, not guessed; a garbled amount
    assert _row(a, 11).outcome == "rejected"
    assert "no CAD reference rate for 2024-03-16" in _row(a, 11).reason
    assert _row(a, 7).outcome == "rejected" and "'12.5x' is not a number" in _row(a, 7).reason
    # a row listed twice
    assert _row(a, 18).outcome == "skipped"
    assert _row(a, 18).reason == "same order, type, time and amount as line 17"
    # every record passes the contract's column set
    assert list(contract_frame("payments", a.records).columns) == RECORD_TYPES["payments"].columns


def test_payouts_sample_outcomes() -> None:
    a = _run(PAYOUTS.read_text())
    c = a.counts()
    assert c == {"read": 11, "mapped": 7, "rejected": 2, "skipped": 2}
    assert c["read"] == c["mapped"] + c["rejected"] + c["skipped"]
    recs = _by_id(a)
    assert len(recs) == len(a.records) == 17
    s = recs["shopify-payout-20240307-CAD-charges"]
    assert (s["kind"], s["amount_usd"]) == ("settlement", _cad(120, "2024-03-07"))
    assert s["occurred_at"] == s["due_at"] == s["paid_at"] == "2024-03-07T00:00:00"
    assert recs["shopify-payout-20240430-CAD-charges"]["paid_at"] is None  # scheduled
    assert recs["shopify-payout-20240329-USD-charges"]["paid_at"] is None  # in transit
    assert recs["shopify-payout-20240321-CAD-adjustments"]["kind"] == "chargeback"
    assert recs["shopify-payout-20240321-CAD-refunds"]["amount_usd"] == _cad(15, "2024-03-21")
    assert recs["shopify-payout-20240321-CAD-fees"]["kind"] == "fee"
    assert "shopify-payout-20240321-CAD-charges" not in recs  # no charges that day
    assert _row(a, 3).outcome == "skipped"  # a dispute won back: positive adjustments only
    assert "no CAD reference rate for 2024-04-01" in _row(a, 4).reason  # Easter Monday
    assert _row(a, 6).outcome == "rejected" and "Charges '12.5x'" in _row(a, 6).reason
    assert _row(a, 12).reason == "same payout date, currency and amounts as line 11"
    assert (_row(a, 2).amount, _row(a, 2).currency) == (300.71, "CAD")


def test_a_second_different_payout_on_the_same_day_is_rejected() -> None:
    lines = PAYOUTS.read_text().splitlines()
    text = "\n".join([lines[0], lines[8], lines[8].replace("89.90", "99.90")]) + "\n"
    a = _run(text)
    assert [r.outcome for r in a.rows] == ["mapped", "rejected"]
    assert "a second payout on 2024-03-15 in CAD (line 2 has the first)" in a.rows[1].reason


def test_detection() -> None:
    assert detect(TRANSACTIONS.read_text()) == FMT
    assert detect(PAYOUTS.read_text()) == FMT
    stripe = SAMPLES / "stripe-balance" / "balance_history.csv"
    assert detect(stripe.read_text()) != FMT


def test_neither_layout_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="neither a Transaction Date column"):
        _run("Payout Date,Status,Currency\n2024-03-07,paid,CAD\n")
    with pytest.raises(FormatError, match="missing column"):
        _run("Transaction Date,Payout Date,Payout Status,Currency\n2024-03-07,,paid,CAD\n")


def _frame(currencies: tuple[str, ...]) -> pd.DataFrame:
    t = pd.Timestamp
    rows = [
        ("settlement", 120.5, t("2024-03-04"), t("2024-03-11"), t("2024-03-14")),
        ("settlement", 310.0, t("2024-04-26"), t("2024-05-03"), pd.NaT),
        ("refund", 40.0, t("2024-03-08"), pd.NaT, t("2024-03-08")),
        ("chargeback", 89.9, t("2024-03-18"), pd.NaT, t("2024-03-18")),
        ("fee", 25.37, t("2024-03-31"), pd.NaT, t("2024-03-31")),
    ]
    return pd.DataFrame(
        {
            "payment_id": [f"P{i}" for i in range(len(rows))],
            "firm_id": "F000001",
            "kind": [r[0] for r in rows],
            "direction": ["in", "in", "out", "out", "out"],
            "amount_usd": [r[1] for r in rows],
            "currency": [currencies[i % len(currencies)] for i in range(len(rows))],
            "counterparty_id": "PLT-TIKTOKSHOP",
            "occurred_at": [r[2] for r in rows],
            "due_at": pd.Series([r[3] for r in rows], dtype="datetime64[ns]"),
            "paid_at": pd.Series([r[4] for r in rows], dtype="datetime64[ns]"),
        }
    )


def _back(records: pd.DataFrame, rates: Rates | None) -> pd.DataFrame:
    text = ADAPTER.export(records, rates)
    a = adapt(text, Context(firm_id="F000001", rates=rates), FMT)
    assert a.counts()["mapped"] == a.counts()["read"] == len(records)
    frame = contract_frame("payments", a.records)
    for col in ("occurred_at", "due_at", "paid_at"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    return frame


def test_round_trip_exact_without_rates() -> None:
    records = _frame(("USD",))
    assert ADAPTER.carries(records).all()
    want = ADAPTER.as_carried(records).drop(columns="payment_id")
    got = _back(records, None).drop(columns="payment_id")
    pd.testing.assert_frame_equal(got, want, check_dtype=False, atol=1e-9)
    assert ADAPTER.export(records, None).splitlines()[0] == HEADER


def test_round_trip_with_rates_within_a_cent() -> None:
    records = _frame(("MXN", "JPY", "CNY"))
    rates = simulated_rates(date(2024, 3, 1), date(2024, 5, 31))
    want = ADAPTER.as_carried(records).drop(columns="payment_id")
    got = _back(records, rates).drop(columns="payment_id")
    assert (got["amount_usd"] - want["amount_usd"]).abs().max() <= 0.01 + 1e-9
    pd.testing.assert_frame_equal(
        got.drop(columns="amount_usd"), want.drop(columns="amount_usd"), check_dtype=False
    )


def test_same_text_same_records_and_overlap_adds_only_new() -> None:
    text = TRANSACTIONS.read_text()
    assert _run(text).records == _run(text).records
    lines = text.splitlines()
    # a re-download of part of the range, amounts written with separators, one new charge
    new = (
        "2024-04-29 10:00:00 -0400,charge,#1009,visa,online,pending,,,2024-05-01,80.00,2.62,"
        "77.38,,card,80.00,CAD,CAD"
    )
    later = "\n".join([HEADER, new, *[x.replace("135.27", "135.270") for x in lines[10:]]]) + "\n"
    first, second = _by_id(_run(text)), _by_id(_run(later))
    shared = set(first) & set(second)
    assert shared and all(first[k] == second[k] for k in shared)
    assert set(second) - set(first) == {
        "shopify-charge-1009-20240429T140000-80",
        "shopify-charge-1009-20240429T140000-80-fee",
    }


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024-13-45 10:00:00 -0400,charge,#1,visa,online,paid,2024-03-07,1,2024-03-07,10.00",
         "Transaction Date '2024-13-45 10:00:00 -0400' is not a date"),
        ("2024-03-04 10:00:00 -0500,charge,#1,visa,online,paid,2024-03-07,1,2024-03-07,abc",
         "Amount 'abc' is not a number"),
        ("2024-03-04 10:00:00 -0500,charge,#1,visa,online,paid,2024-03-07,1,2024-03-07,-10.00",
         "has the wrong sign"),
        ("2024-03-04 10:00:00 -0500,refund,#1,visa,online,paid,2024-03-07,1,2024-03-07,10.00",
         "has the wrong sign"),
        ("2024-03-04 10:00:00 -0500,charge,#1,visa,online,paid,,1,2024-03-07,10.00",
         "the payout status is paid but the Payout Date is empty"),
        ("2024-03-04 10:00:00 -0500,charge,#1,visa,online,sent,2024-03-07,1,2024-03-07,10.00",
         "payout status 'sent' is not one of"),
        ("2024-03-04 10:00:00 -0500,gift,#1,visa,online,paid,2024-03-07,1,2024-03-07,10.00",
         "unknown transaction type 'gift'"),
    ],
)  # fmt: skip
def test_bad_rows_are_rejected_with_a_reason(row: str, reason: str) -> None:
    header = "Transaction Date,Type,Order,Card Brand,Card Source,Payout Status,Payout Date,"
    header += "Payout ID,Available On,Amount,Fee,Net,Currency"
    a = _run(f"{header}\n{row},0.30,9.70,USD\n")
    assert [r.outcome for r in a.rows] == ["rejected"] and not a.records
    assert reason in a.rows[0].reason
