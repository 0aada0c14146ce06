"""Amazon seller settlement reports (flat file V2, tab-separated) into ``payments``.

Amazon settles a seller's account every period (usually 14 days) and publishes one report
per settlement: ``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``, the *Flat File V2* download
of Seller Central's *Payments > All Statements*. Its columns, in order::

    settlement-id  settlement-start-date  settlement-end-date  deposit-date  total-amount
    currency  transaction-type  order-id  merchant-order-id  adjustment-id  shipment-id
    marketplace-name  amount-type  amount-description  amount  fulfillment-id  posted-date
    posted-date-time  order-item-code  merchant-order-item-id  merchant-adjustment-item-id
    sku  quantity-purchased  promotion-id

The first row of a settlement is its *summary line*: settlement-id, the period, the
deposit-date, the total-amount and the currency filled, ``transaction-type`` empty. It is
skipped (it holds the totals of the rows that follow), but gives the settlement's end date,
deposit date and currency to its rows, which usually leave those columns empty. Several
reports may be concatenated in one file (or a download may cover several settlements): each
settlement-id is read on its own.

Every other row is one *amount component* (``amount-type``/``amount-description``/``amount``)
of a transaction. The components of one transaction are summed into one record:

* ``Order``: the ``ItemPrice`` (Principal, Shipping, Tax, GiftWrap...), ``Promotion`` and
  ``ItemWithheldTax`` (marketplace facilitator tax, which nets the tax out) rows of one order
  make one ``settlement`` (money in); its ``ItemFees`` rows (Commission,
  FBAPerUnitFulfillmentFee...) one ``fee`` (money out);
* ``Refund``: all the rows of one order's refund (the price paid back, the commission
  returned, the refund commission charged) net to one ``refund``; a partial refund is simply
  smaller than its order;
* ``Chargeback Refund`` (``Chargeback``) and ``A-to-z Guarantee Refund``: a buyer's claim
  paid out of the seller's balance, one ``chargeback``;
* reserve lines (``Previous Reserve Amount Balance``, ``Current Reserve Amount``: money
  Amazon holds back from one settlement and releases in the next), transfers and charges to
  the seller's card (``Transfer``, ``Paid to Amazon``, ``Failed Charge``) and inventory
  reimbursements are skipped with the reason: they are not trade flows;
* any other transaction (``other-transaction`` Subscription Fee or Storage Fee,
  ``ServiceFee`` Cost of Advertising...) is Amazon's own charge: the rows of one
  transaction type, amount type and description posted on one day make one ``fee``.

A record whose rows net to the wrong sign for its kind (an order whose promotions exceed its
price, a fee that is a credit) is rejected, all its rows, with the amount; so is a record
one of whose rows is bad (an amount that is not a number, a date that is not one), the
reason naming the bad line.

Amounts are in the settlement's currency (the marketplace's: EUR for Amazon.de, GBP for
Amazon.co.uk), written the marketplace's way (``1,234.56``, or ``1.234,56`` on European
marketplaces), and converted to US dollars at the rate of the posted day. Dates come as
ISO timestamps, ``2024-03-01 08:00:00 UTC``, ``01.03.2024 08:00:00 UTC`` or (``posted-date``)
``03/01/24``; ``posted-date-time`` (UTC) is used when the file has it, else ``posted-date``.

A negative settlement (fees above sales: Amazon charges the seller's card for the
difference) needs nothing special: its rows map as any other.

Record IDs: ``amz-<settlement-id>-<order-id>-<kind>`` (the adjustment-id when the row has no
order-id), and for other transactions a digest of the settlement-id, transaction type,
amount type, description and posted day: the same settlement gives the same records in every
export that holds it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
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

COUNTERPARTY = "amazon"

HEADER = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date",
    "total-amount", "currency", "transaction-type", "order-id", "merchant-order-id",
    "adjustment-id", "shipment-id", "marketplace-name", "amount-type", "amount-description",
    "amount", "fulfillment-id", "posted-date", "posted-date-time", "order-item-code",
    "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
    "promotion-id",
)  # fmt: skip

#: Order amount types that are the sale (price, promotions, tax withheld by Amazon)
_SALE_TYPES = frozenset({"itemprice", "promotion", "itemwithheldtax"})
_FEE_TYPES = frozenset({"itemfees"})
_CHARGEBACK_TYPES = frozenset({"chargeback refund", "chargeback", "a-to-z guarantee refund"})
_RESERVE = frozenset({"previous reserve amount balance", "current reserve amount"})
_TRANSFER = frozenset({"transfer", "paid to amazon", "failed charge"})
_REIMBURSEMENT = frozenset({"fba inventory reimbursement", "refund reimbursal"})

#: marketplace of each settlement currency (the export's ``marketplace-name``)
_MARKETPLACE = {"USD": "Amazon.com", "EUR": "Amazon.de", "GBP": "Amazon.co.uk",
                "JPY": "Amazon.co.jp", "PLN": "Amazon.pl", "MXN": "Amazon.com.mx",
                "BRL": "Amazon.com.br", "SGD": "Amazon.sg", "AED": "Amazon.ae",
                "SAR": "Amazon.sa", "CAD": "Amazon.ca", "AUD": "Amazon.com.au"}  # fmt: skip
#: currencies whose marketplaces write ``1.234,56`` and ``18.03.2024``
_EUROPEAN_STYLE = frozenset({"EUR", "PLN"})

_EU_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d{1,2}$")
_SHORT_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2})$")


def _money(text: str, what: str = "amount") -> float:
    """An amount as the report writes it: ``1,234.56``, or ``1.234,56`` (decimal comma, as
    European marketplaces write it: a comma followed by one or two digits ends the number)."""
    t = text.strip()
    if _EU_NUMBER.match(t):
        t = t.replace(".", "").replace(",", ".")
    return amount(t, what)


def _date(text: str, what: str) -> str:
    """A report date as an ISO UTC timestamp (``MM/DD/YY``, the V2 ``posted-date`` spelling,
    taken as 20YY)."""
    m = _SHORT_US_DATE.match(text.strip())
    return timestamp(f"{m.group(1)}/{m.group(2)}/20{m.group(3)}" if m else text, what)


@dataclass
class _Settlement:
    """What a settlement's summary line (else the first of its rows that fills it) says."""

    summary_line: int | None = None
    values: dict[str, str] = field(default_factory=dict)

    def take(self, row: dict[str, str], summary: bool, line: int) -> None:
        first_summary = summary and self.summary_line is None
        for c in ("settlement-end-date", "deposit-date", "currency"):
            v = row.get(c, "")
            if first_summary or (v and c not in self.values):
                self.values[c] = v
        if first_summary:
            self.summary_line = line


