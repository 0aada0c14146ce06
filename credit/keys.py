"""API keys: created once, shown once, stored only as a hash.

A key reads ``tck_<key_id>_<secret>``: the public ``key_id`` finds the row, the sha256 of the
whole key is compared in constant time with the stored hash. The secret has 256 bits of entropy,
so a fast hash is enough (no password-stretching is needed for random keys).

Examples
--------
>>> key_id, secret = parse_key("tck_0123456789ab_" + "s3cr-et_x" * 4 + "abcdefg")
>>> key_id, len(secret)
('0123456789ab', 43)
>>> parse_key("not-a-key") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import Engine

from credit.fastpath.dbapi import fast_query
from credit.records import ID_HELP, ID_PATTERN

Role = Literal["lender", "platform", "admin", "reviewer"]
#: ``reviewer``: a person at a lender who decides referred applications (the key must name
#: its holder; every review action records it).
ROLES: tuple[Role, ...] = ("lender", "platform", "admin", "reviewer")
MAX_HOLDER = 80
KEY_PREFIX = "tck"
_KEY_RE = re.compile(r"^tck_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
_TENANT_RE = re.compile(ID_PATTERN)

_meta = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    _meta,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("note", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("holder", sa.String(80)),  # the person the key belongs to (migration 0006)
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (never the secret)."""

    key_id: str
    tenant: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    note: str | None = None
    holder: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(plaintext: str) -> str:
    """The sha256 hex digest stored for a key."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_key(plaintext: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else ``None``."""
    m = _KEY_RE.match(plaintext)
    if m is None:
        return None
    return m.group(1), m.group(2)


def _utc(dt: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; every timestamp here is written in UTC.
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _row_to_key(row: sa.Row) -> ApiKey:
    created = _utc(row.created_at)
    if created is None:  # the column is NOT NULL
        raise ValueError(f"api key {row.key_id} has no created_at")
    return ApiKey(
        key_id=row.key_id,
        tenant=row.tenant,
        role=row.role,
        created_at=created,
        revoked_at=_utc(row.revoked_at),
        note=row.note,
        holder=row.holder,
    )


def create_key(
    engine: Engine, tenant: str, role: str, note: str | None = None, holder: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key for ``tenant`` with ``role``; return it and its plaintext (shown once).
    ``holder`` names the person the key belongs to (required for a ``reviewer``).

    Raises
    ------
    ValueError
        When the tenant name, the role or the holder is invalid.
    """
    if holder is not None:
        holder = " ".join(holder.split())
        if not holder or len(holder) > MAX_HOLDER or not holder.isprintable():
            raise ValueError(f"holder must be a name of 1 to {MAX_HOLDER} printable characters")
    if role == "reviewer" and not holder:
        raise ValueError("a reviewer key must name its holder (--holder 'Full Name')")
    if not _TENANT_RE.match(tenant or ""):
        raise ValueError(f"invalid tenant {tenant!r}: {ID_HELP}")
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}; expected one of {', '.join(ROLES)}")
    if note is not None and len(note) > 200:
        raise ValueError("note must be at most 200 characters")
    key_id = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_id=key_id,
                tenant=tenant,
                role=role,
                key_hash=hash_key(plaintext),
                note=note,
                created_at=now,
                holder=holder,
            )
        )
    return ApiKey(key_id, tenant, role, now, None, note, holder), plaintext


def list_keys(engine: Engine, tenant: str | None = None) -> list[ApiKey]:
    """Every key (active and revoked), oldest first, optionally for one tenant."""
    q = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if tenant is not None:
        q = q.where(api_keys.c.tenant == tenant)
    with engine.connect() as conn:
        return [_row_to_key(r) for r in conn.execute(q)]


def revoke_key(engine: Engine, key_id: str) -> ApiKey:
    """Revoke ``key_id`` now (idempotent); raise ``KeyError`` when it does not exist."""
    with engine.begin() as conn:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise KeyError(f"no API key with id {key_id!r} (see `credit keys list`)")
    return _row_to_key(row)


_DUMMY_HASH = hash_key("tck_000000000000_" + "x" * 43)


# Read once per request through credit.fastpath.dbapi.FastQuery (SQLAlchemy's values).
_KEY_BY_ID = sa.select(
    api_keys.c.key_id,
    api_keys.c.tenant,
    api_keys.c.role,
    api_keys.c.key_hash,
    api_keys.c.revoked_at.is_not(None).label("revoked"),
    api_keys.c.holder,
).where(api_keys.c.key_id == sa.bindparam("key_id"))


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """An active key that matched: who is calling."""

    key_id: str
    tenant: str
    role: Role
    holder: str | None = None


def verify_key(engine: Engine, plaintext: str | None) -> VerifiedKey | None:
    """The active key matching ``plaintext``, else ``None`` (unknown, wrong or revoked).

    The stored hash is compared in constant time; a lookup miss still does one comparison so
    timing says little about which part was wrong. Revocation takes effect at the next call.
    """
    if not plaintext or len(plaintext) > 100:
        return None
    parsed = parse_key(plaintext)
    digest = hash_key(plaintext)
    row = None
    if parsed is not None:  # one read per request: the lean path (FastQuery)
        row = fast_query(engine, "key_by_id", _KEY_BY_ID).first({"key_id": parsed[0]})
    ok = hmac.compare_digest(digest, row[3] if row is not None else _DUMMY_HASH)
    if row is None or not ok or row[4]:
        return None
    return VerifiedKey(row[0], row[1], row[2], row[5])
