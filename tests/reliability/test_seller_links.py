"""Issue 17, item 3: seller links can be withdrawn, are rate limited, and never follow `Host`.

Found by trying the service as an attacker would:

- a link stayed valid after the key that made it (the tenant's only key) was revoked, and
  every view still wrote a decision under the revoked tenant;
- one link could be viewed 150 times in 12 s (each view a decision in the audit log);
- ``POST /v1/firms/{id}/seller-link`` with ``Host: evil.example`` answered a link to
  evil.example.

Now every link is recorded in the service database (``seller_links``): a view checks that the
link is neither revoked nor expired and that the key that made it is still active; one link
can be revoked (``DELETE /v1/seller-links/{link_id}``, ``credit links revoke``); the page is
rate limited per link and per client; links are built from ``TRADECREDIT_PUBLIC_URL``. Every
2xx answer of the page is one audit row, and no other answer writes one.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from credit.keys import create_key, revoke_key
from credit.settings import Settings, get_settings
from credit.store import OPERATOR_SOURCE
from tests.consent_support import grant_all
from tests.reliability.conftest import h
from tests.seller_support import GHOST, train_model, world_service


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The simulated world's record store, online store and model (shared, read-only)."""
    w = world_service(tmp_path_factory.mktemp("links") / "var")
    return {**w, "model": train_model()}


@pytest.fixture
def serve(world: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    """``serve(**settings)``: a started app on the world with a fresh service database."""
    stack = contextlib.ExitStack()

    def start(**kw: Any) -> dict[str, Any]:
        settings = Settings(
            data_dir=world["settings"].data_dir,
            database_url=f"sqlite:///{tmp_path / 'service.db'}",
            api_rate_limit=0,
            **kw,
        )
        model = world["model"]
        app = create_app(
            settings=settings, model_loader=lambda s: model, online_store=world["online"]
        )
        client = stack.enter_context(TestClient(app))
        engine = app.state.service.engine
        # The platforms may show the world's firms (the record store's records: the operator's).
        firms = [world["good"], world["risky"], GHOST]
        grant_all(engine, firms, ("shop", "mall"), OPERATOR_SOURCE)
        return {"client": client, "app": app, "engine": engine}

    with stack:
        yield start


def audit_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one())


def new_link(c: TestClient, firm: str, key: str) -> dict[str, Any]:
    r = c.post(f"/v1/firms/{firm}/seller-link", headers=h(key))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_seller_link_dies_with_the_key_that_made_it(serve: Any, world: dict[str, Any]) -> None:
    s = serve()
    c, engine, good = s["client"], s["engine"], world["good"]
    only, only_key = create_key(engine, "shop", "platform")  # the tenant's only key
    mall_a, mall_a_key = create_key(engine, "mall", "platform")
    mall_b, mall_b_key = create_key(engine, "mall", "platform")
    shop_link = new_link(c, good, only_key)
    mall_link = new_link(c, good, mall_a_key)
    assert c.get(shop_link["path"]).status_code == 200
    revoke_key(engine, only.key_id)
    before = audit_count(engine)
    r = c.get(shop_link["path"])
    assert r.status_code == 403, "a link outlived the key (and tenant) that made it"
    assert "This link is no longer valid" in r.text and "Traceback" not in r.text
    assert audit_count(engine) == before  # no decision recorded under the revoked tenant
    # Another key of the same tenant going away does not touch the link; its own key does.
    revoke_key(engine, mall_b.key_id)
    assert c.get(mall_link["path"]).status_code == 200
    revoke_key(engine, mall_a.key_id)
    assert c.get(mall_link["path"]).status_code == 403
    assert audit_count(engine) == before + 1  # 2xx answers = audit rows
    del mall_b_key


def test_one_seller_link_can_be_revoked_on_its_own(serve: Any, world: dict[str, Any]) -> None:
    s = serve()
    c, engine, good = s["client"], s["engine"], world["good"]
    shop = create_key(engine, "shop", "platform")[1]
    shop_lender = create_key(engine, "shop", "lender")[1]
    shop_admin = create_key(engine, "shop", "admin")[1]
    mall = create_key(engine, "mall", "platform")[1]
    leaked, kept = new_link(c, good, shop), new_link(c, good, shop)
    link_id = leaked["link_id"]
    assert re.fullmatch(r"lnk_[0-9a-f]{16}", link_id) and kept["link_id"] != link_id
    assert c.get(leaked["path"]).status_code == 200
    # Only the tenant that made it may revoke it: another tenant does not even see it.
    assert c.delete(f"/v1/seller-links/{link_id}").status_code == 401
    assert c.delete(f"/v1/seller-links/{link_id}", headers=h(shop_lender)).status_code == 403
    r = c.delete(f"/v1/seller-links/{link_id}", headers=h(mall))
    assert r.status_code == 404 and good not in r.text
    assert c.delete("/v1/seller-links/lnk_0000000000000000", headers=h(shop)).status_code == 404
    r = c.delete(f"/v1/seller-links/{link_id}", headers=h(shop))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["link_id"] == link_id and body["firm_id"] == good and body["revoked_at"]
    again = c.delete(f"/v1/seller-links/{link_id}", headers=h(shop_admin))
    assert again.status_code == 200 and again.json()["revoked_at"] == body["revoked_at"]
    before = audit_count(engine)
    r = c.get(leaked["path"])
    assert r.status_code == 403 and "This link is no longer valid" in r.text
    assert audit_count(engine) == before
    assert c.get(kept["path"]).status_code == 200  # the other link of the same firm still opens
    assert audit_count(engine) == before + 1


