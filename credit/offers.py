"""Financing offers: a decision and the firm's records, under a policy, become offers.

Four products fit cross-border trade (their terms come from :mod:`credit.policy`):

``working_capital_advance``
    a multiple of the trailing 180-day platform settlements, scaled by grade, repaid by
    holding back a share of each settlement;
``receivables_financing``
    an advance on open B2B invoices (issued, not yet due, unpaid), repaid when buyers pay;
``tax_refund_advance``
    an advance on export tax refunds declared and still pending, repaid from the refund;
``warehouse_inventory_financing``
    an advance on goods shipped to overseas warehouses and not yet sold, repaid from sales.

Pricing is risk-based. With the model's PD over ``pd_horizon_days`` scaled to the term
``T`` with a constant hazard, ``term_pd = 1 - (1 - PD) ** (T / pd_horizon_days)``:

* ``APR = cost_of_funds + term_pd * LGD * days_per_year / T + operating_cost + margin``
  (the middle term is the expected loss rate, annualised);
* total cost of credit ``= amount * APR * T / days_per_year`` (simple interest);
* expected loss ``= term_pd * LGD * EAD``, with the exposure at default taken as the
  full amount (conservative: the advance is drawn at once).

A product is declined, with every reason that applies, when the firm's PD is at or above
the product's cutoff, its file is thin (too few months of history), its grade is not
eligible, or its volume is too small to reach the product's minimum amount.

The base amounts are computed in ONE place, :func:`compute_bases`, from the firm's records
as of the decision date under the point-in-time rule of :mod:`features.pit` (applied to
in-memory records by :func:`visible_records` through :func:`features.pit.known_mask`): a
fact dated ``t`` from a source with availability lag ``L`` is known at ``T`` when
``t + L < T``, for a record's event time and for every later change of state (paid, closed,
refund settled) alike. Where the catalog has
the same measure (``pending_tax_refund_usd``, ``months_of_history``) the two agree exactly
(``tests/unit/credit/test_offers_agree_with_catalog.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, field_serializer

from credit.decisions import Decision
from credit.policy import (
    Policy,
    ProductPolicy,
    ReceivablesPolicy,
    WorkingCapitalPolicy,
)
from features.pit import DEFAULT_LAGS, SOURCES, known_mask

#: Trailing window of platform settlements that sizes the working-capital advance.
SETTLEMENT_WINDOW_DAYS = 180
#: Goods shipped to an overseas warehouse more than this many days ago are taken as sold.
WAREHOUSE_SELL_THROUGH_DAYS = 90
#: Pending refunds declared longer ago than this are not advanced against (the same window
#: as the catalog's ``pending_tax_refund_usd``).
TAX_REFUND_WINDOW_DAYS = 455
#: The record types the offers read (their event times: :data:`features.pit.SOURCES`).
RECORD_KINDS = ("customs", "shipments", "payments")
#: Timestamp columns of the record types the offers read.
_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "customs": ("declared_at", "tax_refund_settled_at"),
    "shipments": ("shipped_at", "closed_at"),
    "payments": ("occurred_at", "due_at", "paid_at"),
}
_COLUMNS: dict[str, tuple[str, ...]] = {
    "customs": (
        "firm_id",
        "declared_at",
        "direction",
        "tax_refund_usd",
        "tax_refund_status",
        "tax_refund_settled_at",
    ),
    "shipments": (
        "firm_id",
        "shipped_at",
        "closed_at",
        "destination_type",
        "declared_value_usd",
        "status",
    ),
    "payments": ("firm_id", "kind", "direction", "amount_usd", "occurred_at", "due_at", "paid_at"),
}

DeclineCode = Literal[
    "pd_above_cutoff",
    "thin_file",
    "grade_not_eligible",
    "volume_too_small",
    "application_declined",
]


class OfferError(ValueError):
    """The inputs of the offer engine are unusable (the message says what to fix)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)

    @field_serializer("as_of", check_fields=False, when_used="json")
    def _utc(self, value: datetime) -> str:
        # Times are naive UTC inside the engine; in JSON they say so, as the API's do.
        return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


