"""Portfolio monitoring: early warnings on the firms a lender has lent to.

A lender registers the firms it watches (``POST /v1/portfolio/firms``, or from the loans it
provided), each under the seller's consent with purpose ``monitoring``: the one check of
:meth:`credit.service.CreditService.authorize` (``_authorize_many`` for a list). A run
(``credit monitor portfolio``, ``POST /v1/portfolio/runs`` or the schedule inside ``credit
serve``) re-scores every watched firm as of now through the batch path's steps (the consent,
:meth:`~credit.service.CreditService.scoped_features`, the one scoring core with its SHAP
reasons), reads a few signals from the firm's records under the same consent, compares each
firm with its previous run and raises alerts from the rules of the lender's policy
(``monitoring`` section, :class:`credit.policy.MonitoringPolicy`):

``grade_down``        the grade fell by ``grade_down_notches`` notches or more;
``pd_ratio``          the PD is at least ``pd_ratio`` times the previous one;
``overdue_invoices``  more supplier invoices unpaid past their due date than last time;
``settlements_drop``  platform settlements of the last 90 days down by ``settlements_drop``
                      or more against the 90 days before (newly so);
``shipment_problems`` the share of closed shipments returned or lost above
                      ``shipment_problem_share`` (newly so).

Each alert names the firm, the rule, the values before and after and the reason codes whose
SHAP contributions moved most between the two runs. Alerts are stored (``alerts``) and sent
as ``monitoring.alert`` events in the same transaction (:mod:`credit.events`, the outbox).

Tables (migration 0008): ``portfolio_firms``, ``portfolio_runs``, ``portfolio_scores``,
``alerts``. See docs/portfolio.md.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import logging
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError

from credit.errors import InvalidInputError, NotFoundError, UnavailableError, UseCaseError
from credit.events import emit, event_row, written
from credit.ledger import decode_content, provided_records
from credit.policy import MonitoringPolicy
from credit.records import RECORD_TYPES
from credit.store import OPERATOR_SOURCE, open_store

if TYPE_CHECKING:  # pragma: no cover
    from credit.decisions import Decision
    from credit.scoring import ScoringModel
    from credit.service import Caller, CreditService, FirmFeatures

log = logging.getLogger("tradecredit.portfolio")

MONITORING = "monitoring"
DB_DOWN = "the service database is unavailable; retry later"
NOT_SHARED_MONITORING = (
    "firm {firm_id} not found or not shared with you for monitoring (it needs the seller's "
    "active consent with purpose monitoring)"
)
#: The most firms one ``POST /v1/portfolio/firms`` may name.
MAX_REGISTER = 20_000

RULES: dict[str, str] = {
    "grade_down": "The grade fell by {n} notches or more since the last run",
    "pd_ratio": "The probability of default is {n:g} times the last run's or more",
    "overdue_invoices": "More supplier invoices unpaid past their due date than at the last run",
    "settlements_drop": "Platform settlements of the last 90 days fell by {n:.0%} or more "
    "against the 90 days before",
    "shipment_problems": "Over {n:.0%} of closed shipments were returned or lost",
}

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_meta = sa.MetaData()

portfolio_firms = sa.Table(
    "portfolio_firms",
    _meta,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("firm_id", sa.String(64), primary_key=True),
    sa.Column("exposure", sa.Float),
    sa.Column("product", sa.String(40)),
    sa.Column("source", sa.String(16), nullable=False),  # api or loans
    sa.Column("registered_at", _TS, nullable=False),
    sa.Column("registered_by", sa.String(32)),
    sa.Column("last_run_id", sa.String(40)),
    sa.Column("last_scored_at", _TS),
    sa.Column("last_pd", sa.Float),
    sa.Column("last_score", sa.Integer),
    sa.Column("last_grade", sa.String(8)),
    sa.Column("last_signals", _JSON),
    # SHAP contributions in the order of the run's ``features``
    sa.Column("last_contributions", _JSON),
)

portfolio_runs = sa.Table(
    "portfolio_runs",
    _meta,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("started_at", _TS, nullable=False),
    sa.Column("finished_at", _TS, nullable=False),
    sa.Column("model_version", sa.String(64)),
    sa.Column("features", _JSON, nullable=False),
    sa.Column("watched", sa.Integer, nullable=False),
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("skipped", _JSON, nullable=False),
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
)

portfolio_scores = sa.Table(
    "portfolio_scores",
    _meta,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("firm_id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("pd", sa.Float, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("grade", sa.String(8), nullable=False),
    sa.Column("exposure", sa.Float),
    sa.Column("market", sa.String(16)),
    sa.Column("regime", sa.String(8)),
    sa.Column("product", sa.String(40)),
    sa.Column("signals", _JSON, nullable=False),
    sa.Column("reasons", _JSON, nullable=False),
)

alerts = sa.Table(
    "alerts",
    _meta,
    sa.Column("alert_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("firm_id", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("rule", sa.String(40), nullable=False),
    sa.Column("text", sa.String(200), nullable=False),
    sa.Column("before_value", _JSON),
    sa.Column("after_value", _JSON),
    sa.Column("reasons", _JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("event_id", sa.String(40)),
    sa.Column("closed_at", _TS),
    sa.Column("closed_by", sa.String(80)),
    sa.Column("close_note", sa.String(2000)),
)


class AlertClosedError(UseCaseError):
    """The alert is closed already (409)."""

    status = 409


def new_run_id() -> str:
    return "run_" + secrets.token_hex(16)


def new_alert_id() -> str:
    return "alr_" + secrets.token_hex(16)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    d = _utc(dt)
    return None if d is None else d.isoformat().replace("+00:00", "Z")


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------------------------
# Signals from the records (under each firm's consent sources)
# --------------------------------------------------------------------------------------------

SIGNAL_KEYS = (
    "overdue_supplier_invoices",
    "settlements_90d",
    "settlements_prev_90d",
    "shipments_closed",
    "shipments_returned_or_lost",
)

_COLUMNS = {
    "payments": ["payment_id", "firm_id", "kind", "amount_usd", "occurred_at", "due_at", "paid_at"],
    "shipments": ["shipment_id", "firm_id", "shipped_at", "closed_at", "status"],
    "customs": ["declaration_id", "firm_id", "declared_at", "direction", "regime",
                "destination_country", "value_usd"],
}  # fmt: skip


def _store_frames(
    store_path: Path | None, firms: Sequence[str], now: datetime, window_days: int
) -> dict[str, pd.DataFrame]:
    """The records of ``firms`` the signals read, from the DuckDB record store, each with its
    provider (as :mod:`credit.lineage` names it)."""
    empty = {k: pd.DataFrame(columns=[*cols, "provider"]) for k, cols in _COLUMNS.items()}
    if store_path is None or not Path(store_path).exists() or not firms:
        return empty
    t = _naive(now)
    since = {
        "payments": t - timedelta(days=365 * 3),  # overdue invoices may be old
        "shipments": t - timedelta(days=window_days),
        "customs": t - timedelta(days=365 * 3),  # a firm's main market: its last year of exports
    }
    where = {
        "payments": "r.occurred_at < $now AND ((r.kind = 'settlement' AND r.paid_at >= $since2 "
        "AND r.paid_at < $now) OR (r.kind = 'supplier_payment' AND r.due_at < $now "
        "AND (r.paid_at IS NULL OR r.paid_at >= $now)))",
        "shipments": "r.shipped_at >= $since AND r.shipped_at < $now",
        "customs": "r.declared_at >= $since AND r.declared_at < $now AND r.direction = 'export'",
    }
    out: dict[str, pd.DataFrame] = {}
    try:
        con = open_store(Path(store_path), read_only=True)
    except (duckdb.Error, OSError) as exc:
        raise UnavailableError(f"record store unavailable: {type(exc).__name__}") from exc
    try:
        con.register("_watch", pd.DataFrame({"firm_id": list(firms)}))
        for kind, cols in _COLUMNS.items():
            rt = RECORD_TYPES[kind]
            sel = ", ".join(f"r.{c}" for c in cols)
            params: dict[str, Any] = {"now": t, "since": since[kind]}
            if kind == "payments":
                params = {"now": t, "since2": t - timedelta(days=180)}
            sql = (
                f"SELECT {sel}, coalesce(i.provider, '{OPERATOR_SOURCE}') AS provider "  # noqa: S608
                f"FROM {kind} r JOIN _watch w ON w.firm_id = r.firm_id "
                f"LEFT JOIN record_ingestions i ON i.record_type = '{kind}' "
                f"AND i.record_id = r.{rt.id_field} WHERE {where[kind]}"
            )
            out[kind] = con.execute(sql, params).df()
    except duckdb.Error as exc:
        raise UnavailableError(f"record store unavailable: {type(exc).__name__}") from exc
    finally:
        con.close()
    return out


def _pushed_frames(
    engine: Engine | None, store_path: Path | None, firms: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """The records of ``firms`` pushed over HTTP and not yet copied into the record store."""
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in _COLUMNS}
    if engine is None or not firms:
        return {k: pd.DataFrame(columns=[*c, "provider"]) for k, c in _COLUMNS.items()}
    c = provided_records.c
    ids = sorted(set(firms))
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = sa.select(c.record_type, c.record_id, c.provider, c.content).where(
                c.firm_id.in_(ids[i : i + 500]), c.record_type.in_(list(_COLUMNS))
            )
            for kind, _rid, provider, content in conn.execute(q):
                rec = decode_content(kind, content)
                rows[kind].append({**{k: rec.get(k) for k in _COLUMNS[kind]}, "provider": provider})
    out = {k: pd.DataFrame(v, columns=[*_COLUMNS[k], "provider"]) for k, v in rows.items()}
    if store_path is not None and Path(store_path).exists() and any(len(f) for f in out.values()):
        con = open_store(Path(store_path), read_only=True)
        try:
            for kind, frame in out.items():
                if frame.empty:
                    continue
                id_field = RECORD_TYPES[kind].id_field
                have = {
                    str(x)
                    for (x,) in con.execute(
                        f"SELECT {id_field} FROM {kind} WHERE {id_field} IN "  # noqa: S608
                        "(SELECT unnest($ids))",
                        {"ids": frame[id_field].astype(str).tolist()},
                    ).fetchall()
                }
                out[kind] = frame[~frame[id_field].astype(str).isin(have)]
        finally:
            con.close()
    return out


def _allowed(frame: pd.DataFrame, sources: Mapping[str, frozenset[str] | None]) -> pd.DataFrame:
    """The rows whose provider the firm's consent covers (``None``: every provider)."""
    if frame.empty:
        return frame
    restricted = {f: s for f, s in sources.items() if s is not None}
    if not restricted:
        return frame
    pairs = {(f, p) for f, s in restricted.items() for p in s}
    free = frame["firm_id"].map(lambda f: f not in restricted)
    keep = [
        bool(ok) or (f, p) in pairs
        for ok, f, p in zip(free, frame["firm_id"], frame["provider"], strict=True)
    ]
    return frame[keep]


