"""Seller links: signed, bound to one firm, expiring, and refused when forged."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from credit.links import LinkError, link_secret, sign_seller_link, verify_seller_link
from credit.settings import Settings

SECRET = "k" * 40
NOW = 1_750_000_000.0


def test_a_link_opens_its_page_until_it_expires() -> None:
    link = sign_seller_link("F1", "acme", SECRET, ttl_seconds=900, now=NOW)
    assert link.expires_at.timestamp() == NOW + 900
    got = verify_seller_link(link.token, "F1", SECRET, now=NOW + 899)
    assert (got.firm_id, got.tenant) == ("F1", "acme")
    with pytest.raises(LinkError) as exc:
        verify_seller_link(link.token, "F1", SECRET, now=NOW + 900)
    assert exc.value.reason == "expired"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # altered signature
        lambda t: "x" + t[1:],  # altered payload
        lambda t: t.split(".")[0],  # signature stripped
        lambda t: "",  # empty
        lambda t: "a" * 5000,  # oversized
    ],
)
def test_forged_or_altered_tokens_are_invalid(mutate) -> None:  # type: ignore[no-untyped-def]
    token = sign_seller_link("F1", "acme", SECRET, now=NOW).token
    with pytest.raises(LinkError) as exc:
        verify_seller_link(mutate(token), "F1", SECRET, now=NOW)
    assert exc.value.reason == "invalid"


def test_a_link_is_bound_to_its_firm_and_secret() -> None:
    token = sign_seller_link("F1", "acme", SECRET, now=NOW).token
    with pytest.raises(LinkError, match="not valid for this page"):
        verify_seller_link(token, "F2", SECRET, now=NOW)
    with pytest.raises(LinkError, match="not valid"):
        verify_seller_link(token, "F1", "z" * 40, now=NOW)
    with pytest.raises(LinkError):
        verify_seller_link(None, "F1", SECRET, now=NOW)


def test_the_default_secret_is_made_once_and_private(data_dir: Path) -> None:
    s = Settings()
    first = link_secret(s)
    assert len(first) >= 32
    assert link_secret(Settings()) == first  # every worker reads the same secret
    mode = stat.S_IMODE((data_dir / "link_secret").stat().st_mode)
    assert mode == 0o600


def test_a_configured_secret_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADECREDIT_LINK_SECRET", "short")
    with pytest.raises(ValueError, match="at least 32 characters"):
        link_secret(Settings())
    monkeypatch.setenv("TRADECREDIT_LINK_SECRET", SECRET)
    assert link_secret(Settings()) == SECRET


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        sign_seller_link("F1", "acme", SECRET, ttl_seconds=0)


def test_a_token_names_its_link_and_one_without_an_id_is_invalid() -> None:
    from itsdangerous import URLSafeSerializer

    from credit.links import LINK_ID, SALT

    link = sign_seller_link("F1", "acme", SECRET, now=NOW)
    assert LINK_ID.match(link.link_id)
    assert verify_seller_link(link.token, "F1", SECRET, now=NOW).link_id == link.link_id
    assert sign_seller_link("F1", "acme", SECRET, now=NOW).link_id != link.link_id
    # A token of the first format (no link id, never recorded) opens nothing.
    old = URLSafeSerializer(SECRET, salt=SALT).dumps({"f": "F1", "t": "acme", "e": int(NOW) + 900})
    with pytest.raises(LinkError) as exc:
        verify_seller_link(old, "F1", SECRET, now=NOW)
    assert exc.value.reason == "invalid"


def test_the_link_store_knows_revoked_links_and_keys(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from credit.db import make_engine, upgrade
    from credit.keys import create_key, revoke_key
    from credit.links import LinkStore

    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    upgrade(engine)
    store = LinkStore(engine)
    key, _ = create_key(engine, "acme", "platform")
    by_key = sign_seller_link("F1", "acme", SECRET)
    by_operator = sign_seller_link("F1", "acme", SECRET)
    store.record(by_key, key.key_id)
    store.record(by_operator, None)
    store.check(by_key)
    store.check(by_operator)
    with pytest.raises(LinkError) as exc:  # signed, never recorded
        store.check(sign_seller_link("F1", "acme", SECRET))
    assert exc.value.reason == "invalid"
    later = datetime.now(UTC) + timedelta(seconds=901)
    with pytest.raises(LinkError) as exc:
        store.check(by_operator, now=later)
    assert exc.value.reason == "expired"
    revoke_key(engine, key.key_id)
    with pytest.raises(LinkError) as exc:
        store.check(by_key)
    assert exc.value.reason == "revoked"
    store.check(by_operator)  # an operator's link has no key to die with
    first = store.revoke(by_operator.link_id)
    assert first is not None and first.revoked_at is not None
    again = store.revoke(by_operator.link_id)
    assert again is not None and again.revoked_at == first.revoked_at
    with pytest.raises(LinkError) as exc:
        store.check(by_operator)
    assert exc.value.reason == "revoked"
    assert store.revoke("lnk_0000000000000000") is None and store.get("nope") is None
    engine.dispose()
