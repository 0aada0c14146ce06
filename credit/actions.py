"""What a seller can do about its grade, as edits of its own trade records.

Each :class:`Action` is a function from a firm's records as they stand at ``T`` to new
records: it settles invoices (``paid_at``), changes how future shipments travel, or lets
time pass with the firm trading as it does now. The features are then recomputed from the
edited records by the one online feature path (:func:`features.pipeline.compute`) and
scored by the one scoring core, so a plan can only claim what its records would show.

The records an action starts from are a :class:`Book`: the firm's records with every fact
dated at or after ``T`` removed (a payment made later is unpaid at ``T``, a shipment closed
later is in transit), and, when the plan takes time, the next ``horizon_days`` projected as
"business as usual": the last ``horizon_days`` of customs declarations, shipments and
payments repeat, shifted forward, with the outcomes they have at ``T``
(:func:`project`). Nothing dated before ``T`` is ever changed, except a state change the
action itself makes at ``T`` (an invoice paid today).

Actions never touch the firm's own row (registration date, business model, category,
region): the features read from it move only with time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from features.catalog import TRANSIT_SLA_DAYS

Records = dict[str, list[dict[str, Any]]]

#: The record types a plan may edit (the firm's own row and loan applications are fixed).
EDITABLE = ("customs", "shipments", "payments")
#: Timestamps per record type: (event time, state changes, contract terms that may be future)
TIMES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "customs": ("declared_at", ("tax_refund_settled_at",), ()),
    "shipments": ("shipped_at", ("closed_at",), ()),
    "payments": ("occurred_at", ("paid_at",), ("due_at",)),
    "loans": ("applied_at", ("disbursed_at", "default_at"), ()),
}
ID_FIELDS = {"customs": "declaration_id", "shipments": "shipment_id", "payments": "payment_id"}
#: Payments that belong to a loan's schedule, not to trade: never repeated by a projection.
LOAN_FLOWS = ("loan_repayment", "loan_disbursement")

#: Plan horizons (days from T to the moment the plan is scored). Acting now is scored a week
#: later, when a payment made today is known (payments land a day late, :mod:`features.pit`).
NOW_DAYS = 7
HORIZONS = (NOW_DAYS, 90, 180)
#: Transit time of tracked express door to door: two days inside the catalog's express SLA.
EXPRESS_DAYS = TRANSIT_SLA_DAYS["express"] - 2
#: Rough extra cost of tracked express over the firm's usual mode, USD per kg. An order of
#: magnitude for the seller (published express and postal parcel rates from China differ by
#: a few dollars a kilogram), not a quote.
EXPRESS_PREMIUM_USD_PER_KG = 3.0


#: Features no action can change: the firm's age and history length (they move with time
#: only), and its loan history (loan records are not edited; paying instalments early does
#: not end a loan's term in the record contract). A plan moves them exactly as doing nothing
#: over the same time does; counterfactual methods compared with this one hold them fixed.
FIXED_FEATURES = (
    "firm_age_days",
    "months_of_history",
    "past_default_count",
    "worst_loan_dpd_ever",
    "loans_outstanding_count",
    "loans_outstanding_usd",
    "loan_applications_365d",
)


def _ts(v: Any) -> pd.Timestamp | None:
    """A record's timestamp as a naive UTC :class:`pandas.Timestamp` (``None`` if missing)."""
    if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    t = pd.Timestamp(v)
    if t is pd.NaT:
        return None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def naive_utc(t: Any) -> pd.Timestamp:
    found = _ts(t)
    if found is None:
        raise ValueError("as_of must be a date or timestamp")
    return found


