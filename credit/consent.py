"""Consents: a seller lets one tenant use some providers' records of its firm, for a purpose.

A consent names the firm, the **grantee** (the tenant that may use the data: a lender, or a
platform pricing offers), the **purposes** (:data:`PURPOSES`), the **sources** (the providers
whose records may be used; by default every provider holding records of the firm when the
consent is granted), when it was granted, when it expires (at most :data:`MAX_MONTHS` months
later) and, when it was, when and by whom it was revoked. It also keeps the **evidence** of how
it was given:

* ``seller_confirmation``: the seller approved on the signed consent page; the link id, the
  time and the address the approval came from are kept;
* ``provider_attestation``: a provider attests that the seller agreed on its own site; the
  tenant and the API key that made the attestation are kept. A provider may attest only for
  its own records (the consent's sources are that provider alone).

A request (``POST /v1/firms/{id}/consent-requests``) is a row in state ``requested``; the
seller approves (``active``) or declines (``declined``) it on the page. An active consent ends
when it is revoked (by the seller, the grantee or the provider that attested it, or an
operator) or when it expires; both take effect on the next request. Rows are never deleted:
decisions made under a consent name it.

The one check of who may read a firm's data (:meth:`credit.service.CreditService.authorize`)
reads :meth:`ConsentStore.active`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

from credit.events import emit, event_row, written
from credit.fastpath.dbapi import fast_query

Purpose = Literal["credit_assessment", "monitoring"]
PURPOSES: tuple[Purpose, ...] = ("credit_assessment", "monitoring")
PURPOSE_WORDS = {
    "credit_assessment": "assess your credit and offer you financing",
    "monitoring": "keep watching your business while you have financing with them",
}
#: The longest a consent may run.
MAX_MONTHS = 12
State = Literal["requested", "active", "declined", "revoked", "expired"]

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_meta = sa.MetaData()
consents = sa.Table(
    "consents",
    _meta,
    sa.Column("consent_id", sa.String(40), primary_key=True),
    sa.Column("firm_id", sa.String(64), nullable=False),
    sa.Column("grantee", sa.String(64), nullable=False),
    sa.Column("purposes", _JSON, nullable=False),
    sa.Column("sources", _JSON, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("requested_key_id", sa.String(32), nullable=True),
    sa.Column("requested_at", _TS, nullable=False),
    sa.Column("months", sa.Integer, nullable=False),
    sa.Column("link_id", sa.String(32), nullable=True),
    sa.Column("decided_at", _TS, nullable=True),
    sa.Column("granted_at", _TS, nullable=True),
    sa.Column("expires_at", _TS, nullable=True),
    sa.Column("revoked_at", _TS, nullable=True),
    sa.Column("revoked_by", sa.String(80), nullable=True),
    sa.Column("evidence", _JSON, nullable=True),
)


class ConsentStateError(ValueError):
    """The consent is not in a state that allows what was asked (e.g. approving it twice)."""


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def new_consent_id() -> str:
    return "cns_" + secrets.token_hex(8)


@dataclass(frozen=True)
class Consent:
    """One consent (or request for one), as stored."""

    consent_id: str
    firm_id: str
    grantee: str
    purposes: tuple[str, ...]
    sources: tuple[str, ...] | None
    status: str
    requested_by: str
    requested_at: datetime
    months: int
    link_id: str | None = None
    decided_at: datetime | None = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    evidence: dict[str, Any] | None = None
    requested_key_id: str | None = None

    def state(self, now: datetime | None = None) -> State:
        """``requested``, ``active``, ``declined``, ``revoked`` or ``expired`` at ``now``."""
        if self.status == "active":
            if self.revoked_at is not None:
                return "revoked"
            if self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at:
                return "expired"
            return "active"
        return self.status  # type: ignore[return-value]

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        def ts(v: datetime | None) -> str | None:
            return None if v is None else v.astimezone(UTC).isoformat().replace("+00:00", "Z")

        return {
            "consent_id": self.consent_id,
            "firm_id": self.firm_id,
            "grantee": self.grantee,
            "purposes": list(self.purposes),
            "sources": None if self.sources is None else list(self.sources),
            "state": self.state(now),
            "requested_by": self.requested_by,
            "requested_at": ts(self.requested_at),
            "months": self.months,
            "granted_at": ts(self.granted_at),
            "expires_at": ts(self.expires_at),
            "decided_at": ts(self.decided_at),
            "revoked_at": ts(self.revoked_at),
            "revoked_by": self.revoked_by,
            "evidence": self.evidence,
        }


def _consent(row: Any) -> Consent:
    m = row._mapping if hasattr(row, "_mapping") else row
    return Consent(
        consent_id=m["consent_id"],
        firm_id=m["firm_id"],
        grantee=m["grantee"],
        purposes=tuple(m["purposes"] or ()),
        sources=None if m["sources"] is None else tuple(m["sources"]),
        status=m["status"],
        requested_by=m["requested_by"],
        requested_at=_utc(m["requested_at"]),  # type: ignore[arg-type]
        months=int(m["months"]),
        link_id=m.get("link_id"),
        decided_at=_utc(m.get("decided_at")),
        granted_at=_utc(m.get("granted_at")),
        expires_at=_utc(m.get("expires_at")),
        revoked_at=_utc(m.get("revoked_at")),
        revoked_by=m.get("revoked_by"),
        evidence=m.get("evidence"),
        requested_key_id=m.get("requested_key_id"),
    )


def check_terms(purposes: Sequence[str], months: int) -> tuple[str, ...]:
    """The purposes, de-duplicated in :data:`PURPOSES` order, or ``ValueError`` saying why."""
    unknown = [p for p in purposes if p not in PURPOSES]
    if unknown or not purposes:
        raise ValueError(
            f"purposes must be one or more of {', '.join(PURPOSES)}"
            + (f" (not {', '.join(map(repr, unknown))})" if unknown else "")
        )
    if not 1 <= int(months) <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}")
    return tuple(p for p in PURPOSES if p in purposes)


_fs = sa.table(
    "firm_sources",
    sa.column("firm_id", sa.String),
    sa.column("provider", sa.String),
    sa.column("last_ingested_at", sa.DateTime(timezone=True)),
)

# The per-request read: a tenant's active consents for one firm, each with the firm's
# providers and when they last sent records (one statement, credit.fastpath: the score needs
# both, and a pooled connection costs more than the read).
_ACTIVE = (
    sa.select(
        consents.c.consent_id,
        # the JSON lists as text, read with orjson (the JSON type's reader costs more)
        sa.type_coerce(consents.c.purposes, sa.Text).label("purposes"),
        sa.type_coerce(consents.c.sources, sa.Text).label("sources"),
        _fs.c.provider,
        _fs.c.last_ingested_at,
    )
    .select_from(consents.outerjoin(_fs, _fs.c.firm_id == consents.c.firm_id))
    .where(
        consents.c.grantee == sa.bindparam("grantee"),
        consents.c.firm_id == sa.bindparam("firm_id"),
        consents.c.status == "active",
        consents.c.revoked_at.is_(None),
        consents.c.expires_at > sa.bindparam("now"),
    )
    .order_by(consents.c.granted_at.desc(), consents.c.consent_id)
)


def _listed(value: Any) -> list[str]:
    """A JSON list column as read raw: text on SQLite, already a list from PostgreSQL's
    driver (JSONB)."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return list(orjson.loads(value) or [])
    return list(value)


