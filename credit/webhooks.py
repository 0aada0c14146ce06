"""Webhooks: a tenant's endpoints, and the dispatcher that delivers the outbox to them.

Every event is first a row of ``events`` (:mod:`credit.events`), written in the transaction of
the action that caused it. A :class:`Dispatcher` then

1. **fans out** new events: one ``deliveries`` row per endpoint of the event's tenant that
   subscribed to its type (and existed when it happened); a test event goes to its endpoint;
2. **claims** due deliveries: in one transaction it locks them (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so several dispatchers share the work and never take the same row; SQLite has
   one writer at a time, and each claim is a conditional update that only one can win), marks
   them ``delivering`` under a lease and writes the attempt row (delivery, attempt number:
   the primary key, so one attempt number is used once);
3. **sends** each, signed per the Standard Webhooks specification (the ``standardwebhooks``
   package: ``webhook-id`` is the event id, the same on every attempt, so receivers drop
   duplicates by it), no redirect followed, a time limit per attempt;
4. **records** the attempt (status code, latency, error) and moves the delivery on: delivered
   on a 2xx; otherwise another attempt after an exponential backoff with jitter, or ``failed``
   after the last one (kept: ``POST /v1/events/{id}/redeliver`` queues it again).

A dispatcher killed mid-attempt leaves its deliveries ``delivering``; when the lease runs out
another dispatcher (or the same service restarted) claims them again, marking the lost attempt
``abandoned``. Delivery is at least once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from standardwebhooks.webhooks import Webhook

from credit.db import json_bytes
from credit.decisions import iso
from credit.errors import InvalidInputError, NotFoundError, UnavailableError, UseCaseError
from credit.events import (
    EVENT_TYPES,
    deliveries,
    delivery_attempts,
    emit,
    event_dict,
    event_row,
    events,
    on_written,
    webhooks,
    written,
)
from credit.settings import Settings

log = logging.getLogger(__name__)

DB_DOWN = "the service database is unavailable; retry later"
USER_AGENT = "tradecredit-webhooks/1"
#: Event types an endpoint may subscribe to (test events go to the endpoint tested).
SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != "webhook.test")


class NothingToRedeliverError(UseCaseError):
    """The event has no delivery that can be queued again (409)."""

    status = 409


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else iso(dt)


# ---- endpoint URLs ------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_loopback: bool) -> str:
    """``url`` if webhooks may be sent to it, else :class:`InvalidInputError` saying why.

    https only; plain http only to a loopback address and only when ``allow_loopback`` (the
    ``webhooks_allow_loopback`` setting, for development). No credentials in the URL; a URL
    naming a private, link-local or reserved address literal is refused, and a loopback one
    unless the setting allows it (the service must not be a way into its own network).
    Host names are not resolved here: that belongs to the egress proxy or firewall."""
    url = url.strip()
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInputError(f"the endpoint URL must be https://host/...; got {url!r}")
    if parts.username or parts.password:
        raise InvalidInputError("the endpoint URL must not carry credentials (user:password@)")
    if parts.fragment:
        raise InvalidInputError("the endpoint URL must not have a #fragment")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as exc:
        raise InvalidInputError(f"the endpoint URL has an invalid port: {exc}") from None
    if _loopback(host):
        if allow_loopback:
            return url
        raise InvalidInputError(
            "loopback endpoints are allowed only with the setting "
            "TRADECREDIT_WEBHOOKS_ALLOW_LOOPBACK=true (development); use a public https URL"
        )
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise InvalidInputError(
                f"the endpoint URL names a private or reserved address ({host})"
            )
    if parts.scheme != "https":
        raise InvalidInputError(f"the endpoint URL must use https; got {url!r}")
    return url


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhook_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "webhook_id": row["webhook_id"],
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "description": row["description"],
        "created_at": _iso(row["created_at"]),
        "created_by": row["created_by"],
    }


def _delivery_dict(row: Mapping[Any, Any], attempts: Sequence[Mapping[Any, Any]]) -> dict:
    return {
        "delivery_id": row["delivery_id"],
        "webhook_id": row["webhook_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "next_attempt_at": _iso(row["next_attempt_at"])
        if row["status"] in ("pending", "delivering")
        else None,
        "last_status": row["last_status"],
        "last_error": row["last_error"],
        "delivered_at": _iso(row["delivered_at"]),
        "attempt_log": [
            {
                "attempt": a["attempt"],
                "dispatcher": a["dispatcher"],
                "started_at": _iso(a["started_at"]),
                "outcome": a["outcome"],
                "status_code": a["status_code"],
                "latency_ms": a["latency_ms"],
                "error": a["error"],
            }
            for a in sorted(attempts, key=lambda a: a["attempt"])
        ],
    }


class WebhookStore:
    """A tenant's endpoints and events (every method is scoped to one tenant)."""

    def __init__(self, engine: Engine, settings: Callable[[], Settings]) -> None:
        self.engine = engine
        self._settings = settings

    def create(
        self,
        tenant: str,
        url: str,
        event_types: Sequence[str],
        *,
        description: str | None = None,
        created_by: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """A new endpoint and its signing secret (shown once: only its holder can verify)."""
        url = check_url(url, self._settings().webhooks_allow_loopback)
        types = list(dict.fromkeys(event_types))
        unknown = [t for t in types if t not in SUBSCRIBABLE]
        if not types or unknown:
            raise InvalidInputError(
                f"unknown event type(s) {', '.join(unknown) or '(none given)'}; choose among "
                f"{', '.join(SUBSCRIBABLE)}"
            )
        secret = new_secret()
        row = {
            "webhook_id": "wh_" + secrets.token_hex(12),
            "tenant": tenant,
            "url": url,
            "event_types": types,
            "secret": secret,
            "description": description,
            "created_at": _now(),
            "created_by": created_by,
            "deleted_at": None,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(webhooks.insert().values(**row))
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return _webhook_dict(row), secret

    def endpoints(self, tenant: str) -> list[dict[str, Any]]:
        q = (
            sa.select(webhooks)
            .where(webhooks.c.tenant == tenant, webhooks.c.deleted_at.is_(None))
            .order_by(webhooks.c.created_at)
        )
        try:
            with self.engine.connect() as conn:
                return [_webhook_dict(r) for r in conn.execute(q).mappings()]
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    def _get(self, conn: sa.Connection, tenant: str, webhook_id: str) -> Mapping[Any, Any]:
        row = (
            conn.execute(
                sa.select(webhooks).where(
                    webhooks.c.webhook_id == webhook_id,
                    webhooks.c.tenant == tenant,
                    webhooks.c.deleted_at.is_(None),
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no webhook {webhook_id!r} for you (see GET /v1/webhooks)")
        return row

    def delete(self, tenant: str, webhook_id: str) -> dict[str, Any]:
        """Delete an endpoint: nothing more is sent to it (deliveries not yet sent are
        failed with the reason)."""
        now = _now()
        try:
            with self.engine.begin() as conn:
                row = self._get(conn, tenant, webhook_id)
                conn.execute(
                    webhooks.update()
                    .where(webhooks.c.webhook_id == webhook_id)
                    .values(deleted_at=now)
                )
                conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.webhook_id == webhook_id,
                        deliveries.c.status == "pending",
                    )
                    .values(status="failed", last_error="endpoint deleted")
                )
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        return {**_webhook_dict(row), "deleted_at": now.isoformat()}

    def test(self, tenant: str, webhook_id: str) -> dict[str, Any]:
        """Queue a ``webhook.test`` event for this endpoint only."""
        try:
            with self.engine.begin() as conn:
                wh = self._get(conn, tenant, webhook_id)
                row = event_row(
                    tenant,
                    "webhook.test",
                    {"webhook_id": webhook_id, "url": wh["url"], "message": "test event"},
                    webhook_id=webhook_id,
                )
                emit(conn, [row])
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        written()
        return event_dict(row)

    def events(
        self,
        tenant: str,
        *,
        type: str | None = None,
        firm_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The tenant's events, oldest first after the event id ``after`` (a cursor), with
        their deliveries and every attempt."""
        if type is not None and type not in EVENT_TYPES:
            raise InvalidInputError(
                f"unknown event type {type!r}; choose among {', '.join(EVENT_TYPES)}"
            )
        q = sa.select(events).where(events.c.tenant == tenant)
        if type is not None:
            q = q.where(events.c.type == type)
        if firm_id is not None:
            q = q.where(events.c.firm_id == firm_id)
        if after is not None:
            q = q.where(events.c.event_id > after)
        q = q.order_by(events.c.event_id).limit(limit)
        try:
            with self.engine.connect() as conn:
                rows = list(conn.execute(q).mappings())
                return self._with_deliveries(conn, rows)
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc

    @staticmethod
    def _with_deliveries(conn: sa.Connection, rows: Sequence[Mapping[Any, Any]]) -> list[dict]:
        ids = [r["event_id"] for r in rows]
        dels: dict[str, list[Mapping[Any, Any]]] = {}
        atts: dict[str, list[Mapping[Any, Any]]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for d in conn.execute(
                sa.select(deliveries).where(deliveries.c.event_id.in_(chunk))
            ).mappings():
                dels.setdefault(d["event_id"], []).append(d)
            for a in conn.execute(
                sa.select(delivery_attempts).where(delivery_attempts.c.event_id.in_(chunk))
            ).mappings():
                atts.setdefault(a["delivery_id"], []).append(a)
        return [
            event_dict(
                r,
                [
                    _delivery_dict(d, atts.get(d["delivery_id"], []))
                    for d in sorted(dels.get(r["event_id"], []), key=lambda d: d["created_at"])
                ],
            )
            for r in rows
        ]

    def redeliver(self, tenant: str, event_id: str) -> dict[str, Any]:
        """Queue the event's deliveries again (a failed one gets a fresh set of attempts;
        one delivered already is sent once more: receivers drop it by ``webhook-id`` if they
        had it). An event not yet fanned out is left to the dispatcher."""
        now = _now()
        extra = self._settings().webhooks_max_attempts
        try:
            with self.engine.begin() as conn:
                row = (
                    conn.execute(
                        sa.select(events).where(
                            events.c.event_id == event_id, events.c.tenant == tenant
                        )
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    raise NotFoundError(f"no event {event_id!r} for you (see GET /v1/events)")
                live = sa.select(webhooks.c.webhook_id).where(webhooks.c.deleted_at.is_(None))
                queued = conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.event_id == event_id,
                        deliveries.c.status.in_(("failed", "delivered")),
                        deliveries.c.webhook_id.in_(live),
                    )
                    .values(
                        status="pending",
                        max_attempts=deliveries.c.attempts + extra,
                        next_attempt_at=now,
                        delivered_at=None,
                    )
                ).rowcount
                (out,) = self._with_deliveries(conn, [row])
        except SQLAlchemyError as exc:
            raise UnavailableError(DB_DOWN) from exc
        if not queued and not any(
            d["status"] in ("pending", "delivering") for d in out["deliveries"]
        ):
            raise NothingToRedeliverError(
                f"nothing to redeliver for {event_id}: "
                + (
                    "its endpoints were deleted"
                    if out["deliveries"]
                    else "none of your endpoints took its type when it happened"
                    if row["fanned_out"]
                    else "it is not fanned out yet; its deliveries start within a second"
                )
            )
        written()
        return out


# ---- the dispatcher -----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One attempt this dispatcher holds: what to send, where, with which secret."""

    delivery_id: str
    attempt: int
    max_attempts: int
    event_id: str
    url: str
    secret: str
    body: bytes
    created_at: datetime


class Sender(Protocol):
    """Sends one attempt: the status code of the answer, or raises (timeout, network)."""

    async def __aenter__(self) -> Sender: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...


class HttpSender:
    """The network: one ``aiohttp`` session with a connection pool per dispatcher, a time
    limit per attempt, no redirect followed, no proxy from the environment. (``aiohttp``
    rather than ``httpx``: with 32 attempts in flight it sent 14,600 requests a second on
    loopback where ``httpx`` sent 420.)"""

    def __init__(self, settings: Settings) -> None:
        self.timeout = aiohttp.ClientTimeout(total=settings.webhooks_timeout_seconds)
        self.limit = settings.webhooks_concurrency
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSender:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.limit),
            timeout=self.timeout,
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        assert self.session is not None
        async with self.session.post(
            url, data=body, headers=dict(headers), allow_redirects=False
        ) as resp:
            await resp.read()
            return resp.status


@dataclass(frozen=True)
class Result:
    """What one attempt got: the status code (``None``: no answer), latency, error."""

    claim: Claim
    status_code: int | None
    latency_ms: float
    error: str | None


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: ``base * 2**(attempt-1)``, at most ``cap``,
    drawn uniformly from its upper half (jitter: failed deliveries do not retry in step)."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(delay / 2, delay)


def payload(row: Mapping[Any, Any]) -> bytes:
    """The body of an event, as every attempt sends it (``type``, ``timestamp``, ``data``)."""
    return json_bytes(
        {"type": row["type"], "timestamp": iso(row["created_at"]), "data": row["data"]}
    )


def sign(secret: str, event_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (signed by ``standardwebhooks``)."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class Dispatcher:
    """Fans out and delivers the outbox (see the module's docstring).

    Parameters
    ----------
    engine : the service database.
    settings : returns the settings in force (timeouts, attempts, backoff, concurrency).
    name : this dispatcher's name in the attempt log (default: host, process, random).
    sender : makes the HTTP requests (tests pass a fake); default: :class:`HttpSender`.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Callable[[], Settings],
        name: str | None = None,
        sender: Callable[[Settings], Sender] | None = None,
    ) -> None:
        self.engine = engine
        self._settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        self._sender = sender or HttpSender
        self._pg = engine.dialect.name == "postgresql"
        self.sent = 0
        self.delivered = 0
        self._wake: asyncio.Event | None = None

    # -- database steps (synchronous; the loop runs them on a thread) --

    def fan_out(self, limit: int = 500) -> int:
        """Give new events their deliveries; the number of events fanned out."""
        now = _now()
        s = self._settings()
        q = (
            sa.select(events)
            .where(events.c.fanned_out.is_(False))
            .order_by(events.c.created_at)
            .limit(limit)
        )
        if self._pg:
            q = q.with_for_update(skip_locked=True)
        done = 0
        with self.engine.begin() as conn:
            rows = list(conn.execute(q).mappings())
            if not rows:
                return 0
            tenants = {r["tenant"] for r in rows}
            hooks = list(
                conn.execute(
                    sa.select(
                        webhooks.c.webhook_id,
                        webhooks.c.tenant,
                        webhooks.c.event_types,
                        webhooks.c.created_at,
                    ).where(webhooks.c.tenant.in_(tenants), webhooks.c.deleted_at.is_(None))
                ).mappings()
            )
            new: list[dict[str, Any]] = []
            for r in rows:
                # the conditional update makes one dispatcher the one that fans it out
                won = conn.execute(
                    events.update()
                    .where(events.c.event_id == r["event_id"], events.c.fanned_out.is_(False))
                    .values(fanned_out=True)
                ).rowcount
                if won != 1:
                    continue
                done += 1
                created = _utc(r["created_at"])
                for h in hooks:
                    if h["tenant"] != r["tenant"]:
                        continue
                    if r["webhook_id"] is not None:
                        if h["webhook_id"] != r["webhook_id"]:
                            continue
                    elif r["type"] not in h["event_types"] or _utc(h["created_at"]) > created:  # type: ignore[operator]
                        continue
                    new.append(
                        {
                            "delivery_id": "dlv_" + secrets.token_hex(12),
                            "event_id": r["event_id"],
                            "webhook_id": h["webhook_id"],
                            "tenant": r["tenant"],
                            "status": "pending",
                            "attempts": 0,
                            "max_attempts": s.webhooks_max_attempts,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
            if new:
                conn.execute(deliveries.insert(), new)
        return done

    def claim(self, limit: int) -> list[Claim]:
        """Take up to ``limit`` due deliveries (pending and due, or held under a lease that
        ran out), each for its next attempt."""
        if limit <= 0:
            return []
        s = self._settings()
        now = _now()
        lease = now + timedelta(seconds=2 * s.webhooks_timeout_seconds + 5)
        due = sa.or_(
            sa.and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now),
            sa.and_(deliveries.c.status == "delivering", deliveries.c.lease_until < now),
        )
        q = (
            sa.select(
                deliveries.c.delivery_id,
                deliveries.c.attempts,
                deliveries.c.max_attempts,
                deliveries.c.status,
                deliveries.c.event_id,
                deliveries.c.webhook_id,
            )
            .where(due)
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if self._pg:
            q = q.with_for_update(skip_locked=True)
        out: list[Claim] = []
        with self.engine.begin() as conn:
            rows = list(conn.execute(q).mappings())
            if not rows:
                return []
            ev_ids = list({r["event_id"] for r in rows})
            evs = {
                e["event_id"]: e
                for e in conn.execute(
                    sa.select(events).where(events.c.event_id.in_(ev_ids))
                ).mappings()
            }
            wh_ids = list({r["webhook_id"] for r in rows})
            hooks = {
                h["webhook_id"]: h
                for h in conn.execute(
                    sa.select(webhooks).where(webhooks.c.webhook_id.in_(wh_ids))
                ).mappings()
            }
            for r in rows:
                hook = hooks.get(r["webhook_id"])
                if hook is None or hook["deleted_at"] is not None:
                    conn.execute(
                        deliveries.update()
                        .where(deliveries.c.delivery_id == r["delivery_id"])
                        .values(status="failed", last_error="endpoint deleted", lease_until=None)
                    )
                    continue
                if r["status"] == "delivering":  # its dispatcher died during the attempt
                    conn.execute(
                        delivery_attempts.update()
                        .where(
                            delivery_attempts.c.delivery_id == r["delivery_id"],
                            delivery_attempts.c.attempt == r["attempts"],
                            delivery_attempts.c.outcome == "sending",
                        )
                        .values(outcome="abandoned", error="lease expired (dispatcher lost)")
                    )
                    if r["attempts"] >= r["max_attempts"]:
                        conn.execute(
                            deliveries.update()
                            .where(
                                deliveries.c.delivery_id == r["delivery_id"],
                                deliveries.c.attempts == r["attempts"],
                            )
                            .values(status="failed", lease_until=None, claimed_by=None)
                        )
                        continue
                attempt = r["attempts"] + 1
                won = conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.delivery_id == r["delivery_id"],
                        deliveries.c.attempts == r["attempts"],
                        deliveries.c.status == r["status"],
                    )
                    .values(
                        status="delivering",
                        attempts=attempt,
                        lease_until=lease,
                        claimed_by=self.name,
                    )
                ).rowcount
                if won != 1:  # another dispatcher took it first
                    continue
                conn.execute(
                    delivery_attempts.insert().values(
                        delivery_id=r["delivery_id"],
                        attempt=attempt,
                        event_id=r["event_id"],
                        webhook_id=r["webhook_id"],
                        dispatcher=self.name,
                        started_at=now,
                        outcome="sending",
                    )
                )
                ev = evs[r["event_id"]]
                out.append(
                    Claim(
                        delivery_id=r["delivery_id"],
                        attempt=attempt,
                        max_attempts=r["max_attempts"],
                        event_id=r["event_id"],
                        url=hook["url"],
                        secret=hook["secret"],
                        body=payload(ev),
                        created_at=_utc(ev["created_at"]),  # type: ignore[arg-type]
                    )
                )
        return out

    def finish(
        self,
        claim: Claim,
        status_code: int | None,
        latency_ms: float,
        error: str | None,
    ) -> str:
        """Record an attempt's result and move its delivery on; the delivery's new status."""
        with self.engine.begin() as conn:
            return self._finish(conn, Result(claim, status_code, latency_ms, error))

    def _finish(self, conn: sa.Connection, r: Result) -> str:
        s = self._settings()
        now = _now()
        claim, status_code = r.claim, r.status_code
        ok = status_code is not None and 200 <= status_code < 300
        if ok:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now}
        elif claim.attempt >= claim.max_attempts:
            values = {"status": "failed"}
        else:
            wait = backoff(
                claim.attempt, s.webhooks_retry_base_seconds, s.webhooks_retry_max_seconds
            )
            values = {"status": "pending", "next_attempt_at": now + timedelta(seconds=wait)}
        error = None if ok else (r.error or f"HTTP {status_code}")[:300]
        values.update(lease_until=None, claimed_by=None, last_status=status_code, last_error=error)
        conn.execute(
            delivery_attempts.update()
            .where(
                delivery_attempts.c.delivery_id == claim.delivery_id,
                delivery_attempts.c.attempt == claim.attempt,
            )
            .values(
                outcome="delivered" if ok else "failed",
                status_code=status_code,
                latency_ms=round(r.latency_ms, 3),
                error=error,
            )
        )
        # only while the lease is still this dispatcher's (else another has taken it on)
        conn.execute(
            deliveries.update()
            .where(
                deliveries.c.delivery_id == claim.delivery_id,
                deliveries.c.attempts == claim.attempt,
                deliveries.c.claimed_by == self.name,
            )
            .values(**values)
        )
        return str(values["status"])

    def step(self, results: Sequence[Result], capacity: int) -> list[Claim]:
        """One round of database work, on one thread: record ``results`` (one transaction),
        fan out new events, claim up to ``capacity`` deliveries. A dispatcher's writes never
        wait on each other (SQLite has one writer at a time), and each is a batch."""
        if results:
            with self.engine.begin() as conn:
                for r in results:
                    if self._finish(conn, r) == "delivered":
                        self.delivered += 1
        self.fan_out()
        return self.claim(capacity)

    # -- sending --

    async def send(self, client: Sender, claim: Claim) -> Result:
        """One attempt: POST the signed body; its result (recorded by the next :meth:`step`)."""
        at = _now()
        headers = sign(claim.secret, claim.event_id, at, claim.body)
        start = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            status = await client.post(claim.url, claim.body, headers)
            if 300 <= status < 400:
                error = f"HTTP {status}: redirects are not followed"
        except TimeoutError:
            error = "timed out"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        self.sent += 1
        return Result(claim, status, (time.perf_counter() - start) * 1000, error)

    def client(self) -> Sender:
        return self._sender(self._settings())

    def wake(self) -> None:
        """Look for work now (thread-safe; set by :func:`credit.events.written`)."""
        loop, ev = getattr(self, "_loop", None), self._wake
        if loop is not None and ev is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(ev.set)

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> None:
        """Deliver until ``stop`` is set (or, with ``until_idle``, until nothing is pending
        or in flight). New events written by this process wake it; otherwise it polls.

        The attempts go out concurrently (up to ``webhooks_concurrency``); their results are
        recorded in batches by :meth:`step`, which also claims the next deliveries, so a slow
        endpoint holds one slot, not the dispatcher."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        remove = on_written(self.wake)
        inflight: set[asyncio.Task[Result]] = set()
        done: list[Result] = []

        def collect(task: asyncio.Task[Result]) -> None:
            inflight.discard(task)
            if not task.cancelled() and task.exception() is None:
                done.append(task.result())
            self._wake.set()  # type: ignore[union-attr]

        try:
            async with self.client() as client:
                while True:
                    s = self._settings()
                    stopping = stop is not None and stop.is_set()
                    self._wake.clear()
                    results, done[:] = list(done), []
                    free = 0 if stopping else s.webhooks_concurrency - len(inflight)
                    try:
                        claims = await asyncio.to_thread(self.step, results, free)
                    except SQLAlchemyError as exc:  # unrecorded: their leases run out
                        log.warning("webhook dispatcher: database error %s", type(exc).__name__)
                        claims = []
                    if stopping:
                        if not inflight:
                            return
                        # let the attempts under way finish (bounded by their timeout)
                        await asyncio.wait(inflight, timeout=s.webhooks_timeout_seconds + 1)
                        if inflight:
                            return
                        continue
                    for c in claims:
                        task = asyncio.create_task(self.send(client, c))
                        inflight.add(task)
                        task.add_done_callback(collect)
                    if claims and len(inflight) < s.webhooks_concurrency:
                        continue  # more may be due right away
                    if until_idle and not inflight and not done and not self._pending():
                        return
                    if done:
                        continue
                    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
                    if stop is not None:
                        waiters.append(asyncio.ensure_future(stop.wait()))
                    await asyncio.wait(
                        waiters, timeout=s.webhooks_poll_seconds, return_when="FIRST_COMPLETED"
                    )
                    for w in waiters:
                        w.cancel()
        finally:
            remove()

    def _pending(self) -> bool:
        with self.engine.connect() as conn:
            ev = conn.execute(
                sa.select(sa.func.count()).select_from(events).where(events.c.fanned_out.is_(False))
            ).scalar_one()
            dl = conn.execute(
                sa.select(sa.func.count())
                .select_from(deliveries)
                .where(deliveries.c.status.in_(("pending", "delivering")))
            ).scalar_one()
        return bool(ev or dl)


async def run_in_service(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """The dispatcher as a task of ``credit serve``: restarted after an unexpected error
    (logged), so one bad moment of the database does not end delivery for the process."""
    while not stop.is_set():
        try:
            await dispatcher.run(stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("webhook dispatcher failed; restarting in 5 s", exc_info=exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)