class OfferDecision(_Model):
    """What the offer engine needs from a scoring decision.

    Parameters
    ----------
    firm_id : the firm.
    as_of : the date of the data the decision was made on.
    pd : calibrated probability of default over the model's horizon.
    score, grade : the score and grade of that PD.
    thin_file : the scoring service's thin-file flag (``None`` when unknown).
    months_of_history : months of trading history (``None`` when unknown).
    decision_id : the audited decision the offers belong to, when there is one.
    """

    firm_id: str
    as_of: datetime
    pd: float
    score: int
    grade: str
    thin_file: bool | None = None
    months_of_history: float | None = None
    decision_id: str | None = None

    @classmethod
    def of(cls, decision: Decision) -> OfferDecision:
        """What the engine reads of a scoring decision (its data sufficiency included)."""
        data = decision.data
        thin, months = data.get("thin_file"), data.get("history_months")
        return cls(
            firm_id=decision.firm_id,
            as_of=_as_datetime(decision.as_of),
            pd=decision.pd,
            score=decision.score,
            grade=decision.grade,
            thin_file=None if thin is None else bool(thin),
            months_of_history=None if months is None else float(months),
            decision_id=decision.decision_id,
        )

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> OfferDecision:
        """A decision as the API returns it (``firm_id``, ``as_of``, ``pd``, ``score``,
        ``grade``, ``decision_id`` and the ``data`` block), e.g. read back from a file.
        ``thin_file`` and ``months_of_history`` may also be given at the top level."""
        missing = [k for k in ("firm_id", "as_of", "pd", "score", "grade") if body.get(k) is None]
        if missing:
            raise OfferError(f"the decision lacks {', '.join(missing)}")
        raw = body.get("data")
        data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        thin = body.get("thin_file", data.get("thin_file"))
        months = body.get("months_of_history", data.get("history_months"))
        decision_id = body.get("decision_id")
        return cls(
            firm_id=str(body["firm_id"]),
            as_of=_as_datetime(body["as_of"]),
            pd=float(body["pd"]),
            score=int(body["score"]),
            grade=str(body["grade"]),
            thin_file=None if thin is None else bool(thin),
            months_of_history=None if months is None else float(months),
            decision_id=None if decision_id is None else str(decision_id),
        )


DecisionLike = Decision | OfferDecision | Mapping[str, Any]


def _offer_decision(decision: DecisionLike) -> OfferDecision:
    if isinstance(decision, OfferDecision):
        return decision
    if isinstance(decision, Decision):
        return OfferDecision.of(decision)
    return OfferDecision.from_json(decision)


class FirmBases(_Model):
    """The amounts the products are sized on, in US dollars, as of one date.

    Parameters
    ----------
    as_of : the date (exclusive: only what happened before it counts).
    settlements_180d : platform settlements received in the 180 days before ``as_of``.
    open_receivables : open B2B invoices (issued, not yet due, not paid).
    receivables_count : how many such invoices.
    receivables_days_to_due : their amount-weighted mean days until due.
    pending_tax_refunds : export tax refunds declared and not yet paid or denied.
    tax_refund_count : how many such declarations.
    warehouse_stock : value of goods shipped to overseas warehouses in the last 90 days and
        not returned, lost or damaged.
    warehouse_shipments : how many such shipments.
    months_of_history : months between the firm's first record and ``as_of``.
    """

    as_of: datetime
    settlements_180d: float = 0.0
    open_receivables: float = 0.0
    receivables_count: int = 0
    receivables_days_to_due: float = 0.0
    pending_tax_refunds: float = 0.0
    tax_refund_count: int = 0
    warehouse_stock: float = 0.0
    warehouse_shipments: int = 0
    months_of_history: float = 0.0


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


class AprBreakdown(_Model):
    """The annual rates that add up to the APR."""

    cost_of_funds: float
    risk_cost: float
    operating_cost: float
    margin: float


