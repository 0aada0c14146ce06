"""The audit log: every decision is written here before its response leaves.

A decision that cannot be recorded is not returned (the route answers 503). Rows are only
ever inserted; reading one back is scoped to the tenant that made it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError

from credit.decisioning import Verdict
from credit.decisions import Decision, iso
from credit.errors import AuditUnavailableError
from credit.events import event_row, events, written
from credit.fastpath.dbapi import FastInsert
from credit.reviews import reviews as reviews_table

__all__ = ["MONITORING_COLUMNS", "AuditLog", "AuditUnavailableError", "decisions"]

log = logging.getLogger("tradecredit.audit")

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_meta = sa.MetaData()
decisions = sa.Table(
    "decisions",
    _meta,
    sa.Column("decision_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32)),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("firm_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("features", _JSON, nullable=False),
    sa.Column("pd", sa.Float, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("grade", sa.String(8), nullable=False),
    sa.Column("reasons", _JSON, nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("model_run_id", sa.String(64)),
    sa.Column("thin_file", sa.Boolean),
    sa.Column("history_months", sa.Float),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    # the offer set (products, amounts, prices, declines) when the decision led to offers
    sa.Column("offers", _JSON),
    # lineage (migration 0005): the consent, whose records, known as of when
    sa.Column("consent_id", sa.String(40)),
    sa.Column("sources", _JSON),
    sa.Column("knowledge_at", sa.DateTime(timezone=True)),
    # decisioning (migration 0006): the outcome under the lender's policy and why (``rules``:
    # the rules that fired and the automatic-approval limit, ``{"rules": [...], "limit": x}``)
    sa.Column("outcome", sa.String(16)),
    sa.Column("recommendation", sa.String(16)),
    sa.Column("rules", _JSON),
    sa.Column("amount", sa.Float),
    sa.Column("policy", sa.String(100)),
    sa.Column("review_id", sa.String(40)),
)


#: The columns :meth:`AuditLog.since` returns, in this order.
MONITORING_COLUMNS = (
    "decision_id",
    "tenant",
    "firm_id",
    "as_of",
    "features",
    "pd",
    "score",
    "grade",
    "model_version",
    "scored_at",
)


def _verdict_columns(d: Decision) -> dict[str, Any]:
    v = d.verdict
    if v is None:
        return {}
    return {
        "outcome": v.outcome,
        "recommendation": v.recommendation,
        "rules": {"rules": v.rules, "limit": v.limit},
        "amount": v.amount,
        "policy": f"{v.policy['name']}@{v.policy['version']}",
        "review_id": d.review_id,
    }


def _verdict_of(row: Any) -> Verdict | None:
    """The verdict a row records (``None``: made before decisioning, or by no policy)."""
    if row["outcome"] is None:
        return None
    name, _, version = str(row["policy"] or "").rpartition("@")
    stored = row["rules"] or {}
    return Verdict(
        outcome=row["outcome"],
        recommendation=row["recommendation"],
        rules=list(stored.get("rules") or []),
        amount=row["amount"],
        limit=float(stored.get("limit") or 0.0),
        policy={"name": name, "version": version},
    )


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def decision_event(d: Decision, tenant: str) -> dict[str, Any]:
    """The ``decision.created`` event of a decision (its data: what a receiver acts on; the
    full record is ``GET /v1/decisions/{decision_id}``)."""
    v = d.verdict
    data: dict[str, Any] = {
        "decision_id": d.decision_id,
        "firm_id": d.firm_id,
        "as_of": iso(d.as_of),
        "scored_at": iso(d.scored_at),
        "pd": d.pd,
        "score": d.score,
        "grade": d.grade,
        "outcome": v.outcome if v else None,
        "recommendation": v.recommendation if v else None,
        "amount": v.amount if v else None,
        "limit": v.limit if v else None,
        "review_id": d.review_id,
        "source": d.source,
        "model": {"name": d.model["name"], "version": d.model["version"]},
        "reasons": [{"code": r.get("code"), "text": r.get("text")} for r in d.reasons[:4]],
    }
    return event_row(tenant, "decision.created", data, firm_id=d.firm_id, now=d.scored_at)


def _decision_events(items: Sequence[Decision], tenant: str) -> list[dict[str, Any]]:
    return [decision_event(d, tenant) for d in items]


#: The ``decision.created`` rows of a batch (a module attribute: the outbox benchmark swaps
#: it for ``lambda items, tenant: []`` to time the audit write without it).
_outbox = _decision_events


def best_offer(offers: dict[str, Any] | None) -> dict[str, Any] | None:
    """The largest offer of an offer set (product, amount, currency, APR, term), or ``None``."""
    found = (offers or {}).get("offers") or []
    if not found:
        return None
    top = max(found, key=lambda o: (o.get("amount") or 0.0, -(o.get("apr") or 0.0)))
    return {
        "product": top.get("product"),
        "amount": top.get("amount"),
        "currency": top.get("currency"),
        "apr": top.get("apr"),
        "term_days": top.get("term_days"),
    }


class AuditLog:
    """Insert-only decision log on the service database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = FastInsert(engine, decisions)  # the SQL is rendered once, here
        self._reviews = FastInsert(engine, reviews_table)
        self._events = FastInsert(engine, events)

    def record(
        self,
        items: Sequence[Decision],
        tenant: str,
        key_id: str | None,
        request_hashes: Sequence[str],
        offers: Sequence[dict[str, Any] | None] | None = None,
        review_rows: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write decisions in one transaction; raise :class:`AuditUnavailableError` on failure.

        ``offers``, when given, holds per decision the offer set it led to (JSON-ready);
        ``review_rows`` are the review rows referred decisions open (same transaction: no
        referred decision is recorded without its review).
        """
        if not items:
            return
        rows = [
            {
                "decision_id": d.decision_id,
                "tenant": tenant,
                "key_id": key_id,
                "request_hash": h,
                "source": d.source,
                "firm_id": d.firm_id,
                "as_of": d.as_of,
                "features": d.features,
                "pd": d.pd,
                "score": d.score,
                "grade": d.grade,
                "reasons": d.reasons,
                "model_name": d.model["name"],
                "model_version": d.model["version"] or "unregistered",
                "model_run_id": d.model["run_id"],
                "thin_file": d.data.get("thin_file"),
                "history_months": d.data.get("history_months"),
                "scored_at": d.scored_at,
                "offers": o,
                "consent_id": d.consent_id,
                "sources": d.lineage,
                "knowledge_at": d.knowledge_at,
                **_verdict_columns(d),
            }
            for d, h, o in zip(items, request_hashes, offers or [None] * len(items), strict=True)
        ]
        # the outbox: the events go in with the decisions, in the same transaction
        event_rows = _outbox(items, tenant)
        try:
            if offers is not None:
                event_rows += self._offer_events(items, tenant, offers)
            self._insert.insert(
                rows, also=[(self._reviews, list(review_rows)), (self._events, event_rows)]
            )
        except (SQLAlchemyError, OSError) as exc:
            log.error("audit write failed: %s", type(exc).__name__, extra={"n": len(rows)})
            raise AuditUnavailableError("the audit log is unavailable") from exc
        written()

    def _offer_events(
        self,
        items: Sequence[Decision],
        tenant: str,
        offers: Sequence[dict[str, Any] | None],
    ) -> list[dict[str, Any]]:
        """``offer.updated`` for each decision whose best offer differs from the one of the
        tenant's last decision with offers for the firm (none before counts as a change when
        there is one now)."""
        out = []
        with self.engine.connect() as conn:
            for d, o in zip(items, offers, strict=True):
                if o is None:
                    continue
                prev = conn.execute(
                    sa.select(decisions.c.offers, decisions.c.decision_id)
                    .where(
                        decisions.c.tenant == tenant,
                        decisions.c.firm_id == d.firm_id,
                        decisions.c.offers.is_not(None),
                    )
                    .order_by(decisions.c.scored_at.desc())
                    .limit(1)
                ).first()
                before = best_offer(prev[0]) if prev is not None else None
                after = best_offer(o)
                if before == after:
                    continue
                data = {
                    "firm_id": d.firm_id,
                    "decision_id": d.decision_id,
                    "previous_decision_id": prev[1] if prev is not None else None,
                    "before": before,
                    "after": after,
                    "offers": len(o.get("offers") or []),
                    "grade": d.grade,
                    "pd": d.pd,
                }
                out.append(event_row(tenant, "offer.updated", data, firm_id=d.firm_id))
        return out

    def get(self, tenant: str | None, decision_id: str) -> dict[str, Any] | None:
        """The recorded decision if ``tenant`` made it (``None``: whoever did), else ``None``."""
        q = sa.select(decisions).where(decisions.c.decision_id == decision_id)
        if tenant is not None:
            q = q.where(decisions.c.tenant == tenant)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(q).mappings().first()
        except (SQLAlchemyError, OSError) as exc:
            raise AuditUnavailableError("the audit log is unavailable") from exc
        if row is None:
            return None
        return {
            "decision_id": row["decision_id"],
            "firm_id": row["firm_id"],
            "as_of": iso(_utc(row["as_of"])),
            "pd": row["pd"],
            "score": row["score"],
            "grade": row["grade"],
            "reasons": row["reasons"],
            "model": {
                "name": row["model_name"],
                "version": row["model_version"],
                "run_id": row["model_run_id"],
            },
            "data": {"thin_file": row["thin_file"], "history_months": row["history_months"]},
            "scored_at": iso(_utc(row["scored_at"])),
            "source": row["source"],
            "key_id": row["key_id"],
            "request_hash": row["request_hash"],
            "features": row["features"],
            "consent_id": row["consent_id"],
            "lineage": row["sources"],
            "knowledge_at": None if row["knowledge_at"] is None else iso(_utc(row["knowledge_at"])),
            "tenant": row["tenant"],
            "verdict": _verdict_of(row),
            "review_id": row["review_id"],
            "offers": row["offers"],
        }

    def declined_of(self, firm_id: str) -> list[tuple[str, str]]:
        """``(decision_id, tenant)`` of the firm's declined decisions, newest first (any
        tenant): declined by the policy, or referred and declined by a reviewer."""
        reviewed = sa.select(reviews_table.c.review_id).where(
            reviews_table.c.firm_id == firm_id, reviews_table.c.outcome == "declined"
        )
        q = (
            sa.select(decisions.c.decision_id, decisions.c.tenant)
            .where(
                decisions.c.firm_id == firm_id,
                sa.or_(decisions.c.outcome == "declined", decisions.c.review_id.in_(reviewed)),
            )
            .order_by(decisions.c.scored_at.desc())
            .limit(50)
        )
        try:
            with self.engine.connect() as conn:
                return [(r[0], r[1]) for r in conn.execute(q)]
        except (SQLAlchemyError, OSError) as exc:
            raise AuditUnavailableError("the audit log is unavailable") from exc

    def count(self, tenant: str | None = None) -> int:
        """Number of recorded decisions (for one tenant or all)."""
        q = sa.select(sa.func.count()).select_from(decisions)
        if tenant is not None:
            q = q.where(decisions.c.tenant == tenant)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def since(self, since: datetime) -> list[dict[str, Any]]:
        """Every decision recorded at or after ``since`` (all tenants), oldest first: the
        columns monitoring reads (no offers, no request hash)."""
        since = _utc(since)
        cols = [decisions.c[name] for name in MONITORING_COLUMNS]
        q = sa.select(*cols).where(decisions.c.scored_at >= since).order_by(decisions.c.scored_at)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except (SQLAlchemyError, OSError):
            return False