@dataclass
class Book:
    """A firm's records as they stand at ``as_of``, and the moment a plan is scored.

    ``records``: record type -> list of records (dicts with the contract's fields, timestamps
    as naive UTC :class:`pandas.Timestamp`); ``projected``: ids of the records a projection
    added (dated from ``as_of`` on); ``cost``: what the actions applied so far cost.
    """

    records: Records
    firm: dict[str, Any] | None
    as_of: pd.Timestamp
    horizon_days: int = NOW_DAYS
    projected: set[str] = field(default_factory=set)

    @property
    def scored_at(self) -> pd.Timestamp:
        return self.as_of + pd.Timedelta(days=self.horizon_days)

    def copy(self) -> Book:
        """A copy whose lists can be edited (records are replaced, never changed in place)."""
        return Book(
            {k: list(v) for k, v in self.records.items()},
            self.firm,
            self.as_of,
            self.horizon_days,
            set(self.projected),
        )

    def is_projected(self, kind: str, rec: Mapping[str, Any]) -> bool:
        return str(rec.get(ID_FIELDS.get(kind, ""), "")) in self.projected


def as_it_stands(records: Mapping[str, Any], firm: Mapping[str, Any] | None, as_of: Any) -> Book:
    """The firm's records as they stand at ``as_of``: records dated at or after it are left
    out, and a state reached at or after it is not reached yet (unpaid, in transit, refund
    pending). Loan outcomes dated later are unknown."""
    t = naive_utc(as_of)
    out: Records = {}
    for kind in ("customs", "shipments", "payments", "loans"):
        rows = records.get(kind)
        if rows is None:
            out[kind] = []
            continue
        if isinstance(rows, pd.DataFrame):
            rows = rows.to_dict("records")
        event, states, terms = TIMES[kind]
        kept = []
        for r in rows:
            rec = {str(k): v for k, v in r.items()}
            e = _ts(rec.get(event))
            if e is None or e >= t:
                continue
            rec[event] = e
            for col in (*states, *terms):
                rec[col] = _ts(rec.get(col))
            for col in states:
                if rec[col] is not None and rec[col] >= t:
                    rec[col] = None
            _reset_states(kind, rec)
            kept.append(rec)
        out[kind] = kept
    firm_row = None if firm is None else {str(k): v for k, v in firm.items()}
    return Book(out, firm_row, t)


def _reset_states(kind: str, rec: dict[str, Any]) -> None:
    """The status columns that go with a state change not reached (contract rules)."""
    if kind == "shipments" and rec.get("closed_at") is None:
        rec["status"] = "in_transit"
    elif kind == "customs" and rec.get("tax_refund_settled_at") is None:
        if rec.get("tax_refund_status") in ("paid", "denied"):
            rec["tax_refund_status"] = "pending"
    elif kind == "loans":
        if rec.get("disbursed_at") is None:
            rec["defaulted"] = None
            rec["default_at"] = None
        elif rec.get("default_at") is None and rec.get("defaulted"):
            rec["defaulted"] = None


def project(book: Book, horizon_days: int) -> Book:
    """``book`` with the next ``horizon_days`` projected: the customs declarations, shipments
    and trade payments of the last ``horizon_days`` repeat, shifted forward by that many
    days, each with the outcome it has at ``as_of`` (a payment still unpaid then is unpaid in
    its copy; a shipment in transit stays in transit). Loan schedules are not repeated."""
    out = book.copy()
    out.horizon_days = horizon_days
    if horizon_days <= 0:
        return out
    shift = pd.Timedelta(days=horizon_days)
    start = book.as_of - shift
    suffix = f".p{horizon_days}"
    for kind in EDITABLE:
        event, states, terms = TIMES[kind]
        id_field = ID_FIELDS[kind]
        for r in book.records.get(kind, []):
            e = r[event]
            if e < start or (kind == "payments" and r.get("kind") in LOAN_FLOWS):
                continue
            rec = dict(r)
            rec[id_field] = _copy_id(str(r[id_field]), suffix)
            if kind == "shipments" and rec.get("declaration_id"):
                # the copy of its declaration when that was repeated too (customs come first)
                copied = _copy_id(str(rec["declaration_id"]), suffix)
                if copied in out.projected:
                    rec["declaration_id"] = copied
            rec[event] = e + shift
            for col in (*states, *terms):
                if rec.get(col) is not None:
                    rec[col] = rec[col] + shift
            out.records[kind].append(rec)
            out.projected.add(rec[id_field])
    return out


