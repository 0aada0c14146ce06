"""Stripe balance transactions, as a CSV export, into ``payments``.

Two exports hold them, one row per balance transaction: the Dashboard's *Balance > Export*
(``id``, ``Type``, ``Source``, ``Amount``, ``Fee``, ``Net``, ``Currency``, ``Created (UTC)``,
``Available On (UTC)``, ``Status``, ``Description``...) and the Balance report's itemized
*balance change from activity* (``balance_transaction_id``, ``created_utc``,
``available_on_utc``, ``currency``, ``gross``, ``fee``, ``net``, ``reporting_category``,
``source_id``, ``description``...). Both are read: their column names are brought to one
spelling (``Available On (UTC)`` and ``available_on_utc`` are ``available_on``;
``balance_transaction_id`` is ``id``; ``gross`` is ``amount``). Amounts are in major units
(``10.00``), the currency in lower case (``usd``), as the exports write them.

What a row is comes from ``reporting_category`` when the file has it, else from ``type``
(Stripe's balance transaction types). A charge is money the firm earned (a ``settlement``),
its ``fee`` a separate ``fee`` record; refunds, disputes and Stripe's own fees are money out;
payouts, transfers, top-ups and reserve movements move money between the firm's own balances
and are skipped, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from credit.adapters.base import (
    Adapted,
    Adapter,
    Context,
    Mapping_,
    Reject,
    Skip,
    SourceRow,
    amount,
    fmt_money,
    payment,
    record_id,
    timestamp,
)
from credit.adapters.fx import Rates

COUNTERPARTY = "stripe"

_ALIASES = {"balance_transaction_id": "id", "gross": "amount"}

#: reporting category (or type) -> contract kind
_KINDS = {
    "charge": "settlement",
    "payment": "settlement",
    "refund": "refund",
    "payment_refund": "refund",
    "partial_capture_reversal": "refund",
    "dispute": "chargeback",
    "fee": "fee",
    "stripe_fee": "fee",
    "network_cost": "fee",
    "tax": "fee",
    "application_fee": "fee",
}
#: reporting category (or type) -> why its rows are skipped
_SKIPPED = {
    "payout": "a payout to the firm's own bank account (money between its own accounts)",
    "payout_reversal": "a payout returned to the Stripe balance (money between own accounts)",
    "payout_failure": "a failed payout returned to the Stripe balance",
    "transfer": "a transfer between Stripe accounts, not a trade flow",
    "transfer_reversal": "a transfer reversed between Stripe accounts, not a trade flow",
    "topup": "a top-up of the Stripe balance from the firm's own bank account",
    "topup_reversal": "a top-up reversed",
    "risk_reserved_funds": "funds Stripe holds in reserve or releases (not a trade flow)",
    "reserve_transaction": "funds Stripe holds in reserve or releases (not a trade flow)",
    "reserve_hold": "funds Stripe holds in reserve (not a trade flow)",
    "reserve_release": "funds Stripe releases from reserve (not a trade flow)",
    "refund_failure": "a refund that failed and came back (the refund was never paid)",
    "currency_conversion": "a conversion between the firm's own currency balances",
}


class StripeBalance(Adapter):
    name = "stripe-balance"
    title = "Stripe balance transactions (Dashboard export or Balance report CSV)"
    reference = "https://docs.stripe.com/reports/balance-transaction-types"
    record_type = "payments"
    signature = frozenset({"id", "amount", "fee", "net", "currency", "created", "available_on"})
    required = ("id", "amount", "currency", "created", "available_on")
    mapping = (
        Mapping_("payment_id", "id", "`stripe-<id>`; its fee `stripe-<id>-fee`"),
        Mapping_(
            "kind",
            "reporting_category (else type)",
            "charge/payment: settlement (and its fee column a separate fee); refund, "
            "payment_refund, partial_capture_reversal: refund; dispute with a negative "
            "amount: chargeback; fee, stripe_fee, network_cost, tax, application_fee: fee; "
            "payout, transfer, topup, reserve and currency-conversion rows: skipped; "
            "a dispute won back (positive): skipped; any other: rejected",
        ),
        Mapping_("direction", "(from kind)", "settlement in; the others out"),
        Mapping_(
            "amount_usd",
            "amount (gross), fee; currency",
            "absolute value, converted to USD at the rate of the created day (--fx)",
        ),
        Mapping_("currency", "currency", "upper-cased"),
        Mapping_("counterparty_id", "-", "`stripe`"),
        Mapping_("occurred_at", "created", "UTC"),
        Mapping_("due_at", "available_on", "settlements only: when the funds become available"),
        Mapping_(
            "paid_at",
            "available_on, status",
            "settlements: available_on, unless status is pending (or, with no status column, "
            "available_on lies after the day of ingestion); the others: created",
        ),
    )
    unused = (
        "type (when reporting_category is given)", "net", "source / source_id", "description",
        "customer_facing_amount", "customer_facing_currency", "exchange_rate", "fee_details",
        "charge_id, payment_intent_id, invoice_id...",
    )  # fmt: skip
    not_carried = {
        "paid_at": "for a settlement, the day its funds became available in the Stripe "
        "balance (the export does not say when a payout took them to the bank)",
    }

    def canonical(self, column: str) -> str:
        c = re.sub(r"\s*\(utc\)$|_utc$", "", column.strip().lower())
        c = re.sub(r"\s+", "_", c)
        return _ALIASES.get(c, c)

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        out = self.new()
        seen: dict[str, int] = {}
        for line, row in rows:
            try:
                out.records.extend(self._row(line, row, ctx, out, seen))
            except Reject as exc:
                out.rows.append(SourceRow(line, "rejected", str(exc)))
            except Skip as exc:
                out.rows.append(SourceRow(line, "skipped", str(exc)))
        return out

    def _row(
        self,
        line: int,
        row: dict[str, str],
        ctx: Context,
        out: Adapted,
        seen: dict[str, int],
    ) -> list[dict[str, Any]]:
        txn = row.get("id", "")
        if not txn:
            raise Reject("id is empty: every balance transaction has one (txn_...)")
        if txn in seen:
            raise Skip(f"the same balance transaction as line {seen[txn]} (listed twice)")
        category = (row.get("reporting_category") or row.get("type") or "").strip().lower()
        gross = amount(row.get("amount", ""), "amount")
        if category in _SKIPPED:
            seen[txn] = line
            raise Skip(_SKIPPED[category])
        kind = _KINDS.get(category)
        if category == "adjustment":
            raise Reject(
                "an adjustment with no reporting category: export the reporting_category "
                "column to tell a dispute from another adjustment"
            )
        if kind is None:
            raise Reject(
                f"unknown reporting category / type {category!r}: expected one of "
                f"{', '.join(sorted({*_KINDS, *_SKIPPED}))}"
            )
        if kind == "chargeback" and gross > 0:
            seen[txn] = line
            raise Skip("a dispute won back (funds returned after a chargeback)")
        if kind == "settlement" and gross < 0 or kind != "settlement" and gross > 0:
            raise Reject(
                f"a {category} of {row.get('amount')} has the wrong sign (money "
                f"{'in' if gross > 0 else 'out'}, a {kind} is money "
                f"{'in' if kind == 'settlement' else 'out'})"
            )
        fee = amount(row["fee"], "fee") if row.get("fee") else 0.0
        created = timestamp(row.get("created", ""), "created")
        currency = row.get("currency", "").upper()
        usd, rate = ctx.usd(abs(gross), currency, created)
        pid = record_id("stripe", txn)
        due: str | None = created
        paid: str | None = created
        if kind == "settlement":
            due = timestamp(row.get("available_on", ""), "available_on")
            status = row.get("status", "").strip().lower()
            pending = status == "pending" if status else due[:10] > ctx.today.isoformat()
            paid = None if pending else due
        records = [
            payment(
                pid,
                ctx.firm_id,
                kind,
                usd,
                currency,
                COUNTERPARTY,
                created,
                due_at=due if kind == "settlement" else None,
                paid_at=paid,
            )
        ]
        if fee:
            fee_usd, _ = ctx.usd(abs(fee), currency, created)
            records.append(
                payment(
                    f"{pid}-fee",
                    ctx.firm_id,
                    "fee",
                    fee_usd,
                    currency,
                    COUNTERPARTY,
                    created,
                    paid_at=created,
                )  # fmt: skip
            )
        seen[txn] = line
        out.rows.append(SourceRow(line, "mapped", "", self.record_type, pid, currency, gross, rate))
        return records

    # -- the simulator's side -------------------------------------------------------------

    def carries(self, records: pd.DataFrame) -> pd.Series:
        return records["kind"].isin(["settlement", "refund", "chargeback", "fee"])

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        out = records.copy()
        out["counterparty_id"] = COUNTERPARTY
        settled = out["kind"] == "settlement"
        out.loc[settled & out["paid_at"].notna(), "paid_at"] = out["due_at"]
        out.loc[~settled, "due_at"] = pd.NaT
        out.loc[~settled, "paid_at"] = out["occurred_at"]
        return out

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        lines = ["id,Type,reporting_category,Amount,Fee,Net,Currency,Created (UTC),"
                 "Available On (UTC),Status,Description"]  # fmt: skip
        kinds = {"settlement": ("charge", "charge", 1), "refund": ("refund", "refund", -1),
                 "chargeback": ("adjustment", "dispute", -1),
                 "fee": ("stripe_fee", "fee", -1)}  # fmt: skip
        for i, r in enumerate(records.to_dict("records")):
            typ, category, sign = kinds[r["kind"]]
            created: pd.Timestamp = r["occurred_at"]
            currency = r["currency"] if rates is not None else "USD"
            value = r["amount_usd"] / (rates.usd_per_unit(currency, created.date()) if rates else 1)
            text = fmt_money(sign * value, currency)
            settled = r["kind"] == "settlement"
            available: pd.Timestamp = r["due_at"] if settled else created
            status = "pending" if settled and pd.isna(r["paid_at"]) else "available"
            lines.append(
                ",".join([
                    f"txn_{r['payment_id']}_{i}", typ, category, text, fmt_money(0, currency), text,
                    currency.lower(), created.strftime("%Y-%m-%d %H:%M"),
                    available.strftime("%Y-%m-%d %H:%M"), status, typ,
                ])
            )  # fmt: skip
        return "\n".join(lines) + "\n"


ADAPTER = StripeBalance()
