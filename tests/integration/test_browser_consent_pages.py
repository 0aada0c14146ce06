"""The seller's consent pages in a real browser: Debian's Chromium driven by Playwright, JavaScript
off, at phone size.

A real uvicorn server on loopback; two providers push a simulated firm's records over HTTP; a
lender asks for consent. In the browser the seller opens the link, reads who asks, for what, from
which sources and until when, and presses *Yes* (a real click on the form's button, a native form
post). The lender's score is then a 200. On the consents page the seller presses *Stop sharing*:
the notice shows, nobody is listed, and the lender's next score is the unknown firm's 404. A
second request answered *No* leaves it a 404. Every page must fit a 390 px screen, also with
the longest names a lender and a provider may have (64 characters, no place to break). The
screenshots land in the test's tmp folder, with a copy in /tmp/tradecredit-browser.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from credit.keys import create_key
from credit.settings import Settings
from tests.api_support import train_catalog_model
from tests.browser_support import chromium, free_port, served
from tests.consent_support import CUSTOMS, MARKET, firm_records, h
from tests.seller_support import simulated_records

WIDTH = 390
SCALE = 2
AS_OF = "2025-07-01"
LENDER = "bank-a"
# The longest names a tenant may have (64 characters), with no place to break a line.
LONG_LENDER = "industrial_and_commercial_bank_of_china_zhejiang_branch_no_00001"
LONG_PROVIDER = "cross_border_marketplace_settlements_and_refunds_data_service_01"
KEEP = Path("/tmp/tradecredit-browser")  # copies for a person to look at

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def _push(base: str, key: str, records: dict[str, Any]) -> None:
    r = httpx.post(f"{base}/v1/records", json={"records": records}, headers=h(key), timeout=60)
    assert r.status_code == 200, r.text
    for name, n in r.json()["counts"].items():
        assert n["rejected"] == 0, (name, r.json()["rejected"][:3])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = free_port()
    # The service's address is its public address: the consent links point at it.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("consent-browser") / "var", api_rate_limit=0, api_port=port
    )
    model = train_catalog_model()
    app = create_app(settings=settings, model_loader=lambda s: model)
    with served(app, port) as base:
        engine = app.state.service.engine
        keys = {
            "market": create_key(engine, MARKET, "platform")[1],
            "customs": create_key(engine, CUSTOMS, "platform")[1],
            "lender": create_key(engine, LENDER, "lender")[1],
            "long_lender": create_key(engine, LONG_LENDER, "lender")[1],
            "long_provider": create_key(engine, LONG_PROVIDER, "platform")[1],
        }
        frames = simulated_records()
        by_payments = frames["payments"]["firm_id"].value_counts().index
        firm, other = str(by_payments[0]), str(by_payments[1])  # the two with the most payments
        recs = firm_records(frames, firm)
        _push(base, keys["market"], {"firms": recs["firms"], "payments": recs["payments"]})
        _push(base, keys["customs"], {"customs": recs["customs"], "shipments": recs["shipments"]})
        recs = firm_records(frames, other)
        _push(base, keys["long_provider"], {"firms": recs["firms"], "payments": recs["payments"]})
        yield {"base": base, "keys": keys, "firm": firm, "other": other}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport={"width": WIDTH, "height": 844},
        device_scale_factor=SCALE,
        is_mobile=True,
        java_script_enabled=False,  # the pages must work without JavaScript
    )
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def _ask(server: dict[str, Any], firm: str = "", lender: str = "lender") -> dict[str, Any]:
    r = httpx.post(
        f"{server['base']}/v1/firms/{firm or server['firm']}/consent-requests",
        json={"purposes": ["credit_assessment"], "months": 12},
        headers=h(server["keys"][lender]),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    asked: dict[str, Any] = r.json()
    assert asked["url"].startswith(server["base"] + "/sellers/")
    assert asked["url"].endswith(asked["path"])
    return asked


def _score(server: dict[str, Any], firm: str = "", lender: str = "lender") -> httpx.Response:
    return httpx.post(
        f"{server['base']}/v1/score",
        json={"firm_id": firm or server["firm"], "as_of": AS_OF},
        headers=h(server["keys"][lender]),
        timeout=60,
    )


def _assert_not_shared(server: dict[str, Any], firm: str = "", lender: str = "lender") -> None:
    firm = firm or server["firm"]
    r = _score(server, firm, lender)
    assert r.status_code == 404, r.text
    assert r.json()["detail"] == f"firm {firm} not found or not shared with you"


def _png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int(struct.unpack(">I", data[16:20])[0])


def _fits_the_phone(page: Any, shot: Path) -> None:
    """Nothing overflows sideways: the document is no wider than the screen, every button and
    list item lies inside it, and the full-page screenshot is exactly the screen's width."""
    # page.evaluate runs in Playwright's own script context: it works with page JS disabled (and
    # does see an overflow: before the CSS broke long names, this read 1013 for the long ones).
    assert page.evaluate("document.scrollingElement.scrollWidth") <= WIDTH
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    for sel in ("button", "dt", "dd", "li", "h1", "h2", "p", "a"):
        items = page.locator(f"main {sel}")
        for i in range(items.count()):
            box = items.nth(i).bounding_box()
            assert box is not None, (sel, i)
            assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH + 0.5, (
                sel,
                items.nth(i).inner_text(),
                box,
            )
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # A full-page screenshot is as wide as the page's content: wider would mean a sideways scroll.
    assert _png_width(shot) == WIDTH * SCALE
    KEEP.mkdir(exist_ok=True)
    shutil.copy(shot, KEEP / shot.name)


