"""PayPal's Activity download (a business account's *Activity > Download*, or *Reports >
Activity download*), as CSV, into ``payments``.

The file is quoted CSV in UTF-8, often with a byte-order mark, one row per transaction, in
PayPal's column order: ``Date``, ``Time``, ``TimeZone``, ``Name``, ``Type``, ``Status``,
``Currency``, ``Gross``, ``Fee``, ``Net``, ``From Email Address``, ``To Email Address``,
``Transaction ID``, ... ``Reference Txn ID``, ... ``Balance``, ... ``Country Code``, ``Balance
Impact`` (41 columns with *All activity* fields; a download with fewer chosen fields has fewer).
``Balance Impact`` is ``Credit`` (money in), ``Debit`` (money out) or ``Memo`` (no effect on
the balance). Amounts are signed, ``Gross + Fee = Net``, with a thousands separator
(``1,234.56``; accounts in some countries write a decimal comma, ``-23,00``, also read).

What a row is comes from its ``Type`` (PayPal's transaction event descriptions: ``Express
Checkout Payment``, ``Payment Refund``, ``Chargeback``...) and ``Balance Impact`` (without that
column: the sign of ``Gross``). A payment received is a ``settlement`` from PayPal and its
negative ``Fee`` a separate ``fee`` record; a payment sent is a ``supplier_payment`` to the
``To Email Address``; refunds, chargebacks (and payment reversals) and PayPal's standalone fees
are money out. Currency conversions (two rows each: the currency given up and the one received),
withdrawals to the firm's bank, deposits from it, holds and their releases move money between
the firm's own balances and are skipped with the reason, as are memo rows and transactions
that moved no money (``Denied``, ``Reversed``, ``Canceled``...). A ``Pending`` transaction is
an unpaid record.

Dates are written in the account's time zone and date order: ``03/15/2024``, ``09:15:22``,
``PDT`` for a US account, ``15/03/2024`` for most others. The order is decided per file: a date
whose first part is above 12 means day first, one whose second part is above 12 month first;
when every date could be either, a US time zone (``PST``, ``PDT``, ``EST``...) means month
first and any other zone day first. PayPal moves money at once, so a record's ``occurred_at``
and ``paid_at`` are the transaction's moment in UTC, and ``due_at`` is empty.

The simulator's writer (:meth:`PayPalActivity.export`) writes a US account's download: all 41
columns, quoted, with a byte-order mark; Date and Time the US Pacific wall clock of the
record's moment (``PST`` or ``PDT``), so the moment comes back exactly; a settlement as an
``Express Checkout Payment`` (``Pending`` while unpaid), a refund as a ``Payment Refund``, a
chargeback as a ``Chargeback``, a fee as a standalone ``Chargeback Fee`` (PayPal's fees
otherwise ride on the payment's row), a supplier payment as a ``General Payment`` to an
address made from its counterparty; each amount in the record's currency, the one of its minor
units that converts back closest to the record's US dollars.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from credit.adapters.base import (
    ZERO_DECIMAL,
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

COUNTERPARTY = "paypal"

#: The Activity download's columns with *All activity* fields, in PayPal's order.
HEADER = (
    "Date", "Time", "TimeZone", "Name", "Type", "Status", "Currency", "Gross", "Fee", "Net",
    "From Email Address", "To Email Address", "Transaction ID", "Shipping Address",
    "Address Status", "Item Title", "Item ID", "Shipping and Handling Amount",
    "Insurance Amount", "Sales Tax", "Option 1 Name", "Option 1 Value", "Option 2 Name",
    "Option 2 Value", "Reference Txn ID", "Invoice Number", "Custom Number", "Quantity",
    "Receipt ID", "Balance", "Address Line 1", "Address Line 2/District/Neighborhood",
    "Town/City", "State/Province/Region/County/Territory/Prefecture/Republic",
    "Zip/Postal Code", "Country", "Contact Phone Number", "Subject", "Note", "Country Code",
    "Balance Impact",
)  # fmt: skip

#: Types of a payment between two PayPal accounts: received, a settlement; sent, a supplier
#: payment (current Activity download names and the older Download History ones).
_PAYMENTS = frozenset({
    "express checkout payment", "website payment", "ebay auction payment", "mobile payment",
    "general payment", "payment received", "payment sent", "subscription payment",
    "preapproved payment bill user payment", "mass pay payment", "virtual terminal payment",
    "direct credit card payment", "donation payment", "express checkout payment received",
    "express checkout payment sent", "mobile express checkout payment received",
    "mobile express checkout payment sent", "web accept payment received",
    "web accept payment sent", "recurring payment received", "recurring payment sent",
    "preapproved payment sent", "donation received", "donation sent",
})  # fmt: skip
_REFUNDS = frozenset({"payment refund", "refund"})
_CHARGEBACKS = frozenset({"chargeback", "payment reversal"})
#: PayPal's standalone fees (any other type ending in "fee" is one too)
_FEES = frozenset({"chargeback fee", "dispute fee", "fee for mass pay request"})

_CONVERSION = (
    "a conversion between the firm's own PayPal currency balances (the payment it belongs to "
    "is converted at the reference rate of its day)"
)
_OWN_BANK = "a withdrawal to the firm's own bank account or card (money between its own accounts)"
_FUNDING = "money added to the PayPal balance from the firm's own bank account or card"
_HOLD = (
    "money PayPal holds on the balance or releases (a dispute, an open authorization, a "
    "reserve): not a trade flow"
)
#: words of a type (checked after the kinds above) -> why its rows are skipped
_SKIPPED = (
    ("currency conversion", _CONVERSION),
    ("withdraw", _OWN_BANK),
    ("chargeback reversal", "a chargeback reversed in the firm's favour (money returned after "
     "a dispute was won)"),
    ("hold", _HOLD),
    ("release", _HOLD),
    ("deposit", _FUNDING),
    ("add funds", _FUNDING),
    ("credit card", _FUNDING),
    ("authoriz", "an authorization: no money moved"),
    ("authoris", "an authorization: no money moved"),
)  # fmt: skip

_COMPLETED = frozenset({"completed", "refunded", "partially refunded"})
_PENDING = "pending"
_NO_MONEY = frozenset({"denied", "reversed", "canceled", "cancelled", "failed", "expired",
                       "voided", "unclaimed", "returned", "removed", "declined"})  # fmt: skip
_US_ZONES = frozenset({"PST", "PDT", "MST", "MDT", "CST", "CDT", "EST", "EDT", "AKST", "AKDT",
                       "HST"})  # fmt: skip
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/\d{4}")
_DECIMAL_COMMA = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d{2}")
_EXPORT_DOMAIN = "example.com"


def _money(text: str, what: str) -> float:
    """An amount as the download writes it: ``1,234.56``, ``-12.00``, or ``-1.234,56``."""
    t = text.strip()
    if _DECIMAL_COMMA.fullmatch(t):
        t = t.replace(".", "").replace(",", ".")
    return amount(t, what)


def _day_first(rows: list[tuple[int, dict[str, str]]]) -> bool:
    """Whether the file's ``Date`` column is day first (see the module's docstring)."""
    first = second = False
    zone = ""
    for _, row in rows:
        m = _SLASH_DATE.fullmatch(row.get("date", ""))
        if m:
            first |= int(m.group(1)) > 12
            second |= int(m.group(2)) > 12
        zone = zone or row.get("timezone", "").upper()
    if first != second:
        return first
    return bool(zone) and zone not in _US_ZONES


def _family(type_: str) -> str:
    """``payment``, ``refund``, ``chargeback`` or ``fee`` for a ``Type``; :class:`Skip` for
    one that moves money between the firm's own balances; :class:`Reject` for an unknown one."""
    t = " ".join(type_.lower().split())
    if t in _PAYMENTS:
        return "payment"
    if t in _REFUNDS:
        return "refund"
    if t in _CHARGEBACKS:
        return "chargeback"
    if t in _FEES or t.endswith(" fee"):
        return "fee"
    for words, reason in _SKIPPED:
        if words in t:
            raise Skip(reason)
    if not t:
        raise Reject("Type is empty: every transaction has one (e.g. Express Checkout Payment)")
    raise Reject(
        f"unknown Type {type_!r}: expected a payment (e.g. Express Checkout Payment, General "
        "Payment), Payment Refund, Chargeback, Payment Reversal, a fee, or a conversion, "
        "withdrawal, deposit or hold"
    )


