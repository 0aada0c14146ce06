"""The Amazon settlement report (flat file V2) adapter: the hand-written sample's awkward
cases, detection, the export round trip, idempotence across overlapping exports, bad rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from credit.adapters import adapt, detect
from credit.adapters.amazon import ADAPTER
from credit.adapters.base import Adapted, Context, contract_frame
from credit.adapters.fx import Rates
from credit.records import RECORD_TYPES

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples" / "adapters" / "amazon-settlement"
FIRST = SAMPLES / "settlement_2024-03-15.txt"
NEXT = SAMPLES / "settlement_2024-03-29.txt"
FMT = "amazon-settlement"
TIMES = ["occurred_at", "due_at", "paid_at"]


@pytest.fixture(scope="module")
def rates() -> Rates:
    return Rates.load(ROOT / "samples" / "adapters" / "fx.csv")


def _ctx(rates: Rates | None, today: date = date(2024, 4, 30)) -> Context:
    return Context(firm_id="F000001", rates=rates, today=today)


def _adapt(text: str, rates: Rates | None, today: date = date(2024, 4, 30)) -> Adapted:
    return adapt(text, _ctx(rates, today), FMT)


def _by_id(a: Adapted) -> dict[str, dict[str, Any]]:
    return {r["payment_id"]: r for r in a.records}


def _row(a: Adapted, line: int) -> Any:
    return next(r for r in a.rows if r.line == line)


# -- (1) the sample -----------------------------------------------------------------------


def test_sample_outcomes_reconcile(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    c = a.counts()
    assert c == {"read": 31, "mapped": 22, "rejected": 6, "skipped": 3}
    assert c["read"] == c["mapped"] + c["rejected"] + c["skipped"]
    assert len(a.records) == 12
    assert {_row(a, n).outcome for n in (2, 22, 23)} == {"skipped"}


def test_split_amount_rows_of_one_order_sum_to_a_settlement_and_a_fee(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    recs = _by_id(a)
    sale = recs["amz-11814509011-111-4820311-5529012-settlement"]
    fee = recs["amz-11814509011-111-4820311-5529012-fee"]
    # Principal 149.99 + Shipping 5.99 + Tax 4.20; Commission 22.50 + FBA fee 4.75
    assert sale["amount_usd"] == pytest.approx(160.18) and sale["direction"] == "in"
    assert fee["amount_usd"] == pytest.approx(27.25) and fee["direction"] == "out"
    assert sale["occurred_at"] == "2024-03-04T14:22:05"
    assert sale["due_at"] == "2024-03-15T08:00:00"  # settlement-end-date
    assert sale["paid_at"] == "2024-03-17T08:00:00"  # deposit-date
    assert fee["due_at"] is None and fee["paid_at"] == fee["occurred_at"]
    assert sale["counterparty_id"] == "amazon" and sale["currency"] == "USD"
    assert [_row(a, n).record_id for n in (3, 4, 5)] == [sale["payment_id"]] * 3
    assert [_row(a, n).amount for n in (3, 4, 5)] == [149.99, 5.99, 4.2]
    # a free-shipping promotion nets the shipping out of the sale
    assert recs["amz-11814509011-111-7731920-0044871-settlement"]["amount_usd"] == 24.0


def test_partial_refund_chargeback_and_subscription_fee(rates: Rates) -> None:
    recs = _by_id(_adapt(FIRST.read_text("utf-8"), rates))
    refund = recs["amz-11814509011-111-4820311-5529012-refund"]
    # -40.00 price + 6.00 commission returned - 1.20 refund commission, less than its order
    assert refund["kind"] == "refund" and refund["amount_usd"] == pytest.approx(35.20)
    assert refund["paid_at"] == refund["occurred_at"] == "2024-03-08T16:45:10"
    cb = recs["amz-11814509011-111-2209457-8861023-chargeback"]
    assert cb["direction"] == "out" and cb["amount_usd"] == pytest.approx(29.75)
    fees = [r for r in recs.values() if r["kind"] == "fee" and r["currency"] == "USD"]
    assert {r["amount_usd"] for r in fees} == {27.25, 3.6, 39.99}


def test_reserve_and_summary_lines_are_skipped_with_reasons(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    assert _row(a, 2).reason.startswith("summary line of settlement 11814509011")
    assert "reserve line (Current Reserve Amount)" in _row(a, 22).reason


def test_negative_settlement_in_eur_maps_as_usual(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    summary = _row(a, 23)
    assert summary.outcome == "skipped" and "negative" in summary.reason
    assert "-67,94 EUR" in summary.reason
    recs = _by_id(a)
    sale = recs["amz-11814509021-302-5512093-1187406-settlement"]
    eur = rates.usd_per_unit("EUR", date(2024, 3, 6))
    assert sale["currency"] == "EUR"
    assert sale["amount_usd"] == pytest.approx(round(22.98 * eur, 2))  # 19,99 + 2,99
    assert sale["paid_at"] == "2024-03-19T08:00:00"  # 19.03.2024 08:00:00 UTC
    assert _row(a, 24).amount == 19.99 and _row(a, 24).usd_rate == pytest.approx(eur)
    eur_fees = sorted(r["amount_usd"] for r in recs.values() if r["currency"] == "EUR"
                      and r["kind"] == "fee")  # fmt: skip
    assert len(eur_fees) == 4  # order fees, storage, advertising, subscription


def test_malformed_amount_rejects_every_row_of_its_order(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    bad, sibling = _row(a, 18), _row(a, 19)
    assert bad.outcome == sibling.outcome == "rejected"
    assert "'12,5x' is not a number" in bad.reason
    assert sibling.reason.startswith("line 18 of the same order 111-5938172-3307265")
    assert not any("111-5938172-3307265" in r["payment_id"] for r in a.records)


def test_wrong_sign_rejects_the_record(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    for n in (20, 21):
        assert _row(a, n).outcome == "rejected"
        assert "nets -2.00 USD" in _row(a, n).reason and "money in" in _row(a, n).reason


def test_eur_row_posted_on_a_weekend_has_no_rate(rates: Rates) -> None:
    a = _adapt(FIRST.read_text("utf-8"), rates)
    for n in (29, 30):  # Saturday 2024-03-09: the order's sale and its fee
        assert _row(a, n).outcome == "rejected"
        assert "no EUR reference rate for 2024-03-09" in _row(a, n).reason


def test_deposit_after_today_leaves_the_settlement_unpaid(rates: Rates) -> None:
    text = NEXT.read_text("utf-8")
    sid = "amz-11814509031-111-3390127-4458120-settlement"
    assert _by_id(_adapt(text, rates, date(2024, 4, 1)))[sid]["paid_at"] is None
    assert _by_id(_adapt(text, rates, date(2024, 4, 2)))[sid]["paid_at"] == "2024-04-02T08:00:00"
    # posted-date alone (MM/DD/YY, no posted-date-time) dates the advertising fee
    ads = [r for r in _adapt(text, rates).records if r["amount_usd"] == 64.1]
    assert ads[0]["occurred_at"] == "2024-03-25T00:00:00"


def test_eur_without_rates_is_rejected_with_a_hint() -> None:
    a = _adapt(FIRST.read_text("utf-8"), None)
    assert "--fx" in _row(a, 24).reason and _row(a, 3).outcome == "mapped"


# -- (2) detection ------------------------------------------------------------------------


def test_detection() -> None:
    assert detect(FIRST.read_text("utf-8")) == FMT
    assert detect(NEXT.read_text("utf-8")) == FMT


# -- (3) export -> adapt round trip -------------------------------------------------------


def _frame(currencies: list[str]) -> pd.DataFrame:
    t = pd.Timestamp
    rows: list[tuple[str, pd.Timestamp, Any, Any, float]] = [  # kind, occurred, due, paid, amount
        ("settlement", t("2024-03-01"), t("2024-03-08"), t("2024-03-11"), 120.55),
        ("settlement", t("2024-03-01"), t("2024-03-08"), t("2024-03-11"), 80.10),
        ("settlement", t("2024-03-15"), t("2024-03-22"), pd.NaT, 310.00),
        ("refund", t("2024-03-05"), pd.NaT, t("2024-03-05"), 40.25),
        ("chargeback", t("2024-03-20"), pd.NaT, t("2024-03-20"), 66.60),
        ("fee", t("2024-03-07"), pd.NaT, t("2024-03-07"), 12.34),
        ("fee", t("2024-03-28"), pd.NaT, t("2024-03-28"), 30.00),  # after every payout
        ("fee", t("2024-03-28"), pd.NaT, t("2024-03-28"), 31.00),  # a second fee that day
    ]
    return pd.DataFrame(
        {
            "payment_id": [f"P{i:03d}" for i in range(len(rows))],
            "firm_id": "F000001",
            "kind": [r[0] for r in rows],
            "direction": ["in" if r[0] == "settlement" else "out" for r in rows],
            "amount_usd": [r[4] for r in rows],
            "currency": [currencies[i % len(currencies)] for i in range(len(rows))],
            "counterparty_id": "PLT-AMAZON",
            "occurred_at": [r[1] for r in rows],
            "due_at": pd.to_datetime([r[2] for r in rows]),
            "paid_at": pd.to_datetime([r[3] for r in rows]),
        },
        columns=RECORD_TYPES["payments"].columns,
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.drop(columns=["payment_id"]).copy()
    for c in TIMES:
        out[c] = pd.to_datetime(out[c])
    return out.sort_values(["kind", "occurred_at", "amount_usd"]).reset_index(drop=True)


def test_round_trip_in_usd_is_exact() -> None:
    records = _frame(["USD"])
    text = ADAPTER.export(records, None)
    a = adapt(text, _ctx(None), FMT)
    assert a.counts()["rejected"] == 0 and len(a.records) == len(records)
    got = _sorted(contract_frame("payments", a.records))
    want = _sorted(ADAPTER.as_carried(records))
    for c in got.columns:
        if c == "amount_usd":
            assert np.allclose(got[c], want[c], atol=1e-9, rtol=0)
        else:
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c
    # one settlement per payout (due and deposit dates), plus two open ones for the fees of
    # 2024-03-28; every refund, chargeback and earlier fee fits in a payout's settlement
    assert sum(1 for line in text.splitlines()[1:] if "\tUSD\t" in line) == 4


def test_round_trip_in_other_currencies_within_a_cent(rates: Rates) -> None:
    records = _frame(["EUR", "JPY", "PLN", "USD"])
    text = ADAPTER.export(records, rates)
    assert "Amazon.de" in text and "Amazon.co.jp" in text
    a = adapt(text, _ctx(rates), FMT)
    assert a.counts()["rejected"] == 0 and len(a.records) == len(records)
    got = _sorted(contract_frame("payments", a.records))
    want = _sorted(ADAPTER.as_carried(records))
    for c in got.columns:
        if c == "amount_usd":
            assert np.abs(got[c] - want[c]).max() <= 0.01 + 1e-9
        else:
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c


def test_carries_settlements_refunds_chargebacks_fees() -> None:
    records = _frame(["USD"])
    extra = records.iloc[:2].copy()
    extra["kind"] = ["supplier_payment", "settlement"]
    extra["due_at"] = [pd.NaT, pd.NaT]  # a settlement with no due date has no settlement
    both = pd.concat([records, extra], ignore_index=True)
    assert ADAPTER.carries(both).tolist() == [True] * len(records) + [False, False]


def test_two_firms_never_share_a_settlement_id() -> None:
    a = _frame(["USD"])
    b = a.assign(firm_id="F000002")
    ids_a = {line.split("\t")[0] for line in ADAPTER.export(a, None).splitlines()[1:]}
    ids_b = {line.split("\t")[0] for line in ADAPTER.export(b, None).splitlines()[1:]}
    assert ids_a and not ids_a & ids_b


# -- (4) determinism and overlapping exports ----------------------------------------------


def test_same_export_twice_gives_identical_records(rates: Rates) -> None:
    text = FIRST.read_text("utf-8")
    assert _adapt(text, rates).records == _adapt(text, rates).records


def test_overlapping_export_repeats_the_shared_settlement_exactly(rates: Rates) -> None:
    first = _by_id(_adapt(FIRST.read_text("utf-8"), rates))
    later = _by_id(_adapt(NEXT.read_text("utf-8"), rates))
    shared = {k for k, r in first.items() if r["currency"] == "USD"}  # settlement 11814509011
    assert len(shared) == 7
    for k in shared:
        assert later[k] == first[k]
    new = set(later) - set(first)
    assert len(new) == 4  # settlement 11814509031: its sale, fees, refund, advertising
    assert all(k.startswith("amz-11814509031-") for k in new if "-111-" in k)


# -- (5) bad rows -------------------------------------------------------------------------


def test_bad_date_is_rejected_with_a_reason(rates: Rates) -> None:
    text = FIRST.read_text("utf-8").replace("2024-03-05 03:12:00 UTC", "2024-13-45 03:12:00 UTC")
    a = _adapt(text, rates)
    row = _row(a, 17)
    assert row.outcome == "rejected" and "posted-date-time" in row.reason
    assert "is not a date" in row.reason


def test_missing_summary_line_rejects_rows_that_need_it(rates: Rates) -> None:
    lines = FIRST.read_text("utf-8").splitlines()
    text = "\n".join(lines[:1] + lines[2:]) + "\n"  # settlement 11814509011's summary gone
    a = _adapt(text, rates)
    assert a.counts()["read"] == 30 and len(a.records) == 5  # settlement 11814509021 intact
    principal = _row(a, 2)
    assert principal.outcome == "rejected"
    assert "no currency: neither the row nor settlement 11814509011's summary line" in (
        principal.reason
    )
    assert not any(r.outcome == "mapped" for r in a.rows if r.line < 22)