def record_signals(
    store_path: Path | None,
    engine: Engine | None,
    sources: Mapping[str, frozenset[str] | None],
    now: datetime,
    window_days: int = 180,
) -> dict[str, dict[str, Any]]:
    """Per firm, as of ``now``, from the records its consent covers (``sources``: firm ->
    the consent's providers, ``None`` for all): the signals the rules read and the segments
    of the report.

    ``overdue_supplier_invoices`` (supplier invoices due before now and unpaid at now),
    ``settlements_90d`` / ``settlements_prev_90d`` (platform settlements paid in the last 90
    days and the 90 before), ``shipments_closed`` / ``shipments_returned_or_lost`` (shipped in
    the last ``window_days``, closed by now), ``market`` (the destination country with the
    most export value declared in the 365 days up to the firm's last export declaration) and
    ``regime`` (the customs regime with the most).
    """
    firms = sorted(sources)
    t = _naive(now)
    store = _store_frames(store_path, firms, now, window_days)
    pushed = _pushed_frames(engine, store_path, firms)
    frames = {}
    for kind in _COLUMNS:
        parts = [f for f in (store[kind], pushed[kind]) if not f.empty]
        frame = pd.concat(parts, ignore_index=True) if parts else store[kind]
        frames[kind] = _allowed(frame, sources)
    out: dict[str, dict[str, Any]] = {
        f: {
            "overdue_supplier_invoices": 0,
            "settlements_90d": 0.0,
            "settlements_prev_90d": 0.0,
            "shipments_closed": 0,
            "shipments_returned_or_lost": 0,
            "market": None,
            "regime": None,
        }
        for f in firms
    }
    p = frames["payments"]
    if not p.empty:
        for col in ("occurred_at", "due_at", "paid_at"):
            p[col] = pd.to_datetime(p[col])
        t90, t180 = t - timedelta(days=90), t - timedelta(days=180)
        before_now = p["occurred_at"] < t
        unpaid = p["paid_at"].isna() | (p["paid_at"] >= t)
        overdue = (
            p[before_now & (p["kind"] == "supplier_payment") & (p["due_at"] < t) & unpaid]
            .groupby("firm_id")
            .size()
        )
        settled = p[before_now & (p["kind"] == "settlement") & p["paid_at"].notna()]
        cur = settled[(settled["paid_at"] >= t90) & (settled["paid_at"] < t)]
        prev = settled[(settled["paid_at"] >= t180) & (settled["paid_at"] < t90)]
        for f, n in overdue.items():
            out[str(f)]["overdue_supplier_invoices"] = int(n)
        for f, v in cur.groupby("firm_id")["amount_usd"].sum().items():
            out[str(f)]["settlements_90d"] = float(v)
        for f, v in prev.groupby("firm_id")["amount_usd"].sum().items():
            out[str(f)]["settlements_prev_90d"] = float(v)
    s = frames["shipments"]
    if not s.empty:
        s["shipped_at"] = pd.to_datetime(s["shipped_at"])
        s["closed_at"] = pd.to_datetime(s["closed_at"])
        start = t - timedelta(days=window_days)
        closed = s[(s["shipped_at"] >= start) & (s["shipped_at"] < t) & (s["closed_at"] < t)]
        for f, n in closed.groupby("firm_id").size().items():
            out[str(f)]["shipments_closed"] = int(n)
        bad = closed[closed["status"].isin(["returned", "lost"])]
        for f, n in bad.groupby("firm_id").size().items():
            out[str(f)]["shipments_returned_or_lost"] = int(n)
    c = frames["customs"]
    if not c.empty:
        c["declared_at"] = pd.to_datetime(c["declared_at"])
        c = c[(c["direction"] == "export") & (c["declared_at"] < t)]
        # the firm's last year of exports (up to now): a firm that stopped exporting keeps the
        # market and regime it had, rather than becoming "unknown"
        last = c.groupby("firm_id")["declared_at"].transform("max")
        c = c[c["declared_at"] >= last - timedelta(days=365)]
        for key, col in (("market", "destination_country"), ("regime", "regime")):
            sums = c.groupby(["firm_id", col])["value_usd"].sum().reset_index()
            sums = sums.sort_values(["firm_id", "value_usd", col], ascending=[True, False, True])
            for f, v in sums.drop_duplicates("firm_id")[["firm_id", col]].itertuples(index=False):
                out[str(f)][key] = str(v)
    return out


