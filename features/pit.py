"""THE point-in-time rule, in one place.

Every feature is computed "as of" a moment ``T`` (the spine's ``as_of``). A fact dated
``t`` from source ``s`` is known at ``T`` when, and only when::

    t + lag(s) < T

where ``lag(s)`` is the source's availability lag (customs data lands some days after the
declaration, payments a day after they move, ...). The same rule decides:

* whether a record counts at all (its event time: ``declared_at``, ``shipped_at``,
  ``occurred_at``, ``applied_at``);
* whether a later change of state counts (``closed_at``, ``paid_at``,
  ``tax_refund_settled_at``, ``disbursed_at``, ``default_at``): as of ``T`` an invoice paid
  after ``T`` is unpaid, a shipment closed after ``T`` is in transit, a refund settled after
  ``T`` is pending.

Since ``lag >= 0``, nothing dated on or after ``T`` can change a feature. :func:`known` is
the only function that writes this comparison; :data:`SOURCES` describes, per record type,
which columns are event times and which are state changes, and :func:`state_columns` gives
the as-of-``T`` state derived from them (used by the SQL generator, batch and online alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Default availability lag per source, in whole days.
DEFAULT_LAGS: dict[str, int] = {
    "firms": 0,
    "customs": 3,
    "shipments": 1,
    "payments": 1,
    "loans": 0,
}


@dataclass(frozen=True)
class Lags:
    """Availability lags in days, per record type (see :data:`DEFAULT_LAGS`)."""

    firms: int = DEFAULT_LAGS["firms"]
    customs: int = DEFAULT_LAGS["customs"]
    shipments: int = DEFAULT_LAGS["shipments"]
    payments: int = DEFAULT_LAGS["payments"]
    loans: int = DEFAULT_LAGS["loans"]

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 365:
                raise ValueError(
                    f"availability lag for {name} must be a whole number of days in 0..365, "
                    f"got {value!r}"
                )

    def as_dict(self) -> dict[str, int]:
        return {
            "firms": self.firms,
            "customs": self.customs,
            "shipments": self.shipments,
            "payments": self.payments,
            "loans": self.loans,
        }

    @classmethod
    def from_mapping(cls, values: Mapping[str, int] | None) -> Lags:
        """Defaults overridden by ``values`` (unknown record types are an error)."""
        merged = dict(DEFAULT_LAGS)
        for key, value in (values or {}).items():
            if key not in merged:
                raise ValueError(
                    f"unknown record type {key!r} for an availability lag; "
                    f"expected one of {', '.join(merged)}"
                )
            merged[key] = value
        return cls(**merged)

    @classmethod
    def parse(cls, items: list[str] | None) -> Lags:
        """Parse ``["customs=3", "payments=0"]`` (the CLI's ``--lag`` option)."""
        values: dict[str, int] = {}
        for item in items or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"--lag expects TYPE=DAYS such as customs=3, got {item!r}")
            try:
                values[key.strip()] = int(raw)
            except ValueError:
                raise ValueError(f"--lag {item!r}: DAYS must be a whole number") from None
        return cls.from_mapping(values)


def known(ts: str, as_of: str, lag_days: int) -> str:
    """THE rule: SQL that is TRUE when the fact dated ``ts`` is known at ``as_of``.

    ``NULL`` timestamps give ``NULL`` (treated as not known by ``WHERE``, ``FILTER`` and
    ``CASE WHEN``).

    >>> known("e.paid_at", "sp.as_of", 0)
    '(e.paid_at < sp.as_of)'
    >>> known("e.declared_at", "sp.as_of", 3)
    "(e.declared_at + INTERVAL '3' DAY < sp.as_of)"
    """
    if lag_days == 0:
        return f"({ts} < {as_of})"
    return f"({ts} + INTERVAL '{int(lag_days)}' DAY < {as_of})"


def days(start: str, end: str) -> str:
    """SQL for the calendar days from ``start`` to ``end`` (the difference of their dates).

    Written with explicit casts so every dialect counts the same days.

    >>> days("a", "b")
    "date_diff('day', CAST(a AS DATE), CAST(b AS DATE))"
    """
    return f"date_diff('day', CAST({start} AS DATE), CAST({end} AS DATE))"


