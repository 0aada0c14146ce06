"""Offers, seller links and the seller page through real HTTP (TestClient), on a simulated world.

The records are the simulator's, in a real DuckDB record store; the decision comes from a
small model on catalog features through the one scoring core (see :mod:`tests.seller_support`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.links import LinkStore, link_secret, sign_seller_link
from credit.offers import compute_bases, load_firm_records, make_offers
from credit.policy import default_policy
from credit.store import OPERATOR_SOURCE, open_store
from tests.consent_support import grant_all
from tests.seller_support import GHOST, train_model, world_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("seller")
    policy_dir = root / "policies"
    policy_dir.mkdir()
    narrow = default_policy().model_dump(exclude_none=True)
    narrow["name"] = "narrow-shop"
    for name in ("receivables_financing", "tax_refund_advance", "warehouse_inventory_financing"):
        narrow["products"][name]["enabled"] = False
    (policy_dir / "narrow.yaml").write_text(yaml.safe_dump(narrow), encoding="utf-8")
    narrow["cost_of_funds"] = "cheap"
    (policy_dir / "broken.yaml").write_text(yaml.safe_dump(narrow), encoding="utf-8")
    w = world_service(root / "var", policy_dir=policy_dir)
    model = train_model()
    app = create_app(settings=w["settings"], model_loader=lambda s: model, online_store=w["online"])
    with TestClient(app) as client:
        engine = app.state.service.engine
        keys = {
            name: create_key(engine, tenant, role)[1]
            for name, tenant, role in [
                ("platform", "shop", "platform"),
                ("lender", "bank", "lender"),
                ("admin", "ops", "admin"),
                ("narrow", "narrow", "platform"),
                ("broken", "broken", "platform"),
            ]
        }
        # Every tenant here may read the world's firms (the record store's records, written
        # without an ingestion, are the operator's); F999999 is shared but has no data.
        firms = [w["good"], w["risky"], GHOST, "F999999"]
        grant_all(engine, firms, ("shop", "bank", "ops", "narrow", "broken"), OPERATOR_SOURCE)
        yield {**w, "client": client, "app": app, "keys": keys, "engine": engine, "model": model}


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def audit_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM decisions")).mappings()]


def text_of(page: str) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


# --- GET /v1/firms/{firm_id}/offers ----------------------------------------------------------


def test_offers_are_the_engine_s_on_the_firm_s_records_and_audited(svc: dict[str, Any]) -> None:
    c, good = svc["client"], svc["good"]
    before = len(audit_rows(svc["engine"]))
    r = c.get(f"/v1/firms/{good}/offers", headers=h(svc["keys"]["platform"]))
    assert r.status_code == 200, r.text
    body = r.json()
    d = body["decision"]
    assert d["firm_id"] == good and d["grade"] == "C" and d["model"]["version"] == "1"
    assert body["policy"] == {"name": "default", "version": "1"}
    # The same engine on the same records as of the decision date gives the same offers.
    con = open_store(svc["settings"].store_path, read_only=True)
    try:
        records = load_firm_records(con, good, d["as_of"])
    finally:
        con.close()
    expected = make_offers(d, compute_bases(records, d["as_of"]), default_policy())
    assert body["offers"] == expected.model_dump(mode="json")["offers"]
    # The firm was picked for having all four bases: every product is offered.
    assert [o["product"] for o in body["offers"]] == [
        "working_capital_advance",
        "receivables_financing",
        "tax_refund_advance",
        "warehouse_inventory_financing",
    ]
    assert body["declines"] == []
    for o in body["offers"]:
        assert o["amount"] > 0 and 0 < o["apr"] < 1
        assert o["total_repayable"] == pytest.approx(o["amount"] + o["total_cost"], abs=0.01)
    rows = audit_rows(svc["engine"])
    assert len(rows) == before + 1
    row = next(x for x in rows if x["decision_id"] == d["decision_id"])
    assert row["tenant"] == "shop" and row["firm_id"] == good and row["grade"] == "C"
    # The audit row keeps the offer set the decision led to, exactly as answered.
    stored = row["offers"]
    stored = json.loads(stored) if isinstance(stored, str) else stored  # SQLite JSON is text
    assert stored["offers"] == body["offers"]
    assert stored["declines"] == body["declines"]
    assert stored["policy"] == body["policy"]


def test_lenders_and_admins_may_ask_for_offers(svc: dict[str, Any]) -> None:
    for who in ("lender", "admin"):
        r = svc["client"].get(f"/v1/firms/{svc['good']}/offers", headers=h(svc["keys"][who]))
        assert r.status_code == 200, r.text


def test_a_risky_thin_file_is_declined_with_reasons(svc: dict[str, Any]) -> None:
    r = svc["client"].get(f"/v1/firms/{svc['risky']}/offers", headers=h(svc["keys"]["lender"]))
    assert r.status_code == 200
    body = r.json()
    assert body["decision"]["grade"] == "F" and body["offers"] == []
    for x in body["declines"]:
        codes = {r["code"] for r in x["reasons"]}
        assert {"thin_file", "pd_above_cutoff", "grade_not_eligible"} <= codes


def test_each_tenant_gets_its_own_policy(svc: dict[str, Any]) -> None:
    r = svc["client"].get(f"/v1/firms/{svc['good']}/offers", headers=h(svc["keys"]["narrow"]))
    assert r.status_code == 200
    body = r.json()
    assert body["policy"]["name"] == "narrow-shop"
    assert [o["product"] for o in body["offers"]] == ["working_capital_advance"]
    assert body["declines"] == []


def test_an_invalid_tenant_policy_is_a_503_naming_the_field(svc: dict[str, Any]) -> None:
    before = len(audit_rows(svc["engine"]))
    r = svc["client"].get(f"/v1/firms/{svc['good']}/offers", headers=h(svc["keys"]["broken"]))
    assert r.status_code == 503
    assert "lending policy of broken is invalid" in r.json()["detail"]
    assert "cost_of_funds: Input should be a valid number" in r.json()["detail"]
    assert len(audit_rows(svc["engine"])) == before


def test_openapi_documents_the_offer_endpoints(svc: dict[str, Any]) -> None:
    spec = svc["client"].get("/openapi.json").json()
    offers = spec["paths"]["/v1/firms/{firm_id}/offers"]["get"]
    assert "example" in offers["responses"]["200"]["content"]["application/json"]
    link = spec["paths"]["/v1/firms/{firm_id}/seller-link"]["post"]
    assert "example" in link["responses"]["201"]["content"]["application/json"]
    assert spec["components"]["schemas"]["SellerLinkIn"]["examples"] == [{"ttl_seconds": 900}]
    page = spec["paths"]["/sellers/{firm_id}"]["get"]
    assert "text/html" in page["responses"]["200"]["content"]
    for op in (offers, link, page):
        assert op["description"]


@pytest.mark.parametrize(
    ("path", "headers", "status", "detail"),
    [
        ("/v1/firms/{good}/offers", {}, 401, "missing API key"),
        ("/v1/firms/{good}/offers", {"X-API-Key": "tc_nope_nope"}, 401, "invalid"),
        ("/v1/firms/F999999/offers", "platform", 404, "no features in the online store"),
        ("/v1/firms/F888888/offers", "platform", 404, "F888888 not found or not shared with you"),
        ("/v1/firms/bad%20id!/offers", "platform", 422, "firm_id"),
        ("/v1/firms/{good}/offers?as_of=yesterday", "platform", 422, "as_of"),
        ("/v1/firms/{good}/offers?as_of=2020-01-01", "platform", 404, "at or before 2020-01-01"),
    ],
)
def test_offer_errors(
    svc: dict[str, Any], path: str, headers: Any, status: int, detail: str
) -> None:
    hdr = h(svc["keys"][headers]) if isinstance(headers, str) else headers
    r = svc["client"].get(path.format(good=svc["good"]), headers=hdr)
    assert r.status_code == status, r.text
    assert detail in str(r.json()["detail"])


def test_no_record_store_is_a_503(svc: dict[str, Any], tmp_path: Path) -> None:
    state = svc["app"].state.service
    saved = state.settings
    state.settings = saved.model_copy(update={"data_dir": tmp_path / "empty"})
    try:
        before = len(audit_rows(svc["engine"]))
        r = svc["client"].get(f"/v1/firms/{svc['good']}/offers", headers=h(svc["keys"]["lender"]))
    finally:
        state.settings = saved
    assert r.status_code == 503
    assert "record store" in r.json()["detail"]
    assert len(audit_rows(svc["engine"])) == before  # no offers, no unrecorded decision either


# --- POST /v1/firms/{firm_id}/seller-link ----------------------------------------------------


def test_platforms_get_a_link_that_expires_in_15_minutes(svc: dict[str, Any]) -> None:
    r = svc["client"].post(
        f"/v1/firms/{svc['good']}/seller-link", headers=h(svc["keys"]["platform"])
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["path"].startswith(f"/sellers/{svc['good']}?token=")
    assert body["link_id"].startswith("lnk_")
    # The configured public address (default: the bound host and port), not the Host header.
    assert body["url"] == "http://127.0.0.1:8000" + body["path"]
    from datetime import UTC, datetime

    left = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert 14 * 60 < left.total_seconds() <= 15 * 60


def test_seller_link_roles_and_errors(svc: dict[str, Any]) -> None:
    c, good = svc["client"], svc["good"]
    assert (
        c.post(f"/v1/firms/{good}/seller-link", headers=h(svc["keys"]["lender"])).status_code == 403
    )
    assert c.post(f"/v1/firms/{good}/seller-link").status_code == 401
    r = c.post("/v1/firms/F999999/seller-link", headers=h(svc["keys"]["platform"]))
    assert r.status_code == 404
    r = c.post(
        f"/v1/firms/{good}/seller-link", headers=h(svc["keys"]["platform"]), json={"ttl_seconds": 5}
    )
    assert r.status_code == 422 and "ttl_seconds" in str(r.json()["detail"])
    r = c.post(
        f"/v1/firms/{good}/seller-link",
        headers=h(svc["keys"]["platform"]),
        json={"ttl_seconds": 3600},
    )
    assert r.status_code == 201


# --- GET /sellers/{firm_id}?token=... -----------------------------------------------------------


def test_the_seller_page(svc: dict[str, Any]) -> None:
    c, good = svc["client"], svc["good"]
    link = c.post(f"/v1/firms/{good}/seller-link", headers=h(svc["keys"]["platform"])).json()
    before = len(audit_rows(svc["engine"]))
    r = c.get(link["path"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["referrer-policy"] == "no-referrer"  # the token never leaks onward
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    text = text_of(page)
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org', "")
    assert "Grade C: Good" in text
    assert "Based on your trade data up to 1 July 2025" in text
    assert re.search(r"Your score: \d{3} on a scale from 300 to 850", text)
    # Offer cards: amount, term, cost, what repays it.
    assert text.count("Yearly rate (APR)") == 4
    assert "Working-capital advance" in text and "B2B invoice financing" in text
    assert "of each platform payout is held back" in text
    # What drives the score: the catalog's texts and hints.
    assert "What drives your score" in text
    assert "Suppliers are paid late" in text and "How to improve:" in text
    # The chart, with a text alternative.
    assert '<svg class="chart"' in page and 'role="img"' in page
    assert "Monthly sales, refunds and shipments" in text
    assert page.count("<rect") == 24  # 12 months x 2 bars
    # Accessibility basics.
    assert '<html lang="en">' in page and 'name="viewport"' in page
    assert '<label class="score-label" for="score-meter">' in page
    # An approved seller has no adverse-action notice, so no section for them.
    assert "Decisions about your application" not in text
    # The page's decision is audited under the platform that made the link, with no key.
    rows = audit_rows(svc["engine"])
    assert len(rows) == before + 1
    assert rows[-1]["tenant"] == "shop" and rows[-1]["key_id"] is None


def test_the_page_of_a_declined_seller_says_why(svc: dict[str, Any]) -> None:
    c, risky = svc["client"], svc["risky"]
    link = c.post(f"/v1/firms/{risky}/seller-link", headers=h(svc["keys"]["platform"])).json()
    text = text_of(c.get(link["path"]).text)
    assert "Grade F: Poor" in text
    assert "No offer is open to you today" in text
    assert "Your score is below what this product needs for now." in text
    assert "2 months of trading history" in text
    assert "We have only a short history of your trade" in text


def _notice_links(page: str, firm: str) -> list[str]:
    pattern = rf'href="(/sellers/{firm}/notices/dec_[0-9a-f]{{32}}\?token=[^"]+)"'
    return [html.unescape(x) for x in re.findall(pattern, page)]


def test_a_declined_seller_sees_its_notices_and_opens_them(svc: dict[str, Any]) -> None:
    c, risky = svc["client"], svc["risky"]
    # a lender's decision about the firm, declined under its policy
    r = c.get(f"/v1/firms/{risky}/offers", headers=h(svc["keys"]["lender"]))
    declined = r.json()["decision"]
    assert declined["outcome"] == "declined", declined
    link = c.post(f"/v1/firms/{risky}/seller-link", headers=h(svc["keys"]["platform"])).json()
    page = c.get(link["path"])
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    text = text_of(page.text)
    assert "Decisions about your application" in text
    assert (
        "Tradecredit Demo Lending" in text and "Your application for credit was declined." in text
    )
    assert "The principal reasons:" in text
    links = _notice_links(page.text, risky)
    wanted = next(x for x in links if declined["decision_id"] in x)
    # every declined decision about the firm is listed, newest first (this page's own too)
    assert len(links) >= 2 and links.index(wanted) > 0
    before = len(audit_rows(svc["engine"]))
    r = c.get(wanted)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert (
        r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    )
    assert r.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert "<script" not in r.text
    notice = c.get(
        f"/v1/decisions/{declined['decision_id']}/notice", headers=h(svc["keys"]["lender"])
    ).json()
    text = text_of(r.text)
    assert "Notice of action taken on your application for credit" in text
    assert notice["lender"]["name"] in text and notice["lender"]["address"] in text
    assert notice["reasons"] and all(x["text"] in text for x in notice["reasons"])
    assert "Your rights" in text and "Who supervises this lender" in text
    assert declined["decision_id"] in text
    assert f'href="/sellers/{risky}?token=' in r.text  # back to the page, token kept
    assert len(audit_rows(svc["engine"])) == before  # reading a notice decides nothing
    # the same token is needed: none, or another firm's, gets the 403 page
    path = wanted.split("?")[0]
    r = c.get(path)
    assert r.status_code == 403 and "This link is not valid" in r.text
    r = c.get(path, params={"token": _token(svc, svc["good"])})
    assert r.status_code == 403 and "This link is not valid" in r.text
    r = c.get(path, params={"token": _token(svc, risky, now=1_000_000.0)})
    assert r.status_code == 403 and "This link has expired" in r.text


def test_the_page_still_shows_the_offers_when_notices_cannot_be_read(
    svc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from credit.errors import UnavailableError

    service = svc["app"].state.service.credit

    def down(*args: Any, **kwargs: Any) -> None:
        raise UnavailableError("the audit log is unavailable")

    monkeypatch.setattr(service, "seller_notices", down)
    monkeypatch.setattr(service, "seller_notice", down)
    page = svc["client"].get(
        f"/sellers/{svc['risky']}", params={"token": _token(svc, svc["risky"])}
    )
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Grade F: Poor" in text
    assert "We could not load the decisions about your application right now" in text
    r = svc["client"].get(
        f"/sellers/{svc['risky']}/notices/dec_{'0' * 32}",
        params={"token": _token(svc, svc["risky"])},
    )
    assert r.status_code == 503 and "Temporarily unavailable" in r.text


def test_a_notice_not_about_the_firm_is_a_404_page(svc: dict[str, Any]) -> None:
    c, good, risky = svc["client"], svc["good"], svc["risky"]
    other = c.get(f"/v1/firms/{good}/offers", headers=h(svc["keys"]["lender"])).json()
    token = _token(svc, risky)
    for decision_id in (other["decision"]["decision_id"], "dec_" + "0" * 32):
        r = c.get(f"/sellers/{risky}/notices/{decision_id}", params={"token": token})
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert "Notice not found" in text_of(r.text) and "Traceback" not in r.text
    r = c.get(f"/sellers/{risky}/notices/not-a-decision", params={"token": token})
    assert r.status_code == 404 and "There is no notice at this address" in r.text


def _token(svc: dict[str, Any], firm: str, now: float | None = None, tenant: str = "shop") -> str:
    """A link signed and recorded as an operator's (no key), like `credit offers --seller-link`."""
    secret = link_secret(svc["settings"])
    link = sign_seller_link(firm, tenant, secret, ttl_seconds=900, now=now)
    LinkStore(svc["engine"]).record(link, key_id=None)
    return link.token