def test_the_seller_page_is_rate_limited_per_link_and_per_client(
    serve: Any, world: dict[str, Any]
) -> None:
    s = serve(seller_page_client_rate_per_minute=60)  # a burst of 20, then one a second
    c, app, engine, good = s["client"], s["app"], s["engine"], world["good"]
    settings = app.state.service.settings
    shop = create_key(engine, "shop", "platform")[1]
    # One link, viewed as fast as one client can: the page asks to wait.
    link = new_link(c, good, shop)
    before, t0 = audit_count(engine), time.monotonic()
    answers = [c.get(link["path"]) for _ in range(150)]
    elapsed = time.monotonic() - t0
    codes = [r.status_code for r in answers]
    ok = codes.count(200)
    assert set(codes) == {200, 429}, "150 views of one link were never rate limited"
    burst, rate = settings.seller_page_link_burst, settings.seller_page_rate_per_minute / 60
    assert ok <= burst + elapsed * rate + 1
    limited = answers[codes.index(429)]
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Too many requests" in limited.text
    assert limited.headers["content-type"].startswith("text/html")
    assert audit_count(engine) == before + ok  # 2xx answers = audit rows
    # The same link from another client is still held back: the limit belongs to the link.
    other = TestClient(app, client=("198.51.100.8", 40000))
    assert other.get(link["path"]).status_code == 429
    # Many links from one client, each viewed once: the client is held back.
    crawler = TestClient(app, client=("192.0.2.10", 40000))
    links = [new_link(c, good, shop) for _ in range(2 * settings.seller_page_client_burst)]
    before, t0 = audit_count(engine), time.monotonic()
    codes = [crawler.get(x["path"]).status_code for x in links]
    elapsed = time.monotonic() - t0
    ok = codes.count(200)
    assert 429 in codes, "one client opened every link it had, unlimited"
    client_rate = settings.seller_page_client_rate_per_minute / 60
    assert ok <= settings.seller_page_client_burst + elapsed * client_rate + 1
    assert audit_count(engine) == before + ok
    # ... while another client opening one of those links is served.
    fresh = next(x for x, code in zip(links, codes, strict=True) if code == 429)
    assert other.get(fresh["path"]).status_code == 200
    assert audit_count(engine) == before + ok + 1


def test_links_are_built_from_the_public_url_not_the_host_header(
    serve: Any, world: dict[str, Any]
) -> None:
    s = serve()
    c, good = s["client"], world["good"]
    shop = create_key(s["engine"], "shop", "platform")[1]
    hostile = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", **h(shop)}
    r = c.post(f"/v1/firms/{good}/seller-link", headers=hostile)
    assert r.status_code == 201, r.text
    body = r.json()
    assert "evil.example" not in body["url"], body["url"]
    assert body["url"] == "http://127.0.0.1:8000" + body["path"]  # the bound host and port


def test_the_configured_public_url_is_used(
    serve: Any, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = serve(public_url="https://credit.example.com/tc/")
    c, good = s["client"], world["good"]
    shop = create_key(s["engine"], "shop", "platform")[1]
    r = c.post(f"/v1/firms/{good}/seller-link", headers={"Host": "evil.example", **h(shop)})
    body = r.json()
    assert body["url"] == "https://credit.example.com/tc" + body["path"]
    for bad in ("evil.example", "javascript:alert(1)", "https://x.example/?a=b", "ftp://x"):
        with pytest.raises(ValueError, match="public_url"):
            Settings(public_url=bad)
    monkeypatch.setenv("TRADECREDIT_API_HOST", "10.1.2.3")
    monkeypatch.setenv("TRADECREDIT_API_PORT", "9001")
    assert Settings().public_base_url == "http://10.1.2.3:9001"


def test_operator_links_are_recorded_and_revoked_from_the_command_line(
    serve: Any, world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import credit.commands.common as common
    from credit.cli import app as cli

    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(world["settings"].data_dir))
    monkeypatch.setenv("TRADECREDIT_DATABASE_URL", f"sqlite:///{tmp_path / 'service.db'}")
    monkeypatch.setenv("TRADECREDIT_PUBLIC_URL", "https://credit.example.com")
    monkeypatch.setattr(common, "online_store", lambda: world["online"])
    get_settings.cache_clear()
    try:
        s = serve()
        c, engine, good = s["client"], s["engine"], world["good"]
        runner = CliRunner()
        r = runner.invoke(cli, ["offers", "--firm", good, "--seller-link", "--tenant", "shop"])
        assert r.exit_code == 0, r.output
        url = next(line for line in r.output.splitlines() if line.startswith("https://"))
        assert url.startswith(f"https://credit.example.com/sellers/{good}?token=")
        m = re.search(r"lnk_[0-9a-f]{16}", r.output)
        assert m, r.output
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT tenant, key_id FROM seller_links WHERE link_id = :i"),
                {"i": m.group(0)},
            ).one()
        assert tuple(row) == ("shop", None)  # an operator link: no key to die with
        path = url.removeprefix("https://credit.example.com")
        assert c.get(path).status_code == 200
        r = runner.invoke(cli, ["links", "revoke", m.group(0)])
        assert r.exit_code == 0 and f"revoked {m.group(0)}" in r.output, r.output
        assert c.get(path).status_code == 403
        r = runner.invoke(cli, ["links", "revoke", "lnk_0000000000000000"])
        assert r.exit_code == 1 and "no seller link" in r.output
    finally:
        get_settings.cache_clear()