def tenant_loans(
    store_path: Path | None, engine: Engine | None, tenant: str, now: datetime
) -> dict[str, dict[str, Any]]:
    """The firms with a loan record provided by ``tenant`` (files ingested with ``--source
    TENANT`` and pushes of its keys): per firm the exposure (principal of its loans
    disbursed and within their term at ``now``; when none is, the latest disbursed loan's
    principal) and the latest loan's product."""
    cols = ["loan_id", "firm_id", "product", "applied_at", "disbursed_at", "amount_usd",
            "term_days", "defaulted"]  # fmt: skip
    parts: list[pd.DataFrame] = []
    if store_path is not None and Path(store_path).exists():
        try:
            con = open_store(Path(store_path), read_only=True)
        except (duckdb.Error, OSError) as exc:
            raise UnavailableError(f"record store unavailable: {type(exc).__name__}") from exc
        try:
            sel = ", ".join(f"l.{c}" for c in cols)
            parts.append(
                con.execute(
                    f"SELECT {sel} FROM loans l JOIN record_ingestions i "  # noqa: S608
                    "ON i.record_type = 'loans' AND i.record_id = l.loan_id "
                    "WHERE i.provider = $tenant",
                    {"tenant": tenant},
                ).df()
            )
        finally:
            con.close()
    if engine is not None:
        c = provided_records.c
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.content).where(c.record_type == "loans", c.provider == tenant)
            ).scalars()
            pushed = [decode_content("loans", text) for text in rows]
        if pushed:
            parts.append(pd.DataFrame([{k: r.get(k) for k in cols} for r in pushed]))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return {}
    loans = pd.concat(parts, ignore_index=True).drop_duplicates("loan_id")
    loans["applied_at"] = pd.to_datetime(loans["applied_at"])
    loans["disbursed_at"] = pd.to_datetime(loans["disbursed_at"])
    t = _naive(now)
    out: dict[str, dict[str, Any]] = {}
    for firm, g in loans.sort_values("applied_at").groupby("firm_id"):
        disbursed = g[g["disbursed_at"].notna() & (g["disbursed_at"] < t)]
        ends = disbursed["disbursed_at"] + pd.to_timedelta(
            disbursed["term_days"].astype(float), unit="D"
        )
        live = disbursed[
            (ends > t)
            & (
                disbursed["defaulted"].isna()
                | ~disbursed["defaulted"].astype("boolean").fillna(False)
            )
        ]  # noqa: E501
        if len(live):
            exposure = float(live["amount_usd"].sum())
        elif len(disbursed):
            exposure = float(disbursed["amount_usd"].iloc[-1])
        else:
            exposure = None
        out[str(firm)] = {"exposure": exposure, "product": str(g["product"].iloc[-1])}
    return out


# --------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirmState:
    """A firm at one run: its score and the signals the rules read."""

    pd: float
    score: int
    grade: str
    signals: Mapping[str, Any]
    #: feature -> SHAP contribution (log-odds); ``None`` when not kept
    contributions: Mapping[str, float] | None = None


def settlements_change(signals: Mapping[str, Any]) -> float | None:
    """Settlements of the last 90 days against the 90 before: (cur - prev) / prev (``None``
    when there were none before)."""
    prev = _num(signals.get("settlements_prev_90d")) or 0.0
    if prev <= 0:
        return None
    return ((_num(signals.get("settlements_90d")) or 0.0) - prev) / prev


def shipment_problem_share(signals: Mapping[str, Any]) -> float | None:
    """The share of closed shipments returned or lost (``None`` when none closed)."""
    closed = int(signals.get("shipments_closed") or 0)
    if closed <= 0:
        return None
    return int(signals.get("shipments_returned_or_lost") or 0) / closed


def _settlements_down(rules: MonitoringPolicy, s: Mapping[str, Any]) -> bool:
    ch = settlements_change(s)
    return ch is not None and -ch >= rules.settlements_drop


def _shipments_bad(rules: MonitoringPolicy, s: Mapping[str, Any]) -> bool:
    share = shipment_problem_share(s)
    return share is not None and share > rules.shipment_problem_share


