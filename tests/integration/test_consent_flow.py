"""The three-party flow through real HTTP: providers push a seller's records, a lender asks for
consent, the seller approves on the signed page, the lender scores; without consent, or after
the seller revokes, the answer is the unknown firm's 404. Scope is real, every decision shows
its lineage, and a replay reads the records as they were known when the decision was made."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.reasons import NOT_SHARED_PREFIX
from credit.scoring import ScoringModel
from credit.settings import Settings
from tests.api_support import train_catalog_model
from tests.consent_support import CUSTOMS, KEYS, MARKET, firm_records, h
from tests.seller_support import simulated_records

AS_OF = "2025-07-01"
NOT_SHARED = "not found or not shared with you"


@pytest.fixture(scope="module")
def catalog_model() -> ScoringModel:
    return train_catalog_model(version="7")


@pytest.fixture
def consent_service(tmp_path: Path, catalog_model: ScoringModel) -> Iterator[dict[str, Any]]:
    settings = Settings(data_dir=tmp_path / "var", api_rate_limit=0)
    app = create_app(settings=settings, model_loader=lambda s: catalog_model)
    with TestClient(app) as client:
        engine = app.state.service.engine
        keys = {name: create_key(engine, t, r)[1] for name, t, r in KEYS}
        yield {"client": client, "app": app, "keys": keys, "engine": engine}
    engine.dispose()


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    frames = simulated_records()
    pay = frames["payments"]
    firm = str(pay["firm_id"].value_counts().index[0])  # the firm with the most payments
    return {"frames": frames, "firm": firm, "records": firm_records(frames, firm)}


def push(c: Any, key: str, records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    r = c.post("/v1/records", json={"records": records}, headers=h(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    for name, n in out["counts"].items():  # counts always reconcile
        assert n["read"] == n["accepted"] + n["rejected"], name
        assert n["accepted"] == n["added"] + n["already_present"], name
    return out


def push_both(c: Any, keys: dict[str, str], recs: dict[str, Any]) -> tuple[dict, dict]:
    a = push(c, keys["market"], {"firms": recs["firms"], "payments": recs["payments"]})
    b = push(c, keys["customs"], {"customs": recs["customs"], "shipments": recs["shipments"]})
    return a, b


def ask_and_approve(c: Any, key: str, firm: str, **body: Any) -> dict[str, Any]:
    r = c.post(
        f"/v1/firms/{firm}/consent-requests",
        json={"purposes": ["credit_assessment"], "months": 12, **body},
        headers=h(key),
    )
    assert r.status_code == 201, r.text
    asked = r.json()
    assert asked["consent"]["state"] == "requested"
    page = c.get(asked["path"])
    assert page.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answered = c.post(
        asked["path"].split("?")[0],
        data={"token": token, "answer": "approve"},
    )
    assert answered.status_code == 200, answered.text
    assert "You share your data with" in answered.text
    return {**asked, "token": token, "page": page.text}


def score(c: Any, key: str, firm: str, as_of: str = AS_OF) -> Any:
    return c.post("/v1/score", json={"firm_id": firm, "as_of": as_of}, headers=h(key))


def test_push_is_validated_idempotent_and_reconciled(
    consent_service: dict[str, Any], world: dict[str, Any]
) -> None:
    c, keys, recs = consent_service["client"], consent_service["keys"], world["records"]
    first = push(c, keys["market"], {"firms": recs["firms"], "payments": recs["payments"]})
    n_pay = len(recs["payments"])
    assert first["counts"]["payments"] == {
        "read": n_pay, "accepted": n_pay, "added": n_pay, "already_present": 0, "rejected": 0
    }  # fmt: skip
    assert first["firms"] == [world["firm"]] and first["ingestion_id"].startswith("push_")
    again = push(c, keys["market"], {"payments": recs["payments"]})
    assert again["counts"]["payments"]["already_present"] == n_pay
    assert again["counts"]["payments"]["added"] == 0
    changed = {**recs["payments"][0], "amount_usd": 1.0}  # same ID, other content
    bad = {**recs["payments"][1], "payment_id": "acme-new-1", "amount_usd": "lots"}
    unknown_firm = {**recs["payments"][2], "payment_id": "acme-new-2", "firm_id": "NOBODY"}
    mixed = push(c, keys["market"], {"payments": [changed, bad, unknown_firm]})
    assert mixed["counts"]["payments"] == {
        "read": 3, "accepted": 0, "added": 0, "already_present": 0, "rejected": 3
    }  # fmt: skip
    why = {r["index"]: (r["field"], r["reason"]) for r in mixed["rejected"]}
    assert why[0][0] == "payment_id" and "different content" in why[0][1]
    assert why[1][0] == "amount_usd"
    assert why[2][0] == "firm_id" and "known firm" in why[2][1]
    # a provider reads back its own contributions only
    mine = c.get(f"/v1/firms/{world['firm']}/records", headers=h(keys["market"])).json()
    assert len(mine["records"]) == n_pay + 1
    assert (
        c.get(f"/v1/firms/{world['firm']}/records", headers=h(keys["customs"])).json()["records"]
        == []
    )
    got = c.get(f"/v1/ingestions/{mixed['ingestion_id']}", headers=h(keys["market"]))
    assert got.status_code == 200 and len(got.json()["rejected"]) == 3
    other = c.get(f"/v1/ingestions/{mixed['ingestion_id']}", headers=h(keys["customs"]))
    assert other.status_code == 404
    # a lender may not push; a push over the size limit or of an unknown type is a 422
    assert (
        c.post("/v1/records", json={"records": {}}, headers=h(keys["lender_a"])).status_code == 403
    )
    r = c.post("/v1/records", json={"records": {"invoices": [{}]}}, headers=h(keys["market"]))
    assert r.status_code == 422 and "unknown record type" in r.text


def test_the_three_party_story(consent_service: dict[str, Any], world: dict[str, Any]) -> None:
    c, keys, firm = consent_service["client"], consent_service["keys"], world["firm"]
    a, b = push_both(c, keys, world["records"])
    # no consent: the same answer as for a firm that does not exist
    no = score(c, keys["lender_a"], firm)
    ghost = score(c, keys["lender_a"], "GHOST99")
    assert no.status_code == ghost.status_code == 404
    assert no.json()["detail"] == f"firm {firm} {NOT_SHARED}"
    assert ghost.json()["detail"] == f"firm GHOST99 {NOT_SHARED}"
    asked = ask_and_approve(c, keys["lender_a"], firm)
    assert "bank-a" in asked["page"] and MARKET in asked["page"] and CUSTOMS in asked["page"]
    ok = score(c, keys["lender_a"], firm)
    assert ok.status_code == 200, ok.text
    d = ok.json()
    assert d["consent_id"] == asked["consent"]["consent_id"]
    assert d["sources"] == sorted([MARKET, CUSTOMS])
    # another lender still sees nothing
    assert score(c, keys["lender_b"], firm).json()["detail"] == f"firm {firm} {NOT_SHARED}"
    # lineage: the consent and the two pushes
    rec = c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["lender_a"])).json()
    lineage = rec["lineage"]
    assert lineage["consent_id"] == d["consent_id"]
    assert {i["ingestion_id"] for i in lineage["ingestions"]} == {
        a["ingestion_id"],
        b["ingestion_id"],
    }
    assert {i["provider"] for i in lineage["ingestions"]} == {MARKET, CUSTOMS}
    assert all(len(i["sha256"]) == 64 for i in lineage["ingestions"])
    # the lender lists its consent
    mine = c.get("/v1/consents", headers=h(keys["lender_a"])).json()
    assert [x["state"] for x in mine] == ["active"]
    assert mine[0]["evidence"]["kind"] == "seller_confirmation"
    assert c.get("/v1/consents", headers=h(keys["lender_b"])).json() == []
    # the seller revokes on the consents page; the next score is a 404
    listing = c.get(f"/sellers/{firm}/consents?token={asked['token']}")
    assert listing.status_code == 200 and "bank-a" in listing.text
    action = re.search(r'action="([^"]+/revoke)"', listing.text).group(1)  # type: ignore[union-attr]
    done = c.post(action, data={"token": asked["token"]}, follow_redirects=False)
    assert done.status_code == 303
    after = c.get(done.headers["location"])
    assert "You share your trade data with no one" in after.text
    assert score(c, keys["lender_a"], firm).json()["detail"] == f"firm {firm} {NOT_SHARED}"
    # the decision made before stays in the audit log
    again = c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["lender_a"]))
    assert again.status_code == 200


def test_a_narrower_consent_computes_from_its_sources_only(
    consent_service: dict[str, Any], world: dict[str, Any]
) -> None:
    c, keys, firm = consent_service["client"], consent_service["keys"], world["firm"]
    push_both(c, keys, world["records"])
    ask_and_approve(c, keys["lender_b"], firm)  # everything
    ask_and_approve(c, keys["lender_a"], firm, sources=[MARKET])  # the marketplace only
    full, narrow = score(c, keys["lender_b"], firm).json(), score(c, keys["lender_a"], firm).json()
    assert full["sources"] == sorted([MARKET, CUSTOMS]) and "not_shared" not in full["data"]
    assert narrow["sources"] == [MARKET] and narrow["data"]["not_shared"] == [CUSTOMS]
    engine = consent_service["engine"]
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = {
            r.decision_id: r.features
            for r in conn.execute(sa.text("SELECT decision_id, features FROM decisions"))
        }
    f_full = rows[full["decision_id"]]
    f_narrow = rows[narrow["decision_id"]]
    import json

    f_full = json.loads(f_full) if isinstance(f_full, str) else f_full
    f_narrow = json.loads(f_narrow) if isinstance(f_narrow, str) else f_narrow
    from features.catalog import CATALOG

    customs_only = [f.name for f in CATALOG if f.source in ("customs", "shipments")]
    assert customs_only
    # what the customs data gives is there under full scope and missing (or zero-activity)
    # under the narrower one: the model sees only the marketplace's records
    assert any(f_full[n] is not None and f_full[n] != f_narrow[n] for n in customs_only)
    for r in narrow["reasons"]:
        if r["value"] is None and r["feature"] in customs_only:
            assert r["text"].startswith(NOT_SHARED_PREFIX) and r["not_shared"] is True


def test_replay_reads_what_was_known_then_even_after_a_late_record(
    consent_service: dict[str, Any], world: dict[str, Any], catalog_model: ScoringModel
) -> None:
    c, keys, firm = consent_service["client"], consent_service["keys"], world["firm"]
    push_both(c, keys, world["records"])
    ask_and_approve(c, keys["lender_a"], firm)
    before = score(c, keys["lender_a"], firm).json()
    # a settlement pushed later with a back-dated event time (inside the decision's window)
    late = {
        **world["records"]["payments"][-1],
        "payment_id": "acme-late-1",
        "kind": "settlement",
        "direction": "in",
        "amount_usd": 250_000.0,
        "occurred_at": "2025-06-20T10:00:00",
        "paid_at": "2025-06-20T10:00:00",
        "due_at": None,
    }
    pushed = push(c, keys["market"], {"payments": [late]})
    assert pushed["counts"]["payments"]["added"] == 1
    after = score(c, keys["lender_a"], firm).json()

    def features(d: dict[str, Any]) -> dict[str, Any]:
        got = c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["lender_a"]))
        return dict(got.json()["features"])

    f_before, f_after = features(before), features(after)
    changed = [n for n in f_before if f_before[n] != f_after[n]]
    assert changed  # the new decision sees the late record
    service = consent_service["app"].state.service.credit
    for d in (before, after):
        out = service.replay(d["decision_id"], catalog_model)
        assert out["pd_difference"] <= 1e-12, out
        assert out["feature_differences"] == []
    replayed = service.replay(before["decision_id"], catalog_model)
    assert pushed["ingestion_id"] not in replayed["ingestions"]
    assert (
        pushed["ingestion_id"] in service.replay(after["decision_id"], catalog_model)["ingestions"]
    )


@pytest.mark.postgres
def test_replicas_share_pushes_and_consents_on_postgresql(
    tmp_path: Any, catalog_model: ScoringModel, world: dict[str, Any]
) -> None:
    """Two replicas of the service on one PostgreSQL database: a push and a consent made
    through one are seen by the other at its next request."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from credit.keys import create_key
    from credit.settings import Settings
    from tests.api_support import fresh_pg_database

    with fresh_pg_database("tc_consent") as (url, _, _):
        apps = [
            create_app(
                settings=Settings(data_dir=tmp_path / f"r{i}", api_rate_limit=0, database_url=url),
                model_loader=lambda s: catalog_model,
            )
            for i in (1, 2)
        ]
        with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
            engine = apps[0].state.service.engine
            keys = {
                "market": create_key(engine, MARKET, "platform")[1],
                "customs": create_key(engine, CUSTOMS, "platform")[1],
                "lender_a": create_key(engine, "bank-a", "lender")[1],
            }
            firm = world["firm"]
            push_both(one, keys, world["records"])
            assert score(two, keys["lender_a"], firm).status_code == 404
            ask_and_approve(one, keys["lender_a"], firm)
            d = score(two, keys["lender_a"], firm)
            assert d.status_code == 200, d.text
            assert d.json()["sources"] == sorted([MARKET, CUSTOMS])
            again = push(two, keys["market"], {"payments": world["records"]["payments"][:5]})
            assert again["counts"]["payments"]["already_present"] == 5  # pushed via the other
        for app in apps:
            app.state.service.engine.dispose()
