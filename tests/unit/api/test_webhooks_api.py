"""Webhooks through the API: register, list, test, delete; events and redelivery; a decision's
event delivered by the dispatcher inside the service to a real loopback receiver, signed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.settings import Settings
from tests.api_support import make_store, train_model
from tests.consent_support import grant_all, h
from tests.webhook_support import Receiver

FIRMS = [f"F{i:04d}" for i in range(20)]


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("wh"),
        api_rate_limit=0,
        webhooks_allow_loopback=True,
        webhooks_poll_seconds=0.05,
        webhooks_retry_base_seconds=0.05,
        webhooks_retry_max_seconds=0.2,
        webhooks_max_attempts=3,
    )
    model = train_model()
    app = create_app(settings=settings, model_loader=lambda s: model, online_store=make_store())
    rx = Receiver().start()
    with TestClient(app) as client:
        engine = app.state.service.engine
        keys = {
            name: create_key(engine, tenant, role)[1]
            for name, tenant, role in [
                ("a", "bank-a", "lender"),
                ("a_platform", "bank-a", "platform"),
                ("b", "bank-b", "lender"),
            ]
        }
        grant_all(engine, FIRMS, ("bank-a", "bank-b"))
        yield {"c": client, "keys": keys, "rx": rx}
    rx.stop()


def test_register_refuses_what_it_cannot_deliver_to(svc: dict[str, Any]) -> None:
    c, k = svc["c"], h(svc["keys"]["a"])
    bad = [
        ({"url": "http://hooks.example/x", "event_types": ["decision.created"]}, "https"),
        ({"url": "https://10.1.2.3/x", "event_types": ["decision.created"]}, "private"),
        ({"url": "https://hooks.example/x", "event_types": ["decision.made"]}, "event_types"),
        ({"url": "https://hooks.example/x", "event_types": []}, "event_types"),
    ]
    for body, said in bad:
        r = c.post("/v1/webhooks", json=body, headers=k)
        assert r.status_code == 422, r.text
        assert said in r.text
    assert c.post("/v1/webhooks", json=bad[0][0]).status_code == 401


def test_a_decision_is_delivered_signed_and_logged(svc: dict[str, Any]) -> None:
    c, keys, rx = svc["c"], svc["keys"], svc["rx"]
    a, b = h(keys["a"]), h(keys["b"])
    r = c.post(
        "/v1/webhooks",
        json={"url": rx.url, "event_types": ["decision.created"], "description": "risk desk"},
        headers=a,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    listed = c.get("/v1/webhooks", headers=a).json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [hook["webhook_id"]]
    assert "secret" not in listed[0]  # shown once
    assert c.get("/v1/webhooks", headers=b).json()["webhooks"] == []

    d = c.post("/v1/score", json={"firm_id": "F0003"}, headers=a).json()
    wait_for(lambda: any(x["data"]["decision_id"] == d["decision_id"] for x in rx.bodies()))
    first = {e for e in rx.ids() if e.startswith("msg_")}
    (got,) = [x for x in rx.verified(secret, first) if x["data"]["decision_id"] == d["decision_id"]]
    assert got["type"] == "decision.created"
    assert got["data"]["grade"] == d["grade"] and got["data"]["pd"] == d["pd"]
    assert got["data"]["firm_id"] == "F0003"

    def delivered() -> list[dict[str, Any]]:
        evs = c.get("/v1/events?type=decision.created", headers=a).json()["events"]
        return [e for e in evs if e["data"]["decision_id"] == d["decision_id"]]

    wait_for(lambda: delivered()[0]["deliveries"][0]["status"] == "delivered")
    (ev,) = delivered()
    (dl,) = ev["deliveries"]
    assert dl["attempts"] == 1 and dl["attempt_log"][0]["status_code"] == 200
    assert dl["attempt_log"][0]["latency_ms"] >= 0
    assert ev["event_id"] in rx.ids()
    # bank-b sees none of bank-a's events, and cannot redeliver them
    assert all(
        e["data"].get("decision_id") != d["decision_id"]
        for e in c.get("/v1/events", headers=b).json()["events"]
    )
    assert c.post(f"/v1/events/{ev['event_id']}/redeliver", headers=b).status_code == 404
    # redelivery: the same webhook-id once more
    n = rx.ids().count(ev["event_id"])
    r = c.post(f"/v1/events/{ev['event_id']}/redeliver", headers=a)
    assert r.status_code == 202, r.text
    wait_for(lambda: rx.ids().count(ev["event_id"]) == n + 1)


def test_test_event_and_delete(svc: dict[str, Any]) -> None:
    c, keys, rx = svc["c"], svc["keys"], svc["rx"]
    p = h(keys["a_platform"])
    hook = c.post(
        "/v1/webhooks", json={"url": rx.url, "event_types": ["offer.updated"]}, headers=p
    ).json()
    wid = hook["webhook_id"]
    assert c.post(f"/v1/webhooks/{wid}/test", headers=h(keys["b"])).status_code == 404
    r = c.post(f"/v1/webhooks/{wid}/test", headers=p)
    assert r.status_code == 202, r.text
    eid = r.json()["event_id"]
    wait_for(lambda: eid in rx.ids())
    (body,) = rx.verified(hook["secret"], {eid})
    assert body["type"] == "webhook.test"
    assert body["data"]["webhook_id"] == wid
    assert c.delete(f"/v1/webhooks/{wid}", headers=h(keys["b"])).status_code == 404
    r = c.delete(f"/v1/webhooks/{wid}", headers=p)
    assert r.status_code == 200 and r.json()["deleted_at"]
    assert c.delete(f"/v1/webhooks/{wid}", headers=p).status_code == 404
    assert c.post(f"/v1/webhooks/{wid}/test", headers=p).status_code == 404


def test_events_filter_and_page(svc: dict[str, Any]) -> None:
    c, a = svc["c"], h(svc["keys"]["a"])
    for f in ("F0004", "F0005", "F0006"):
        assert c.post("/v1/score", json={"firm_id": f}, headers=a).status_code == 200
    page = c.get("/v1/events?type=decision.created&limit=2", headers=a).json()
    assert len(page["events"]) == 2 and page["next_after"] == page["events"][-1]["event_id"]
    rest = c.get(f"/v1/events?type=decision.created&after={page['next_after']}", headers=a)
    ids = [e["event_id"] for e in page["events"] + rest.json()["events"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    only = c.get("/v1/events?firm_id=F0005", headers=a).json()["events"]
    assert only and all(e["firm_id"] == "F0005" for e in only)
    assert c.get("/v1/events?type=nope", headers=a).status_code == 422
    # consent grants of the fixture are bank-a's events too
    granted = c.get("/v1/events?type=consent.granted&limit=1000", headers=a).json()["events"]
    assert {e["firm_id"] for e in granted} >= set(FIRMS)


def test_the_openapi_document_describes_every_payload(svc: dict[str, Any]) -> None:
    doc = svc["c"].get("/openapi.json").json()
    assert set(doc["webhooks"]) == {
        "decision.created",
        "offer.updated",
        "consent.granted",
        "consent.declined",
        "consent.revoked",
        "review.completed",
        "monitoring.alert",
    }
    op = doc["webhooks"]["decision.created"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    schema = doc["components"]["schemas"][ref]
    assert set(schema["properties"]) == {"type", "timestamp", "data"}
    assert "webhook-signature" in op["description"]


def test_cli_lists_events(svc: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from credit.cli import app

    c, a = svc["c"], h(svc["keys"]["a"])
    data_dir = c.app.state.service.settings.data_dir  # type: ignore[attr-defined]
    res = CliRunner().invoke(
        app,
        ["events", "list", "--tenant", "bank-a", "--type", "decision.created"],
        env={"TRADECREDIT_DATA_DIR": str(data_dir)},
    )
    assert res.exit_code == 0, res.output
    assert "decision.created" in res.output
    assert c.get("/v1/events", headers=a).status_code == 200