def _click(page: Any, name: str) -> Any:
    """A real click on a form's submit button; the browser posts the form itself (no JS)."""
    button = page.get_by_role("button", name=name)
    assert button.count() == 1 and button.is_visible() and button.is_enabled()
    assert button.get_attribute("type") == "submit"
    with page.expect_navigation(wait_until="load") as nav:
        button.click()
    resp = nav.value
    assert resp is not None
    return resp


def test_the_seller_approves_then_stops_sharing_then_declines(
    server: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    base = server["base"]
    _assert_not_shared(server)  # no consent yet

    # 1. the consent link: who asks, for what, from which sources, until when
    asked = _ask(server)
    resp = page.goto(asked["url"], wait_until="load")
    assert resp is not None and resp.status == 200
    assert "form-action 'self'" in resp.headers["content-security-policy"]
    assert page.get_by_role("heading", name=f"{LENDER} asks to see your trade data").is_visible()
    terms = page.locator("dl.terms")
    assert terms.is_visible()
    text = terms.inner_text()
    assert "Who asks" in text and LENDER in text
    assert "to assess your credit and offer you financing" in text  # the purpose in words
    assert "credit_assessment" not in page.content()
    for provider in (MARKET, CUSTOMS):
        assert page.locator("dl.terms dd li", has_text=provider).is_visible()
    assert "12 months from today, until " in text
    form = page.locator("form.answer")
    assert form.get_attribute("method") == "post"
    assert page.locator('form.answer input[type="hidden"][name="token"]').count() == 1
    _fits_the_phone(page, tmp_path / "consent_request.png")

    # 2. Yes: a native form post; the lender may now score
    resp = _click(page, f"Yes, share my data with {LENDER}")
    assert resp.status == 200 and resp.request.method == "POST"
    assert page.get_by_role("heading", name=f"You share your data with {LENDER}").is_visible()
    assert "until" in page.locator("main").inner_text()
    _fits_the_phone(page, tmp_path / "consent_answered.png")
    ok = _score(server)
    assert ok.status_code == 200, ok.text
    assert ok.json()["consent_id"] == asked["consent"]["consent_id"]
    assert ok.json()["sources"] == sorted([MARKET, CUSTOMS])

    # 3. the consents page lists it; Stop sharing revokes it; the next score is a 404
    with page.expect_navigation(wait_until="load") as nav:
        page.get_by_role("link", name="See who can see your data").click()
    assert nav.value is not None and nav.value.status == 200
    assert page.url.startswith(f"{base}/sellers/{server['firm']}/consents?token=")
    assert page.get_by_role("heading", name="Who can see your data").is_visible()
    cards = page.locator("li.card.consent")
    assert cards.count() == 1
    card = cards.first
    assert card.get_by_role("heading", name=LENDER).is_visible()
    card_text = card.inner_text()
    assert "assess your credit and offer you financing" in card_text
    assert MARKET in card_text and CUSTOMS in card_text
    assert "You said yes on a link" in card_text
    _fits_the_phone(page, tmp_path / "consents_listed.png")
    resp = _click(page, f"Stop sharing with {LENDER}")
    assert resp.status == 200  # the 303's target, followed by the browser
    assert resp.request.method == "GET" and "notice=revoked" in page.url
    assert resp.request.redirected_from is not None
    assert resp.request.redirected_from.method == "POST"
    status = page.get_by_role("status")
    assert status.is_visible()
    assert status.inner_text() == "Done: that lender can no longer use your data."
    assert page.get_by_text("You share your trade data with no one right now.").is_visible()
    assert page.locator("li.card.consent").count() == 0
    _fits_the_phone(page, tmp_path / "consents_after_stop.png")
    _assert_not_shared(server)

    # 4. a second request, answered No: still nothing shared
    second = _ask(server)
    assert second["consent"]["consent_id"] != asked["consent"]["consent_id"]
    resp = page.goto(second["url"], wait_until="load")
    assert resp is not None and resp.status == 200
    resp = _click(page, "No, do not share")
    assert resp.status == 200 and resp.request.method == "POST"
    assert page.get_by_role("heading", name="You declined").is_visible()
    assert page.get_by_text(f"{LENDER} will not see your data.").is_visible()
    _fits_the_phone(page, tmp_path / "consent_declined.png")
    _assert_not_shared(server)
    # the answered request cannot be answered again: no buttons, its state instead
    resp = page.goto(second["url"], wait_until="load")
    assert resp is not None and resp.status == 200
    assert page.get_by_role("button").count() == 0
    assert "You already answered this request" in page.locator("main").inner_text()
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name="Who can see your data").click()
    assert page.get_by_text("You share your trade data with no one right now.").is_visible()


