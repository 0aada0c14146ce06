"""Who may read a firm's data: every route of the OpenAPI schema, by role, tenant and consent.

Every route is classified in :data:`ROUTES`; a route the schema has and this table does not
fails :func:`test_every_route_of_the_schema_is_classified`, so a new route is covered before it
ships. The routes that read a firm's data are then called by every role of one tenant, for
firms in each consent state (none, active, expired, revoked, another lender's, narrower scope,
another purpose), and for a firm that does not exist: the answer is 200 only under an active
consent covering the route's purpose (credit assessment; monitoring for the portfolio), and
otherwise exactly the unknown firm's 404 (same status, same message; for the portfolio's
registration, the same rejection reason), so nobody learns which firms exist. Routes that
return stored data are checked for tenant isolation; provider-only routes refuse the other
roles.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from fastapi.testclient import TestClient

from api.main import create_app
from credit.consent import ConsentStore
from credit.keys import create_key
from credit.settings import Settings
from tests.api_support import train_catalog_model
from tests.consent_support import CUSTOMS, MARKET, firm_records, h
from tests.seller_support import simulated_records

AS_OF = "2025-07-01"
ROLES = ("lender", "platform", "admin")
STATES = ("none", "active", "expired", "revoked", "other_lender", "narrower", "other_purpose")

#: Every route of the schema -> what guards it. ``firm``: reads a firm's data, needs the
#: caller's consent; ``own``: returns what the caller's tenant stored or is party to;
#: ``provider``: a provider's writes; ``ask``: asks for consent (reveals nothing);
#: ``token``: a seller page, opened by a signed link; ``open``: no firm data.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "open",
    ("GET", "/readyz"): "open",
    ("GET", "/metrics"): "open",
    ("GET", "/v1/model"): "open",
    ("POST", "/v1/admin/reload"): "open",
    ("POST", "/v1/score"): "firm",
    ("POST", "/v1/score/batch"): "firm",
    ("GET", "/v1/firms/{firm_id}/offers"): "firm",
    ("GET", "/v1/firms/{firm_id}/recourse"): "firm",
    ("POST", "/v1/firms/{firm_id}/seller-link"): "firm",
    ("GET", "/sellers/{firm_id}"): "token",
    ("GET", "/v1/decisions/{decision_id}"): "own",
    ("DELETE", "/v1/seller-links/{link_id}"): "own",
    ("GET", "/v1/ingestions/{ingestion_id}"): "own",
    ("GET", "/v1/firms/{firm_id}/records"): "own",
    ("GET", "/v1/consents"): "own",
    ("GET", "/v1/consents/{consent_id}"): "own",
    ("DELETE", "/v1/consents/{consent_id}"): "own",
    ("POST", "/v1/records"): "provider",
    ("POST", "/v1/firms/{firm_id}/consents"): "provider",
    ("POST", "/v1/firms/{firm_id}/consent-requests"): "ask",
    # the tenant's own reviews; the firm's records in a review only under an active consent
    # (tests/integration/test_review_flow.py)
    ("GET", "/v1/reviews"): "own",
    ("GET", "/v1/reviews/{review_id}"): "own",
    ("POST", "/v1/reviews/{review_id}/decision"): "own",
    # the notice of the tenant's own declined decision (tests/reliability/test_security.py)
    ("GET", "/v1/decisions/{decision_id}/notice"): "own",
    ("GET", "/sellers/{firm_id}/notices/{decision_id}"): "token",
    ("GET", "/sellers/{firm_id}/consents/{consent_id}"): "token",
    ("POST", "/sellers/{firm_id}/consents/{consent_id}"): "token",
    ("GET", "/sellers/{firm_id}/consents"): "token",
    ("POST", "/sellers/{firm_id}/consents/{consent_id}/revoke"): "token",
    # the tenant's own endpoints and events (tests/unit/api/test_webhooks_api.py)
    ("POST", "/v1/webhooks"): "own",
    ("GET", "/v1/webhooks"): "own",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "own",
    ("POST", "/v1/webhooks/{webhook_id}/test"): "own",
    ("GET", "/v1/events"): "own",
    ("POST", "/v1/events/{event_id}/redeliver"): "own",
    # the lender's own portfolio: firms registered only under a `monitoring` consent, checked
    # again at every run (tests/integration/test_portfolio_api.py)
    ("POST", "/v1/portfolio/firms"): "firm",
    ("GET", "/v1/portfolio/firms"): "own",
    ("DELETE", "/v1/portfolio/firms/{firm_id}"): "own",
    ("POST", "/v1/portfolio/runs"): "own",
    ("GET", "/v1/portfolio/alerts"): "own",
    ("POST", "/v1/portfolio/alerts/{alert_id}/close"): "own",
    ("GET", "/v1/portfolio"): "own",
    ("GET", "/v1/portfolio/report"): "own",
}

#: The firm-data routes: how to call one for a firm, and the roles it admits.
FIRM_CALLS: dict[str, tuple[tuple[str, ...], Any]] = {
    "POST /v1/score": (
        ("lender", "admin"),
        lambda c, f, k: c.post("/v1/score", json={"firm_id": f, "as_of": AS_OF}, headers=k),
    ),
    "POST /v1/score/batch": (
        ("lender", "admin"),
        lambda c, f, k: c.post(
            "/v1/score/batch", json={"items": [{"firm_id": f, "as_of": AS_OF}]}, headers=k
        ),
    ),
    "GET /v1/firms/{firm_id}/offers": (
        ("lender", "platform", "admin"),
        lambda c, f, k: c.get(f"/v1/firms/{f}/offers?as_of={AS_OF}", headers=k),
    ),
    "GET /v1/firms/{firm_id}/recourse": (
        ("lender", "platform", "admin"),
        lambda c, f, k: c.get(f"/v1/firms/{f}/recourse?as_of={AS_OF}", headers=k),
    ),
    "POST /v1/firms/{firm_id}/seller-link": (
        ("platform",),
        lambda c, f, k: c.post(f"/v1/firms/{f}/seller-link", headers=k),
    ),
    "POST /v1/portfolio/firms": (
        ("lender", "admin"),
        lambda c, f, k: c.post("/v1/portfolio/firms", json={"firm_ids": [f]}, headers=k),
    ),
}

#: The purpose a firm-data route needs (default: credit assessment). Its firms are a second
#: set, in the same consent states for that purpose ("other_purpose": credit assessment only).
PURPOSE = {"POST /v1/portfolio/firms": "monitoring"}
NOT_SHARED_FOR = {
    "credit_assessment": "firm {firm} not found or not shared with you",
    "monitoring": "firm {firm} not found or not shared with you for monitoring (it needs the "
    "seller's active consent with purpose monitoring)",
}


def _approved(store: ConsentStore, firm: str, grantee: str, **kw: Any) -> str:
    sources = kw.pop("sources", None)
    c = store.request(
        firm, grantee, kw.pop("purposes", ["credit_assessment"]), 12,
        requested_by=grantee, key_id=None, sources=sources,
    )  # fmt: skip
    store.decide(
        c.consent_id,
        True,
        firm_providers=[MARKET, CUSTOMS],
        evidence={"kind": "seller_confirmation", "link_id": None},
        **kw,
    )
    return c.consent_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    model = train_catalog_model(version="3")
    settings = Settings(data_dir=tmp_path_factory.mktemp("authz") / "var", api_rate_limit=0)
    app = create_app(settings=settings, model_loader=lambda s: model)
    frames = simulated_records()
    counts = frames["payments"]["firm_id"].value_counts()
    firms = {state: str(counts.index[i]) for i, state in enumerate(STATES)}
    watched = {state: str(counts.index[len(STATES) + i]) for i, state in enumerate(STATES)}
    with TestClient(app) as c:
        engine = app.state.service.engine
        keys = {
            (tenant, role): create_key(engine, tenant, role)[1]
            for tenant in ("bank-a", "bank-b")
            for role in ROLES
        }
        keys[(MARKET, "platform")] = create_key(engine, MARKET, "platform")[1]
        keys[(CUSTOMS, "platform")] = create_key(engine, CUSTOMS, "platform")[1]
        for f in [*firms.values(), *watched.values()]:
            recs = firm_records(frames, f)
            body_a = {"records": {"firms": recs["firms"], "payments": recs["payments"]}}
            body_b = {"records": {"customs": recs["customs"], "shipments": recs["shipments"]}}
            assert c.post(
                "/v1/records", json=body_a, headers=h(keys[(MARKET, "platform")])
            ).is_success
            assert c.post(
                "/v1/records", json=body_b, headers=h(keys[(CUSTOMS, "platform")])
            ).is_success
        store = ConsentStore(engine)
        long_ago = datetime.now(UTC) - relativedelta(months=13)
        _approved(store, firms["active"], "bank-a")
        _approved(store, firms["expired"], "bank-a", now=long_ago)
        store.revoke(_approved(store, firms["revoked"], "bank-a"), "seller")
        _approved(store, firms["other_lender"], "bank-b")
        _approved(store, firms["narrower"], "bank-a", sources=[MARKET])
        _approved(store, firms["other_purpose"], "bank-a", purposes=["monitoring"])
        m = {"purposes": ["monitoring"]}
        _approved(store, watched["active"], "bank-a", **m)
        _approved(store, watched["expired"], "bank-a", now=long_ago, **m)
        store.revoke(_approved(store, watched["revoked"], "bank-a", **m), "seller")
        _approved(store, watched["other_lender"], "bank-b", **m)
        _approved(store, watched["narrower"], "bank-a", sources=[MARKET], **m)
        _approved(store, watched["other_purpose"], "bank-a")
        by_purpose = {"credit_assessment": firms, "monitoring": watched}
        yield {"client": c, "app": app, "keys": keys, "firms": firms, "by_purpose": by_purpose}
    engine.dispose()


def test_every_route_of_the_schema_is_classified(world: dict[str, Any]) -> None:
    schema = world["app"].openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in schema.items() for m in ops}
    unclassified = sorted(routes - set(ROUTES))
    assert not unclassified, (
        f"classify these routes in ROUTES (and test them below): {unclassified}"
    )
    assert not set(ROUTES) - routes, "ROUTES names routes the schema no longer has"
    firm_routes = {f"{m} {p}" for (m, p), kind in ROUTES.items() if kind == "firm"}
    assert firm_routes == set(FIRM_CALLS)


CASES = [
    (route, role, state)
    for route in FIRM_CALLS
    for role in ROLES
    for state in (*STATES, "unknown_firm")
]


@pytest.mark.parametrize(("route", "role", "state"), CASES)
def test_firm_data_needs_an_active_consent_of_the_caller(
    world: dict[str, Any], route: str, role: str, state: str
) -> None:
    c, keys = world["client"], world["keys"]
    allowed_roles, call = FIRM_CALLS[route]
    purpose = PURPOSE.get(route, "credit_assessment")
    firms = world["by_purpose"][purpose]
    firm = "GHOST0001" if state == "unknown_firm" else firms[state]
    r = call(c, firm, h(keys[("bank-a", role)]))
    if role not in allowed_roles:
        assert r.status_code == 403, r.text
        return
    status, body = r.status_code, r.json()
    if route == "POST /v1/score/batch":  # the status is the item's
        assert status == 200, r.text
        item = body["results"][0]
        status = item["status"]
        body = item.get("error") or item["decision"]
    if route == "POST /v1/portfolio/firms":  # sent = registered + rejected, with the reason
        assert status == 200 and body["sent"] == 1, r.text
        if body["rejected"]:
            assert body["rejected"][0]["firm_id"] == firm
            status, body = 404, {"detail": body["rejected"][0]["reason"]}
        else:
            assert body["firm_ids"] == [firm]
    if state in ("active", "narrower"):
        assert status in (200, 201), body
        if "decision" in body or "sources" in body:
            decision = body.get("decision", body)
            want = [MARKET] if state == "narrower" else sorted([MARKET, CUSTOMS])
            assert decision["sources"] == want
        return
    assert status == 404, body
    assert body["detail"] == NOT_SHARED_FOR[purpose].format(firm=firm)


def test_the_seller_page_follows_the_consent_of_its_platform(world: dict[str, Any]) -> None:
    c, keys, firm = world["client"], world["keys"], world["firms"]["active"]
    store = ConsentStore(world["app"].state.service.engine)
    r = c.post(f"/v1/firms/{firm}/seller-link", headers=h(keys[("bank-a", "platform")]))
    assert r.status_code == 201
    page = r.json()["path"]
    assert c.get(page).status_code == 200
    (cid,) = [x.consent_id for x in store.list(firm_id=firm, state="active")]
    store.revoke(cid, "seller")
    try:
        gone = c.get(page)
        assert gone.status_code == 404 and "You do not share your data" in gone.text
    finally:  # the other tests of the module use this consent
        _approved(store, firm, "bank-a")


def test_stored_data_is_its_tenant_s_only(world: dict[str, Any]) -> None:
    c, keys, firm = world["client"], world["keys"], world["firms"]["active"]
    mine, theirs = h(keys[("bank-a", "lender")]), h(keys[("bank-b", "lender")])
    d = c.post("/v1/score", json={"firm_id": firm, "as_of": AS_OF}, headers=mine).json()
    assert c.get(f"/v1/decisions/{d['decision_id']}", headers=mine).status_code == 200
    assert c.get(f"/v1/decisions/{d['decision_id']}", headers=theirs).status_code == 404
    cid = d["consent_id"]
    assert c.get(f"/v1/consents/{cid}", headers=mine).status_code == 200
    assert c.get(f"/v1/consents/{cid}", headers=theirs).status_code == 404
    assert c.delete(f"/v1/consents/{cid}", headers=theirs).status_code == 404
    assert all(x["grantee"] == "bank-b" for x in c.get("/v1/consents", headers=theirs).json())
    # a provider reads back its own records and ingestions, not another provider's
    market, customs = h(keys[(MARKET, "platform")]), h(keys[(CUSTOMS, "platform")])
    own = c.get(f"/v1/firms/{firm}/records", headers=market).json()["records"]
    assert own and {r["record_type"] for r in own} == {"firms", "payments"}
    ing = own[0]["ingestion_id"]
    assert c.get(f"/v1/ingestions/{ing}", headers=market).status_code == 200
    assert c.get(f"/v1/ingestions/{ing}", headers=customs).status_code == 404
    assert (
        c.get(f"/v1/firms/{firm}/records", headers=h(keys[("bank-a", "platform")])).json()[
            "records"
        ]
        == []
    )
    # seller links: another tenant's is a 404
    link = c.post(f"/v1/firms/{firm}/seller-link", headers=h(keys[("bank-a", "platform")]))
    lid = link.json()["link_id"]
    assert (
        c.delete(f"/v1/seller-links/{lid}", headers=h(keys[("bank-b", "platform")])).status_code
        == 404
    )


@pytest.mark.parametrize("role", ["lender", "admin"])
def test_provider_routes_refuse_other_roles(world: dict[str, Any], role: str) -> None:
    c, keys, firm = world["client"], world["keys"], world["firms"]["none"]
    k = h(keys[("bank-a", role)])
    assert c.post("/v1/records", json={"records": {"payments": []}}, headers=k).status_code == 403
    export = {"format": "stripe-balance", "firm_id": firm, "content": "id,amount\n"}
    assert c.post("/v1/records", json=export, headers=k).status_code == 403
    attest = {"grantee": "bank-a", "purposes": ["credit_assessment"], "statement": "x" * 20}
    assert c.post(f"/v1/firms/{firm}/consents", json=attest, headers=k).status_code == 403


def test_a_provider_attests_only_for_firms_it_holds_records_of(world: dict[str, Any]) -> None:
    c, keys, firms = world["client"], world["keys"], world["firms"]
    attest = {"grantee": "bank-b", "purposes": ["credit_assessment"], "statement": "x" * 20}
    market = h(keys[(MARKET, "platform")])
    ghost = c.post("/v1/firms/GHOST0001/consents", json=attest, headers=market)
    stranger = c.post(
        f"/v1/firms/{firms['none']}/consents", json=attest, headers=h(keys[("bank-a", "platform")])
    )
    assert ghost.status_code == stranger.status_code == 404
    ok = c.post(f"/v1/firms/{firms['none']}/consents", json=attest, headers=market)
    assert ok.status_code == 201 and ok.json()["sources"] == [MARKET]
    assert ok.json()["evidence"]["kind"] == "provider_attestation"
    # bank-b now scores that firm on the marketplace's records only
    d = c.post(
        "/v1/score",
        json={"firm_id": firms["none"], "as_of": AS_OF},
        headers=h(keys[("bank-b", "lender")]),
    ).json()
    assert d["sources"] == [MARKET] and d["data"]["not_shared"] == [CUSTOMS]
    c.delete(f"/v1/consents/{ok.json()['consent_id']}", headers=market)


def test_asking_for_consent_says_nothing_about_the_firm(world: dict[str, Any]) -> None:
    c, keys, firms = world["client"], world["keys"], world["firms"]
    k = h(keys[("bank-a", "lender")])
    body = {"purposes": ["credit_assessment"], "months": 6}
    known = c.post(f"/v1/firms/{firms['none']}/consent-requests", json=body, headers=k)
    ghost = c.post("/v1/firms/GHOST0001/consent-requests", json=body, headers=k)
    assert known.status_code == ghost.status_code == 201
    assert set(known.json()) == set(ghost.json())
    assert known.json()["consent"]["state"] == ghost.json()["consent"]["state"] == "requested"
