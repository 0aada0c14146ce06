"""Signed, expiring seller links: a seller opens their page without ever seeing an API key.

A platform asks for a link (``POST /v1/firms/{firm_id}/seller-link``); the token in it names
the firm, the platform (tenant) whose policy prices the offers, and when it expires. It is
signed with :mod:`itsdangerous` (HMAC-SHA1 over a salted, derived key) using the server's
link secret: ``TRADECREDIT_LINK_SECRET`` or, by default, a random secret kept in the data
directory (created on first use, readable by the owner only), so every worker of one
installation signs and verifies alike.

The token also carries the link's id, and every link is recorded in the service database
(:class:`LinkStore`, table ``seller_links``) with the API key that asked for it. A signature
alone does not open the page: the link must be recorded, not revoked, not expired, and its key
still active (:meth:`LinkStore.check`), so a link dies with its key and can be revoked on its
own. An operator's link (``credit offers --seller-link``) has no key: it dies when revoked or
expired.

Examples
--------
>>> link = sign_seller_link("F1", "acme", "s" * 32, ttl_seconds=900, now=1_000_000)
>>> verify_seller_link(link.token, "F1", "s" * 32, now=1_000_899).tenant
'acme'
>>> verify_seller_link(link.token, "F1", "s" * 32, now=1_000_900)
Traceback (most recent call last):
...
credit.links.LinkError: this link has expired; ask the platform for a new one
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine

from credit.keys import api_keys
from credit.settings import Settings

SALT = "tradecredit.seller-link.v1"
MIN_SECRET_CHARS = 32
#: Longer tokens are refused before any work is done on them.
MAX_TOKEN_CHARS = 1024
SECRET_FILE = "link_secret"
#: A link's id: ``lnk_`` and 16 hex digits (64 random bits).
LINK_ID = re.compile(r"^lnk_[0-9a-f]{16}$")


class LinkError(Exception):
    """A seller link that must not open the page.

    Attributes
    ----------
    reason : ``expired`` (a genuine link past its time), ``revoked`` (revoked on its own, or
        the key that made it was revoked) or ``invalid`` (forged, altered, for another firm,
        malformed, or never recorded).
    """

    def __init__(self, reason: Literal["expired", "invalid", "revoked"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SellerLink:
    """A signed link token and what it grants."""

    token: str
    firm_id: str
    tenant: str
    expires_at: datetime
    link_id: str


def link_secret(settings: Settings) -> str:
    """The secret that signs seller links.

    ``settings.link_secret`` when set (at least 32 characters), else the secret kept in
    ``<data_dir>/link_secret``, created with random content on first use.

    Raises
    ------
    ValueError
        The configured secret is too short.
    """
    if settings.link_secret is not None:
        value = settings.link_secret.get_secret_value()
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(
                f"TRADECREDIT_LINK_SECRET must be at least {MIN_SECRET_CHARS} characters; "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value
    path = settings.ensure_data_dir() / SECRET_FILE
    return _file_secret(path)


def _file_secret(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="ascii").strip()
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(
                f"the link secret in {path} is shorter than {MIN_SECRET_CHARS} characters; "
                "delete the file to have a new one made (open links stop working)"
            ) from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
    return value


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def sign_seller_link(
    firm_id: str,
    tenant: str,
    secret: str,
    ttl_seconds: int = 900,
    now: float | None = None,
    link_id: str | None = None,
) -> SellerLink:
    """A token that opens ``firm_id``'s seller page for ``ttl_seconds`` (once recorded).

    Parameters
    ----------
    firm_id : the firm whose page the link opens (and no other).
    tenant : the platform that asked for it; its policy prices the offers on the page.
    secret : the signing secret (:func:`link_secret`).
    ttl_seconds : lifetime (default 15 minutes).
    now : the current Unix time (for tests).
    link_id : the link's id (default: a new random one, :func:`new_link_id`).
    """
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    link_id = link_id or new_link_id()
    expires = int((time.time() if now is None else now) + ttl_seconds)
    token = _serializer(secret).dumps({"f": firm_id, "t": tenant, "e": expires, "l": link_id})
    return SellerLink(
        token=token,
        firm_id=firm_id,
        tenant=tenant,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
        link_id=link_id,
    )


def new_link_id() -> str:
    """A new random link id (``lnk_`` and 16 hex digits)."""
    return f"lnk_{secrets.token_hex(8)}"


def verify_seller_link(
    token: str | None, firm_id: str, secret: str, now: float | None = None
) -> SellerLink:
    """Check a token for ``firm_id``'s page and return what it grants.

    Raises
    ------
    LinkError
        ``invalid`` when the token is missing, malformed, forged or altered, or made for
        another firm; ``expired`` when it is genuine but past its time.
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise LinkError("invalid", "this link is not valid; ask the platform for a new one")
    try:
        payload = _serializer(secret).loads(token)
    except BadSignature:
        raise LinkError(
            "invalid", "this link is not valid; ask the platform for a new one"
        ) from None
    ok = (
        isinstance(payload, dict)
        and isinstance(payload.get("f"), str)
        and isinstance(payload.get("t"), str)
        and isinstance(payload.get("e"), int)
        and isinstance(payload.get("l"), str)
    )
    if not ok or payload["f"] != firm_id:
        raise LinkError("invalid", "this link is not valid for this page")
    t = time.time() if now is None else now
    if t >= payload["e"]:
        raise LinkError("expired", "this link has expired; ask the platform for a new one")
    return SellerLink(
        token=token,
        firm_id=payload["f"],
        tenant=payload["t"],
        expires_at=datetime.fromtimestamp(payload["e"], tz=UTC),
        link_id=payload["l"],
    )