class Repayment(_Model):
    """How an offer is repaid."""

    method: Literal["settlement_holdback", "invoice_collection", "tax_refund", "inventory_sales"]
    summary: str
    total_repayable: float
    due_date: date
    holdback_rate: float | None = None


class Offer(_Model):
    """One financing offer."""

    product: str
    title: str
    currency: str
    amount: float
    term_days: int
    apr: float
    apr_breakdown: AprBreakdown
    total_cost: float
    total_repayable: float
    expected_loss: float
    term_pd: float
    lgd: float
    base: str
    base_amount: float
    limited_by: Literal["advance_rate", "holdback", "max_amount"]
    repayment: Repayment


class DeclineReason(_Model):
    """Why a product is not offered."""

    code: DeclineCode
    message: str


class Decline(_Model):
    """A product the firm is not offered, with every reason that applies."""

    product: str
    title: str
    reasons: list[DeclineReason]


class OfferSet(_Model):
    """The offers and declines for one decision under one policy."""

    firm_id: str
    as_of: datetime
    decision_id: str | None
    pd: float
    score: int
    grade: str
    policy: dict[str, str]
    currency: str
    offers: list[Offer]
    declines: list[Decline]
    bases: FirmBases
    #: the application's outcome under the policy's decision rules (``referred``: the
    #: offers stand once a reviewer approves); ``None`` for a decision judged by no policy
    outcome: str | None = None


# --------------------------------------------------------------------------------------------
# Records, point in time
# --------------------------------------------------------------------------------------------