def _copy_id(record_id: str, suffix: str) -> str:
    return (
        (record_id[: 64 - len(suffix)] + suffix)
        if len(record_id) + len(suffix) > 64
        else (record_id + suffix)
    )


# --------------------------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What an action costs the seller: cash paid out (USD, the records' currency), the time
    it takes (days until the plan is scored) and the work, in words."""

    cash_usd: float = 0.0
    days: int = 0
    effort: str = ""


@dataclass(frozen=True)
class Applied:
    """One action applied: its parameters as the seller reads them, its text and cost."""

    action: str
    params: dict[str, Any]
    text: str
    cost: Cost
    #: records the action edited or added
    records: int


ApplyFn = Callable[[Book, float], Applied | None]


@dataclass(frozen=True)
class Action:
    """One thing a seller can do, declared once.

    Parameters
    ----------
    name : identifier (API, tests, docs).
    title : what it is, for people.
    timing : ``now`` (done at T, on the records as they stand) or ``over_time`` (changes
        the projected records of the plan's horizon; needs a horizon past a week).
    levels : the parameter values the search tries (their meaning is the action's).
    apply : edits a :class:`Book` in place (records replaced, never mutated) for a level;
        returns what was done, or ``None`` when the action does not apply to this firm.
    side_effects : features the action may move the risky way, disclosed to the seller
        (paying suppliers is money out: the 90-day net cash flow falls). A plan that moves
        any other feature the risky way, compared with doing nothing over the same time, is
        not offered.
    """

    name: str
    title: str
    timing: Literal["now", "over_time"]
    levels: tuple[float, ...]
    apply: ApplyFn
    side_effects: tuple[str, ...] = ()
    describe: str = ""


def _money(x: float) -> str:
    return f"${x:,.0f}"


def _unpaid_at(rec: Mapping[str, Any], t: pd.Timestamp) -> bool:
    paid = rec.get("paid_at")
    return paid is None or paid >= t


def _replace(book: Book, kind: str, changes: dict[int, dict[str, Any]]) -> None:
    rows = book.records[kind]
    for i, new in changes.items():
        rows[i] = {**rows[i], **new}


def _settle_overdue(book: Book, level: float, kind: str) -> tuple[int, float, int, set[str]]:
    """Pay today the oldest overdue unpaid invoices of ``kind`` up to ``level`` x their total
    (at least one): returns (invoices, amount, all overdue, counterparties)."""
    t = book.as_of
    rows = book.records["payments"]
    overdue = [
        i
        for i, r in enumerate(rows)
        if r.get("kind") == kind
        and not book.is_projected("payments", r)
        and r.get("due_at") is not None
        and r["due_at"] < t
        and _unpaid_at(r, t)
    ]
    if not overdue:
        return 0, 0.0, 0, set()
    overdue.sort(key=lambda i: (rows[i]["due_at"], str(rows[i]["payment_id"])))
    total = sum(float(rows[i]["amount_usd"]) for i in overdue)
    chosen: list[int] = []
    paid = 0.0
    for i in overdue:
        if chosen and paid >= level * total - 1e-9:
            break
        chosen.append(i)
        paid += float(rows[i]["amount_usd"])
    _replace(book, "payments", {i: {"paid_at": t} for i in chosen})
    who = {str(rows[i].get("counterparty_id")) for i in chosen}
    return len(chosen), paid, len(overdue), who


def settle_supplier_arrears(book: Book, level: float) -> Applied | None:
    n, paid, n_all, _ = _settle_overdue(book, level, "supplier_payment")
    if n == 0:
        return None
    every = n == n_all
    if n == 1 and every:
        text = f"Pay the overdue supplier invoice ({_money(paid)}) this week."
    elif every:
        text = f"Pay all {n} overdue supplier invoices ({_money(paid)}) this week."
    else:
        oldest = (
            "oldest overdue supplier invoice" if n == 1 else f"{n} oldest overdue supplier invoices"
        )
        text = f"Pay your {oldest} ({_money(paid)} of the {n_all} overdue) this week."
    return Applied(
        "settle_supplier_arrears",
        {"invoices": n, "amount_usd": round(paid, 2), "all": every},
        text,
        Cost(cash_usd=paid, effort="a payment run"),
        n,
    )


def collect_receivables(book: Book, level: float) -> Applied | None:
    n, amount, _, buyers = _settle_overdue(book, level, "b2b_receipt")
    if n == 0:
        return None
    return Applied(
        "collect_receivables",
        {"invoices": n, "amount_usd": round(amount, 2), "buyers": len(buyers)},
        (
            f"Collect the overdue invoice your buyer owes you ({_money(amount)}) this week."
            if n == 1
            else f"Collect the {n} overdue invoices your buyers owe you ({_money(amount)}, "
            f"{len(buyers)} buyer{'s' if len(buyers) != 1 else ''}) this week."
        ),
        Cost(effort=f"chasing {len(buyers)} buyer{'s' if len(buyers) != 1 else ''}"),
        n,
    )


def repay_loans(book: Book, level: float) -> Applied | None:
    t = book.as_of
    rows = book.records["payments"]
    open_ = [
        i
        for i, r in enumerate(rows)
        if r.get("kind") == "loan_repayment" and r.get("due_at") is not None and _unpaid_at(r, t)
    ]
    if not open_:
        return None
    amount = sum(float(rows[i]["amount_usd"]) for i in open_)
    _replace(book, "payments", {i: {"paid_at": t} for i in open_})
    lenders = len({str(rows[i].get("counterparty_id")) for i in open_})
    return Applied(
        "repay_loans",
        {"instalments": len(open_), "amount_usd": round(amount, 2), "lenders": lenders},
        f"Repay your outstanding loan{'s' if lenders != 1 else ''} now: the {len(open_)} "
        f"remaining instalment{'s' if len(open_) != 1 else ''} ({_money(amount)}).",
        Cost(cash_usd=amount, effort="an early repayment"),
        len(open_),
    )


def pay_suppliers_on_time(book: Book, level: float) -> Applied | None:
    """Every supplier invoice falling due from today to the scoring date is paid on its due
    date (invoices already overdue are the job of :func:`settle_supplier_arrears`)."""
    t, end = book.as_of, book.scored_at
    rows = book.records["payments"]
    changes: dict[int, dict[str, Any]] = {}
    amount = 0.0
    for i, r in enumerate(rows):
        due = r.get("due_at")
        if r.get("kind") != "supplier_payment" or due is None or not t <= due < end:
            continue
        paid = r.get("paid_at")
        if paid is not None and paid <= due:
            continue
        if paid is not None and paid < t:  # paid before today: history, left alone
            continue
        changes[i] = {"paid_at": max(due, r["occurred_at"])}
        amount += float(r["amount_usd"])
    if not changes:
        return None
    _replace(book, "payments", changes)
    months = round(book.horizon_days / 30)
    return Applied(
        "pay_suppliers_on_time",
        {"invoices": len(changes), "amount_usd": round(amount, 2), "months": months},
        f"Pay every supplier invoice on its due date for the next {months} months "
        f"({len(changes)} invoice{'s' if len(changes) != 1 else ''}, about {_money(amount)}).",
        Cost(cash_usd=amount, days=book.horizon_days, effort="paying on the due date"),
        len(changes),
    )


def cut_refunds(book: Book, level: float) -> Applied | None:
    """Refunds of the projected months down to ``level`` x their current amount."""
    rows = book.records["payments"]
    changes = {
        i: {"amount_usd": float(r["amount_usd"]) * level}
        for i, r in enumerate(rows)
        if r.get("kind") == "refund" and book.is_projected("payments", r)
    }
    if not changes:
        return None
    before = sum(float(rows[i]["amount_usd"]) for i in changes)
    _replace(book, "payments", changes)
    months = round(book.horizon_days / 30)
    cut = round(100 * (1 - level))
    return Applied(
        "cut_refunds",
        {
            "reduce_by_percent": cut,
            "months": months,
            "refunds_usd_saved": round(before * (1 - level), 2),
        },
        f"Cut refunds by {cut}% over the next {months} months (about "
        f"{_money(before * (1 - level))} less refunded): clearer listings, quality checks.",
        Cost(days=book.horizon_days, effort="fewer returns and disputes"),
        len(changes),
    )


def ship_tracked_express(book: Book, level: float) -> Applied | None:
    """The projected shipments go by tracked express: delivered in :data:`EXPRESS_DAYS`
    (within the catalog's express SLA); a parcel that would have been lost is delivered; a
    return or a damaged parcel stays what it was (the product, the packaging)."""
    rows = book.records["shipments"]
    changes: dict[int, dict[str, Any]] = {}
    kg = 0.0
    for i, r in enumerate(rows):
        if not book.is_projected("shipments", r):
            continue
        status = r.get("status")
        closed = r["shipped_at"] + pd.Timedelta(days=EXPRESS_DAYS)
        if closed >= book.scored_at:  # still on its way when the plan is scored
            changes[i] = {"mode": "express", "closed_at": None, "status": "in_transit"}
        else:
            new_status = status if status in ("returned", "damaged") else "delivered"
            changes[i] = {"mode": "express", "closed_at": closed, "status": new_status}
        kg += float(r.get("weight_kg") or 0.0)
    if not changes:
        return None
    _replace(book, "shipments", changes)
    cost = kg * EXPRESS_PREMIUM_USD_PER_KG
    months = round(book.horizon_days / 30)
    return Applied(
        "ship_tracked_express",
        {"shipments": len(changes), "months": months, "weight_kg": round(kg, 1)},
        f"Send your next {len(changes)} shipment{'s' if len(changes) != 1 else ''} by tracked "
        f"express ({months} months; "
        f"roughly {_money(cost)} more in freight).",
        Cost(cash_usd=cost, days=book.horizon_days, effort="switching carriers"),
        len(changes),
    )


def keep_trading(book: Book, months: int) -> Applied:
    """The projection itself, as the seller reads it: keep exporting as now."""
    rows = [r for r in book.records["customs"] if book.is_projected("customs", r)]
    value = sum(float(r["value_usd"]) for r in rows if r.get("direction") == "export")
    n = sum(1 for kind in EDITABLE for r in book.records[kind] if book.is_projected(kind, r))
    return Applied(
        "keep_trading",
        {"months": months, "export_value_usd": round(value, 2)},
        (
            f"Keep exporting at your current level for {months} more months (about "
            f"{_money(value / max(months, 1))} of declared exports a month), then ask again."
            if value > 0
            else f"Keep trading as you do now for {months} more months, then ask again (you "
            f"declared no exports in the last {months} months)."
        ),
        Cost(days=book.horizon_days, effort=f"{months} months of trading as now"),
        n,
    )


_CASH_OUT = ("inflow_outflow_ratio_90d", "inflow_outflow_ratio_trend_90d", "net_cash_flow_90d")

#: The action library, in the order plans list them.
ACTIONS: tuple[Action, ...] = (
    Action(
        "settle_supplier_arrears",
        "Settle overdue supplier invoices",
        "now",
        (0.5, 1.0),
        settle_supplier_arrears,
        side_effects=_CASH_OUT,
        describe="The oldest overdue unpaid supplier invoices (half of the overdue amount, or "
        "all) are paid today.",
    ),
    Action(
        "collect_receivables",
        "Collect overdue receivables",
        "now",
        (1.0,),
        collect_receivables,
        side_effects=(
            "inflow_monthly_cv_12m",
            "buyer_hhi_365d",
            "inflow_growth_90d",
            "inflow_outflow_ratio_trend_90d",
            "days_since_last_inflow",
        ),
        describe="Every overdue unpaid B2B invoice is collected today.",
    ),
    Action(
        "repay_loans",
        "Repay outstanding loans",
        "now",
        (1.0,),
        repay_loans,
        describe="Every unpaid instalment of the firm's loans is paid today. The loans still "
        "count as outstanding until their term ends: the record contract has no early "
        "repayment date.",
    ),
    Action(
        "pay_suppliers_on_time",
        "Pay suppliers on the due date",
        "over_time",
        (1.0,),
        pay_suppliers_on_time,
        # the invoices it pays on time were issued before today: the earlier quarter's
        # lateness falls too, so the quarter-on-quarter trend can rise
        side_effects=(*_CASH_OUT, "supplier_dpd_trend_90d"),
        describe="Supplier invoices falling due within the plan's months are paid on the due date.",
    ),
    Action(
        "cut_refunds",
        "Cut refunds",
        "over_time",
        (0.5, 0.2),
        cut_refunds,
        # over six months both quarters are cut: their ratio (the trend) can go either way
        side_effects=("refund_ratio_trend_90d", "inflow_outflow_ratio_trend_90d"),
        describe="Refunds of the projected months are cut by half, or by 80%.",
    ),
    Action(
        "ship_tracked_express",
        "Ship by tracked express",
        "over_time",
        (1.0,),
        ship_tracked_express,
        describe="The projected shipments go by tracked express, delivered within the express "
        "SLA; lost parcels are delivered, returns and damage stay.",
    ),
)
#: The action of letting time pass (every plan with a horizon past a week includes it).
KEEP_TRADING = "keep_trading"
ACTION_NAMES = (*(a.name for a in ACTIONS), KEEP_TRADING)


def action(name: str) -> Action:
    for a in ACTIONS:
        if a.name == name:
            return a
    hint = (
        f" ({KEEP_TRADING} is not a step: a horizon past {NOW_DAYS} days includes it)"
        if name == KEEP_TRADING
        else ""
    )
    raise KeyError(
        f"unknown action {name!r}; expected one of {', '.join(a.name for a in ACTIONS)}{hint}"
    )


@dataclass(frozen=True)
class Step:
    """One action of a plan: which, at which level."""

    action: str
    level: float


def apply_plan(
    records: Mapping[str, Any],
    firm: Mapping[str, Any] | None,
    as_of: Any,
    horizon_days: int,
    steps: Sequence[Step],
) -> tuple[Book, list[Applied]]:
    """The records a plan leads to, from the firm's records and the plan's description: the
    firm as it stands at ``as_of``, projected over ``horizon_days`` when it is past a week,
    with each step applied in order. Returns the book (score its records as of
    ``book.scored_at``) and what each step did (``None`` steps are left out)."""
    book = as_it_stands(records, firm, as_of)
    return apply_steps(book, horizon_days, steps)


def start(book: Book, horizon_days: int) -> tuple[Book, list[Applied]]:
    """The book a plan of ``horizon_days`` starts from: as it stands, projected when the
    horizon is past a week (with the keep-trading action that says so)."""
    if horizon_days <= NOW_DAYS:
        out = book.copy()
        out.horizon_days = horizon_days
        return out, []
    out = project(book, horizon_days)
    return out, [keep_trading(out, round(horizon_days / 30))]


def apply_steps(
    book: Book,
    horizon_days: int,
    steps: Sequence[Step],
    started: tuple[Book, list[Applied]] | None = None,
) -> tuple[Book, list[Applied]]:
    """``steps`` applied in order to ``book`` started over ``horizon_days`` (``started``:
    :func:`start`'s result for it, when already made)."""
    first, applied = started if started is not None else start(book, horizon_days)
    out = first.copy()
    applied = list(applied)
    for s in steps:
        a = action(s.action)
        if a.timing == "over_time" and horizon_days <= NOW_DAYS:
            raise ValueError(f"action {a.name} takes time: it needs a horizon past {NOW_DAYS} days")
        done = a.apply(out, s.level)
        if done is not None:
            applied.append(done)
    return out, applied