@pytest.mark.parametrize(
    ("case", "title"),
    [
        ("expired", "This link has expired"),
        ("forged", "This link is not valid"),
        ("other_firm", "This link is not valid"),
        ("missing", "This link is not valid"),
        ("wrong_secret", "This link is not valid"),
    ],
)
def test_expired_or_forged_links_get_a_403_page(svc: dict[str, Any], case: str, title: str) -> None:
    from credit.links import sign_seller_link as sign

    good, risky = svc["good"], svc["risky"]
    token = {
        "expired": lambda: _token(svc, good, now=1_000_000.0),
        "forged": lambda: _token(svc, good)[:-3] + "xyz",
        "other_firm": lambda: _token(svc, risky),
        "missing": lambda: "",
        "wrong_secret": lambda: sign(good, "shop", "x" * 40).token,
    }[case]()
    before = len(audit_rows(svc["engine"]))
    r = svc["client"].get(f"/sellers/{good}", params={"token": token} if token else None)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    text = text_of(r.text)
    assert title in text and "Traceback" not in r.text
    assert len(audit_rows(svc["engine"])) == before


def test_unknown_pages_are_html_not_stack_traces(svc: dict[str, Any]) -> None:
    r = svc["client"].get("/sellers/bad id!?token=x")
    assert r.status_code == 404 and "There is no seller page" in r.text
    token = _token(svc, "F999999")
    r = svc["client"].get(f"/sellers/F999999?token={token}")
    assert r.status_code == 404 and "We do not have your data yet" in r.text
    # Signed with the right secret but never recorded: not a link the service made.
    secret = link_secret(svc["settings"])
    unrecorded = sign_seller_link(svc["good"], "shop", secret).token
    r = svc["client"].get(f"/sellers/{svc['good']}?token={unrecorded}")
    assert r.status_code == 403 and "This link is not valid" in r.text