@dataclass
class _Part:
    """One source row of a record: its outcome row, amount, currency, posted time, error."""

    source: SourceRow
    value: float | None
    currency: str
    posted: str | None
    error: str | None


@dataclass
class _Group:
    """The rows that make one record."""

    settlement: str
    kind: str
    ident: tuple[str, ...]
    what: str
    parts: list[_Part] = field(default_factory=list)


class AmazonSettlement(Adapter):
    name = "amazon-settlement"
    title = "Amazon settlement report (flat file V2)"
    reference = "https://developer-docs.amazon.com/sp-api/docs/report-type-values-settlement"
    record_type = "payments"
    delimiter = "\t"
    signature = frozenset(
        {"settlement-id", "transaction-type", "amount-type", "amount-description", "posted-date"}
    )
    required = ("settlement-id", "settlement-end-date", "deposit-date", "currency",
                "transaction-type", "order-id", "amount-type", "amount-description", "amount",
                "posted-date")  # fmt: skip
    mapping = (
        Mapping_(
            "payment_id",
            "settlement-id, order-id (else adjustment-id), transaction-type, amount-type, "
            "amount-description, posted-date",
            "`amz-<settlement-id>-<order-id>-<kind>` (the adjustment-id when there is no "
            "order-id); other transactions: `amz-` and a digest of the settlement-id, "
            "transaction-type, amount-type, amount-description, posted day and kind",
        ),
        Mapping_(
            "kind",
            "transaction-type, amount-type, amount-description",
            "rows summed per settlement-id and transaction: Order ItemPrice/Promotion/"
            "ItemWithheldTax rows of one order: settlement; Order ItemFees rows of one order: "
            "fee; all rows of one order's Refund: refund; Chargeback Refund, Chargeback, A-to-z "
            "Guarantee Refund: chargeback; any other transaction (other-transaction, "
            "ServiceFee...), per type, amount-type, description and posted day: fee. "
            "Skipped: the summary line (transaction-type empty), reserve lines (Previous "
            "Reserve Amount Balance, Current Reserve Amount), Transfer, Paid to Amazon, Failed "
            "Charge, inventory reimbursements. A sum with the wrong sign for its kind (a "
            "settlement below 0, a fee, refund or chargeback above 0): its rows rejected",
        ),
        Mapping_("direction", "(from kind)", "settlement in; the others out"),
        Mapping_(
            "amount_usd",
            "amount; currency (else the summary line's)",
            "absolute value of the rows' sum (`1,234.56` or `1.234,56`), converted to USD at "
            "the rate of the posted day (--fx); no rate that day: its rows rejected",
        ),
        Mapping_("currency", "currency (else the summary line's)", "upper-cased"),
        Mapping_("counterparty_id", "-", "`amazon`"),
        Mapping_(
            "occurred_at",
            "posted-date-time (else posted-date)",
            "UTC; the earliest of the record's rows",
        ),
        Mapping_(
            "due_at",
            "settlement-end-date (summary line)",
            "settlements only: the end of the settlement period, when Amazon owes the payout",
        ),
        Mapping_(
            "paid_at",
            "deposit-date (summary line)",
            "settlements: the deposit-date, empty when it is empty or after the day of "
            "ingestion; fees, refunds and chargebacks (deducted from the balance when "
            "posted): the posted time",
        ),
    )
    unused = ("settlement-start-date", "total-amount (named in the summary line's reason)",
              "merchant-order-id", "shipment-id", "marketplace-name", "fulfillment-id",
              "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id",
              "sku", "quantity-purchased", "promotion-id")  # fmt: skip
    not_carried = {
        "counterparty_id": "`amazon`: the report does not name the buyers",
        "paid_at": "for a settlement, the deposit-date: the day Amazon sends the transfer "
        "(the report does not say when it reached the bank)",
    }

    def canonical(self, column: str) -> str:
        return re.sub(r"[\s_]+", "-", column.strip().lower())

    # -- reading ----------------------------------------------------------------------------

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        out = self.new()
        read = list(rows)
        settlements: dict[str, _Settlement] = {}
        for line, row in read:
            sid = row.get("settlement-id", "")
            if sid:
                summary = not row.get("transaction-type", "") and bool(row.get("total-amount"))
                settlements.setdefault(sid, _Settlement()).take(row, summary, line)
        groups: dict[tuple[str, ...], _Group] = {}
        for line, row in read:
            source = SourceRow(line, "mapped")
            out.rows.append(source)
            try:
                self._group(line, row, source, settlements, groups)
            except Reject as exc:
                source.outcome, source.reason = "rejected", str(exc)
            except Skip as exc:
                source.outcome, source.reason = "skipped", str(exc)
        for g in groups.values():
            record = self._record(g, settlements[g.settlement], ctx)
            if record is not None:
                out.records.append(record)
        return out

    def _group(
        self,
        line: int,
        row: dict[str, str],
        source: SourceRow,
        settlements: dict[str, _Settlement],
        groups: dict[tuple[str, ...], _Group],
    ) -> None:
        """Put one row into the group of its record (or raise Skip / Reject)."""
        sid = row.get("settlement-id", "")
        if not sid:
            raise Reject("settlement-id is empty: every row of the report names its settlement")
        ttype = row.get("transaction-type", "")
        if not ttype:
            if not row.get("total-amount", ""):
                raise Reject(
                    "transaction-type is empty and the row has no total-amount (neither a "
                    "transaction nor a settlement's summary line)"
                )
            if settlements[sid].summary_line != line:
                raise Skip(f"summary line of settlement {sid} repeated")
            raise Skip(_summary_reason(sid, row))
        tt = ttype.casefold()
        atype, desc = row.get("amount-type", ""), row.get("amount-description", "")
        at, dc = atype.casefold(), desc.casefold()
        if {tt, dc} & _RESERVE:
            raise Skip(
                f"reserve line ({desc or ttype}): money Amazon holds back from a settlement "
                "or releases into the next, not a trade flow"
            )
        if {tt, at, dc} & _TRANSFER:
            raise Skip(
                f"{desc or ttype}: money moved between Amazon and the seller's own bank account "
                "or card, not a trade flow"
            )
        if {at, dc} & _REIMBURSEMENT:
            raise Skip(f"{atype or desc}: Amazon's reimbursement of lost or damaged inventory")
        order = row.get("order-id", "") or row.get("adjustment-id", "")
        posted, error = None, None
        try:
            when = row.get("posted-date-time", "")
            posted = (
                _date(when, "posted-date-time")
                if when
                else _date(row.get("posted-date", ""), "posted-date")
            )
        except Reject as exc:
            error = str(exc)
        ident: tuple[str, ...] = (order,)
        if tt == "order":
            if at in _SALE_TYPES:
                kind, what = "settlement", f"order {order}"
            elif at in _FEE_TYPES:
                kind, what = "fee", f"fees of order {order}"
            else:
                raise Reject(
                    f"amount-type {atype!r} of an Order: expected ItemPrice, Promotion, "
                    "ItemWithheldTax or ItemFees"
                )
        elif tt == "refund":
            kind, what = "refund", f"refund of order {order}"
        elif tt in _CHARGEBACK_TYPES:
            kind, what = "chargeback", f"{ttype} of order {order}"
        else:  # Amazon's own charge: one fee per transaction, description and posted day
            if posted is None:
                raise Reject(error or "posted-date is empty")
            kind, ident = "fee", (ttype, atype, desc, posted[:10])
            what = " ".join(v for v in (ttype, atype, desc, "of", posted[:10]) if v)
        if len(ident) == 1 and not order:
            raise Reject(f"a {ttype} row with neither order-id nor adjustment-id")
        currency = (row.get("currency", "") or settlements[sid].values.get("currency", "")).upper()
        value = None
        try:
            value = _money(row.get("amount", ""))
        except Reject as exc:
            error = error or str(exc)
        if not currency:
            error = error or (
                f"no currency: neither the row nor settlement {sid}'s summary line gives one"
            )
        key = (sid, kind, *ident)
        g = groups.setdefault(key, _Group(sid, kind, ident, what))
        g.parts.append(_Part(source, value, currency, posted, error))
        source.currency, source.amount = currency or None, value

    def _record(self, g: _Group, s: _Settlement, ctx: Context) -> dict[str, Any] | None:
        """The record a group makes, or None when its rows are rejected (all of them)."""
        bad = next((p for p in g.parts if p.error), None)
        if bad is not None:
            for p in g.parts:
                p.source.outcome = "rejected"
                p.source.reason = p.error or (
                    f"line {bad.source.line} of the same {g.what} is rejected: {bad.error}"
                )
            return None
        try:
            return self._make(g, s, ctx)
        except Reject as exc:
            for p in g.parts:
                p.source.outcome, p.source.reason = "rejected", str(exc)
            return None

    def _make(self, g: _Group, s: _Settlement, ctx: Context) -> dict[str, Any]:
        currencies = sorted({p.currency for p in g.parts})
        if len(currencies) > 1:
            raise Reject(f"the rows of the {g.what} are in several currencies ({currencies})")
        currency = currencies[0]
        total = round(math.fsum(p.value or 0.0 for p in g.parts), 6)
        money_in = g.kind == "settlement"
        if (total < 0) if money_in else (total > 0):
            lines = ", ".join(str(p.source.line) for p in g.parts)
            raise Reject(
                f"the {g.what} in settlement {g.settlement} nets {total:+.2f} {currency} "
                f"(money {'out' if total < 0 else 'in'}; a {g.kind} is money "
                f"{'in' if money_in else 'out'}): lines {lines}"
            )
        occurred = min(p.posted for p in g.parts if p.posted)
        usd, rate = ctx.usd(abs(total), currency, occurred)
        due = paid = None
        if money_in:
            end = s.values.get("settlement-end-date", "")
            if not end:
                raise Reject(
                    f"settlement {g.settlement} has no settlement-end-date (its summary line is "
                    "not in the file): the day Amazon owes the payout is unknown"
                )
            due = _date(end, f"settlement-end-date of settlement {g.settlement}")
            deposit = s.values.get("deposit-date", "")
            if deposit:
                paid = _date(deposit, f"deposit-date of settlement {g.settlement}")
                if paid[:10] > ctx.today.isoformat():
                    paid = None
        else:
            paid = occurred
        pid = record_id("amz", g.settlement, *g.ident, g.kind)
        for p in g.parts:
            p.source.record_type, p.source.record_id, p.source.usd_rate = (
                self.record_type,
                pid,
                rate,
            )
        return payment(
            pid, ctx.firm_id, g.kind, usd, currency, COUNTERPARTY, occurred,
            due_at=due, paid_at=paid,
        )  # fmt: skip

    # -- the simulator's side -------------------------------------------------------------

    def carries(self, records: pd.DataFrame) -> pd.Series:
        """Settlements (with a due date: the end of their settlement), refunds, chargebacks
        and fees."""
        kinds = records["kind"].isin(["settlement", "refund", "chargeback", "fee"])
        return kinds & ((records["kind"] != "settlement") | records["due_at"].notna())

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        out = records.copy()
        out["counterparty_id"] = COUNTERPARTY
        other = out["kind"] != "settlement"
        out.loc[other, "due_at"] = pd.NaT
        out.loc[other, "paid_at"] = out.loc[other, "occurred_at"]
        return out

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        """The records as settlement reports, one after the other in one file.

        Each ``settlement`` record is an Order (one ItemPrice Principal row) in a settlement
        whose settlement-end-date is its due_at and deposit-date its paid_at (empty when
        unpaid): one settlement per currency, due_at and paid_at. Refunds (``Refund``),
        chargebacks (``Chargeback Refund``) and fees (``ServiceFee`` Cost of Advertising),
        posted on their occurred_at, go into the first settlement of their currency that
        ends on or after that day (one that holds no other fee of that day), else into
        settlements that end with their last row and have no deposit yet. Amounts are in
        the record's currency when rates are given (else USD), written the marketplace's
        way; settlement-ids and order-ids are derived from the firm ID, so two firms'
        reports never share one.
        """
        recs = records[self.carries(records)].sort_values(
            ["occurred_at", "payment_id"], kind="stable"
        )
        firm = str(recs["firm_id"].iloc[0]) if len(recs) else ""
        digest = int(hashlib.sha256(firm.encode()).hexdigest(), 16)
        settlements: list[_Outgoing] = []
        paid_out: dict[tuple[str, pd.Timestamp, pd.Timestamp | None], _Outgoing] = {}
        for r in recs.to_dict("records"):
            currency = r["currency"] if rates is not None else "USD"
            value = r["amount_usd"] / (
                rates.usd_per_unit(currency, r["occurred_at"].date()) if rates else 1.0
            )
            posted: pd.Timestamp = r["occurred_at"]
            if r["kind"] == "settlement":
                paid = None if pd.isna(r["paid_at"]) else r["paid_at"]
                key = (currency, r["due_at"], paid)
                if key not in paid_out:
                    paid_out[key] = _Outgoing(currency, r["due_at"], paid)
                    settlements.append(paid_out[key])
                target = paid_out[key]
            else:
                target = _place(settlements, currency, posted, r["kind"] == "fee")
            target.add(posted, r["kind"], value)
        settlements.sort(key=lambda s: (s.closes(), s.currency))
        lines = ["\t".join(HEADER)]
        seq = 0
        for n, s in enumerate(settlements):
            sid = f"{10**14 + digest % (9 * 10**14)}{n:04d}"
            lines.append(s.summary(sid))
            for posted, kind, value in sorted(s.rows, key=lambda x: x[0]):
                seq += 1
                order = f"{digest % 1000:03d}-{digest // 1000 % 10**7:07d}-{seq:07d}"
                lines.append(s.row(sid, posted, kind, value, order, f"{seq:014d}"))
        return "\n".join(lines) + "\n"