def fired_rules(
    rules: MonitoringPolicy,
    grades: Sequence[str],
    before: FirmState | None,
    after: FirmState,
) -> list[dict[str, Any]]:
    """The rules that fire for a firm going from ``before`` (its previous run; ``None`` on its
    first) to ``after``: ``[{rule, text, before, after}]``. The comparisons (grade, PD,
    overdue invoices) need a previous run; the two states of the records (settlements down,
    shipments returned or lost) fire when they hold now and did not at the previous run."""
    out: list[dict[str, Any]] = []

    def add(rule: str, n: Any, b: Any, a: Any) -> None:
        out.append({"rule": rule, "text": RULES[rule].format(n=n), "before": b, "after": a})

    if before is not None:
        order = {g: i for i, g in enumerate(grades)}
        known = before.grade in order and after.grade in order
        if known and order[after.grade] - order[before.grade] >= rules.grade_down_notches:
            add("grade_down", rules.grade_down_notches, before.grade, after.grade)
        if before.pd > 0 and after.pd / before.pd >= rules.pd_ratio:
            add("pd_ratio", rules.pd_ratio, before.pd, after.pd)
        b_n = int(before.signals.get("overdue_supplier_invoices") or 0)
        a_n = int(after.signals.get("overdue_supplier_invoices") or 0)
        if rules.overdue_invoices and a_n > b_n:
            add("overdue_invoices", None, b_n, a_n)
    if _settlements_down(rules, after.signals) and not (
        before is not None and _settlements_down(rules, before.signals)
    ):
        add(
            "settlements_drop",
            rules.settlements_drop,
            {"settlements_prev_90d": after.signals.get("settlements_prev_90d")},
            {
                "settlements_90d": after.signals.get("settlements_90d"),
                "change": settlements_change(after.signals),
            },
        )
    if _shipments_bad(rules, after.signals) and not (
        before is not None and _shipments_bad(rules, before.signals)
    ):
        add(
            "shipment_problems",
            rules.shipment_problem_share,
            None if before is None else shipment_problem_share(before.signals),
            shipment_problem_share(after.signals),
        )
    return out


def moved_reasons(
    before: Mapping[str, float] | None,
    after: Mapping[str, float],
    codes: Mapping[str, str],
    texts: Mapping[str, str],
    k: int = 3,
) -> list[dict[str, Any]]:
    """The ``k`` features whose SHAP contributions moved most between two runs (largest
    absolute change; a feature the previous run lacked counts from 0), with their reason
    codes and texts. Without a previous run: the ``k`` that raise the risk most now."""
    rows = []
    for f, a in after.items():
        b = None if before is None else float(before.get(f, 0.0))
        change = a - (b or 0.0)
        rows.append((abs(change) if before is not None else a, f, b, a, change))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return [
        {
            "code": codes.get(f),
            "feature": f,
            "text": texts.get(f, f),
            "before": None if b is None else round(b, 6),
            "after": round(a, 6),
            "change": round(ch, 6),
        }
        for _, f, b, a, ch in rows[:k]
    ]


# --------------------------------------------------------------------------------------------
# The use cases
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run of a tenant's portfolio."""

    run_id: str | None
    tenant: str
    watched: int
    scored: int
    skipped: dict[str, str]
    alerts: list[dict[str, Any]]
    model_version: str | None
    started_at: datetime
    finished_at: datetime
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "tenant": self.tenant,
            "watched": self.watched,
            "scored": self.scored,
            "skipped": [{"firm_id": f, "reason": r} for f, r in sorted(self.skipped.items())],
            "alerts": len(self.alerts),
            "alerts_by_rule": _count(a["rule"] for a in self.alerts),
            "model_version": self.model_version,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "seconds": round(self.seconds, 3),
        }


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return dict(sorted(out.items()))


def _round_list(values: Iterable[float]) -> list[float]:
    return [round(float(v), 5) for v in values]


