"""The PayPal Activity download adapter: its sample's awkward cases (a partial refund, an EUR
payment with its two conversion rows, a chargeback with its hold, a withdrawal, a payment sent
to a supplier, a memo row, a pending payment, a weekend payment in GBP, a bad amount, a
thousands separator), detection, the simulator's round trip, and idempotence."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from credit.adapters import adapt, detect
from credit.adapters.base import Adapted, Context, contract_frame
from credit.adapters.fx import Rates
from credit.adapters.paypal import ADAPTER, HEADER, counterparty_of
from credit.records import RECORD_TYPES

ROOT = Path(__file__).resolve().parents[3]
FX = Rates.load(ROOT / "samples" / "adapters" / "fx.csv")
SAMPLE = (ROOT / "samples" / "adapters" / "paypal-activity" / "Download.CSV").read_text("utf-8")
FMT = "paypal-activity"
COLUMNS = RECORD_TYPES["payments"].columns


def _adapt(text: str, rates: Rates | None = FX) -> Adapted:
    return adapt(text, Context(firm_id="F000001", rates=rates), FMT)


def _by_id(a: Adapted) -> dict[str, dict[str, Any]]:
    return {r["payment_id"]: r for r in a.records}


def _outcome(a: Adapted, line: int) -> tuple[str, str]:
    row = next(r for r in a.rows if r.line == line)
    return row.outcome, row.reason


def test_the_sample_accounts_for_every_row() -> None:
    a = _adapt(SAMPLE)
    assert a.counts() == {"read": 20, "mapped": 9, "rejected": 3, "skipped": 8}
    c = a.counts()
    assert c["read"] == c["mapped"] + c["rejected"] + c["skipped"]
    assert len(a.records) == 14  # 9 transactions, 5 of them with a fee
    skipped = {r["reason"]: r["count"] for r in a.reasons("skipped")}
    assert sum(skipped.values()) == 8
    assert any("conversion" in k and v == 2 for k, v in skipped.items())
    assert any("holds" in k and v == 2 for k, v in skipped.items())


def test_a_payment_with_a_thousands_separator_and_its_fee() -> None:
    r = _by_id(_adapt(SAMPLE))
    pay, fee = r["pp-1AB23456CD7890123"], r["pp-1AB23456CD7890123-fee"]
    assert (pay["kind"], pay["direction"], pay["amount_usd"]) == ("settlement", "in", 1234.56)
    assert pay["counterparty_id"] == "paypal" and pay["due_at"] is None
    # 09:15:22 PST is 17:15:22 UTC, paid at once
    assert pay["occurred_at"] == pay["paid_at"] == "2024-03-04T17:15:22"
    assert (fee["kind"], fee["direction"], fee["amount_usd"]) == ("fee", "out", 43.51)
    assert fee["occurred_at"] == pay["occurred_at"]


def test_a_partial_refund_is_smaller_than_its_payment_and_its_returned_fee_is_not_carried() -> None:
    r = _by_id(_adapt(SAMPLE))
    refund = r["pp-3LM45678NP9012345"]
    assert (refund["kind"], refund["direction"], refund["amount_usd"]) == ("refund", "out", 30.0)
    assert refund["amount_usd"] < r["pp-2FG34567HJ8901234"]["amount_usd"]
    assert refund["occurred_at"] == "2024-03-08T19:02:45"
    assert "pp-3LM45678NP9012345-fee" not in r


def test_a_payment_in_euros_is_converted_and_its_conversion_rows_are_skipped() -> None:
    a = _adapt(SAMPLE)
    eur = FX.usd_per_unit("EUR", date(2024, 3, 6))
    pay, fee = _by_id(a)["pp-4RS56789TU0123456"], _by_id(a)["pp-4RS56789TU0123456-fee"]
    assert pay["currency"] == "EUR" and pay["amount_usd"] == round(100.0 * eur, 2)
    assert fee["amount_usd"] == round(3.84 * eur, 2)
    row = next(r for r in a.rows if r.line == 4)
    assert (row.currency, row.amount, row.usd_rate) == ("EUR", 100.0, eur)
    for line in (5, 6):
        outcome, reason = _outcome(a, line)
        assert outcome == "skipped" and "conversion" in reason


def test_a_zero_decimal_currency_with_a_thousands_separator() -> None:
    pay = _by_id(_adapt(SAMPLE))["pp-1NP23456QR7890123"]
    jpy = FX.usd_per_unit("JPY", date(2024, 3, 27))
    assert pay["currency"] == "JPY" and pay["amount_usd"] == round(12800 * jpy, 2)


def test_a_chargeback_its_fee_and_the_hold_before_it() -> None:
    a = _adapt(SAMPLE)
    r = _by_id(a)
    assert (r["pp-2AB34567CD8901234"]["kind"], r["pp-2AB34567CD8901234"]["amount_usd"]) == (
        "chargeback",
        60.0,
    )
    assert (r["pp-3EF45678GH9012345"]["kind"], r["pp-3EF45678GH9012345"]["amount_usd"]) == (
        "fee",
        20.0,
    )
    for line in (10, 14):  # the hold and its cancellation
        outcome, reason = _outcome(a, line)
        assert outcome == "skipped" and "holds" in reason


def test_a_payment_sent_is_a_supplier_payment_to_its_email_address() -> None:
    pay = _by_id(_adapt(SAMPLE))["pp-6ST78901UV2345678"]
    assert (pay["kind"], pay["direction"], pay["amount_usd"]) == ("supplier_payment", "out", 250.0)
    assert pay["counterparty_id"] == "pp-orders:shenzhen-parts.example"
    assert counterparty_of("Orders@Shenzhen-Parts.example") == pay["counterparty_id"]


def test_a_pending_payment_is_unpaid_with_its_fee() -> None:
    r = _by_id(_adapt(SAMPLE))
    assert r["pp-8JK90123LM4567890"]["paid_at"] is None
    assert r["pp-8JK90123LM4567890-fee"]["paid_at"] is None
    assert r["pp-8JK90123LM4567890"]["occurred_at"] == "2024-03-13T23:20:00"  # PDT: UTC-7


def test_what_moves_no_trade_money_is_skipped_with_its_reason() -> None:
    a = _adapt(SAMPLE)
    assert "own bank account" in _outcome(a, 15)[1]  # General Withdrawal
    assert "memo row" in _outcome(a, 17)[1]
    assert "Denied" in _outcome(a, 18)[1]
    assert "from the firm's own bank account" in _outcome(a, 19)[1]  # Bank Deposit to PP Account


def test_bad_rows_are_rejected_with_a_reason() -> None:
    a = _adapt(SAMPLE)
    assert _outcome(a, 8) == ("rejected", "Gross '12.3O' is not a number (expected e.g. 1234.56 "
                                          "or -12.50)")  # fmt: skip
    outcome, reason = _outcome(a, 11)  # a Saturday: no reference rate
    assert outcome == "rejected" and "no GBP reference rate for 2024-03-16" in reason
    outcome, reason = _outcome(a, 20)
    assert outcome == "rejected" and "'03/32/2024 10:00:00 PDT'" in reason


def test_unknown_type_status_and_sign_are_rejected() -> None:
    lines = SAMPLE.splitlines()
    row = lines[1]
    text = "\n".join([
        lines[0],
        row.replace("Express Checkout Payment", "Mystery Payment Thing"),
        row.replace('"Completed"', '"On Tab"').replace("1AB23456CD7890123", "X2"),
        row.replace('"Credit"', '"Debit"').replace("1AB23456CD7890123", "X3"),
    ])  # fmt: skip
    a = _adapt(text)
    reasons = [r.reason for r in a.rows]
    assert [r.outcome for r in a.rows] == ["rejected"] * 3
    assert "unknown Type 'Mystery Payment Thing'" in reasons[0]
    assert "unknown Status 'On Tab'" in reasons[1]
    assert "wrong sign" in reasons[2]


def test_day_first_dates_are_told_from_the_file() -> None:
    lines = SAMPLE.splitlines()
    row = lines[1]
    uk = row.replace('"03/04/2024"', '"13/03/2024"').replace('"PST"', '"GMT"')
    ambiguous = row.replace('"03/04/2024"', '"04/03/2024"').replace('"PST"', '"CET"')
    assert _adapt("\n".join([lines[0], uk])).records[0]["occurred_at"] == "2024-03-13T09:15:22"
    # every date could be either: a zone outside the US means day first (CET is UTC+1)
    got = _adapt("\n".join([lines[0], ambiguous])).records[0]["occurred_at"]
    assert got == "2024-03-04T08:15:22"


def test_a_decimal_comma_is_read() -> None:
    lines = SAMPLE.splitlines()
    row = lines[1].replace('"1,234.56"', '"1.234,56"').replace('"-43.51"', '"-43,51"')
    r = _adapt("\n".join([lines[0], row])).records
    assert [x["amount_usd"] for x in r] == [1234.56, 43.51]


def test_the_download_is_detected_from_its_header() -> None:
    assert detect(SAMPLE) == FMT
    assert detect(SAMPLE.replace('"TimeZone"', '"Time Zone"', 1)) == FMT


# -- the simulator's round trip -------------------------------------------------------------


def _frame() -> pd.DataFrame:
    ts = pd.Timestamp
    rows = [
        ("P1", "settlement", 1234.5, "CNY", "PLT-EBAY", ts("2024-03-04"), ts("2024-03-11"),
         ts("2024-03-20")),
        ("P2", "settlement", 80.0, "SGD", "PLT-EBAY", ts("2024-03-15"), ts("2024-03-22"), None),
        ("P3", "refund", 25.25, "JPY", "PLT-EBAY", ts("2024-03-11"), None, ts("2024-03-11")),
        ("P4", "chargeback", 60.0, "USD", "PLT-EBAY", ts("2024-04-02"), None, ts("2024-04-02")),
        ("P5", "fee", 12.34, "CNY", "PLT-EBAY", ts("2024-03-29"), None, ts("2024-03-29")),
        ("P6", "supplier_payment", 500.0, "CNY", "SUP00000001", ts("2024-11-04"),
         ts("2024-12-04"), ts("2024-11-20")),
        ("P7", "settlement", 10.0, "USD", "PLT-EBAY", ts("2024-01-15"), ts("2024-01-22"),
         ts("2024-01-22")),
    ]  # fmt: skip
    names = ["payment_id", "kind", "amount_usd", "currency", "counterparty_id", "occurred_at",
             "due_at", "paid_at"]  # fmt: skip
    f = pd.DataFrame(rows, columns=names)
    f["firm_id"] = "F000001"
    f["direction"] = f["kind"].map(lambda k: "in" if k == "settlement" else "out")
    for c in ("occurred_at", "due_at", "paid_at"):
        f[c] = pd.to_datetime(f[c]).astype("datetime64[ns]")
    return f[COLUMNS]


def _back(text: str, rates: Rates | None) -> pd.DataFrame:
    got = contract_frame("payments", _adapt(text, rates).records)
    for c in ("occurred_at", "due_at", "paid_at"):
        got[c] = pd.to_datetime(got[c]).astype("datetime64[ns]")
    return got


def _simulated_rates() -> Rates:
    days = pd.date_range("2023-12-01", "2024-12-31").date
    per_eur = {"USD": 1.08, "CNY": 7.8, "SGD": 1.46, "JPY": 160.0}
    return Rates(per_eur={c: {d: v * (1 + 0.001 * (i % 7)) for i, d in enumerate(days)}
                          for c, v in per_eur.items()})  # fmt: skip


def test_export_then_adapt_gives_the_records_as_carried() -> None:
    f = _frame()
    assert ADAPTER.carries(f).all()
    text = ADAPTER.export(f, None)
    assert text.startswith("\ufeff") and text.count("\r\n") == len(f) + 1
    assert next(iter(text[1:].splitlines()), "").split(",")[0] == f'"{HEADER[0]}"'
    assert detect(text) == FMT
    a = _adapt(text, None)
    assert a.counts() == {"read": 7, "mapped": 7, "rejected": 0, "skipped": 0}
    got, want = _back(text, None), ADAPTER.as_carried(f)
    assert (got["currency"] == "USD").all()  # without rates the export is written in USD
    same = [c for c in COLUMNS if c not in ("payment_id", "currency", "amount_usd")]
    pd.testing.assert_frame_equal(got[same], want[same])
    assert (abs(got["amount_usd"] - want["amount_usd"]) < 1e-9).all()
    assert want["due_at"].isna().all()
    assert want["counterparty_id"].tolist()[:5] == ["paypal"] * 5
    assert want.loc[5, "counterparty_id"] == "pp-sup00000001:example.com"
    assert want["paid_at"].isna().tolist() == [False, True, False, False, False, False, False]
    assert want["paid_at"].iloc[0] == f["occurred_at"].iloc[0]
    # PST in January and November, PDT between
    assert '"01/14/2024","16:00:00","PST"' in text and '"03/14/2024","17:00:00","PDT"' in text
    assert '"11/03/2024","17:00:00","PDT"' not in text and '"11/03/2024","16:00:00","PST"' in text


def test_export_with_rates_comes_back_within_a_cent() -> None:
    f, rates = _frame(), _simulated_rates()
    got, want = _back(ADAPTER.export(f, rates), rates), ADAPTER.as_carried(f)
    same = [c for c in COLUMNS if c not in ("payment_id", "amount_usd")]
    pd.testing.assert_frame_equal(got[same], want[same])
    assert (abs(got["amount_usd"] - want["amount_usd"]) <= 0.01 + 1e-9).all()


def test_export_is_deterministic() -> None:
    f = _frame()
    assert ADAPTER.export(f, None) == ADAPTER.export(f.copy(), None)


# -- idempotence ------------------------------------------------------------------------------


def test_the_same_download_twice_gives_the_same_records() -> None:
    assert _adapt(SAMPLE).records == _adapt(SAMPLE).records


def test_an_overlapping_download_gives_the_same_ids_and_content_for_shared_rows() -> None:
    lines = SAMPLE.splitlines()
    new = (
        lines[1]
        .replace("1AB23456CD7890123", "9ZZ99999ZZ9999999")
        .replace('"03/04/2024"', '"04/02/2024"')
    )
    later = "\n".join([lines[0], *lines[10:], new])
    first, second = _by_id(_adapt(SAMPLE)), _by_id(_adapt(later))
    shared = set(first) & set(second)
    assert shared and {"pp-2AB34567CD8901234", "pp-6ST78901UV2345678"} <= shared
    assert all(first[k] == second[k] for k in shared)
    assert set(second) - set(first) == {"pp-9ZZ99999ZZ9999999", "pp-9ZZ99999ZZ9999999-fee"}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("Gross", "12..5", "Gross '12..5' is not a number"),
     ("Date", "2024/31/12", "are not a moment"),
     ("Transaction ID", "", "Transaction ID is empty")],
)  # fmt: skip
def test_a_row_with_a_bad_field_is_rejected_with_its_reason(
    field: str, value: str, reason: str
) -> None:
    lines = SAMPLE.splitlines()
    cells = lines[1].split('","')
    i = HEADER.index(field)
    cells[i] = ('"' if i == 0 else "") + value + ('"' if i == len(cells) - 1 else "")
    a = _adapt("\n".join([lines[0], '","'.join(cells)]))
    assert a.rows[0].outcome == "rejected" and reason in a.rows[0].reason
    assert a.records == []