def test_a_link_is_rate_limited_like_a_key(svc: dict[str, Any]) -> None:
    from api.ratelimit import TokenBucket
    from api.routes.sellers import PageLimits, page_limits

    app = svc["app"]
    saved = page_limits(app)
    app.state.seller_page_limits = PageLimits(
        per_link=TokenBucket(rate=0.001, burst=2), per_client=TokenBucket(rate=0, burst=1)
    )
    try:
        link = (
            svc["client"]
            .post(f"/v1/firms/{svc['good']}/seller-link", headers=h(svc["keys"]["platform"]))
            .json()
        )
        codes = [svc["client"].get(link["path"]).status_code for _ in range(3)]
    finally:
        app.state.seller_page_limits = saved
    assert codes == [200, 200, 429]  # burst 2, then the page asks to wait


def test_a_firm_without_records_is_declined_and_its_page_still_renders(svc: dict[str, Any]) -> None:
    c = svc["client"]
    r = c.get(f"/v1/firms/{GHOST}/offers", headers=h(svc["keys"]["platform"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["offers"] == []
    assert {x["reasons"][0]["code"] for x in body["declines"]} == {"volume_too_small"}
    assert body["bases"]["settlements_180d"] == 0.0
    link = c.post(f"/v1/firms/{GHOST}/seller-link", headers=h(svc["keys"]["platform"])).json()
    page = c.get(link["path"])
    assert page.status_code == 200
    assert "No offer is open to you today" in text_of(page.text)
    assert page.text.count("<rect") == 24  # an empty year still draws its axes and bars


def test_no_offers_without_an_audit_row(
    svc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from credit.audit import AuditUnavailableError

    state = svc["app"].state.service

    def broken(*args: Any, **kwargs: Any) -> None:
        raise AuditUnavailableError("the audit log is unavailable")

    monkeypatch.setattr(state.audit, "record", broken)
    r = svc["client"].get(f"/v1/firms/{svc['good']}/offers", headers=h(svc["keys"]["lender"]))
    assert r.status_code == 503
    assert "no decision was made" in r.json()["detail"]
    assert "offers" not in r.json()
    link = (
        svc["client"]
        .post(f"/v1/firms/{svc['good']}/seller-link", headers=h(svc["keys"]["platform"]))
        .json()
    )
    page = svc["client"].get(link["path"])
    assert page.status_code == 503 and "Temporarily unavailable" in page.text
    assert "USD" not in text_of(page.text)  # no offer shown