class Portfolio:
    """The portfolio use cases over a :class:`~credit.service.CreditService` (its consents,
    features, model and policies) and the service database."""

    def __init__(
        self,
        service: CreditService,
        engine: Engine,
        store_path: Path | Callable[[], Path] | None = None,
    ) -> None:
        self.service = service
        self.engine = engine
        self._store_path = store_path

    @classmethod
    def of(cls, service: CreditService) -> Portfolio:
        """The portfolio of a service: its audit log's database and its record store."""
        if service.audit is None:
            raise UnavailableError("portfolio monitoring needs the service database")
        records = service.records
        path = (lambda: records.path) if hasattr(records, "path") else None
        return cls(service, service.audit.engine, path)

    @property
    def store_path(self) -> Path | None:
        p = self._store_path
        return Path(p()) if callable(p) else (Path(p) if p is not None else None)

    # ---- registration ----------------------------------------------------------------------

    def register(
        self,
        caller: Caller,
        firm_ids: Sequence[str] = (),
        exposures: Mapping[str, float] | None = None,
        *,
        from_loans: bool = False,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Watch ``firm_ids`` (and, ``from_loans``, every firm with a loan record the caller's
        tenant provided), each under its active ``monitoring`` consent; the others are
        rejected with the reason. ``sent = registered + rejected`` (distinct firms)."""
        now = now or datetime.now(UTC)
        exposures = dict(exposures or {})
        unknown = sorted(set(exposures) - set(firm_ids))
        if unknown and not from_loans:
            raise InvalidInputError(
                f"exposures name firms not in firm_ids: {', '.join(unknown[:5])}"
            )
        loans: dict[str, dict[str, Any]] = {}
        if from_loans:
            try:
                loans = tenant_loans(self.store_path, self.engine, caller.tenant, now)
            except SQLAlchemyError as exc:
                raise UnavailableError(DB_DOWN) from exc
        ids = list(dict.fromkeys([*firm_ids, *sorted(loans)]))
        if len(ids) > MAX_REGISTER:
            raise InvalidInputError(f"at most {MAX_REGISTER} firms at a time, got {len(ids)}")
        grants = self.service._authorize_many(caller, ids, MONITORING)
        accepted = [f for f in ids if f in grants]
        rejected = [
            {"firm_id": f, "reason": NOT_SHARED_MONITORING.format(firm_id=f)}
            for f in ids
            if f not in grants
        ]
        pf = portfolio_firms.c
        try:
            with self.engine.begin() as conn:
                have: set[str] = set()
                for i in range(0, len(accepted), 500):
                    have.update(
                        conn.execute(
                            sa.select(pf.firm_id).where(
                                pf.tenant == caller.tenant, pf.firm_id.in_(accepted[i : i + 500])
                            )
                        ).scalars()
                    )
                new_rows, updates = [], []
                for f in accepted:
                    loan = loans.get(f, {})
                    exposure = exposures.get(f, loan.get("exposure"))
                    product = loan.get("product")
                    if f in have:
                        if exposure is not None or product is not None:
                            updates.append(
                                {"t": caller.tenant, "f": f, "e": exposure, "p": product}
                            )
                        continue
                    new_rows.append(
                        {
                            "tenant": caller.tenant,
                            "firm_id": f,
                            "exposure": exposure,
                            "product": product,
                            "source": "loans" if f in loans and f not in firm_ids else "api",
                            "registered_at": now,
                            "registered_by": caller.key_id,
                        }
                    )
                if new_rows:
                    conn.execute(portfolio_firms.insert(), new_rows)
                if updates:
                    conn.execute(
                        portfolio_firms.update()
                        .where(pf.tenant == sa.bindparam("t"), pf.firm_id == sa.bindparam("f"))
                        .values(
                            exposure=sa.func.coalesce(
                                sa.bindparam("e", type_=sa.Float), pf.exposure
                            ),
                            product=sa.func.coalesce(
                                sa.bindparam("p", type_=sa.String), pf.product
                            ),
                        ),
                        updates,
                    )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return {
            "sent": len(ids),
            "registered": len(accepted),
            "already_watched": len(have),
            "rejected": rejected,
            "firm_ids": accepted,
        }

    def firms(self, caller: Caller, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        """The caller's watched firms with their state at the last run."""
        pf = portfolio_firms.c
        try:
            with self.engine.connect() as conn:
                total = conn.execute(
                    sa.select(sa.func.count()).where(pf.tenant == caller.tenant)
                ).scalar_one()
                rows = (
                    conn.execute(
                        sa.select(portfolio_firms)
                        .where(pf.tenant == caller.tenant)
                        .order_by(pf.firm_id)
                        .limit(limit)
                        .offset(offset)
                    )
                    .mappings()
                    .all()
                )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return {"total": int(total), "firms": [_firm_dict(r) for r in rows]}

    def remove(self, caller: Caller, firm_id: str) -> dict[str, Any]:
        """Stop watching a firm (its alerts are kept); :class:`NotFoundError` when the caller
        does not watch it."""
        pf = portfolio_firms.c
        try:
            with self.engine.begin() as conn:
                n = conn.execute(
                    portfolio_firms.delete().where(
                        pf.tenant == caller.tenant, pf.firm_id == firm_id
                    )
                ).rowcount
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if not n:
            raise NotFoundError(f"firm {firm_id} is not in your portfolio")
        return {"firm_id": firm_id, "removed": True}

    def tenants(self) -> list[str]:
        """Every tenant that watches at least one firm."""
        try:
            with self.engine.connect() as conn:
                return sorted(
                    conn.execute(sa.select(portfolio_firms.c.tenant).distinct()).scalars()
                )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    # ---- a run -------------------------------------------------------------------------------

    def _score(
        self, model: ScoringModel, found: Sequence[FirmFeatures]
    ) -> tuple[dict[str, Decision], dict[str, str]]:
        """The batch path's scoring step: one call to the core per feature source, with the
        full SHAP explanation (an item that does not fit the model gets its error)."""
        out: dict[str, Decision] = {}
        failed: dict[str, str] = {}
        by_source: dict[str, list[FirmFeatures]] = {}
        for f in found:
            by_source.setdefault(f.source, []).append(f)
        for group in by_source.values():
            try:
                ds = self.service._decide(model, group, ["full"] * len(group))
            except InvalidInputError:
                ds = []
                for f in group:
                    try:
                        ds.extend(self.service._decide(model, [f], ["full"]))
                    except InvalidInputError as exc:
                        failed[f.firm_id] = str(exc)
            for d in ds:
                out[d.firm_id] = d
        return out, failed

    def run(self, tenant: str, *, trigger: str = "cli", now: datetime | None = None) -> RunResult:
        """Re-score every firm ``tenant`` watches as of now, compare each with its last run,
        raise the alerts of the tenant's policy; the run, the scores, the alerts and their
        ``monitoring.alert`` events are written in one transaction."""
        import time

        from credit.service import Party

        t0 = time.perf_counter()
        started = now or datetime.now(UTC)
        caller = Party(tenant)
        timings: dict[str, float] = {}
        pf = portfolio_firms.c
        try:
            with self.engine.connect() as conn:
                watched = (
                    conn.execute(
                        sa.select(portfolio_firms).where(pf.tenant == tenant).order_by(pf.firm_id)
                    )
                    .mappings()
                    .all()
                )
                run_ids = sorted({r["last_run_id"] for r in watched if r["last_run_id"]})
                names_by_run = (
                    dict(
                        conn.execute(
                            sa.select(portfolio_runs.c.run_id, portfolio_runs.c.features).where(
                                portfolio_runs.c.run_id.in_(run_ids)
                            )
                        ).all()
                    )
                    if run_ids
                    else {}
                )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        ids = [r["firm_id"] for r in watched]
        model = self.service.model()
        rules = self.service.policy(caller).monitoring
        grants = self.service._authorize_many(caller, ids, MONITORING)
        skipped: dict[str, str] = {}
        found: list[FirmFeatures] = []
        for f in ids:
            if f not in grants:
                skipped[f] = NOT_SHARED_MONITORING.format(firm_id=f)
                continue
            try:
                found.append(self.service.scoped_features(f, None, grants[f]))
            except UseCaseError as exc:
                skipped[f] = str(exc)
        timings["features"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        decided, failed = self._score(model, found)
        skipped.update(failed)
        timings["score"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        try:
            signals = record_signals(
                self.store_path,
                self.engine,
                {f: grants[f].sources for f in decided},
                started,
                rules.shipment_window_days,
            )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        timings["signals"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        names = list(model.feature_names)
        codes = dict(zip(names, model.reason_codes, strict=True))
        texts = dict(zip(names, model.reason_texts, strict=True))
        run_id = new_run_id()
        by_id = {r["firm_id"]: r for r in watched}
        score_rows, updates, alert_rows, events = [], [], [], []
        finished = datetime.now(UTC) if now is None else started
        for f, d in decided.items():
            row = by_id[f]
            sig = signals.get(f, {})
            rule_signals = {k: sig.get(k) for k in SIGNAL_KEYS}
            contrib = (d.explanation or {}).get("contributions") or {}
            before = None
            if row["last_run_id"] is not None and row["last_pd"] is not None:
                prev_names = names_by_run.get(row["last_run_id"]) or []
                prev_c = row["last_contributions"] or []
                before = FirmState(
                    float(row["last_pd"]),
                    int(row["last_score"]),
                    str(row["last_grade"]),
                    row["last_signals"] or {},
                    dict(zip(prev_names, prev_c, strict=False)) if prev_names else None,
                )
            after = FirmState(d.pd, d.score, d.grade, rule_signals, contrib)
            fired = fired_rules(rules, model.scale.grades, before, after)
            reasons = [
                {k: r.get(k) for k in ("code", "feature", "text", "contribution")}
                for r in d.reasons
            ]
            if fired:
                moved = moved_reasons(
                    None if before is None else before.contributions,
                    contrib,
                    codes,
                    texts,
                    rules.top_reasons,
                )
                for a in fired:
                    alert_id = new_alert_id()
                    data = {
                        "alert_id": alert_id,
                        "run_id": run_id,
                        "firm_id": f,
                        "rule": a["rule"],
                        "text": a["text"],
                        "before": a["before"],
                        "after": a["after"],
                        "reasons": moved,
                        "pd": d.pd,
                        "grade": d.grade,
                        "previous": None
                        if before is None
                        else {
                            "pd": before.pd,
                            "grade": before.grade,
                            "scored_at": _iso(row["last_scored_at"]),
                        },
                        "exposure": row["exposure"],
                        "model": d.model,
                        "consent_id": grants[f].consent_id,
                    }
                    ev = event_row(tenant, "monitoring.alert", data, firm_id=f, now=finished)
                    events.append(ev)
                    alert_rows.append(
                        {
                            "alert_id": alert_id,
                            "tenant": tenant,
                            "firm_id": f,
                            "run_id": run_id,
                            "rule": a["rule"],
                            "text": a["text"],
                            "before_value": a["before"],
                            "after_value": a["after"],
                            "reasons": moved,
                            "status": "open",
                            "created_at": finished,
                            "event_id": ev["event_id"],
                        }
                    )
            score_rows.append(
                {
                    "run_id": run_id,
                    "firm_id": f,
                    "tenant": tenant,
                    "pd": d.pd,
                    "score": d.score,
                    "grade": d.grade,
                    "exposure": row["exposure"],
                    "market": sig.get("market"),
                    "regime": sig.get("regime"),
                    "product": row["product"],
                    "signals": rule_signals,
                    "reasons": reasons,
                }
            )
            updates.append(
                {
                    "t": tenant,
                    "f": f,
                    "run": run_id,
                    "at": finished,
                    "pd": d.pd,
                    "score": d.score,
                    "grade": d.grade,
                    "signals": rule_signals,
                    "contrib": _round_list(contrib.get(n, 0.0) for n in names),
                }
            )
        timings["compare"] = time.perf_counter() - t3
        t4 = time.perf_counter()
        run_row = {
            "run_id": run_id,
            "tenant": tenant,
            "started_at": started,
            "finished_at": finished,
            "model_version": model.version,
            "features": names,
            "watched": len(ids),
            "scored": len(decided),
            "skipped": [{"firm_id": f, "reason": r} for f, r in sorted(skipped.items())],
            "alerts": len(alert_rows),
            "trigger": trigger,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(portfolio_runs.insert(), [run_row])
                if score_rows:
                    conn.execute(portfolio_scores.insert(), score_rows)
                if updates:
                    conn.execute(
                        portfolio_firms.update()
                        .where(pf.tenant == sa.bindparam("t"), pf.firm_id == sa.bindparam("f"))
                        .values(
                            last_run_id=sa.bindparam("run"),
                            last_scored_at=sa.bindparam("at"),
                            last_pd=sa.bindparam("pd"),
                            last_score=sa.bindparam("score"),
                            last_grade=sa.bindparam("grade"),
                            last_signals=sa.bindparam("signals", type_=_JSON),
                            last_contributions=sa.bindparam("contrib", type_=_JSON),
                        ),
                        updates,
                    )
                if alert_rows:
                    conn.execute(alerts.insert(), alert_rows)
                    emit(conn, events)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if events:
            written()
        timings["write"] = time.perf_counter() - t4
        return RunResult(
            run_id=run_id,
            tenant=tenant,
            watched=len(ids),
            scored=len(decided),
            skipped=skipped,
            alerts=[
                {"alert_id": a["alert_id"], "firm_id": a["firm_id"], "rule": a["rule"]}
                for a in alert_rows
            ],
            model_version=model.version,
            started_at=started,
            finished_at=finished,
            seconds=time.perf_counter() - t0,
            timings=timings,
        )

    def run_all(self, tenant: str | None = None, *, trigger: str = "cli") -> list[RunResult]:
        """A run for ``tenant`` (default: every tenant that watches firms)."""
        tenants = [tenant] if tenant else self.tenants()
        return [self.run(t, trigger=trigger) for t in tenants]

    # ---- reads ------------------------------------------------------------------------------

    def alerts(
        self, caller: Caller, status: str | None = "open", limit: int = 100
    ) -> list[dict[str, Any]]:
        """The caller's alerts, newest first (``status``: open, or ``None`` for all)."""
        a = alerts.c
        q = sa.select(alerts).where(a.tenant == caller.tenant)
        if status is not None:
            q = q.where(a.status == status)
        try:
            with self.engine.connect() as conn:
                rows = (
                    conn.execute(q.order_by(a.created_at.desc(), a.alert_id).limit(limit))
                    .mappings()
                    .all()
                )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return [_alert_dict(r) for r in rows]

    def close_alert(self, caller: Caller, alert_id: str, note: str) -> dict[str, Any]:
        """Close one of the caller's open alerts (handled), with who and why; 404 for an
        alert of another tenant, 409 when it is closed already."""
        a = alerts.c
        now = datetime.now(UTC)
        by = (caller.key_id or caller.tenant)[:80]
        try:
            with self.engine.begin() as conn:
                row = (
                    conn.execute(
                        sa.select(alerts).where(a.alert_id == alert_id, a.tenant == caller.tenant)
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    raise NotFoundError(
                        f"no alert {alert_id!r} for you (see GET /v1/portfolio/alerts)"
                    )
                done = conn.execute(
                    alerts.update()
                    .where(a.alert_id == alert_id, a.status == "open")
                    .values(status="closed", closed_at=now, closed_by=by, close_note=note)
                ).rowcount
                if done != 1:
                    raise AlertClosedError(
                        f"alert {alert_id} was closed already ({_iso(row['closed_at'])})"
                    )
                row = conn.execute(sa.select(alerts).where(a.alert_id == alert_id)).mappings().one()
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return _alert_dict(row)

    def summary(self, caller: Caller, alert_limit: int = 100) -> dict[str, Any]:
        """The portfolio at its last run: exposure and expected loss (exposure x PD x LGD) by
        grade, main market, customs regime and product; the grade migration since the run
        before; the open alerts."""
        tenant = caller.tenant
        r = portfolio_runs.c
        s = portfolio_scores.c
        try:
            with self.engine.connect() as conn:
                watched = conn.execute(
                    sa.select(sa.func.count()).where(portfolio_firms.c.tenant == tenant)
                ).scalar_one()
                runs = (
                    conn.execute(
                        sa.select(portfolio_runs)
                        .where(r.tenant == tenant)
                        .order_by(r.started_at.desc(), r.run_id)
                        .limit(2)
                    )
                    .mappings()
                    .all()
                )
                latest = prev = pd.DataFrame()
                cols = [
                    s.firm_id,
                    s.pd,
                    s.score,
                    s.grade,
                    s.exposure,
                    s.market,
                    s.regime,
                    s.product,
                ]
                if runs:
                    latest = pd.DataFrame(
                        conn.execute(sa.select(*cols).where(s.run_id == runs[0]["run_id"])).all(),
                        columns=[c.name for c in cols],
                    )
                if len(runs) > 1:
                    prev = pd.DataFrame(
                        conn.execute(
                            sa.select(s.firm_id, s.grade).where(s.run_id == runs[1]["run_id"])
                        ).all(),
                        columns=["firm_id", "grade"],
                    )
                open_n = conn.execute(
                    sa.select(alerts.c.rule, sa.func.count())
                    .where(alerts.c.tenant == tenant, alerts.c.status == "open")
                    .group_by(alerts.c.rule)
                ).all()
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        policy = self.service.policy(caller)
        lgd = policy.monitoring.lgd
        grades = self._grades()
        out: dict[str, Any] = {
            "tenant": tenant,
            "currency": policy.currency,
            "lgd": lgd,
            "watched": int(watched),
            "last_run": None if not runs else _run_dict(runs[0]),
            "previous_run": None if len(runs) < 2 else _run_dict(runs[1]),
            "totals": {"firms": 0, "exposure": 0.0, "expected_loss": 0.0, "mean_pd": None},
            "by_grade": [],
            "by_market": [],
            "by_regime": [],
            "by_product": [],
            "migration": None,
            "open_alerts": {
                "total": sum(int(n) for _, n in open_n),
                "by_rule": {k: int(n) for k, n in open_n},
            },
            "alerts": self.alerts(caller, "open", alert_limit),
        }
        if latest.empty:
            return out
        latest["exposure"] = latest["exposure"].astype(float).fillna(0.0) * policy.usd_rate
        latest["expected_loss"] = latest["exposure"] * latest["pd"] * lgd
        out["totals"] = {
            "firms": len(latest),
            "exposure": round(float(latest["exposure"].sum()), 2),
            "expected_loss": round(float(latest["expected_loss"].sum()), 2),
            "mean_pd": round(float(latest["pd"].mean()), 6),
        }
        for key, col in (
            ("by_grade", "grade"),
            ("by_market", "market"),
            ("by_regime", "regime"),
            ("by_product", "product"),
        ):
            out[key] = _breakdown(latest, col, grades if col == "grade" else None)
        if not prev.empty:
            both = prev.merge(
                latest[["firm_id", "grade"]], on="firm_id", suffixes=("_before", "_after")
            )
            order = [g for g in grades if g in set(both["grade_before"]) | set(both["grade_after"])]
            matrix = {
                b: {
                    a: int(((both["grade_before"] == b) & (both["grade_after"] == a)).sum())
                    for a in order
                }
                for b in order
            }
            idx = {g: i for i, g in enumerate(grades)}
            steps = [
                idx.get(a, 0) - idx.get(b, 0)
                for b, a in zip(both["grade_before"], both["grade_after"], strict=True)
            ]
            out["migration"] = {
                "from_run": runs[1]["run_id"],
                "to_run": runs[0]["run_id"],
                "firms": len(both),
                "grades": order,
                "matrix": matrix,
                "downgraded": sum(1 for x in steps if x > 0),
                "upgraded": sum(1 for x in steps if x < 0),
                "unchanged": sum(1 for x in steps if x == 0),
            }
        return out

    def _grades(self) -> list[str]:
        try:
            return list(self.service.model().scale.grades)
        except UnavailableError:
            from credit.scale import ScoreScale

            return list(ScoreScale().grades)


def _breakdown(frame: pd.DataFrame, col: str, order: Sequence[str] | None) -> list[dict[str, Any]]:
    f = frame.assign(_k=frame[col].fillna("unknown").astype(str))
    grouped = f.groupby("_k")
    firms = grouped.size().to_dict()
    exposure = grouped["exposure"].sum().to_dict()
    loss = grouped["expected_loss"].sum().to_dict()
    mean_pd = grouped["pd"].mean().to_dict()
    keys = [str(k) for k in firms]
    if order is not None:
        keys = [k for k in order if k in firms] + [k for k in keys if k not in order]
    else:
        keys = sorted(keys, key=lambda k: (-float(exposure[k]), k))
    return [
        {
            col: k,
            "firms": int(firms[k]),
            "exposure": round(float(exposure[k]), 2),
            "expected_loss": round(float(loss[k]), 2),
            "mean_pd": round(float(mean_pd[k]), 6),
        }
        for k in keys
    ]


def _firm_dict(r: Any) -> dict[str, Any]:
    return {
        "firm_id": r["firm_id"],
        "exposure": r["exposure"],
        "product": r["product"],
        "source": r["source"],
        "registered_at": _iso(r["registered_at"]),
        "last_run_id": r["last_run_id"],
        "last_scored_at": _iso(r["last_scored_at"]),
        "pd": r["last_pd"],
        "score": r["last_score"],
        "grade": r["last_grade"],
        "signals": r["last_signals"],
    }


def _alert_dict(r: Any) -> dict[str, Any]:
    return {
        "alert_id": r["alert_id"],
        "firm_id": r["firm_id"],
        "run_id": r["run_id"],
        "rule": r["rule"],
        "text": r["text"],
        "before": r["before_value"],
        "after": r["after_value"],
        "reasons": r["reasons"],
        "status": r["status"],
        "created_at": _iso(r["created_at"]),
        "event_id": r["event_id"],
        "closed_at": _iso(r["closed_at"]),
        "closed_by": r["closed_by"],
        "close_note": r["close_note"],
    }


def _run_dict(r: Any) -> dict[str, Any]:
    return {
        "run_id": r["run_id"],
        "started_at": _iso(r["started_at"]),
        "finished_at": _iso(r["finished_at"]),
        "model_version": r["model_version"],
        "watched": r["watched"],
        "scored": r["scored"],
        "skipped": len(r["skipped"] or []),
        "alerts": r["alerts"],
        "trigger": r["trigger"],
    }


# --------------------------------------------------------------------------------------------
# The schedule inside ``credit serve``
# --------------------------------------------------------------------------------------------


async def run_portfolio_schedule(
    service: CreditService | Callable[[], CreditService],
    interval_minutes: float | Callable[[], float],
) -> None:
    """Run every tenant's portfolio every ``interval_minutes`` (a number or a function read
    before each wait, e.g. ``lambda: state.settings.portfolio_interval_minutes``; 0 or less
    waits a minute and reads it again) until cancelled. A run that fails is logged and the
    next one comes at its time; the runs go on a worker thread, off the event loop."""
    while True:
        minutes = interval_minutes() if callable(interval_minutes) else interval_minutes
        if minutes <= 0:
            await asyncio.sleep(60)
            continue
        await asyncio.sleep(minutes * 60)
        svc = service() if callable(service) else service
        try:
            results = await asyncio.to_thread(Portfolio.of(svc).run_all, None, trigger="schedule")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the service keeps serving; the next run tries again
            log.warning("portfolio run failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
            continue
        for r in results:
            log.info(
                "portfolio run",
                extra={
                    "tenant": r.tenant,
                    "run_id": r.run_id,
                    "scored": r.scored,
                    "skipped": len(r.skipped),
                    "alerts": len(r.alerts),
                    "seconds": round(r.seconds, 3),
                },
            )


# --------------------------------------------------------------------------------------------
# The HTML report
# --------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img alt='' src='data:image/png;base64,{b64}'>"


def _plots(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out: list[tuple[str, str]] = []
    rows = summary["by_grade"]
    if rows:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        xs = [r["grade"] for r in rows]
        ax.bar(xs, [r["exposure"] for r in rows], label="exposure", color="#8fb3d9")
        ax.bar(xs, [r["expected_loss"] for r in rows], label="expected loss", color="#c0392b")
        ax.set(
            xlabel="grade", ylabel=summary["currency"], title="Exposure and expected loss by grade"
        )
        ax.legend()
        out.append(("Exposure and expected loss by grade", _png(fig)))
    mig = summary.get("migration")
    if mig and mig["grades"]:
        g = mig["grades"]
        m = [[mig["matrix"][b][a] for a in g] for b in g]
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(len(g)), g)
        ax.set_yticks(range(len(g)), g)
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set(xlabel="grade now", ylabel="grade at the run before", title="Grade migration")
        out.append(("Grade migration since the last run", _png(fig)))
    by_rule = summary["open_alerts"]["by_rule"]
    if by_rule:
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.barh(list(by_rule), list(by_rule.values()), color="#e67e22")
        ax.set(xlabel="open alerts", title="Open alerts by rule")
        out.append(("Open alerts by rule", _png(fig)))
    return out


def _table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> str:
    if not rows:
        return "<p class='muted'>None.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, float):
                text = f"{v:,.4f}" if c in ("mean_pd", "pd") else f"{v:,.2f}"
            else:
                text = "-" if v is None else str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_report(summary: Mapping[str, Any]) -> str:
    """The portfolio report as one self-contained HTML page (figures inlined as PNG)."""
    e = html.escape
    t = summary["totals"]
    run = summary.get("last_run")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Portfolio of {e(summary['tenant'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:.2em .6em;text-align:right}th{background:#f3f3f3}.muted{color:#777}"
        "figure{display:inline-block;margin:0 1em 1em 0}</style></head><body>",
        f"<h1>Portfolio of {e(summary['tenant'])}</h1>",
    ]
    if run is None:
        parts.append(
            f"<p>{summary['watched']} firms watched; no run yet (<code>credit monitor "
            "portfolio</code> or <code>POST /v1/portfolio/runs</code>).</p>"
        )
    else:
        parts.append(
            f"<p>Last run {e(str(run['run_id']))} at {e(str(run['finished_at']))} with model "
            f"version {e(str(run['model_version']))}: {run['scored']} of {run['watched']} "
            f"watched firms scored ({run['skipped']} skipped), {run['alerts']} alerts.</p>"
            f"<p><b>Exposure</b> {t['exposure']:,.2f} {e(summary['currency'])}; "
            f"<b>expected loss</b> {t['expected_loss']:,.2f} (exposure x PD x LGD "
            f"{summary['lgd']:g}); mean PD {_short(t['mean_pd'])}.</p>"
        )
    for title, img in _plots(summary):
        parts.append(f"<figure>{img}<figcaption>{e(title)}</figcaption></figure>")
    cols = ["firms", "exposure", "expected_loss", "mean_pd"]
    for key, col, title in (
        ("by_grade", "grade", "By grade"),
        ("by_market", "market", "By main market"),
        ("by_regime", "regime", "By customs regime"),
        ("by_product", "product", "By product"),
    ):
        parts.append(f"<h2>{title}</h2>" + _table(summary[key], [col, *cols]))
    mig = summary.get("migration")
    parts.append("<h2>Grade migration since the last run</h2>")
    if not mig:
        parts.append("<p class='muted'>Needs two runs.</p>")
    else:
        g = mig["grades"]
        rows = [{"before \\ now": b, **{a: mig["matrix"][b][a] for a in g}} for b in g]
        parts.append(
            f"<p>{mig['firms']} firms in both runs: {mig['downgraded']} downgraded, "
            f"{mig['upgraded']} upgraded, {mig['unchanged']} unchanged.</p>"
            + _table(rows, ["before \\ now", *g])
        )
    parts.append(f"<h2>Open alerts ({summary['open_alerts']['total']})</h2>")
    rows = [
        {
            "firm": a["firm_id"],
            "rule": a["rule"],
            "before": _short(a["before"]),
            "after": _short(a["after"]),
            "reasons that moved most": ", ".join(
                f"{r.get('code')} {r.get('text')} ({r.get('change'):+.3f})"
                for r in a["reasons"]
                if r.get("change") is not None
            ),
            "at": a["created_at"],
        }
        for a in summary["alerts"]
    ]
    parts.append(_table(rows, ["firm", "rule", "before", "after", "reasons that moved most", "at"]))
    parts.append("</body></html>")
    return "".join(parts)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {_short(x)}" for k, x in v.items())
    return "-" if v is None else str(v)
