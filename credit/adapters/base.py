"""What every adapter shares: source rows and their outcome, parsing, money, identifiers.

An adapter reads one export file as its producer wrote it (an Amazon settlement report, a
Stripe balance CSV...) and turns it into contract records of one record type. Every source
row ends in exactly one outcome:

* ``mapped``: it went into a record (several rows may go into one: the amount rows of one
  order, the tracking events of one parcel, the versions of an amended declaration);
* ``rejected``: it cannot be used as it is (an amount that is not a number, a currency with
  no rate on that day), with a reason a person can act on; a record the data contract
  rejects turns every row it came from into a rejected row with the contract's reason;
* ``skipped``: it holds nothing for the contract (a summary line, a transfer to the
  seller's own bank account), with the reason.

So ``read = mapped + rejected + skipped`` for the rows of a file, and ``records = accepted +
rejected`` for the records made from it.

Record IDs are made from the export's own identifiers (a settlement and order ID, a Stripe
balance transaction ID, a tracking number), so re-ingesting the same export, or a later one
that overlaps it, finds the same IDs and adds only what is new.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pandas as pd

from credit.records import ID_PATTERN, RECORD_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from credit.adapters.fx import Rates

Outcome = Literal["mapped", "rejected", "skipped"]
_ID_RE = re.compile(ID_PATTERN)


class Reject(Exception):  # noqa: N818 - an outcome, not an error
    """A source row cannot be used; the message says why and what to change."""


class Skip(Exception):  # noqa: N818 - an outcome, not an error
    """A source row holds nothing for the contract; the message says what it is."""


@dataclass
class SourceRow:
    """One row of the source file and what became of it.

    ``line`` is the line the row starts on (the header is line 1). ``currency`` and
    ``amount`` are the row's money as the source gave it, ``usd_rate`` the US dollars per
    unit of that currency used (1 for USD; empty when the row has no money or no rate).
    """

    line: int
    outcome: Outcome
    reason: str = ""
    record_type: str | None = None
    record_id: str | None = None
    currency: str | None = None
    amount: float | None = None
    usd_rate: float | None = None


@dataclass
class Adapted:
    """What an adapter made of one file: contract records and every source row's outcome."""

    format: str
    record_type: str
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[SourceRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """``read``, ``mapped``, ``rejected``, ``skipped`` over the source rows."""
        out = {"read": len(self.rows), "mapped": 0, "rejected": 0, "skipped": 0}
        for r in self.rows:
            out[r.outcome] += 1
        return out

    def reasons(self, outcome: Outcome, top: int | None = None) -> list[dict[str, Any]]:
        """The reasons of the rows with ``outcome``, most frequent first."""
        from collections import Counter

        n = Counter(r.reason for r in self.rows if r.outcome == outcome)
        return [{"reason": k, "count": v} for k, v in n.most_common(top)]

    def reject_record(self, record_id: str, reason: str) -> None:
        """The contract rejected ``record_id``: every row it came from is rejected.

        A row that makes a second record (a charge and its fee) names its first; the second's
        ID is the first's with a suffix (``<id>-fee``), and its rejection reaches that row."""
        rows = [r for r in self.rows if r.record_id == record_id]
        if not rows:
            rows = [r for r in self.rows if r.record_id and record_id.startswith(r.record_id + "-")]
        for r in rows:
            if r.outcome == "mapped":
                r.outcome, r.reason = "rejected", reason


@dataclass(frozen=True)
class Mapping_:  # noqa: N801 - beside typing.Mapping
    """One line of an adapter's mapping table (docs/adapters.md is generated from these)."""

    target: str
    source: str
    rule: str


@dataclass
class Context:
    """What an adapter needs beside the file: whose records, the rates, today."""

    firm_id: str
    rates: Rates | None = None
    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    def usd(self, amount: float, currency: str, when: str) -> tuple[float, float]:
        """``amount`` of ``currency`` in US dollars (to the cent) at the rate of the day of
        ``when`` (an ISO timestamp), and the rate. :class:`Reject` when there is none."""
        currency = currency.strip().upper()
        if not currency:
            raise Reject("no currency given for the amount")
        if currency == "USD":
            return round(amount, 2), 1.0
        if self.rates is None:
            raise Reject(
                f"the amount is in {currency}: give the exchange rates with --fx FILE "
                "(ECB reference-rate CSV) to convert it to USD"
            )
        rate = self.rates.usd_per_unit(currency, date.fromisoformat(when[:10]))
        return round(amount * rate, 2), rate


class Adapter:
    """One export format. Subclasses set the class attributes and implement :meth:`adapt`
    (source rows -> records) and :meth:`export` (records -> file text, for the simulator).
    """

    #: the ``--format`` name
    name: ClassVar[str]
    #: what the export is, for people
    title: ClassVar[str]
    #: where its documentation is
    reference: ClassVar[str]
    record_type: ClassVar[str]
    #: field separator of the file
    delimiter: ClassVar[str] = ","
    #: header columns that together identify the format (detection)
    signature: ClassVar[frozenset[str]]
    #: header columns a file must have
    required: ClassVar[tuple[str, ...]]
    #: the mapping table and the source columns not used (docs/adapters.md)
    mapping: ClassVar[tuple[Mapping_, ...]]
    unused: ClassVar[tuple[str, ...]] = ()
    #: contract fields this format cannot carry, and the value the adapter gives them
    not_carried: ClassVar[dict[str, str]] = {}

    def canonical(self, column: str) -> str:
        """A header column's name as this adapter knows it (rows are keyed by it; the
        signature and required columns are given in it). Default: lower case, trimmed."""
        return column.strip().lower()

    def adapt(self, rows: Iterable[tuple[int, dict[str, str]]], ctx: Context) -> Adapted:
        """Map the source rows (``(line, {canonical column: value})``) to records; every row
        gets exactly one :class:`SourceRow`."""
        raise NotImplementedError

    def export(self, records: pd.DataFrame, rates: Rates | None) -> str:
        """The records of one firm written as this format's file (the simulator's writer)."""
        raise NotImplementedError

    def carries(self, records: pd.DataFrame) -> pd.Series:
        """Which of a world's records of :attr:`record_type` this format can hold."""
        return pd.Series(True, index=records.index)

    def as_carried(self, records: pd.DataFrame) -> pd.DataFrame:
        """``records`` as this format keeps them: what an ingested export gives back (the
        round trip's reference). Fields the format cannot carry take the adapter's value."""
        return records

    # -- helpers for subclasses ------------------------------------------------------------

    def new(self) -> Adapted:
        return Adapted(self.name, self.record_type)


# -- reading ---------------------------------------------------------------------------------


def read_rows(
    text: str, delimiter: str, key: Callable[[str], str] = str.strip
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header (as ``key`` names its columns) and the ``(line, row)`` pairs of a delimited
    text, values stripped. A row longer than the header keeps the surplus under ``\x00extra``."""
    buf = io.StringIO(text.lstrip("\ufeff"))
    reader = csv.reader(buf, delimiter=delimiter)
    try:
        header = [key(h) for h in next(reader)]
    except StopIteration:
        return [], iter(())

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue  # a blank line is not a row
            row = {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}
            if len(values) > len(header):
                row["\x00extra"] = "|".join(values[len(header) :])
            yield start, row

    return header, rows()


def header_of(text: str, delimiter: str) -> list[str]:
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    return [h.strip() for h in next(csv.reader([first], delimiter=delimiter))] if first else []


# -- values ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")


def amount(text: str, what: str = "amount") -> float:
    """A decimal amount as exports write it: ``-12.50``, ``1,234.56``, ``$1,234.56``."""
    t = text.strip().replace("\u2212", "-")
    neg = t.startswith("(") and t.endswith(")")
    t = t.strip("()").replace("$", "").replace(" ", "")
    if t.startswith("-$"):
        t = "-" + t[2:]
    if not t:
        raise Reject(f"{what} is empty")
    if not _NUMBER.match(t):
        raise Reject(f"{what} {text!r} is not a number (expected e.g. 1234.56 or -12.50)")
    try:
        value = float(Decimal(t.replace(",", "")))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise Reject(f"{what} {text!r} is not a number") from None
    return -value if neg else value


_TZ = re.compile(r"\s*(UTC|GMT|Z)$", re.I)
_OFFSET_NAMES = {"PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5,
                 "EDT": -4, "CET": 1, "CEST": 2, "JST": 9, "BST": 1}  # fmt: skip


def timestamp(text: str, what: str, day_first: bool = False) -> str:
    """A date or date-time as exports write it, as an ISO 8601 UTC timestamp string.

    Accepts ISO dates and timestamps (with an offset or ``UTC``), ``2024-03-05 18:24:56
    UTC``, ``05.03.2024`` (day first), ``03/05/2024`` (month first unless ``day_first``), a
    Unix time in seconds, and a trailing zone abbreviation (``PST``, ``PDT``...).
    """
    t = text.strip()
    if not t:
        raise Reject(f"{what} is empty")
    if re.fullmatch(r"\d{9,10}", t):
        return datetime.fromtimestamp(int(t), UTC).replace(tzinfo=None).isoformat()
    shift = 0
    m = re.search(r"\s+([A-Z]{3,4})$", t)
    if m and m.group(1) in _OFFSET_NAMES:
        shift, t = _OFFSET_NAMES[m.group(1)], t[: m.start()]
    t = _TZ.sub("", t)
    m = re.fullmatch(r"(\d{1,2})([./])(\d{1,2})\2(\d{4})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?", t)
    if m:
        a, b = int(m.group(1)), int(m.group(3))
        day_, month = (a, b) if (m.group(2) == "." or day_first) else (b, a)
        t = f"{m.group(4)}-{month:02d}-{day_:02d}" + (
            f"T{m.group(5).zfill(5) if len(m.group(5)) <= 5 else m.group(5).zfill(8)}"
            if m.group(5)
            else ""
        )
    try:
        value = datetime.fromisoformat(t.replace(" ", "T", 1) if "T" not in t else t)
    except ValueError:
        raise Reject(
            f"{what} {text!r} is not a date (expected e.g. 2024-03-05, 2024-03-05 18:24:56 UTC "
            "or 05.03.2024)"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    elif shift:
        value = value - timedelta(hours=shift)
    return value.isoformat()


def record_id(prefix: str, *parts: object) -> str:
    """A record ID from the export's own identifiers: readable when it fits the contract's ID
    pattern (64 characters of letters, digits, ``_.:-``), else ``prefix`` and a digest."""
    raw = "-".join([prefix, *(str(p) for p in parts if p is not None and str(p) != "")])
    if len(raw) <= 64 and _ID_RE.match(raw):
        return raw
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


def payment(
    payment_id: str,
    firm_id: str,
    kind: str,
    usd: float,
    currency: str,
    counterparty: str,
    occurred_at: str,
    *,
    due_at: str | None = None,
    paid_at: str | None = None,
) -> dict[str, Any]:
    """A ``payments`` record (the direction follows from the kind)."""
    from credit.records import PAYMENT_DIRECTION

    return {
        "payment_id": payment_id,
        "firm_id": firm_id,
        "kind": kind,
        "direction": PAYMENT_DIRECTION[kind],
        "amount_usd": round(abs(usd), 2),
        "currency": currency.upper(),
        "counterparty_id": counterparty,
        "occurred_at": occurred_at,
        "due_at": due_at,
        "paid_at": paid_at,
    }


def contract_frame(record_type: str, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Records as a frame with exactly the contract's columns, in order."""
    cols = RECORD_TYPES[record_type].columns
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in records], columns=cols)


def fmt_money(value: float, currency: str) -> str:
    """An amount as an export writes it: the currency's minor units (0 for JPY, KRW...)."""
    digits = 0 if currency.upper() in ZERO_DECIMAL else 2
    return f"{value:.{digits}f}"


#: ISO 4217 currencies without minor units that the simulator and the samples use.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK"})
