"""Signed, expiring seller links: a seller opens their page without ever seeing an API key.

A platform asks for a link (``POST /v1/firms/{firm_id}/seller-link``); the token in it names
the firm, the platform (tenant) whose policy prices the offers, and when it expires. It is
signed with :mod:`itsdangerous` (HMAC-SHA1 over a salted, derived key) using the server's
link secret: ``TRADECREDIT_LINK_SECRET`` or, by default, a random secret kept in the data
directory (created on first use, readable by the owner only), so every worker of one
installation signs and verifies alike.

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
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer

from credit.settings import Settings

SALT = "tradecredit.seller-link.v1"
MIN_SECRET_CHARS = 32
#: Longer tokens are refused before any work is done on them.
MAX_TOKEN_CHARS = 1024
SECRET_FILE = "link_secret"


class LinkError(Exception):
    """A seller link that must not open the page.

    Attributes
    ----------
    reason : ``expired`` (a genuine link past its time) or ``invalid`` (forged, altered,
        for another firm, or malformed).
    """

    def __init__(self, reason: Literal["expired", "invalid"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SellerLink:
    """A signed link token and what it grants."""

    token: str
    firm_id: str
    tenant: str
    expires_at: datetime


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
) -> SellerLink:
    """A token that opens ``firm_id``'s seller page for ``ttl_seconds``.

    Parameters
    ----------
    firm_id : the firm whose page the link opens (and no other).
    tenant : the platform that asked for it; its policy prices the offers on the page.
    secret : the signing secret (:func:`link_secret`).
    ttl_seconds : lifetime (default 15 minutes).
    now : the current Unix time (for tests).
    """
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    expires = int((time.time() if now is None else now) + ttl_seconds)
    token = _serializer(secret).dumps({"f": firm_id, "t": tenant, "e": expires})
    return SellerLink(
        token=token,
        firm_id=firm_id,
        tenant=tenant,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
    )


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
    )
