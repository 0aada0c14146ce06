"""Portfolio monitoring through real HTTP: registration under the monitoring consent (the
others rejected with a reason), tenant isolation, and an end-to-end run whose alert is stored
and written to ``events`` as ``monitoring.alert`` in the same transaction; on SQLite and, when
it is reachable, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from credit.consent import ConsentStore
from credit.events import events
from credit.keys import create_key
from credit.portfolio import alerts
from credit.settings import Settings
from tests.api_support import fresh_pg_database, make_store, train_model
from tests.consent_support import grant, h

MARKET = "acme-market"
FIRMS = [f"F{i:04d}" for i in range(12)]


@pytest.fixture(params=["sqlite", "postgresql"])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with _Database(request.param) as url:
        settings = Settings(data_dir=tmp_path / "var", api_rate_limit=0, database_url=url)
        store = make_store()
        model = train_model()
        app = create_app(settings=settings, model_loader=lambda s: model, online_store=store)
        with TestClient(app) as c:
            engine = app.state.service.engine
            keys = {
                "a": create_key(engine, "bank-a", "lender")[1],
                "b": create_key(engine, "bank-b", "lender")[1],
                "market": create_key(engine, MARKET, "platform")[1],
                "reviewer": create_key(engine, "bank-a", "reviewer", holder="Rita")[1],
            }
            grant(engine, FIRMS[:10], "bank-a", provider=MARKET)
            grant(engine, FIRMS[:5], "bank-b", provider=MARKET)
            ConsentStore(engine).attest(  # a consent without the monitoring purpose
                FIRMS[10], "bank-a", ["credit_assessment"], 12, provider=MARKET, key_id=None,
                statement="scores only",
            )  # fmt: skip
            yield {"c": c, "keys": keys, "engine": engine, "store": store}
        engine.dispose()


class _Database:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._pg: Any = None

    def __enter__(self) -> str | None:
        if self.kind == "sqlite":
            return None
        self._pg = fresh_pg_database("tc_portfolio")
        url, _, _ = self._pg.__enter__()
        return str(url)

    def __exit__(self, *exc: Any) -> None:
        if self._pg is not None:
            self._pg.__exit__(*exc)


def _register(c: Any, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/v1/portfolio/firms", json=body, headers=h(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_registration_needs_the_monitoring_consent_and_tenants_never_mix(
    svc: dict[str, Any],
) -> None:
    c, keys = svc["c"], svc["keys"]
    got = _register(c, keys["a"], {"firm_ids": FIRMS, "exposures": {"F0000": 50000}})
    assert got["sent"] == 12 and got["registered"] == 10
    assert got["sent"] == got["registered"] + len(got["rejected"])
    assert {r["firm_id"] for r in got["rejected"]} == {"F0010", "F0011"}
    assert all("monitoring" in r["reason"] for r in got["rejected"])
    _register(c, keys["b"], {"firm_ids": FIRMS[:5]})
    a = c.get("/v1/portfolio/firms", headers=h(keys["a"])).json()
    b = c.get("/v1/portfolio/firms", headers=h(keys["b"])).json()
    assert a["total"] == 10 and b["total"] == 5
    assert next(f for f in a["firms"] if f["firm_id"] == "F0000")["exposure"] == 50000
    assert c.post("/v1/portfolio/runs", headers=h(keys["b"])).json()["scored"] == 5
    assert c.get("/v1/portfolio", headers=h(keys["a"])).json()["last_run"] is None
    assert c.get("/v1/portfolio", headers=h(keys["b"])).json()["totals"]["firms"] == 5
    # bank-b cannot remove bank-a's firms; a reviewer key may not read the portfolio
    assert c.delete("/v1/portfolio/firms/F0007", headers=h(keys["b"])).status_code == 404
    assert c.delete("/v1/portfolio/firms/F0007", headers=h(keys["a"])).status_code == 200
    assert c.get("/v1/portfolio", headers=h(keys["reviewer"])).status_code == 403
    bad = c.post(
        "/v1/portfolio/firms", json={"firm_ids": ["F0001"], "exposures": {"F9": 1}},
        headers=h(keys["a"]),
    )  # fmt: skip
    assert bad.status_code == 422, bad.text


def test_a_worse_firm_raises_alerts_stored_and_sent_as_events(svc: dict[str, Any]) -> None:
    c, keys, engine, store = svc["c"], svc["keys"], svc["engine"], svc["store"]
    _register(c, keys["a"], {"firm_ids": FIRMS[:10]})
    _register(c, keys["b"], {"firm_ids": FIRMS[:5]})
    first = c.post("/v1/portfolio/runs", headers=h(keys["a"])).json()
    assert (first["scored"], first["alerts"]) == (10, 0)
    firms = c.get("/v1/portfolio/firms", headers=h(keys["a"])).json()["firms"]
    target = min(firms, key=lambda f: f["pd"])["firm_id"]
    # the firm gets worse: new features in the store, and overdue supplier invoices pushed
    store.rows[target].append(
        (
            datetime(2025, 9, 30, tzinfo=UTC),
            {
                "late_share_180d": 1.0,
                "months_of_history": 1.0,
                "thin_file": 1.0,
                "settlements_90d": 50.0,
                "category": "electronics_digital",
            },
        )
    )
    push = {
        "records": {
            "firms": [
                {
                    "firm_id": target,
                    "registered_at": "2021-04-12",
                    "business_model": "b2c",
                    "main_category": "home_furnishings",
                    "home_region": "CN-ZJ",
                }
            ],
            "payments": [
                {
                    "payment_id": f"INV{i}",
                    "firm_id": target,
                    "kind": "supplier_payment",
                    "direction": "out",
                    "amount_usd": 900.0,
                    "currency": "USD",
                    "counterparty_id": "supplier-1",
                    "occurred_at": "2025-05-01",
                    "due_at": "2025-06-01",
                }
                for i in range(2)
            ],
        }
    }
    r = c.post("/v1/records", json=push, headers=h(keys["market"]))
    assert r.status_code == 200, r.text
    second = c.post("/v1/portfolio/runs", headers=h(keys["a"])).json()
    assert second["scored"] == 10 and second["alerts"] >= 2, second
    listed = c.get("/v1/portfolio/alerts", headers=h(keys["a"])).json()["alerts"]
    rules = {a["rule"] for a in listed}
    assert "overdue_invoices" in rules and rules & {"pd_ratio", "grade_down"}, rules
    assert {a["firm_id"] for a in listed} == {target}
    overdue = next(a for a in listed if a["rule"] == "overdue_invoices")
    assert (overdue["before"], overdue["after"]) == (0, 2)
    for a in listed:
        assert a["reasons"] and a["reasons"][0]["code"].startswith("R"), a
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.event_id, events.c.tenant, events.c.firm_id, events.c.data).where(
                events.c.type == "monitoring.alert"
            )
        ).all()
        stored = conn.execute(sa.select(alerts.c.event_id)).scalars().all()
    assert len(rows) == len(listed) == len(stored)
    assert {r.event_id for r in rows} == set(stored)
    assert {(r.tenant, r.firm_id) for r in rows} == {("bank-a", target)}
    data = rows[0].data
    assert {"rule", "before", "after", "reasons", "firm_id", "alert_id"} <= set(data)
    # bank-b watches the same firms and sees none of bank-a's alerts
    assert c.get("/v1/portfolio/alerts?status=all", headers=h(keys["b"])).json()["alerts"] == []
    summary = c.get("/v1/portfolio", headers=h(keys["a"])).json()
    assert summary["totals"]["firms"] == 10 and summary["open_alerts"]["total"] == len(listed)
    assert summary["migration"]["firms"] == 10
    assert sum(sum(row.values()) for row in summary["migration"]["matrix"].values()) == 10
    assert {r["grade"] for r in summary["by_grade"]} and summary["by_product"]
    page = c.get("/v1/portfolio/report", headers=h(keys["a"]))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "data:image/png;base64" in page.text and target in page.text
    # a third run with nothing new raises nothing new
    assert c.post("/v1/portfolio/runs", headers=h(keys["a"])).json()["alerts"] == 0
    # a handled alert is closed by its lender only, once, and leaves the open alerts
    aid = overdue["alert_id"]
    note = {"note": "Called the seller: the invoices are paid."}
    assert (
        c.post(f"/v1/portfolio/alerts/{aid}/close", json=note, headers=h(keys["b"])).status_code
        == 404
    )
    r = c.post(f"/v1/portfolio/alerts/{aid}/close", json=note, headers=h(keys["a"]))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["close_note"] == note["note"]
    assert r.json()["closed_by"] and r.json()["closed_at"]
    again = c.post(f"/v1/portfolio/alerts/{aid}/close", json=note, headers=h(keys["a"]))
    assert again.status_code == 409 and "closed already" in again.text
    assert (
        c.post(f"/v1/portfolio/alerts/{aid}/close", json={}, headers=h(keys["a"])).status_code
        == 422
    )
    still = c.get("/v1/portfolio", headers=h(keys["a"])).json()["open_alerts"]["total"]
    assert still == len(listed) - 1
    open_ids = {
        x["alert_id"] for x in c.get("/v1/portfolio/alerts", headers=h(keys["a"])).json()["alerts"]
    }
    assert aid not in open_ids


def test_a_run_reads_a_firm_only_while_its_monitoring_consent_holds(svc: dict[str, Any]) -> None:
    c, keys, engine = svc["c"], svc["keys"], svc["engine"]
    _register(c, keys["a"], {"firm_ids": FIRMS[:3]})
    store = ConsentStore(engine)
    grant_ = store.active("bank-a", FIRMS[1], "monitoring")
    assert grant_ is not None and grant_.consent_id is not None
    store.revoke(grant_.consent_id, "seller")
    run = c.post("/v1/portfolio/runs", headers=h(keys["a"])).json()
    assert run["watched"] == 3 and run["scored"] == 2, run
    (skipped,) = run["skipped"]
    assert skipped["firm_id"] == FIRMS[1] and "monitoring" in skipped["reason"]
    firms = {
        f["firm_id"]: f for f in c.get("/v1/portfolio/firms", headers=h(keys["a"])).json()["firms"]
    }
    assert firms[FIRMS[1]]["pd"] is None  # never scored: nothing of its data was read