def _as_datetime(value: Any) -> datetime:
    """A naive UTC datetime (dates mean midnight UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise OfferError(f"as_of {value!r} is not a date or timestamp") from exc
    if ts is pd.NaT:
        raise OfferError("as_of is missing")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    out: datetime = ts.to_pydatetime()
    return out


def _frame(records: Any, kind: str) -> pd.DataFrame:
    """One record type as a DataFrame with the columns the offers read, times naive UTC."""
    cols = _COLUMNS[kind]
    if records is None:
        df = pd.DataFrame(columns=list(cols))
    elif isinstance(records, pd.DataFrame):
        df = records.copy()
    elif isinstance(records, Sequence):
        df = pd.DataFrame([dict(r) for r in records])
    else:
        raise OfferError(f"{kind} records must be a DataFrame or a list of records")
    for c in cols:
        if c not in df.columns:
            df[c] = None
    for c in _TIME_COLUMNS[kind]:
        s = pd.to_datetime(df[c], utc=True, errors="coerce", format="mixed")
        df[c] = s.dt.tz_localize(None)
    return df


def visible_records(
    records: Mapping[str, Any], as_of: Any, lags: Mapping[str, int] | None = None
) -> dict[str, pd.DataFrame]:
    """The records a lender could see at ``as_of``, with each one's state at that moment.

    The point-in-time rule of :mod:`features.pit`: a fact dated ``t`` from source ``s`` is
    known at ``T`` when ``t + lag(s) < T``. It decides whether a record counts (its event
    time) and whether a later change of state counts, so at ``as_of`` an invoice paid later
    is unpaid (``paid_at`` cleared), a shipment closed later is in transit and a refund
    settled later is pending.

    Parameters
    ----------
    records : ``customs``, ``shipments`` and ``payments`` records of one firm (DataFrames
        or lists of mappings; missing types count as none).
    as_of : the decision date.
    lags : availability lag in days per record type (default
        :data:`features.pit.DEFAULT_LAGS`).
    """
    t = pd.Timestamp(_as_datetime(as_of))
    lag_days = {**DEFAULT_LAGS, **(lags or {})}
    out: dict[str, pd.DataFrame] = {}
    for kind in RECORD_KINDS:
        df = _frame(records.get(kind), kind)
        lag = lag_days[kind]
        df = df[known_mask(df[SOURCES[kind].event_time], t, lag)].copy()
        if kind == "payments":
            df.loc[~known_mask(df["paid_at"], t, lag), "paid_at"] = pd.NaT
        elif kind == "shipments":
            open_ = ~known_mask(df["closed_at"], t, lag)
            df.loc[open_, "status"] = "in_transit"
            df.loc[open_, "closed_at"] = pd.NaT
        else:
            unsettled = ~known_mask(df["tax_refund_settled_at"], t, lag)
            has_refund = df["tax_refund_status"] != "none"
            df.loc[unsettled & has_refund, "tax_refund_status"] = "pending"
            df.loc[unsettled, "tax_refund_settled_at"] = pd.NaT
        out[kind] = df
    return out


def compute_bases(records: Mapping[str, Any], as_of: Any) -> FirmBases:
    """The amounts every product is sized on, from one firm's records as of a date.

    Parameters
    ----------
    records : ``customs``, ``shipments`` and ``payments`` of the firm (see
        :func:`visible_records`); records dated on or after ``as_of`` are ignored.
    as_of : the decision date.

    Examples
    --------
    >>> payments = [
    ...     {"kind": "settlement", "direction": "in", "amount_usd": 1000.0,
    ...      "occurred_at": "2025-05-01", "paid_at": "2025-05-01"},
    ...     {"kind": "settlement", "direction": "in", "amount_usd": 500.0,
    ...      "occurred_at": "2024-06-01", "paid_at": "2024-06-01"},  # older than 180 days
    ... ]
    >>> compute_bases({"payments": payments}, "2025-06-01").settlements_180d
    1000.0
    """
    t_dt = _as_datetime(as_of)
    t = pd.Timestamp(t_dt)
    vis = visible_records(records, t_dt)
    pay, shp, cus = vis["payments"], vis["shipments"], vis["customs"]
    amount = pd.to_numeric(pay["amount_usd"], errors="coerce").fillna(0.0)

    window = t - pd.Timedelta(days=SETTLEMENT_WINDOW_DAYS)
    settled = (pay["kind"] == "settlement") & (pay["occurred_at"] >= window)
    settlements = float(amount[settled].sum())

    open_inv = (
        (pay["kind"] == "b2b_receipt")
        & pay["paid_at"].isna()
        & pay["due_at"].notna()
        & (pay["due_at"] >= t)
    )
    receivables = float(amount[open_inv].sum())
    days_to_due = 0.0
    if receivables > 0:
        days = (pay.loc[open_inv, "due_at"] - t).dt.total_seconds() / 86400.0
        days_to_due = float((days * amount[open_inv]).sum() / receivables)

    refund_amt = pd.to_numeric(cus["tax_refund_usd"], errors="coerce").fillna(0.0)
    pending = (
        (cus["direction"] == "export")
        & (cus["tax_refund_status"] == "pending")
        & (refund_amt > 0)
        & (cus["declared_at"] >= t - pd.Timedelta(days=TAX_REFUND_WINDOW_DAYS))
    )
    refunds = float(refund_amt[pending].sum())

    stock_from = t - pd.Timedelta(days=WAREHOUSE_SELL_THROUGH_DAYS)
    in_stock = (
        (shp["destination_type"] == "overseas_warehouse")
        & (shp["shipped_at"] >= stock_from)
        & shp["status"].isin(["in_transit", "delivered"])
    )
    value = pd.to_numeric(shp["declared_value_usd"], errors="coerce").fillna(0.0)
    stock = float(value[in_stock].sum())

    events = [vis[k][SOURCES[k].event_time] for k in RECORD_KINDS]
    firsts = [ev.min() for ev in events if ev.notna().any()]
    months = 0.0
    if firsts:
        months = float((t - min(firsts)).days / (365.25 / 12))

    return FirmBases(
        as_of=t_dt,
        settlements_180d=settlements,
        open_receivables=receivables,
        receivables_count=int(open_inv.sum()),
        receivables_days_to_due=days_to_due,
        pending_tax_refunds=refunds,
        tax_refund_count=int(pending.sum()),
        warehouse_stock=stock,
        warehouse_shipments=int(in_stock.sum()),
        months_of_history=months,
    )


def load_firm_records(con: Any, firm_id: str, as_of: Any) -> dict[str, pd.DataFrame]:
    """One firm's customs, shipments and payments from the record store, before ``as_of``.

    Parameters
    ----------
    con : a DuckDB connection to the record store (:func:`credit.store.open_store`).
    firm_id : the firm.
    as_of : only records whose event time is before this are read.
    """
    t = _as_datetime(as_of)
    out: dict[str, pd.DataFrame] = {}
    for kind in RECORD_KINDS:
        ev = SOURCES[kind].event_time
        cols = ", ".join(_COLUMNS[kind])
        out[kind] = con.execute(
            f"SELECT {cols} FROM {kind} WHERE firm_id = ? AND {ev} < ?", [firm_id, t]
        ).df()
    return out


def monthly_activity(records: Mapping[str, Any], as_of: Any, months: int = 12) -> pd.DataFrame:
    """Monthly sales, refunds and shipments over the ``months`` months up to ``as_of``.

    Sales are platform settlements and B2B invoices issued; refunds are refunds and
    chargebacks; shipments are the declared value shipped. All in US dollars, under the
    same point-in-time rule as the offers. The last month is the one holding the moment
    just before ``as_of`` (so as of 1 July the chart ends with June, not an empty July; as of
    15 July it ends with the first half of July). Returns columns ``month`` (first day),
    ``sales``, ``refunds``, ``shipments``.
    """
    if months < 1:
        raise OfferError("months must be at least 1")
    t = pd.Timestamp(_as_datetime(as_of))
    vis = visible_records(records, t)
    last = (t - pd.Timedelta(microseconds=1)).to_period("M")
    periods = pd.period_range(end=last, periods=months, freq="M")
    frame = pd.DataFrame(index=periods)
    pay = vis["payments"]
    amt = pd.to_numeric(pay["amount_usd"], errors="coerce").fillna(0.0)
    pmonth = pay["occurred_at"].dt.to_period("M")
    frame["sales"] = amt[pay["kind"].isin(["settlement", "b2b_receipt"])].groupby(pmonth).sum()
    frame["refunds"] = amt[pay["kind"].isin(["refund", "chargeback"])].groupby(pmonth).sum()
    shp = vis["shipments"]
    val = pd.to_numeric(shp["declared_value_usd"], errors="coerce").fillna(0.0)
    frame["shipments"] = val.groupby(shp["shipped_at"].dt.to_period("M")).sum()
    frame = frame.fillna(0.0)
    frame.index.name = "month"
    out = frame.reset_index()
    out["month"] = out["month"].dt.to_timestamp()
    return out


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

_BASES: dict[str, tuple[str, str]] = {
    # product -> (FirmBases field, what it is, in words)
    "working_capital_advance": ("settlements_180d", "platform settlements of the last 180 days"),
    "receivables_financing": ("open_receivables", "open B2B invoices"),
    "tax_refund_advance": ("pending_tax_refunds", "pending export tax refunds"),
    "warehouse_inventory_financing": ("warehouse_stock", "stock in overseas warehouses"),
}


def term_pd(pd_: float, term_days: int, horizon_days: int) -> float:
    """The PD over ``term_days`` from a PD over ``horizon_days`` (constant hazard).

    >>> round(term_pd(0.0199, 180, 360), 12)
    0.01
    """
    if not 0.0 <= pd_ <= 1.0:
        raise OfferError(f"pd must be between 0 and 1, got {pd_}")
    if pd_ >= 1.0:
        return 1.0
    return 1.0 - (1.0 - pd_) ** (term_days / horizon_days)


def price(
    pd_: float, term_days: int, product: ProductPolicy, policy: Policy
) -> tuple[float, AprBreakdown, float]:
    """APR, its parts and the term PD of a product for a PD and term."""
    tpd = term_pd(pd_, term_days, policy.pd_horizon_days)
    parts = AprBreakdown(
        cost_of_funds=policy.cost_of_funds,
        risk_cost=tpd * product.lgd * policy.days_per_year / term_days,
        operating_cost=product.operating_cost,
        margin=product.margin,
    )
    apr = parts.cost_of_funds + parts.risk_cost + parts.operating_cost + parts.margin
    return apr, parts, tpd


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _floor_to(x: float, step: float) -> float:
    # A tiny tolerance keeps 33900.000000001 from flooring to 33800 through float error.
    return math.floor(x / step + 1e-9) * step


def make_offers(decision: DecisionLike, bases: FirmBases, policy: Policy) -> OfferSet:
    """Offers and declines for a decision, sized on the firm's bases, under a policy.

    Parameters
    ----------
    decision : the scoring decision (a :class:`credit.decisions.Decision`; or its JSON as
        the API returns it, see :meth:`OfferDecision.from_json`).
    bases : the firm's amounts as of the decision date (:func:`compute_bases`).
    policy : the lender's or platform's policy.

    Returns
    -------
    OfferSet
        One offer or one decline (with all its reasons) per enabled product.
    """
    dec = _offer_decision(decision)
    verdict = getattr(decision, "verdict", None)
    if not 0.0 <= dec.pd <= 1.0 or math.isnan(dec.pd):
        raise OfferError(f"decision pd must be between 0 and 1, got {dec.pd}")
    months = dec.months_of_history if dec.months_of_history is not None else bases.months_of_history
    ccy = policy.currency
    offers: list[Offer] = []
    declines: list[Decline] = []
    for name, prod in policy.enabled_products().items():
        base_field, base_words = _BASES[name]
        base = float(getattr(bases, base_field)) * policy.usd_rate
        reasons: list[DeclineReason] = []
        if dec.thin_file or months < prod.min_history_months:
            reasons.append(
                DeclineReason(
                    code="thin_file",
                    message=(
                        f"{months:.0f} months of trading history; this product needs at least "
                        f"{prod.min_history_months}"
                    ),
                )
            )
        if dec.pd >= prod.pd_cutoff:
            reasons.append(
                DeclineReason(
                    code="pd_above_cutoff",
                    message=(
                        f"probability of default {dec.pd:.1%} is at or above this product's "
                        f"cutoff of {prod.pd_cutoff:.1%}"
                    ),
                )
            )
        factor = prod.grade_factors.get(dec.grade)
        if factor is None or factor <= 0:
            reasons.append(
                DeclineReason(
                    code="grade_not_eligible",
                    message=(
                        f"grade {dec.grade} is not eligible; eligible grades: "
                        f"{', '.join(g for g, f in prod.grade_factors.items() if f > 0)}"
                    ),
                )
            )
            offer = None
        else:
            offer = _size(name, prod, policy, dec, bases, base, factor, base_words)
        if offer is None and not any(r.code == "grade_not_eligible" for r in reasons):
            reasons.append(_too_small(prod, policy, base, base_words))
        if verdict is not None and verdict.outcome == "declined":
            reasons.insert(0, _declined(verdict))
        if reasons:
            declines.append(Decline(product=name, title=prod.title, reasons=reasons))
        elif offer is not None:
            offers.append(offer)
    return OfferSet(
        firm_id=dec.firm_id,
        as_of=dec.as_of,
        decision_id=dec.decision_id,
        pd=dec.pd,
        score=dec.score,
        grade=dec.grade,
        policy={"name": policy.name, "version": policy.version},
        currency=ccy,
        offers=offers,
        declines=declines,
        bases=bases,
        outcome=None if verdict is None else verdict.outcome,
    )


def _declined(verdict: Any) -> DeclineReason:
    rules = "; ".join(r["text"] for r in verdict.rules if r.get("kind") == "decline")
    return DeclineReason(
        code="application_declined",
        message=f"the application is declined under the lending policy: {rules}",
    )


def _too_small(prod: ProductPolicy, policy: Policy, base: float, words: str) -> DeclineReason:
    ccy = policy.currency
    if base <= 0:
        msg = f"no {words} to finance"
    else:
        msg = (
            f"{words} of {ccy} {_money(base)} support less than this product's minimum of "
            f"{ccy} {_money(prod.min_amount)}"
        )
    return DeclineReason(code="volume_too_small", message=msg)


def _size(
    name: str,
    prod: ProductPolicy,
    policy: Policy,
    dec: OfferDecision,
    bases: FirmBases,
    base: float,
    factor: float,
    base_words: str,
) -> Offer | None:
    """The offer for one product, or ``None`` when it falls below the minimum amount."""
    if base <= 0:
        return None
    term = prod.term_for(dec.grade)
    if isinstance(prod, ReceivablesPolicy):
        wanted = math.ceil(bases.receivables_days_to_due) + prod.grace_days
        term = max(prod.min_term_days, min(term, wanted))
    apr, parts, tpd = price(dec.pd, term, prod, policy)
    cost_factor = apr * term / policy.days_per_year

    limits: dict[str, float] = {"advance_rate": base * prod.advance_rate * factor}
    expected_settlements = 0.0
    if isinstance(prod, WorkingCapitalPolicy):
        expected_settlements = base * term / SETTLEMENT_WINDOW_DAYS
        limits["holdback"] = prod.max_holdback * expected_settlements / (1.0 + cost_factor)
    limits["max_amount"] = prod.max_amount
    limited_by = min(limits, key=lambda k: limits[k])
    amount = _floor_to(limits[limited_by], policy.round_to)
    if amount < prod.min_amount or amount <= 0:
        return None

    total_cost = amount * cost_factor
    repayable = amount + total_cost
    due = (dec.as_of + timedelta(days=term)).date()
    ccy = policy.currency
    holdback: float | None = None
    if isinstance(prod, WorkingCapitalPolicy):
        holdback = repayable / expected_settlements
        method: Any = "settlement_holdback"
        summary = (
            f"{holdback:.0%} of each platform payout is held back until {ccy} "
            f"{_money(repayable)} is repaid, expected within about {term} days"
        )
    elif name == "receivables_financing":
        method = "invoice_collection"
        summary = (
            f"repaid when your buyers pay your {bases.receivables_count} open invoice(s); "
            f"{ccy} {_money(repayable)} due by {due:%d %b %Y} at the latest"
        )
    elif name == "tax_refund_advance":
        method = "tax_refund"
        summary = (
            f"repaid from your {bases.tax_refund_count} pending export tax refund(s) when the "
            f"tax office pays; {ccy} {_money(repayable)} due by {due:%d %b %Y} at the latest"
        )
    else:
        method = "inventory_sales"
        summary = (
            f"repaid from sales of your overseas-warehouse stock; {ccy} {_money(repayable)} "
            f"due by {due:%d %b %Y}"
        )
    return Offer(
        product=name,
        title=prod.title,
        currency=ccy,
        amount=round(amount, 2),
        term_days=term,
        apr=apr,
        apr_breakdown=parts,
        total_cost=round(total_cost, 2),
        total_repayable=round(repayable, 2),
        expected_loss=round(tpd * prod.lgd * amount, 2),
        term_pd=tpd,
        lgd=prod.lgd,
        base=base_words,
        base_amount=round(base, 2),
        limited_by=limited_by,  # type: ignore[arg-type]
        repayment=Repayment(
            method=method,
            summary=summary,
            total_repayable=round(repayable, 2),
            due_date=due,
            holdback_rate=holdback,
        ),
    )


def offers_for_records(
    decision: DecisionLike, records: Mapping[str, Any], policy: Policy
) -> OfferSet:
    """Offers for a decision from the firm's raw records (bases computed as of its date)."""
    dec = _offer_decision(decision)
    return make_offers(dec, compute_bases(records, dec.as_of), policy)