# --------------------------------------------------------------------------------------------
# Issued links (the service database)
# --------------------------------------------------------------------------------------------

_meta = sa.MetaData()
seller_links = sa.Table(
    "seller_links",
    _meta,
    sa.Column("link_id", sa.String(32), primary_key=True),
    sa.Column("firm_id", sa.String(64), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32)),  # NULL: an operator's link (command line)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

_WITHDRAWN = "this link has been withdrawn; ask the platform for a new one"

# One read per page view: the link and the state of the key that made it.
_CHECK = (
    sa.select(
        seller_links.c.firm_id,
        seller_links.c.tenant,
        seller_links.c.key_id,
        seller_links.c.expires_at,
        seller_links.c.revoked_at,
        api_keys.c.key_id.label("key_found"),
        api_keys.c.revoked_at.label("key_revoked_at"),
    )
    .select_from(seller_links.outerjoin(api_keys, api_keys.c.key_id == seller_links.c.key_id))
    .where(seller_links.c.link_id == sa.bindparam("link_id"))
)


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """An issued seller link as recorded (never its token)."""

    link_id: str
    firm_id: str
    tenant: str
    key_id: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


def _utc(dt: datetime) -> datetime:
    # SQLite gives back naive datetimes; every timestamp here is written in UTC.
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _record(row: sa.Row) -> LinkRecord:
    return LinkRecord(
        link_id=row.link_id,
        firm_id=row.firm_id,
        tenant=row.tenant,
        key_id=row.key_id,
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at) if row.revoked_at is not None else None,
    )


class LinkStore:
    """The seller links issued, in the service database (``seller_links``, migration 0004).

    Database errors (:class:`sqlalchemy.exc.SQLAlchemyError`) propagate: the caller decides
    what an unavailable database means.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, link: SellerLink, key_id: str | None, now: datetime | None = None) -> None:
        """Record a link just signed, made with API key ``key_id`` (``None``: an operator)."""
        with self.engine.begin() as conn:
            conn.execute(
                seller_links.insert().values(
                    link_id=link.link_id,
                    firm_id=link.firm_id,
                    tenant=link.tenant,
                    key_id=key_id,
                    created_at=now or datetime.now(UTC),
                    expires_at=link.expires_at,
                )
            )

    def get(self, link_id: str) -> LinkRecord | None:
        """The recorded link ``link_id``, or ``None``."""
        if not LINK_ID.match(link_id or ""):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(seller_links).where(seller_links.c.link_id == link_id)
            ).first()
        return None if row is None else _record(row)

    def revoke(self, link_id: str) -> LinkRecord | None:
        """Revoke ``link_id`` now (idempotent: a revoked link keeps its first revocation time);
        ``None`` when there is no such link."""
        if not LINK_ID.match(link_id or ""):
            return None
        with self.engine.begin() as conn:
            conn.execute(
                seller_links.update()
                .where(seller_links.c.link_id == link_id, seller_links.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = conn.execute(
                sa.select(seller_links).where(seller_links.c.link_id == link_id)
            ).first()
        return None if row is None else _record(row)

    def check(self, link: SellerLink, now: datetime | None = None) -> None:
        """Raise :class:`LinkError` unless ``link`` (verified) may open its page now.

        ``invalid`` when it was never recorded (or not as the token says); ``revoked`` when
        it was revoked, or the key that made it was revoked or is gone; ``expired`` past its
        recorded time.
        """
        with self.engine.connect() as conn:
            row = conn.execute(_CHECK, {"link_id": link.link_id}).first()
        if row is None or (row.firm_id, row.tenant) != (link.firm_id, link.tenant):
            raise LinkError("invalid", "this link is not valid; ask the platform for a new one")
        if row.revoked_at is not None:
            raise LinkError("revoked", _WITHDRAWN)
        if row.key_id is not None and (row.key_found is None or row.key_revoked_at is not None):
            raise LinkError("revoked", _WITHDRAWN)
        if (now or datetime.now(UTC)) >= _utc(row.expires_at):
            raise LinkError("expired", "this link has expired; ask the platform for a new one")