def is_known(ts: object, as_of: object, lag_days: int) -> bool:
    """The same rule on Python values (``pandas.Timestamp`` or ``datetime``), for tests
    and callers that filter in memory. ``None``/``NaT`` is never known."""
    import pandas as pd

    if ts is None or pd.isna(ts):  # type: ignore[call-overload]
        return False
    t, limit = pd.Timestamp(ts), pd.Timestamp(as_of)  # type: ignore[arg-type]
    return bool(t + pd.Timedelta(days=lag_days) < limit)


def known_mask(ts: pd.Series, as_of: object, lag_days: int) -> pd.Series:
    """The same rule on a column of timestamps (naive UTC): a boolean Series, ``False``
    where the timestamp is missing. For callers that filter records in memory."""
    import pandas as pd

    limit = pd.Timestamp(as_of)  # type: ignore[arg-type]
    return (ts + pd.Timedelta(days=lag_days) < limit).fillna(False).astype(bool)


@dataclass(frozen=True)
class Source:
    """How a record type enters the point-in-time rule.

    ``event_time`` decides whether the record counts; ``state_changes`` are the columns
    whose value becomes true only from the date they carry.
    """

    table: str
    event_time: str
    state_changes: tuple[str, ...] = ()


SOURCES: dict[str, Source] = {
    "customs": Source("customs", "declared_at", ("tax_refund_settled_at",)),
    "shipments": Source("shipments", "shipped_at", ("closed_at",)),
    "payments": Source("payments", "occurred_at", ("paid_at",)),
    "loans": Source("loans", "applied_at", ("disbursed_at", "default_at")),
    "firms": Source("firms", "registered_at"),
}


def state_columns(table: str, alias: str, as_of: str, lags: Lags) -> dict[str, str]:
    """The as-of-``T`` state of each record, as ``{column: SQL expression}``.

    These columns are what features read instead of the raw status columns, so no
    feature can see a state change before it happened.
    """
    lag = lags.as_dict()[table]

    def k(col: str) -> str:
        return known(f"{alias}.{col}", as_of, lag)

    if table == "customs":
        return {
            # paid/denied only once the settlement is known; a claimed refund is pending until then
            "refund_state": (
                f"CASE WHEN {alias}.tax_refund_status = 'none' THEN 'none' "
                f"WHEN {alias}.tax_refund_status IN ('paid', 'denied') "
                f"AND {k('tax_refund_settled_at')} THEN {alias}.tax_refund_status "
                "ELSE 'pending' END"
            ),
            "settle_days": (
                f"CASE WHEN {k('tax_refund_settled_at')} THEN "
                f"{days(f'{alias}.declared_at', f'{alias}.tax_refund_settled_at')} END"
            ),
        }
    if table == "shipments":
        return {
            "state": f"CASE WHEN {k('closed_at')} THEN {alias}.status ELSE 'in_transit' END",
            "transit_days": (
                f"CASE WHEN {k('closed_at')} THEN "
                f"{days(f'{alias}.shipped_at', f'{alias}.closed_at')} END"
            ),
        }
    if table == "payments":
        return {
            "is_paid": f"COALESCE({k('paid_at')}, FALSE)",
            # days past due as of T: settled invoices keep their final lateness; unpaid ones
            # count the days since the due date; not yet due (or no due date) is NULL
            "dpd": (
                f"CASE WHEN {alias}.due_at IS NULL THEN NULL "
                f"WHEN {k('paid_at')} THEN "
                f"greatest(0, {days(f'{alias}.due_at', f'{alias}.paid_at')}) "
                f"WHEN {alias}.due_at < {as_of} THEN {days(f'{alias}.due_at', as_of)} "
                "ELSE NULL END"
            ),
        }
    if table == "loans":
        return {
            "is_disbursed": f"COALESCE({k('disbursed_at')}, FALSE)",
            "is_defaulted": f"COALESCE({k('default_at')}, FALSE)",
        }
    return {}