def counterparty_of(email: str) -> str:
    """The counterparty ID of a payment sent to ``email``: ``pp-<local part>:<domain>``
    lower-cased (``pp-<digest>`` when that does not fit the contract's ID pattern)."""
    local, _, domain = email.strip().lower().partition("@")
    return record_id("pp", f"{local}:{domain}" if domain else local)


def _pacific(utc: datetime) -> tuple[datetime, str]:
    """The US Pacific wall clock of a UTC moment and its zone, ``PST`` or ``PDT`` (daylight
    time from 02:00 on the second Sunday of March to 02:00 on the first Sunday of November)."""

    def sunday(month: int, first_day: int) -> datetime:
        d = datetime(utc.year, month, first_day)
        return d + timedelta(days=(6 - d.weekday()) % 7)

    start = sunday(3, 8) + timedelta(hours=10)  # 02:00 PST
    end = sunday(11, 1) + timedelta(hours=9)  # 02:00 PDT
    if start <= utc < end:
        return utc - timedelta(hours=7), "PDT"
    return utc - timedelta(hours=8), "PST"


def _email(counterparty_id: str) -> str:
    """The e-mail address a simulated supplier payment is sent to."""
    return f"{counterparty_id.lower()}@{_EXPORT_DOMAIN}"


def _native(usd: float, rate: float, currency: str) -> str:
    """``usd`` written in ``currency`` (its minor units) at ``rate`` US dollars per unit: of
    the amounts next to ``usd / rate``, the one that converts back closest to ``usd`` (to the
    cent, as :meth:`credit.adapters.base.Context.usd` converts it)."""
    step = 1.0 if currency.upper() in ZERO_DECIMAL else 0.01
    near = round(usd / rate / step) * step
    texts = [fmt_money(near + k * step, currency) for k in (0, -1, 1)]
    return min(texts, key=lambda t: abs(round(float(t) * rate, 2) - usd))


