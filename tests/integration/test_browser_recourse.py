"""The seller page's plans in a real browser (Debian's Chromium through Playwright, at phone
size, JavaScript off), on a simulated world scored by a model trained on the whole catalog.

The firm is the first one with three alternative plans as of 2025-01-01; the page must show
the three, each with its actions, the score after and what doing nothing gives. The
screenshot is kept in /tmp/tradecredit-browser/seller_recourse.png for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from credit.keys import create_key
from credit.recourse import find_plans
from credit.settings import Settings
from credit.store import OPERATOR_SOURCE
from features.pipeline import compute
from tests.api_support import MemoryOnlineStore
from tests.browser_support import chromium, free_port, phone, served
from tests.consent_support import grant
from tests.recourse_support import build_world
from tests.seller_support import write_store

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("browser-recourse")
    rw = build_world(root)
    firm_id, plans = next(
        (fid, r)
        for fid in rw.frames["firms"]["firm_id"]
        if len((r := find_plans(rw.model, *rw.firm_records(fid), AS_OF)).plans) == 3
    )
    recs, firm = rw.firm_records(firm_id)
    online = MemoryOnlineStore({firm_id: [(AS_OF, compute(recs, AS_OF, firm=firm))]})
    port = free_port()
    settings = Settings(data_dir=root / "var", api_rate_limit=0, api_port=port)
    settings.ensure_data_dir()
    write_store(settings.store_path, rw.frames)
    app = create_app(settings=settings, model_loader=lambda s: rw.model, online_store=online)
    with served(app, port) as base:
        key = create_key(app.state.service.engine, "shop", "platform")[1]
        grant(app.state.service.engine, [firm_id], "shop", provider=OPERATOR_SOURCE)
        yield {"base": base, "key": key, "firm": firm_id, "plans": plans}


def test_a_seller_sees_three_checked_plans(
    server: dict[str, Any],
    browser: Any,
    tmp_path: Path,
) -> None:
    r = httpx.post(
        f"{server['base']}/v1/firms/{server['firm']}/seller-link",
        headers={"X-API-Key": server["key"]},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    expected = server["plans"]
    ctx = phone(browser)
    try:
        page = ctx.new_page()
        resp = page.goto(r.json()["url"], wait_until="load")
        assert resp is not None and resp.status == 200
        heading = page.get_by_role(
            "heading", name=f"What would move you to grade {expected.target_grade}"
        )
        assert heading.is_visible()
        cards = page.locator("li.card.plan")
        assert cards.count() == 3
        for i, plan in enumerate(expected.plans):
            card = cards.nth(i)
            assert card.is_visible()
            text = card.inner_text()
            assert f"Plan {i + 1}: grade {plan.after.grade}" in text
            for a in plan.actions:
                assert a.text in text
            assert f"{plan.after.score} (" in text
            if plan.steps:  # compared with doing nothing (or trading as now) meanwhile
                assert "Doing nothing" in text or "Trading as now" in text
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        section = page.locator("section[aria-labelledby=recourse-title]")
        shot = tmp_path / "seller_recourse.png"
        section.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        keep = Path("/tmp/tradecredit-browser")
        keep.mkdir(exist_ok=True)
        shutil.copy(shot, keep / shot.name)
        page.screenshot(path=str(keep / "seller_recourse_page.png"), full_page=True)
    finally:
        ctx.close()