@dataclass(frozen=True, slots=True)
class Grant:
    """What an active consent lets its grantee do now: its id and the providers whose records
    may be used (``None``: every record, for the operator only). ``providers``, when read with
    it: the firm's providers and when each last sent records."""

    consent_id: str | None
    sources: frozenset[str] | None
    providers: dict[str, datetime] | None = None


class ConsentStore:
    """The consents in the service database (table ``consents``, migration 0005).

    Database errors propagate (:class:`sqlalchemy.exc.SQLAlchemyError`): the use case decides
    what an unavailable database means.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- reads ---------------------------------------------------------------------------

    def get(self, consent_id: str) -> Consent | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(consents).where(consents.c.consent_id == consent_id)
            ).first()
        return None if row is None else _consent(row)

    def active(
        self, grantee: str, firm_id: str, purpose: str, now: datetime | None = None
    ) -> Grant | None:
        """The grantee's active consent for the firm covering ``purpose`` (the latest granted
        when there are several), or ``None``."""
        now = now or datetime.now(UTC)
        q = fast_query(self.engine, "consent_active", _ACTIVE)
        best: tuple[str, frozenset[str]] | None = None
        providers: dict[str, datetime] = {}
        for consent_id, purposes, sources, provider, last in q.all(
            {"grantee": grantee, "firm_id": firm_id, "now": now}
        ):
            if provider is not None:
                providers[provider] = _utc(last)  # type: ignore[assignment]
            # rows come latest granted first: the first covering the purpose wins
            if best is None and purpose in _listed(purposes):
                best = (consent_id, frozenset(_listed(sources)))
        return None if best is None else Grant(best[0], best[1], providers)

    def active_many(
        self, grantee: str, firm_ids: Iterable[str], purpose: str, now: datetime | None = None
    ) -> dict[str, Grant]:
        """:meth:`active` for many firms in one query per 500 firms."""
        now = now or datetime.now(UTC)
        ids = sorted(set(firm_ids))
        out: dict[str, tuple[datetime, Grant]] = {}
        c = consents.c
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    sa.select(c.consent_id, c.firm_id, c.purposes, c.sources, c.granted_at).where(
                        c.grantee == grantee,
                        c.firm_id.in_(ids[i : i + 500]),
                        c.status == "active",
                        c.revoked_at.is_(None),
                        c.expires_at > now,
                    )
                ).all()
                for consent_id, firm_id, purposes, sources, granted_at in rows:
                    if purpose not in (purposes or ()):
                        continue
                    when = _utc(granted_at) or now
                    if firm_id not in out or when > out[firm_id][0]:
                        out[firm_id] = (when, Grant(consent_id, frozenset(sources or ())))
        return {k: v[1] for k, v in out.items()}

    def list(
        self,
        *,
        tenant: str | None = None,
        firm_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
    ) -> list[Consent]:
        """Consents, newest first: those ``tenant`` is party to (grantee, requester or the
        attesting provider), of one firm, in one state; all of them for ``tenant=None``."""
        c = consents.c
        q = sa.select(consents).order_by(c.requested_at.desc(), c.consent_id).limit(limit * 4)
        if tenant is not None:
            q = q.where(sa.or_(c.grantee == tenant, c.requested_by == tenant))
        if firm_id is not None:
            q = q.where(c.firm_id == firm_id)
        with self.engine.connect() as conn:
            found = [_consent(r) for r in conn.execute(q)]
        now = datetime.now(UTC)
        if state is not None:
            found = [x for x in found if x.state(now) == state]
        return found[:limit]

    # ---- writes --------------------------------------------------------------------------

    def request(
        self,
        firm_id: str,
        grantee: str,
        purposes: Sequence[str],
        months: int,
        *,
        requested_by: str,
        key_id: str | None,
        sources: Sequence[str] | None = None,
        link_id: str | None = None,
        now: datetime | None = None,
    ) -> Consent:
        """Record a request for consent (state ``requested``)."""
        purposes = check_terms(purposes, months)
        consent_id = new_consent_id()
        row: dict[str, Any] = {
            "consent_id": consent_id,
            "firm_id": firm_id,
            "grantee": grantee,
            "purposes": list(purposes),
            "sources": None if sources is None else sorted(set(sources)),
            "status": "requested",
            "requested_by": requested_by,
            "requested_key_id": key_id,
            "requested_at": now or datetime.now(UTC),
            "months": int(months),
            "link_id": link_id,
        }
        with self.engine.begin() as conn:
            conn.execute(consents.insert().values(**row))
        found = self.get(consent_id)
        assert found is not None
        return found

    def decide(
        self,
        consent_id: str,
        approve: bool,
        *,
        firm_providers: Sequence[str],
        evidence: dict[str, Any],
        now: datetime | None = None,
    ) -> Consent:
        """Approve or decline a request; an approval runs ``months`` from now and, when the
        request named no sources, covers ``firm_providers`` (the firm's providers now)."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(consents).where(consents.c.consent_id == consent_id).with_for_update()
            ).first()
            if row is None:
                raise KeyError(consent_id)
            found = _consent(row)
            if found.status != "requested":
                raise ConsentStateError(f"this request was already {found.state(now)}")
            values: dict[str, Any] = {"decided_at": now, "evidence": evidence}
            if approve:
                sources = found.sources if found.sources is not None else firm_providers
                values.update(
                    status="active",
                    granted_at=now,
                    expires_at=now + relativedelta(months=found.months),
                    sources=sorted(set(sources)),
                )
            else:
                values["status"] = "declined"
            conn.execute(
                consents.update().where(consents.c.consent_id == consent_id).values(**values)
            )
            # the outbox: the grantee hears of the answer, in the same transaction
            kind = "consent.granted" if approve else "consent.declined"
            emit(conn, [consent_event(kind, found, now, {**values, "state": values["status"]})])
        written()
        out = self.get(consent_id)
        assert out is not None
        return out

    def attest(
        self,
        firm_id: str,
        grantee: str,
        purposes: Sequence[str],
        months: int,
        *,
        provider: str,
        key_id: str | None,
        statement: str,
        now: datetime | None = None,
    ) -> Consent:
        """An active consent on a provider's word: the provider attests that the seller
        agreed (on the provider's own site) to share the provider's records with ``grantee``."""
        now = now or datetime.now(UTC)
        purposes = check_terms(purposes, months)
        consent_id = new_consent_id()
        row = {
            "consent_id": consent_id,
            "firm_id": firm_id,
            "grantee": grantee,
            "purposes": list(purposes),
            "sources": [provider],
            "status": "active",
            "requested_by": provider,
            "requested_key_id": key_id,
            "requested_at": now,
            "months": int(months),
            "decided_at": now,
            "granted_at": now,
            "expires_at": now + relativedelta(months=int(months)),
            "evidence": {
                "kind": "provider_attestation",
                "provider": provider,
                "key_id": key_id,
                "statement": statement,
                "at": now.isoformat(),
            },
        }
        with self.engine.begin() as conn:
            conn.execute(consents.insert().values(**row))
            emit(conn, [consent_event("consent.granted", _consent(row), now, {"state": "active"})])
        written()
        out = self.get(consent_id)
        assert out is not None
        return out

    def revoke(self, consent_id: str, by: str, now: datetime | None = None) -> Consent | None:
        """Revoke now (idempotent: the first revocation is kept); ``None`` if unknown. A
        request not yet decided is withdrawn (state ``revoked``) the same way."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            changed = conn.execute(
                consents.update()
                .where(consents.c.consent_id == consent_id, consents.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=by[:80])
            ).rowcount
            conn.execute(
                consents.update()
                .where(consents.c.consent_id == consent_id, consents.c.status == "requested")
                .values(status="revoked")
            )
            if changed:  # the first revocation only (idempotent), with its event
                row = conn.execute(
                    sa.select(consents).where(consents.c.consent_id == consent_id)
                ).first()
                if row is not None:
                    found = _consent(row)
                    extra = {"state": "revoked", "revoked_by": by[:80]}
                    emit(conn, [consent_event("consent.revoked", found, now, extra)])
        if changed:
            written()
        return self.get(consent_id)


def consent_event(
    kind: str, consent: Consent, at: datetime, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """A ``consent.*`` event for the consent's grantee (``extra``: the state it moved to and,
    for a grant, its expiry)."""
    expires = extra.get("expires_at", consent.expires_at)
    data = {
        "consent_id": consent.consent_id,
        "firm_id": consent.firm_id,
        "purposes": list(consent.purposes),
        "sources": sorted(extra.get("sources") or consent.sources or []),
        "state": extra.get("state"),
        "expires_at": None if expires is None else _utc(expires).isoformat(),  # type: ignore[union-attr]
        "revoked_by": extra.get("revoked_by"),
        "at": at.isoformat(),
    }
    return event_row(consent.grantee, kind, data, firm_id=consent.firm_id, now=at)
