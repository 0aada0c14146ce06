"""The adapters' shared parts: amounts and dates as exports write them, the ECB rates table,
deterministic record IDs, and the Stripe balance adapter on its sample."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from credit.adapters import adapt, adapter, detect
from credit.adapters.base import Context, Reject, amount, contract_frame, record_id, timestamp
from credit.adapters.fx import Rates, RatesError

ROOT = Path(__file__).resolve().parents[3]
FX = Rates.load(ROOT / "samples" / "adapters" / "fx.csv")
STRIPE = (ROOT / "samples" / "adapters" / "stripe-balance" / "balance_history.csv").read_text()


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.50", 12.5), ("-12.50", -12.5), ("1,234.56", 1234.56), ("$1,234.56", 1234.56),
     ("(40.00)", -40.0), ("-$5.00", -5.0), ("1000", 1000.0)],
)  # fmt: skip
def test_amounts_as_exports_write_them(text: str, value: float) -> None:
    assert amount(text) == value


@pytest.mark.parametrize("text", ["", "12,5x", "1.234,56", "12.5.1", "abc"])
def test_an_amount_that_is_not_a_number_is_a_reject_with_its_value(text: str) -> None:
    with pytest.raises(Reject, match="amount"):
        amount(text)


@pytest.mark.parametrize(
    ("text", "iso"),
    [("2024-03-05", "2024-03-05T00:00:00"), ("2024-03-05 18:24:56 UTC", "2024-03-05T18:24:56"),
     ("2024-03-05T18:24:56+08:00", "2024-03-05T10:24:56"), ("05.03.2024", "2024-03-05T00:00:00"),
     ("03/05/2024", "2024-03-05T00:00:00"), ("03/05/2024 17:00:00 PST", "2024-03-06T01:00:00"),
     ("1709596800", "2024-03-05T00:00:00")],
)  # fmt: skip
def test_dates_as_exports_write_them_in_utc(text: str, iso: str) -> None:
    assert timestamp(text, "posted-date") == iso


def test_a_date_that_is_not_one_is_a_reject_naming_the_field() -> None:
    with pytest.raises(Reject, match="posted-date '2024-13-45' is not a date"):
        timestamp("2024-13-45", "posted-date")


def test_ecb_rates_convert_through_the_euro_and_a_day_without_one_is_no_rate() -> None:
    usd_eur = FX.per_eur["USD"][date(2024, 3, 4)]
    assert FX.usd_per_unit("EUR", date(2024, 3, 4)) == usd_eur
    jpy = FX.per_eur["JPY"][date(2024, 3, 4)]
    assert FX.usd_per_unit("JPY", date(2024, 3, 4)) == pytest.approx(usd_eur / jpy)
    assert FX.usd_per_unit("usd", date(2024, 3, 16)) == 1.0
    with pytest.raises(Reject, match="no EUR reference rate for 2024-03-16"):
        FX.usd_per_unit("EUR", date(2024, 3, 16))  # a Saturday
    with pytest.raises(Reject, match="no ZAR column"):
        FX.usd_per_unit("ZAR", date(2024, 3, 4))
    ctx = Context("F1", FX)
    assert ctx.usd(100.0, "EUR", "2024-03-04T10:00:00") == (round(100 * usd_eur, 2), usd_eur)
    with pytest.raises(Reject, match="--fx"):
        Context("F1").usd(100.0, "EUR", "2024-03-04T10:00:00")


def test_the_ecb_daily_file_layout_and_bad_tables() -> None:
    daily = Rates.parse("Date, USD, JPY, \n04 March 2024, 1.0850, 162.40, \n")
    assert daily.usd_per_unit("EUR", date(2024, 3, 4)) == 1.085
    with pytest.raises(RatesError, match="ECB reference-rate layout"):
        Rates.parse("day,USD\n2024-03-04,1.08\n")
    with pytest.raises(RatesError, match="no USD column"):
        Rates.parse("Date,JPY\n2024-03-04,160\n")
    with pytest.raises(RatesError, match="line 2: JPY rate 'x'"):
        Rates.parse("Date,USD,JPY\n2024-03-04,1.08,x\n")


def test_record_ids_are_readable_when_they_fit_and_stable_when_not() -> None:
    assert record_id("amz", "1234", "111-222", "settlement") == "amz-1234-111-222-settlement"
    long = record_id("amz", "x" * 80, "a b")
    assert long == record_id("amz", "x" * 80, "a b") and len(long) <= 64


def test_the_stripe_sample_every_row_accounted_for() -> None:
    assert detect(STRIPE) == "stripe-balance"
    out = adapt(STRIPE, Context("F001", FX, date(2024, 4, 30)))
    counts = out.counts()
    assert counts == {"read": 13, "mapped": 7, "rejected": 2, "skipped": 4}
    by_line = {r.line: r for r in out.rows}
    assert by_line[11].outcome == "rejected" and "2024-03-16" in by_line[11].reason  # Saturday
    assert by_line[12].outcome == "rejected" and "'12.5x'" in by_line[12].reason
    assert by_line[7].reason.startswith("a dispute won back")
    assert by_line[14].reason == "the same balance transaction as line 3 (listed twice)"
    recs = {r["payment_id"]: r for r in out.records}
    eur = recs["stripe-txn_3OxA1nLkdIwHu7ix0aa3"]
    rate = by_line[4].usd_rate
    assert (
        rate is not None and eur["currency"] == "EUR" and eur["amount_usd"] == round(89.9 * rate, 2)
    )
    refund = recs["stripe-txn_3OxA1nLkdIwHu7ix0aa4"]  # a partial refund of order #1001
    assert (refund["kind"], refund["direction"], refund["amount_usd"]) == ("refund", "out", 40.0)
    dispute = recs["stripe-txn_3OxA1nLkdIwHu7ix0aa5"]
    assert dispute["kind"] == "chargeback" and recs["stripe-txn_3OxA1nLkdIwHu7ix0aa5-fee"]
    pending = recs["stripe-txn_3OxA1nLkdIwHu7ix0ab3"]
    assert pending["paid_at"] is None and pending["due_at"] == "2024-05-01T00:00:00"
    assert adapt(STRIPE, Context("F001", FX, date(2024, 4, 30))).records == out.records


def test_stripe_export_and_back_is_the_carried_record() -> None:
    t = pd.Timestamp
    frame = pd.DataFrame({
        "payment_id": ["P1", "P2", "P3", "P4", "P5"], "firm_id": ["F1"] * 5,
        "kind": ["settlement", "settlement", "refund", "chargeback", "fee"],
        "direction": ["in", "in", "out", "out", "out"],
        "amount_usd": [1200.5, 80.0, 30.25, 99.0, 120.1],
        "currency": ["EUR", "USD", "JPY", "EUR", "EUR"], "counterparty_id": ["PLT-X"] * 5,
        "occurred_at": [t("2024-03-04"), t("2024-03-05"), t("2024-03-06"), t("2024-03-07"),
                        t("2024-03-08")],
        "due_at": [t("2024-03-11"), t("2024-03-12"), pd.NaT, pd.NaT, pd.NaT],
        "paid_at": [t("2024-03-15"), pd.NaT, t("2024-03-06"), t("2024-03-07"), t("2024-03-08")],
    })  # fmt: skip
    a = adapter("stripe-balance")
    expected = a.as_carried(frame).drop(columns="payment_id")
    back = adapt(a.export(frame, None), Context("F1"), "stripe-balance")
    got = contract_frame("payments", back.records).drop(columns="payment_id")
    for c in ("occurred_at", "due_at", "paid_at"):
        got[c] = pd.to_datetime(got[c])
    pd.testing.assert_frame_equal(
        got.drop(columns="currency"), expected.drop(columns="currency"), check_dtype=False
    )
    fx = adapt(a.export(frame, FX), Context("F1", FX), "stripe-balance")
    amounts = contract_frame("payments", fx.records)["amount_usd"].to_numpy()
    assert abs(amounts - frame["amount_usd"].to_numpy()).max() <= 0.01


def test_a_rejected_second_record_of_a_row_rejects_that_row() -> None:
    out = adapt(STRIPE, Context("F001", FX, date(2024, 4, 30)))
    out.reject_record("stripe-txn_3OxA1nLkdIwHu7ix0aa1-fee", "amount_usd: too small")
    row = next(r for r in out.rows if r.line == 2)
    assert (row.outcome, row.reason) == ("rejected", "amount_usd: too small")
    assert out.counts() == {"read": 13, "mapped": 6, "rejected": 3, "skipped": 4}


def test_docs_adapters_md_is_generated_from_the_adapters() -> None:
    from credit.adapters.describe import render_markdown

    doc = ROOT / "docs" / "adapters.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        "docs/adapters.md is stale: run `credit contract adapters --output docs/adapters.md`"
    )


def test_every_sample_is_told_apart_by_its_header() -> None:
    from credit.adapters import FORMATS

    for fmt in FORMATS:
        files = sorted((ROOT / "samples" / "adapters" / fmt).iterdir())
        assert files, fmt
        for f in files:
            assert detect(f.read_text(encoding="utf-8-sig"), f.name) == fmt, f.name
