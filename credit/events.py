"""Events: what happened, written in the transaction of the action that caused it (the outbox).

An event row goes into ``events`` in the same database transaction as the decision, review
outcome, consent change or alert it reports; nothing else is needed for it to be delivered
later. The dispatcher (:mod:`credit.webhooks`) fans each event out to the tenant's webhook
subscriptions (one ``deliveries`` row per endpoint), then delivers those with retries; every
attempt is a row of ``delivery_attempts``. An event belongs to one tenant: the one that made the
decision, decided the review, holds the consent or watches the firm.

Event ids are the Standard Webhooks message ids (``webhook-id``): the same on every attempt
and every endpoint, so a receiver drops duplicates by it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from credit.decisions import iso

__all__ = [
    "EVENT_TYPES",
    "deliveries",
    "delivery_attempts",
    "emit",
    "event_row",
    "events",
    "new_event_id",
    "on_written",
    "webhooks",
    "written",
]

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)

#: The event types, with what each reports (the webhooks' ``event_types`` choose among them).
EVENT_TYPES: dict[str, str] = {
    "decision.created": "A decision was made and recorded (any route: score, batch, offers).",
    "offer.updated": "The firm's best offer changed (product, amount or price), or it has none.",
    "consent.granted": "A seller granted (or a provider attested) a consent to the tenant.",
    "consent.declined": "A seller declined the tenant's request for consent.",
    "consent.revoked": "A consent the tenant held was revoked, or a request withdrawn.",
    "review.completed": "A referred decision's review was closed with its final outcome.",
    "monitoring.alert": "A watched firm got worse under a rule of the lender's policy.",
    "webhook.test": "A test event sent by POST /v1/webhooks/{id}/test (to that endpoint only).",
}

_meta = sa.MetaData()

events = sa.Table(
    "events",
    _meta,
    sa.Column("event_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("firm_id", sa.String(64)),
    sa.Column("data", _JSON, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    # set by the dispatcher once the event has its deliveries (one per subscribed endpoint)
    sa.Column("fanned_out", sa.Boolean, nullable=False),
    # a test event goes to this endpoint only
    sa.Column("webhook_id", sa.String(40)),
)

webhooks = sa.Table(
    "webhooks",
    _meta,
    sa.Column("webhook_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event_types", _JSON, nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("description", sa.String(200)),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("created_by", sa.String(32)),
    sa.Column("deleted_at", _TS),
)

deliveries = sa.Table(
    "deliveries",
    _meta,
    sa.Column("delivery_id", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("webhook_id", sa.String(40), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    # pending -> delivering -> delivered | pending (retry) | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # the attempt number past which it is failed (raised by a redelivery)
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _TS, nullable=False),
    sa.Column("lease_until", _TS),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(300)),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("delivered_at", _TS),
    sa.UniqueConstraint("event_id", "webhook_id", name="uq_deliveries_event_webhook"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    _meta,
    sa.Column("delivery_id", sa.String(40), primary_key=True),
    # the primary key makes an attempt number usable once: no attempt is sent twice
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("webhook_id", sa.String(40), nullable=False),
    sa.Column("dispatcher", sa.String(64), nullable=False),
    sa.Column("started_at", _TS, nullable=False),
    # sending -> delivered | failed | abandoned (its dispatcher died; the lease ran out)
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Float),
    sa.Column("error", sa.String(300)),
)


_id_lock = threading.Lock()
_last_id = [0, 0]  # milliseconds, random part of the last id made in this process


def new_event_id() -> str:
    """A Standard Webhooks message id: ``msg_`` and 27 hex digits, the first 13 the time in
    milliseconds, the rest random; ids made by one process always increase (within one
    millisecond the random part counts up), so they sort by creation."""
    ms = int(time.time() * 1000)
    with _id_lock:
        if ms <= _last_id[0]:
            ms, rand = _last_id[0], _last_id[1] + 1
        else:
            rand = secrets.randbits(55)
        _last_id[0], _last_id[1] = ms, rand
    return f"msg_{ms:013x}{rand:014x}"


def event_row(
    tenant: str,
    type: str,
    data: Mapping[str, Any],
    *,
    firm_id: str | None = None,
    now: datetime | None = None,
    webhook_id: str | None = None,
) -> dict[str, Any]:
    """The ``events`` row for one event (insert it in the action's own transaction)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {
        "event_id": new_event_id(),
        "tenant": tenant,
        "type": type,
        "firm_id": firm_id,
        "data": dict(data),
        "created_at": now or datetime.now(UTC),
        "fanned_out": False,
        "webhook_id": webhook_id,
    }


def emit(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert event rows on ``conn`` (inside the caller's transaction); tell the dispatchers
    of this process once the caller commits (:func:`written` after the block)."""
    if rows:
        conn.execute(events.insert(), [dict(r) for r in rows])


# ---- wake-up: an in-process dispatcher hears of new events without waiting for its poll ----

_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def on_written(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` (cheap, thread-safe) after events are committed in this process;
    returns the function that removes it."""
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock, contextlib.suppress(ValueError):
            _listeners.remove(listener)

    return remove


def written() -> None:
    """Events were committed: wake this process's dispatchers (a no-op without one)."""
    for listener in tuple(_listeners):
        listener()


def event_dict(row: Mapping[str, Any], deliveries: Iterable[Mapping[str, Any]] = ()) -> dict:
    """An event as the API shows it (with its deliveries when given)."""
    out: dict[str, Any] = {
        "event_id": row["event_id"],
        "type": row["type"],
        "firm_id": row["firm_id"],
        "created_at": iso(row["created_at"]),
        "data": row["data"],
    }
    out["deliveries"] = [dict(d) for d in deliveries]
    return out