def test_the_longest_names_fit_a_phone(server: dict[str, Any], page: Any, tmp_path: Path) -> None:
    """A 64-character lender and provider, with no place to break a line, still fit 390 px."""
    assert len(LONG_LENDER) == len(LONG_PROVIDER) == 64
    firm, lender = server["other"], "long_lender"
    _assert_not_shared(server, firm, lender)
    asked = _ask(server, firm, lender)
    resp = page.goto(asked["url"], wait_until="load")
    assert resp is not None and resp.status == 200
    assert page.get_by_role(
        "heading", name=f"{LONG_LENDER} asks to see your trade data"
    ).is_visible()
    assert page.locator("dl.terms dd li", has_text=LONG_PROVIDER).is_visible()
    _fits_the_phone(page, tmp_path / "long_names_request.png")
    resp = _click(page, f"Yes, share my data with {LONG_LENDER}")
    assert resp.status == 200
    assert page.get_by_role("heading", name=f"You share your data with {LONG_LENDER}").is_visible()
    _fits_the_phone(page, tmp_path / "long_names_answered.png")
    ok = _score(server, firm, lender)
    assert ok.status_code == 200, ok.text
    assert ok.json()["sources"] == [LONG_PROVIDER]
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name="See who can see your data").click()
    assert page.locator("li.card.consent").count() == 1
    _fits_the_phone(page, tmp_path / "long_names_consents.png")
    _click(page, f"Stop sharing with {LONG_LENDER}")
    assert page.get_by_text("You share your trade data with no one right now.").is_visible()
    _assert_not_shared(server, firm, lender)