#: kind -> the export's transaction-type, amount-type, amount-description, sign
_EXPORT_ROW = {
    "settlement": ("Order", "ItemPrice", "Principal", 1),
    "refund": ("Refund", "ItemPrice", "Principal", -1),
    "chargeback": ("Chargeback Refund", "ItemPrice", "Principal", -1),
    "fee": ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount", -1),
}


@dataclass
class _Outgoing:
    """A settlement being written: its currency, end and deposit dates and rows. ``end``
    None: an open settlement (refunds, fees, chargebacks after the last payout), which ends
    with its last row and has no deposit yet."""

    currency: str
    end: pd.Timestamp | None
    deposit: pd.Timestamp | None
    rows: list[tuple[pd.Timestamp, str, float]] = field(default_factory=list)
    fee_days: set[pd.Timestamp] = field(default_factory=set)

    def add(self, posted: pd.Timestamp, kind: str, value: float) -> None:
        self.rows.append((posted, kind, value))
        if kind == "fee":
            self.fee_days.add(posted.normalize())

    def closes(self) -> pd.Timestamp:
        return self.end if self.end is not None else max(p for p, _, _ in self.rows)

    def _date(self, when: pd.Timestamp | None) -> str:
        if when is None:
            return ""
        european = self.currency in _EUROPEAN_STYLE
        return when.strftime("%d.%m.%Y %H:%M:%S UTC" if european else "%Y-%m-%d %H:%M:%S UTC")

    def _money(self, value: Decimal) -> str:
        text = fmt_money(float(value), self.currency)
        return text.replace(".", ",") if self.currency in _EUROPEAN_STYLE else text

    def _amount(self, kind: str, value: float) -> Decimal:
        return Decimal(fmt_money(_EXPORT_ROW[kind][3] * value, self.currency))

    def summary(self, sid: str) -> str:
        total = sum((self._amount(k, v) for _, k, v in self.rows), Decimal(0))
        start = min(p for p, _, _ in self.rows)
        cells = [sid, self._date(start), self._date(self.closes()), self._date(self.deposit),
                 self._money(total), self.currency]  # fmt: skip
        return "\t".join(cells + [""] * (len(HEADER) - len(cells)))

    def row(self, sid: str, posted: pd.Timestamp, kind: str, value: float, order: str,
            adjustment: str) -> str:  # fmt: skip
        ttype, atype, desc, _ = _EXPORT_ROW[kind]
        day = posted.strftime("%d.%m.%Y" if self.currency in _EUROPEAN_STYLE else "%Y-%m-%d")
        cells = {
            "settlement-id": sid,
            "transaction-type": ttype,
            "order-id": order if kind != "fee" else "",
            "adjustment-id": adjustment if kind in ("refund", "chargeback") else "",
            "marketplace-name": _MARKETPLACE.get(self.currency, "Amazon.com"),
            "amount-type": atype,
            "amount-description": desc,
            "amount": self._money(self._amount(kind, value)),
            "posted-date": day,
            "posted-date-time": posted.strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        return "\t".join(cells.get(c, "") for c in HEADER)


def _place(
    settlements: list[_Outgoing], currency: str, posted: pd.Timestamp, fee: bool
) -> _Outgoing:
    """The settlement a refund, chargeback or fee posted on ``posted`` goes into (a fee
    never shares a settlement with another fee of its day: they would be one record)."""

    def fits(s: _Outgoing) -> bool:
        return s.currency == currency and not (fee and posted.normalize() in s.fee_days)

    closed = [s for s in settlements if s.end is not None and s.end >= posted and fits(s)]
    if closed:
        return min(closed, key=lambda s: s.closes())
    for s in settlements:
        if s.end is None and fits(s):
            return s
    settlements.append(_Outgoing(currency, None, None))
    return settlements[-1]


def _summary_reason(sid: str, row: dict[str, str]) -> str:
    total, currency = row.get("total-amount", ""), row.get("currency", "")
    try:
        negative = _money(total) < 0
    except Reject:
        negative = False
    deposit = row.get("deposit-date", "") or "not given"
    note = " (negative: fees exceeded sales, Amazon charges the seller)" if negative else ""
    return (
        f"summary line of settlement {sid}: total-amount {total} {currency}{note}, deposit-date "
        f"{deposit}; the settlement's rows follow"
    )


ADAPTER = AmazonSettlement()