def _transaction_id(payment_id: str) -> str:
    """A PayPal-like transaction ID (17 characters) for a simulated record, the same every
    time the record is written."""
    return hashlib.sha256(payment_id.encode()).hexdigest()[:17].upper()


class PayPalActivity(Adapter):
    name = "paypal-activity"
    title = "PayPal Activity download (CSV)"
    reference = (
        "https://developer.paypal.com/api/nvp-soap/paypal-payments-standard/admin/download-history"
    )
    record_type = "payments"
    signature = frozenset(
        {"date", "time", "timezone", "type", "status", "gross", "fee", "net", "transaction id"}
    )
    required = ("date", "time", "timezone", "type", "status", "currency", "gross",
                "transaction id")  # fmt: skip
    mapping = (
        Mapping_(
            "payment_id",
            "Transaction ID",
            "`pp-<Transaction ID>`; the fee of a payment `pp-<Transaction ID>-fee`; a Transaction "
            "ID listed twice: the second row skipped",
        ),
        Mapping_(
            "kind",
            "Type, Balance Impact (else the sign of Gross), Status",
            "Balance Impact Memo: skipped. A payment (Express Checkout Payment, Website Payment, "
            "eBay Auction Payment, Mobile Payment, General Payment, Mass Pay Payment, "
            "PreApproved Payment Bill User Payment, Subscription Payment...) credited: "
            "settlement, and its Fee below zero a separate fee; debited: supplier_payment. "
            "Payment Refund debited: refund (a partial refund is a refund smaller than its "
            "payment, named in Reference Txn ID); Chargeback, Payment Reversal debited: "
            "chargeback; Chargeback Fee, Dispute Fee, Fee for Mass Pay request and any type "
            "ending in Fee, debited: fee. A refund, reversal or fee credited to the firm, "
            "Chargeback Reversal, currency conversions, withdrawals, deposits, holds and "
            "releases (Hold on Balance for Dispute Investigation, Cancellation of Hold for "
            "Dispute Resolution, Account Hold for Open Authorization...), authorizations: "
            "skipped. Status Denied, Reversed, Canceled, Failed, Expired, Voided, Unclaimed, "
            "Returned, Removed, Declined: skipped. An unknown type or status: rejected",
        ),
        Mapping_("direction", "(from kind)", "settlement in; the others out"),
        Mapping_(
            "amount_usd",
            "Gross, Fee; Currency",
            "absolute value (`1,234.56`, `-12.00`; a decimal comma `-1.234,56` too), converted "
            "to USD at the reference rate of the transaction's UTC day (--fx); a Gross of the "
            "wrong sign for its Balance Impact: rejected. A Fee above zero (PayPal returning "
            "part of its fee on a refund) is not carried",
        ),
        Mapping_("currency", "Currency", "upper-cased"),
        Mapping_(
            "counterparty_id",
            "To Email Address",
            "`paypal` for settlements, refunds, chargebacks and fees; a payment sent: "
            "`pp-<local part>:<domain>` of the To Email Address, lower-cased (`pp-<digest>` when "
            "it does not fit the ID pattern); a payment sent with none: rejected",
        ),
        Mapping_(
            "occurred_at",
            "Date, Time, TimeZone",
            "the moment in UTC. Date MM/DD/YYYY or DD/MM/YYYY, decided per file: a first part "
            "above 12 means day first, a second part above 12 month first; a file where every "
            "date could be either is read month first when its TimeZone is a US zone (PST, PDT, "
            "MST, MDT, CST, CDT, EST, EDT, AKST, AKDT, HST) or empty, else day first. TimeZone: "
            "a zone abbreviation (PST, PDT, CET, CEST, BST...), GMT or UTC",
        ),
        Mapping_("due_at", "-", "empty: PayPal moves the money at once"),
        Mapping_(
            "paid_at",
            "Status",
            "Completed (also Refunded, Partially Refunded: the refund is a row of its own): "
            "occurred_at; Pending: empty (unpaid)",
        ),
    )
    unused = ("Name", "Net", "From Email Address", "Shipping Address", "Address Status",
              "Item Title", "Item ID", "Shipping and Handling Amount", "Insurance Amount",
              "Sales Tax", "Option 1 Name", "Option 1 Value", "Option 2 Name", "Option 2 Value",
              "Reference Txn ID (the payment a refund, conversion or hold belongs to: the "
              "contract has no link)", "Invoice Number", "Custom Number", "Quantity",
              "Receipt ID", "Balance", "Address Line 1", "Address Line 2/District/Neighborhood",
              "Town/City", "State/Province/Region/County/Territory/Prefecture/Republic",
              "Zip/Postal Code", "Country", "Contact Phone Number", "Subject", "Note",
              "Country Code")  # fmt: skip
    not_carried = {
        "due_at": "empty: a PayPal transaction moves money at once (a marketplace payout's due "
        "date is not in the download)",
        "paid_at": "occurred_at for a Completed transaction, empty for a Pending one: a "
        "settlement paid later than it occurred comes back paid when it occurred",
        "counterparty_id": "`paypal` for settlements, refunds, chargebacks and fees (the "
        "buyer's name and e-mail address are no contract counterparty)",
    }

    def canonical(self, column: str) -> str:
        c = " ".join(column.strip().lower().split())
        return "timezone" if c == "time zone" else c

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        out = self.new()
        listed = list(rows)
        day_first = _day_first(listed)
        seen: dict[str, int] = {}
        for line, row in listed:
            try:
                out.records.extend(self._row(line, row, ctx, out, seen, day_first))
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
        day_first: bool,
    ) -> list[dict[str, Any]]:
        txn = row.get("transaction id", "")
        if not txn:
            raise Reject("Transaction ID is empty: every PayPal transaction has one")
        if txn in seen:
            raise Skip(f"the same transaction as line {seen[txn]} (listed twice)")
        try:
            kind, credit = self._kind(row)
        except Skip:
            seen[txn] = line
            raise
        status = row.get("status", "").strip()
        paid = status.lower() in _COMPLETED
        if status.lower() in _NO_MONEY:
            seen[txn] = line
            raise Skip(f"a {status} transaction: no money moved, or all of it was returned")
        if not paid and status.lower() != _PENDING:
            raise Reject(
                f"unknown Status {status!r}: expected Completed or Pending (Denied, Reversed, "
                "Canceled and the like are skipped)"
            )
        gross = _money(row.get("gross", ""), "Gross")
        if credit is None:
            credit = gross > 0
        elif gross and credit != (gross > 0):
            raise Reject(
                f"Gross {row.get('gross')} has the wrong sign for Balance Impact "
                f"{row.get('balance impact')}"
            )
        if kind == "payment":
            kind = "settlement" if credit else "supplier_payment"
        elif credit:
            seen[txn] = line
            raise Skip(
                f"a {row.get('type')} credited to the firm (money returned to it, not a trade "
                "flow of the contract)"
            )
        fee = _money(row["fee"], "Fee") if row.get("fee") else 0.0
        parts = [row.get(c, "") for c in ("date", "time", "timezone")]
        text = " ".join(p for p in parts if p)
        try:
            when = timestamp(text, "Date", day_first=day_first)
        except Reject:
            raise Reject(
                f"Date, Time and TimeZone {text!r} are not a moment this adapter can read "
                "(expected e.g. 03/15/2024, 09:15:22 and PST, PDT, CET, GMT or UTC)"
            ) from None
        currency = row.get("currency", "").upper()
        usd, rate = ctx.usd(abs(gross), currency, when)
        counterparty = COUNTERPARTY
        if kind == "supplier_payment":
            email = row.get("to email address", "")
            if not email:
                raise Reject("a payment sent with no To Email Address: whom it paid is unknown")
            counterparty = counterparty_of(email)
        pid = record_id("pp", txn)
        at = when if paid else None
        records = [payment(pid, ctx.firm_id, kind, usd, currency, counterparty, when, paid_at=at)]
        if fee < 0:
            fee_usd, _ = ctx.usd(-fee, currency, when)
            records.append(
                payment(f"{pid}-fee", ctx.firm_id, "fee", fee_usd, currency, COUNTERPARTY, when,
                        paid_at=at)
            )  # fmt: skip
        seen[txn] = line
        out.rows.append(SourceRow(line, "mapped", "", self.record_type, pid, currency, gross, rate))
        return records

    @staticmethod
    def _kind(row: dict[str, str]) -> tuple[str, bool | None]:
        """The row's type family and whether it is a credit (None: tell from the amount)."""
        impact = row.get("balance impact", "").strip().lower()
        if impact == "memo":
            raise Skip("a memo row (no effect on the balance: an order, a request, an "
                       "authorization or a note)")  # fmt: skip
        if impact not in ("credit", "debit", ""):
            raise Reject(
                f"unknown Balance Impact {row.get('balance impact')!r}: expected Credit, "
                "Debit or Memo"
            )
        family = _family(row.get("type", ""))
        return family, (impact == "credit") if impact else None

    # -- the simulator's side -------------------------------------------------------------

    def carries(self, records: pd.DataFrame) -> pd.Series:
        return records["kind"].isin(
            ["settlement", "refund", "chargeback", "fee", "supplier_payment"]
        )

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        out = records.copy()
        sent = out["kind"] == "supplier_payment"
        out.loc[~sent, "counterparty_id"] = COUNTERPARTY
        out.loc[sent, "counterparty_id"] = [
            counterparty_of(_email(c)) for c in out.loc[sent, "counterparty_id"]
        ]
        out["paid_at"] = out["occurred_at"].where(out["paid_at"].notna())
        out["due_at"] = out["due_at"].where(pd.Series(False, index=out.index))
        return out

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        types = {"settlement": "Express Checkout Payment", "refund": "Payment Refund",
                 "chargeback": "Chargeback", "fee": "Chargeback Fee",
                 "supplier_payment": "General Payment"}  # fmt: skip
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(HEADER)
        for r in records.to_dict("records"):
            at = r["occurred_at"].to_pydatetime()
            currency = r["currency"] if rates is not None else "USD"
            rate = rates.usd_per_unit(currency, at.date()) if rates else 1.0
            value = _native(r["amount_usd"], rate, currency)
            credit = r["kind"] == "settlement"
            gross = value if credit else f"-{value}"
            local, zone = _pacific(at)
            sent = r["kind"] == "supplier_payment"
            cells = dict.fromkeys(HEADER, "")
            cells.update({
                "Date": local.strftime("%m/%d/%Y"), "Time": local.strftime("%H:%M:%S"),
                "TimeZone": zone, "Type": types[r["kind"]],
                "Status": "Completed" if pd.notna(r["paid_at"]) else "Pending",
                "Currency": currency, "Gross": gross, "Fee": fmt_money(0, currency),
                "Net": gross, "Transaction ID": _transaction_id(r["payment_id"]),
                "To Email Address": _email(r["counterparty_id"]) if sent else "",
                "Balance Impact": "Credit" if credit else "Debit",
            })  # fmt: skip
            writer.writerow(cells.values())
        return "\ufeff" + buf.getvalue()


ADAPTER = PayPalActivity()
