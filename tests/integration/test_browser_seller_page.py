"""The seller page in a real browser: Debian's Chromium driven by Playwright, JavaScript off.

A real uvicorn server on loopback serves a simulated world (see :mod:`tests.seller_support`);
a platform key asks for a seller link; the browser opens it at phone size and must show the
offers and what drives the score. The screenshots land in the test's tmp folder. An expired
link must show the 403 page. A declined seller's page lists its adverse-action notices; the
notice opens from it, keeps to the page's CSP, and prints.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from credit.keys import create_key
from credit.links import link_secret, sign_seller_link
from credit.store import OPERATOR_SOURCE
from tests.browser_support import chromium, free_port, phone, served
from tests.consent_support import grant
from tests.seller_support import train_model, world_service

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = free_port()
    # The service's address is its public address: seller links point at it.
    w = world_service(tmp_path_factory.mktemp("browser") / "var", api_port=port)
    model = train_model()
    app = create_app(settings=w["settings"], model_loader=lambda s: model, online_store=w["online"])
    with served(app, port) as base:
        key = create_key(app.state.service.engine, "shop", "platform")[1]
        # the platform may show the firms (the record store's records: the operator's)
        grant(app.state.service.engine, [w["good"], w["risky"]], "shop", provider=OPERATOR_SOURCE)
        yield {**w, "base": base, "key": key}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def test_a_seller_sees_offers_and_drivers(
    server: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    r = httpx.post(
        f"{server['base']}/v1/firms/{server['good']}/seller-link",
        headers={"X-API-Key": server["key"]},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    ctx = phone(browser)
    try:
        page = ctx.new_page()
        resp = page.goto(r.json()["url"], wait_until="load")
        assert resp is not None and resp.status == 200
        assert page.get_by_role("heading", name="Your financing offers").is_visible()
        assert page.get_by_text("Grade C: Good").is_visible()
        offers = page.locator("li.card.offer")
        assert offers.count() == 4
        for i in range(offers.count()):
            card = offers.nth(i)
            assert card.is_visible()
            assert card.locator(".amount").inner_text().startswith("USD ")
            assert "What repays it" in card.inner_text()
        drivers = page.locator("ol.drivers > li")
        assert page.get_by_role("heading", name="What drives your score").is_visible()
        assert drivers.count() >= 2
        assert drivers.first.is_visible()
        assert "How to improve:" in drivers.first.inner_text()
        chart = page.get_by_role("img", name="Monthly sales, refunds and shipments")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] <= 390  # fits the phone's width
        # Nothing overflows sideways on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot = tmp_path / "seller_page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        keep = Path("/tmp/tradecredit-browser")  # a copy for a person to look at
        keep.mkdir(exist_ok=True)
        shutil.copy(shot, keep / shot.name)
    finally:
        ctx.close()


def test_an_expired_link_shows_the_403_page(
    server: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    secret = link_secret(server["settings"])
    token = sign_seller_link(server["good"], "shop", secret, ttl_seconds=900, now=time.time() - 901)
    ctx = phone(browser)
    try:
        page = ctx.new_page()
        resp = page.goto(f"{server['base']}/sellers/{server['good']}?token={token.token}")
        assert resp is not None and resp.status == 403
        assert page.get_by_role("heading", name="This link has expired").is_visible()
        assert page.locator("li.card.offer").count() == 0
        page.screenshot(path=str(tmp_path / "expired_link.png"), full_page=True)
        shutil.copy(tmp_path / "expired_link.png", Path("/tmp/tradecredit-browser"))
    finally:
        ctx.close()


def test_a_declined_seller_opens_and_prints_its_notice(
    server: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    r = httpx.post(
        f"{server['base']}/v1/firms/{server['risky']}/seller-link",
        headers={"X-API-Key": server["key"]},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    ctx = phone(browser)
    try:
        page = ctx.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        resp = page.goto(r.json()["url"], wait_until="load")
        assert resp is not None and resp.status == 200
        section = page.get_by_role("heading", name="Decisions about your application")
        assert section.is_visible()
        page.screenshot(path=str(tmp_path / "declined_seller_page.png"), full_page=True)
        page.get_by_role("link", name="Open the notice to read or print it").first.click()
        page.wait_for_load_state("load")
        assert "/notices/dec_" in page.url
        title = "Notice of action taken on your application for credit"
        assert page.get_by_role("heading", name=title).is_visible()
        assert page.get_by_role(
            "heading", name="The principal reasons for our decision"
        ).is_visible()
        assert page.locator("ol.reasons > li").count() >= 1
        assert page.get_by_role("heading", name="Your rights").is_visible()
        # the inline style sheet applied (the CSP let it), and nothing broke the page's CSP
        assert page.evaluate("getComputedStyle(document.querySelector('.top')).display") != "none"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not [m for m in console if "Content Security Policy" in m or m.startswith("error")]
        page.screenshot(path=str(tmp_path / "notice.png"), full_page=True)
        # printed: no banner, no links back; a real PDF
        page.emulate_media(media="print")
        assert page.evaluate("getComputedStyle(document.querySelector('.top')).display") == "none"
        assert not page.get_by_role("link", name="Back to your page").is_visible()
        pdf = tmp_path / "notice.pdf"
        page.pdf(path=str(pdf), format="A4")
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5_000
        keep = Path("/tmp/tradecredit-browser")
        keep.mkdir(exist_ok=True)
        for f in ("declined_seller_page.png", "notice.png", "notice.pdf"):
            shutil.copy(tmp_path / f, keep / f)
    finally:
        ctx.close()
