"""Shopify Payments exports (*Finance > Payouts* in the Shopify admin), as CSV, into ``payments``.

Two exports hold a store's Shopify Payments money, and this adapter reads both:

* the **transactions export** (``payment_transactions_export.csv``, *Payouts > Export
  transactions*): one row per balance transaction, with ``Transaction Date`` (the store's
  time zone with its offset: ``2024-03-04 10:12:31 -0500``), ``Type`` (``charge``,
  ``refund``, ``dispute``, ``reserve``, ``adjustment``, ``credit``, ``debit``, ``payout``,
  ``payout_failure``, ``payout_cancellation``), ``Order`` (``#1001``), ``Card Brand``, ``Card
  Source``, ``Payout Status`` (``pending``, ``scheduled``, ``in_transit``, ``paid``,
  ``failed``, ``canceled``, ``action_required``), ``Payout Date``, ``Payout ID``, ``Available
  On``, ``Amount`` (gross, signed: money out is negative), ``Fee`` (positive: what Shopify
  keeps), ``Net``, ``Checkout``, ``Payment Method Name``, ``Presentment Amount``,
  ``Presentment Currency`` and ``Currency`` (the payout currency; some stores also get
  ``VAT`` or ``Business Entity Name``/``ID`` columns). Each transaction is mapped on its own:
  a charge is a ``settlement`` and its fee a separate ``fee``; refunds, disputes and
  Shopify's adjustments are money out; payouts, reserves and balance credits/debits move
  money between the seller's own balances and are skipped, with the reason.
* the **payouts export** (*Payouts > Export*): one row per payout, with ``Payout Date``,
  ``Status``, ``Charges``, ``Refunds``, ``Adjustments``, ``Reserved Funds``, ``Fees``,
  ``Retried Amount``, ``Total`` and ``Currency`` (newer files add ``Marketplace Sales Tax``,
  ``Advances`` and ``Bank Reference``). Each payout's totals become one ``settlement``
  (charges), one ``refund``, one ``fee`` and one ``chargeback`` (negative adjustments),
  dated on the payout date: coarser than the transactions, but the same money.

**Give one of the two exports for a period, not both**: they hold the same money (a payout's
charges are the sum of its charge transactions), and their record IDs cannot tell that one
is the other, so both together count every sale twice. The transactions export is the one
to prefer: it dates each sale, its fee and its payout, which the summary cannot.

The exports have no transaction ID, so a transaction's record ID is made from its type,
order, time (in UTC) and amount, which a re-downloaded, overlapping range repeats exactly; a
payout's from its date and currency. A row repeated in one file is a duplicate, skipped.
Amounts are converted to US dollars at the rate of the (UTC) transaction day; the
presentment amount and currency (what the buyer paid in) are not used: the payout currency
is what the seller was paid in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import chain
from typing import Any

import pandas as pd

from credit.adapters import FormatError
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

COUNTERPARTY = "shopify"

#: the transactions export's columns, in order (what :meth:`ShopifyPayments.export` writes)
TRANSACTIONS_HEADER = (
    "Transaction Date", "Type", "Order", "Card Brand", "Card Source", "Payout Status",
    "Payout Date", "Payout ID", "Available On", "Amount", "Fee", "Net", "Checkout",
    "Payment Method Name", "Presentment Amount", "Presentment Currency", "Currency",
)  # fmt: skip
#: canonical columns each layout needs beside :attr:`ShopifyPayments.required`
_TRANSACTION_COLUMNS: tuple[str, ...] = ("transaction_date", "type", "amount")
_PAYOUT_COLUMNS: tuple[str, ...] = ("charges", "refunds", "adjustments", "fees", "total")

#: transaction type -> contract kind
_KINDS = {"charge": "settlement", "refund": "refund", "dispute": "chargeback",
          "adjustment": "fee"}  # fmt: skip
#: transaction type -> why its rows are skipped
_SKIPPED = {
    "payout": "a payout to the seller's own bank account (money between its own accounts)",
    "payout_failure": "a failed payout returned to the Shopify balance (between own accounts)",
    "payout_cancellation": "a cancelled payout returned to the Shopify balance (between own "
    "accounts)",
    "reserve": "funds Shopify holds in reserve or releases (not a trade flow)",
    "reserved_funds": "funds Shopify holds in reserve or releases (not a trade flow)",
    "credit": "a credit to the Shopify balance from outside the store's sales (not a trade flow)",
    "debit": "a debit of the seller's bank account to cover the Shopify balance (between own "
    "accounts)",
}
#: payout statuses (both exports); only ``paid`` means the money reached the bank
_PAYOUT_STATUSES = frozenset({"pending", "scheduled", "in_transit", "paid", "failed", "canceled",
                              "cancelled", "action_required"})  # fmt: skip
_SLASHED_DAY = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")


def _when(text: str, what: str) -> str:
    """A Shopify date or time as an ISO UTC timestamp (``2024/3/7``, as a spreadsheet saves
    the export, is read as ``2024-03-07``)."""
    m = _SLASHED_DAY.match(text.strip())
    if m:
        text = f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    return timestamp(text, what)


def _money(row: dict[str, str], column: str, label: str) -> float:
    """A money column, empty = 0 (the payouts export's category columns)."""
    value = row.get(column, "")
    return amount(value, label) if value else 0.0


def _token(value: float) -> str:
    """An amount as it enters a record ID: the same text for the same number, however the
    export wrote it (``1,250.00``, ``1250``)."""
    return format(Decimal(repr(value)).normalize(), "f")


def _status(row: dict[str, str]) -> str:
    status = row.get("payout_status", "").strip().lower()
    if status not in _PAYOUT_STATUSES:
        raise Reject(
            f"payout status {row.get('payout_status', '')!r} is not one of "
            f"{', '.join(sorted(_PAYOUT_STATUSES))}"
        )
    return status


class ShopifyPayments(Adapter):
    name = "shopify-payments"
    title = "Shopify Payments transactions or payouts export (CSV)"
    reference = "https://shopify.dev/docs/api/admin-rest/latest/resources/transactions"
    record_type = "payments"
    # both exports have these: the payouts export's "Status" is its payout status
    signature = frozenset({"payout_date", "payout_status", "currency"})
    required = ("payout_date", "payout_status", "currency")
    mapping = (
        Mapping_(
            "payment_id",
            "Type, Order, Transaction Date, Amount; Payout Date, Currency",
            "transactions: `shopify-<type>-<order without #>-<UTC time as YYYYMMDDTHHMMSS>-"
            "<amount without sign>`, its fee the same with `-fee`; a row with the same type, "
            "order, time and amount as an earlier row of the file is a duplicate, skipped. "
            "Payouts: "
            "`shopify-payout-<YYYYMMDD>-<currency>-charges` (`-refunds`, `-fees`, "
            "`-adjustments`); a second payout of the same day and currency is skipped when "
            "all its amounts are the same (a duplicate), else rejected. Give one of the two "
            "exports for a period, not both: they hold the same money under different IDs",
        ),
        Mapping_(
            "kind",
            "Type; Charges, Refunds, Fees, Adjustments",
            "transactions: charge: settlement, and a positive Fee a separate fee (on any "
            "mapped row); refund: refund; dispute with a negative amount: chargeback; "
            "adjustment with a negative amount (a charge by Shopify): fee; a dispute won back "
            "or an adjustment credited (positive): skipped; payout, payout_failure, "
            "payout_cancellation, reserve, credit and debit: skipped (money between the "
            "seller's own balances); any other type: rejected; a charge with a negative or a "
            "refund with a positive amount: rejected. Payouts: positive Charges: settlement; "
            "negative Refunds: refund; negative Fees: fee; negative Adjustments: chargeback "
            "(the summary does not tell disputes, most of them, from other adjustments); a "
            "payout with none of these: skipped",
        ),
        Mapping_("direction", "(from kind)", "settlement in; the others out"),
        Mapping_(
            "amount_usd",
            "Amount (gross), Fee; Charges, Refunds, Fees, Adjustments; Currency",
            "absolute value, converted to USD at the rate of the UTC day of the transaction "
            "(payouts: of the payout date) (--fx); a day with no rate rejects the row; a "
            "negative Fee (a fee returned) is not recorded",
        ),
        Mapping_("currency", "Currency", "the payout currency, upper-cased"),
        Mapping_("counterparty_id", "-", "`shopify`"),
        Mapping_(
            "occurred_at",
            "Transaction Date; Payout Date",
            "transactions: the transaction time, converted from its offset to UTC; payouts: "
            "the payout date",
        ),
        Mapping_(
            "due_at",
            "Available On (else Payout Date); Payout Date",
            "settlements only: when the funds became available for a payout (Available On; "
            "the Payout Date when the file has no Available On); payouts: the payout date",
        ),
        Mapping_(
            "paid_at",
            "Payout Date, Payout Status; Payout Date, Status",
            "settlements: the Payout Date when the payout status is paid, else empty "
            "(pending, scheduled, in_transit, failed, canceled, action_required: not in the "
            "bank yet); a paid charge with no Payout Date is rejected; the others: "
            "occurred_at (the money left the balance then)",
        ),
    )
    unused = ("Card Brand", "Card Source", "Payout ID", "Net", "Checkout",
              "Payment Method Name", "Presentment Amount", "Presentment Currency (what the "
              "buyer paid in, not what the seller was paid)", "VAT", "Business Entity Name / ID",
              "Reserved Funds (holds and releases, not trade flows)", "Retried Amount (a failed "
              "payout paid again: money already counted)", "Total (the net of the others)",
              "Marketplace Sales Tax", "Advances", "Bank Reference")  # fmt: skip
    not_carried = {
        "counterparty_id": "`shopify`: the exports do not name the buyer",
        "occurred_at": "payouts export: the payout date (the summary does not date the sales "
        "it pays)",
    }

    def canonical(self, column: str) -> str:
        c = re.sub(r"\s+", "_", column.strip().lower())
        return "payout_status" if c == "status" else c

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        out = self.new()
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return out
        columns = set(first[1])
        if "transaction_date" in columns:
            layout, needed = self._transaction, _TRANSACTION_COLUMNS
        elif "charges" in columns:
            layout, needed = self._payout, _PAYOUT_COLUMNS
        else:
            raise FormatError(
                f"not a {self.title} file: it has neither a Transaction Date column (the "
                "transactions export) nor a Charges column (the payouts export)"
            )
        missing = [c for c in needed if c not in columns]
        if missing:
            raise FormatError(f"not a {self.title} file: missing column(s) {', '.join(missing)}")
        seen: dict[str, tuple[int, tuple[str, ...]]] = {}
        all_rows: Iterator[tuple[int, dict[str, str]]] = chain([first], it)
        for line, row in all_rows:
            try:
                out.records.extend(layout(line, row, ctx, out, seen))
            except Reject as exc:
                out.rows.append(SourceRow(line, "rejected", str(exc)))
            except Skip as exc:
                out.rows.append(SourceRow(line, "skipped", str(exc)))
        return out

    # -- the transactions export ----------------------------------------------------------

    def _transaction(
        self,
        line: int,
        row: dict[str, str],
        ctx: Context,
        out: Adapted,
        seen: dict[str, tuple[int, tuple[str, ...]]],
    ) -> list[dict[str, Any]]:
        typ = row.get("type", "").strip().lower()
        if typ in _SKIPPED:
            raise Skip(_SKIPPED[typ])
        kind = _KINDS.get(typ)
        if kind is None:
            raise Reject(
                f"unknown transaction type {row.get('type', '')!r}: expected one of "
                f"{', '.join(sorted({*_KINDS, *_SKIPPED}))}"
            )
        gross = amount(row.get("amount", ""), "Amount")
        if typ == "dispute" and gross > 0:
            raise Skip("a dispute won back (the funds returned after a chargeback)")
        if typ == "adjustment" and gross > 0:
            raise Skip(
                "an adjustment credited to the balance by Shopify (a correction, not a sale)"
            )
        if kind == "settlement" and gross < 0 or kind != "settlement" and gross > 0:
            raise Reject(
                f"a {typ} of {row.get('amount')} has the wrong sign (money "
                f"{'in' if gross > 0 else 'out'}, a {typ} is money "
                f"{'in' if kind == 'settlement' else 'out'})"
            )
        fee = _money(row, "fee", "Fee")
        occurred = _when(row.get("transaction_date", ""), "Transaction Date")
        currency = row.get("currency", "").upper()
        order = row.get("order", "").strip().lstrip("#")
        parts = (typ, order, re.sub(r"[-:]", "", occurred), _token(abs(gross)))
        pid = record_id("shopify", *parts)
        due: str | None = occurred
        paid: str | None = occurred
        if kind == "settlement":
            status = _status(row)
            payout_day = row.get("payout_date", "")
            available = row.get("available_on", "") or payout_day
            due = _when(available, "Available On") if available else None
            if status == "paid" and not payout_day:
                raise Reject("the payout status is paid but the Payout Date is empty")
            paid = _when(payout_day, "Payout Date") if status == "paid" else None
        usd, rate = ctx.usd(abs(gross), currency, occurred)
        fee_usd = ctx.usd(fee, currency, occurred)[0] if fee > 0 else 0.0
        if pid in seen:
            raise Skip(f"same order, type, time and amount as line {seen[pid][0]}")
        seen[pid] = (line, parts)
        records = [
            payment(
                pid,
                ctx.firm_id,
                kind,
                usd,
                currency,
                COUNTERPARTY,
                occurred,
                due_at=due if kind == "settlement" else None,
                paid_at=paid,
            )  # fmt: skip
        ]
        if fee > 0:
            records.append(
                payment(
                    record_id("shopify", *parts, "fee"),
                    ctx.firm_id,
                    "fee",
                    fee_usd,
                    currency,
                    COUNTERPARTY,
                    occurred,
                    paid_at=occurred,
                )  # fmt: skip
            )
        out.rows.append(SourceRow(line, "mapped", "", self.record_type, pid, currency, gross, rate))
        return records

    # -- the payouts export ---------------------------------------------------------------

    def _payout(
        self,
        line: int,
        row: dict[str, str],
        ctx: Context,
        out: Adapted,
        seen: dict[str, tuple[int, tuple[str, ...]]],
    ) -> list[dict[str, Any]]:
        day = _when(row.get("payout_date", ""), "Payout Date")
        status = _status(row)
        currency = row.get("currency", "").upper()
        totals = {
            "charges": _money(row, "charges", "Charges"),
            "refunds": _money(row, "refunds", "Refunds"),
            "fees": _money(row, "fees", "Fees"),
            "adjustments": _money(row, "adjustments", "Adjustments"),
        }
        total = _money(row, "total", "Total")
        key = record_id("shopify", "payout", day[:10].replace("-", ""), currency)
        values = tuple(_token(v) for v in (*totals.values(), total)) + (status,)
        if key in seen:
            first, before = seen[key]
            if before == values:
                raise Skip(f"same payout date, currency and amounts as line {first}")
            raise Reject(
                f"a second payout on {day[:10]} in {currency} (line {first} has the first): the "
                "payouts export has no payout ID to tell them apart; ingest the transactions "
                "export for this period instead"
            )
        kinds = {"charges": "settlement", "refunds": "refund", "fees": "fee",
                 "adjustments": "chargeback"}  # fmt: skip
        taken = {k: v for k, v in totals.items() if (v > 0 if kinds[k] == "settlement" else v < 0)}
        if not taken:
            seen[key] = (line, values)
            raise Skip(
                "a payout with no charges, refunds, fees or negative adjustments (a dispute "
                "won back, a release of reserved funds or a retried payout)"
            )
        rate = 1.0
        records = []
        for column, value in taken.items():
            usd, rate = ctx.usd(abs(value), currency, day)
            kind = kinds[column]
            settled = kind == "settlement"
            records.append(
                payment(
                    f"{key}-{column}",
                    ctx.firm_id,
                    kind,
                    usd,
                    currency,
                    COUNTERPARTY,
                    day,
                    due_at=day if settled else None,
                    paid_at=day if not settled or status == "paid" else None,
                )  # fmt: skip
            )
        seen[key] = (line, values)
        rid = records[0]["payment_id"]
        out.rows.append(SourceRow(line, "mapped", "", self.record_type, rid, currency, total, rate))
        return records

    # -- the simulator's side -------------------------------------------------------------

    def carries(self, records: pd.DataFrame) -> pd.Series:
        return records["kind"].isin(["settlement", "refund", "chargeback", "fee"])

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        out = records.copy()
        out["counterparty_id"] = COUNTERPARTY
        settled = out["kind"] == "settlement"
        # Available On and Payout Date are dates; Available On is empty only when due_at is
        due = out["due_at"].dt.floor("D").fillna(out["paid_at"].dt.floor("D"))
        out["due_at"] = due.where(settled)
        out["paid_at"] = out["paid_at"].dt.floor("D").where(settled, out["occurred_at"])
        return out

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        """The transactions export (the simulator's side): a settlement is a charge (pending
        with no payout date while unpaid), a refund a refund, a chargeback a dispute, a fee
        an adjustment taken by Shopify; each row gets its own synthetic order number."""
        lines = [",".join(TRANSACTIONS_HEADER)]
        types = {"settlement": ("charge", 1), "refund": ("refund", -1),
                 "chargeback": ("dispute", -1), "fee": ("adjustment", -1)}  # fmt: skip
        for i, r in enumerate(records.to_dict("records")):
            typ, sign = types[r["kind"]]
            occurred: pd.Timestamp = r["occurred_at"]
            currency: str = r["currency"] if rates is not None else "USD"
            rate = rates.usd_per_unit(currency, occurred.date()) if rates else 1.0
            text = fmt_money(sign * float(r["amount_usd"]) / rate, currency)
            paid: pd.Timestamp | None = occurred
            available = f"{occurred:%Y-%m-%d}"
            if r["kind"] == "settlement":
                available = "" if pd.isna(r["due_at"]) else f"{r['due_at']:%Y-%m-%d}"
                paid = None if pd.isna(r["paid_at"]) else r["paid_at"]
            card = "" if typ == "adjustment" else "visa"
            lines.append(
                ",".join([
                    f"{occurred:%Y-%m-%d %H:%M:%S} +0000", typ, f"#{1001 + i}", card,
                    "online" if card else "", "pending" if paid is None else "paid",
                    "" if paid is None else f"{paid:%Y-%m-%d}",
                    "" if paid is None else f"8{paid:%Y%m%d}", available, text,
                    fmt_money(0, currency), text, "", "card" if card else "", text, currency,
                    currency,
                ])
            )  # fmt: skip
        return "\n".join(lines) + "\n"


ADAPTER = ShopifyPayments()
