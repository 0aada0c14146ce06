"""The service end to end: a registered champion in the local MLflow registry, features in
the online store, real HTTP (TestClient and `credit serve` on loopback), the CLI and batch
scoring giving the same decision, and the audit log on PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from credit.cli import app as cli
from credit.keys import create_key
from credit.settings import Settings, get_settings
from tests.api_support import (
    catalog_frame,
    fresh_pg_database,
    make_store,
    register_champion,
    train_catalog_model,
    train_model,
)
from tests.consent_support import grant

pytestmark = pytest.mark.integration


@pytest.fixture
def champion(data_dir: Path) -> dict[str, Any]:
    """A champion registered in this test's MLflow store and features materialized online."""
    from features.online import OnlineStore

    s = get_settings()
    s.ensure_data_dir()
    model = train_catalog_model()
    version = register_champion(model, s.tracking_uri, s.data_dir)
    early = catalog_frame(12, "2025-03-31", seed=1)
    late = catalog_frame(12, "2025-06-30", seed=2)
    OnlineStore(s.service_database_url).write(pd.concat([early, late], ignore_index=True))
    return {"version": version, "early": early, "late": late}


@pytest.mark.slow
def test_api_cli_and_batch_give_the_same_decision(champion: dict[str, Any], tmp_path: Path) -> None:
    app = create_app()
    with TestClient(app) as c:
        assert app.state.service.models.wait(60)  # loaded in the background
        _, key = create_key(app.state.service.engine, "bank-a", "lender")
        grant(app.state.service.engine, ["F00003"], "bank-a")
        r = c.post(
            "/v1/score",
            json={"firm_id": "F00003", "as_of": "2025-04-30"},
            headers={"X-API-Key": key},
        )
        assert r.status_code == 200, r.text
        api = r.json()
        assert api["model"]["version"] == champion["version"]
        assert api["as_of"] == "2025-03-31T00:00:00Z"
        assert api["reasons"] and all(x["text"] for x in api["reasons"])
        assert c.get("/readyz").json()["ready"] is True

    runner = CliRunner()
    res = runner.invoke(cli, ["score", "--firm", "F00003", "--as-of", "2025-04-30"])
    assert res.exit_code == 0, res.output
    cli_decision = json.loads(res.stdout[res.stdout.index("{") :])
    for k in ("firm_id", "as_of", "pd", "score", "grade", "reasons", "model", "data"):
        assert cli_decision[k] == api[k], k

    table = tmp_path / "features.parquet"
    champion["early"].to_parquet(table)
    out = tmp_path / "scores.parquet"
    res = runner.invoke(cli, ["score", "--batch", str(table), "--out", str(out)])
    assert res.exit_code == 0, res.output
    row = pd.read_parquet(out).set_index("firm_id").loc["F00003"]
    assert abs(row["pd"] - api["pd"]) < 1e-12
    assert (int(row["score"]), row["grade"]) == (api["score"], api["grade"])
    codes = [row[f"reason_{k}"] for k in range(1, 5) if isinstance(row[f"reason_{k}"], str)]
    assert codes == [x["code"] for x in api["reasons"]]

    everything = tmp_path / "online.csv"
    res = runner.invoke(cli, ["score", "--batch", "online", "--out", str(everything)])
    assert res.exit_code == 0, res.output
    latest = pd.read_csv(everything).set_index("firm_id")
    assert len(latest) == 12 and latest["as_of"].str.startswith("2025-06-30").all()

    res = runner.invoke(cli, ["score", "--firm", "NOPE"])
    assert res.exit_code == 1 and "no features" in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_credit_serve_on_loopback(champion: dict[str, Any], data_dir: Path) -> None:
    import httpx

    runner = CliRunner()
    res = runner.invoke(cli, ["keys", "create", "--tenant", "bank-a", "--role", "lender"])
    assert res.exit_code == 0, res.output
    key = res.stdout.strip().splitlines()[-1]
    assert key.startswith("tck_")
    listed = runner.invoke(cli, ["keys", "list", "--json"])
    assert key not in listed.output and '"tenant": "bank-a"' in listed.output
    from credit.db import get_engine, upgrade

    engine = get_engine()  # the service database the server will use
    upgrade(engine)
    grant(engine, ["F00001"], "bank-a")

    port = _free_port()
    env = {**os.environ, "TRADECREDIT_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "credit.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        else:
            pytest.fail("service not ready within 60 s")
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        r = httpx.post(f"{base}/v1/score", json={"firm_id": "F00001"}, headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["model"]["version"] == champion["version"]
        assert httpx.post(f"{base}/v1/score", json={"firm_id": "F00001"}).status_code == 401
        assert "tradecredit_http_requests_total" in httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert key not in out  # the key never reaches the logs
    assert '"route": "/v1/score"' in out and '"request_id"' in out


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (skipped when the server is unreachable)."""
    with fresh_pg_database("tc_api") as (url, _, _):
        try:
            yield url
        finally:
            from credit.db import dispose_engines

            dispose_engines()  # before the database is dropped


@pytest.mark.postgres
def test_audit_log_and_keys_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from credit.db import current_revision, head_revision, make_engine, upgrade

    monkeypatch.setenv("TRADECREDIT_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    model = train_model()
    settings = Settings(data_dir=tmp_path / "pg", database_url=pg_url, api_rate_limit=0)
    app = create_app(settings=settings, model_loader=lambda s: model, online_store=make_store())
    with TestClient(app) as c:
        engine = app.state.service.engine
        assert engine.dialect.name == "postgresql" and current_revision(engine) == head_revision()
        upgrade(make_engine(pg_url))  # idempotent
        _, a = create_key(engine, "bank-a", "lender")
        _, b = create_key(engine, "bank-b", "lender")
        grant(engine, ["F0001"], "bank-a")
        d = c.post(
            "/v1/score", json={"firm_id": "F0001", "explain": "full"}, headers={"X-API-Key": a}
        ).json()
        ex = d["explanation"]
        assert abs(ex["base_value"] + sum(ex["contributions"].values()) - ex["raw_log_odds"]) < 1e-6
        got = c.get(f"/v1/decisions/{d['decision_id']}", headers={"X-API-Key": a}).json()
        assert (got["pd"], got["grade"], got["reasons"]) == (d["pd"], d["grade"], d["reasons"])
        assert got["features"]["category"] in ("food", "cosmetics", "electronics_digital")
        assert (
            c.get(f"/v1/decisions/{d['decision_id']}", headers={"X-API-Key": b}).status_code == 404
        )
        with engine.begin() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one()
            conn.execute(sa.text("ALTER TABLE decisions RENAME TO decisions_away"))
        try:
            r = c.post("/v1/score", json={"firm_id": "F0001"}, headers={"X-API-Key": a})
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE decisions_away RENAME TO decisions"))
        assert r.status_code == 503 and "decision_id" not in r.text
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one() == n
        assert (
            c.post("/v1/score", json={"firm_id": "F0001"}, headers={"X-API-Key": a}).status_code
            == 200
        )  # recovers by itself


POSTED = {
    "as_of": "2025-06-30",
    "firm": {
        "firm_id": "F123",
        "registered_at": "2021-04-12",
        "business_model": "b2c",
        "main_category": "home_furnishings",
        "home_region": "CN-ZJ",
    },
    "records": {
        "customs": [
            {
                "declaration_id": f"D{i}",
                "firm_id": "F123",
                "declared_at": f"2025-0{1 + i % 5}-1{i % 9}",
                "direction": "export",
                "regime": "9610",
                "hs_code": "940360",
                "origin_country": "CN",
                "destination_country": "US",
                "value_usd": 1000.0 + 50 * i,
                "quantity": 12,
                "status": "cleared",
                "tax_refund_usd": 0,
                "tax_refund_status": "none",
            }
            for i in range(12)
        ],
        "payments": [
            {
                "payment_id": f"P{i}",
                "firm_id": "F123",
                "kind": "settlement",
                "direction": "in",
                "amount_usd": 900.0 + 10 * i,
                "currency": "USD",
                "counterparty_id": "amazon",
                "occurred_at": f"2025-0{1 + i % 5}-2{i % 9}",
                "paid_at": f"2025-0{1 + i % 5}-2{i % 9}",
            }
            for i in range(12)
        ],
    },
}


@pytest.mark.slow
def test_posted_records_are_scored_through_the_online_feature_path(
    champion: dict[str, Any],
) -> None:
    import features
    from credit.decisions import decide, to_utc
    from credit.scoring import ScoringModel

    app = create_app()
    with TestClient(app) as c:
        assert app.state.service.models.wait(60)  # loaded in the background
        engine = app.state.service.engine
        _, key = create_key(engine, "bank-a", "lender")
        r = c.post("/v1/score", json=POSTED, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        body = r.json()
        got = c.get(f"/v1/decisions/{body['decision_id']}", headers={"X-API-Key": key}).json()
    assert body["firm_id"] == "F123" and got["source"] == "posted"
    model = ScoringModel.load(tracking_uri=get_settings().tracking_uri)
    feats = features.compute(
        {k: v for k, v in POSTED["records"].items()}, to_utc("2025-06-30"), firm=POSTED["firm"]
    )
    (expected,) = decide(model, [("F123", to_utc("2025-06-30"), feats)])
    assert body["pd"] == expected.pd and body["score"] == expected.score
    assert body["data"]["history_months"] == feats["months_of_history"]


@pytest.mark.slow
def test_restart_with_the_registry_unreachable_serves_the_cached_champion(
    champion: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app()
    with TestClient(app) as c:
        assert app.state.service.models.wait(60)  # loaded in the background
        model = c.get("/readyz").json()["checks"]["model"]
        assert model["loaded_from"] == "registry"
        _, key = create_key(app.state.service.engine, "bank-a", "lender")
        grant(app.state.service.engine, ["F00002"], "bank-a")
    # the tracking server is down (nothing listens on the port): the local copy carries on
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    get_settings.cache_clear()
    app = create_app()
    with TestClient(app) as c:
        assert app.state.service.models.wait(60)  # loaded in the background
        ready = c.get("/readyz").json()
        assert ready["ready"] is True
        assert ready["checks"]["model"]["loaded_from"] == "cache"
        assert ready["checks"]["model"]["version"] == champion["version"]
        r = c.post("/v1/score", json={"firm_id": "F00002"}, headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["model"]["version"] == champion["version"]
