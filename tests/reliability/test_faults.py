"""Faults: the registry down at startup, a champion promoted and reloaded under load, corrupt
and incompatible artifacts, and the audit database going away mid-load.

(Ingestion killed halfway through a file is in ``test_ingest_kill.py``.)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.scoring import ScoringModel
from credit.settings import Settings, get_settings
from tests.api_support import fresh_pg_database, make_store, register_champion
from tests.consent_support import grant
from tests.reliability.conftest import FIRMS, h, running_service

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register_bundle(bundle: Path, tracking_uri: str, workdir: Path) -> str:
    """Register an arbitrary bundle folder (possibly broken) and make it the champion."""
    from mlflow.tracking import MlflowClient

    from credit.scoring import MODEL_NAME

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    exp = client.get_experiment_by_name("api-tests")
    assert exp is not None, "register a valid champion first"
    run = client.create_run(exp.experiment_id)
    client.log_artifacts(run.info.run_id, str(bundle), "bundle")
    client.set_terminated(run.info.run_id)
    mv = client.create_model_version(
        MODEL_NAME, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id
    )
    client.set_registered_model_alias(MODEL_NAME, "champion", mv.version)
    return str(mv.version)


@contextlib.contextmanager
def service_on_registry(data_dir: Path) -> Iterator[tuple[TestClient, Any, dict[str, str]]]:
    settings = get_settings()
    settings = Settings(**{**settings.model_dump(), "api_rate_limit": 0})
    app = create_app(settings=settings, online_store=make_store())
    with TestClient(app, raise_server_exceptions=False) as c:
        assert app.state.service.models.wait(60)  # the model loads in the background
        engine = app.state.service.engine
        keys = {
            "lender": create_key(engine, "bank-a", "lender")[1],
            "admin": create_key(engine, "ops", "admin")[1],
        }
        grant(engine, FIRMS, "bank-a")
        yield c, app, keys


def test_registry_unreachable_at_startup_serves_the_cached_champion(
    data_dir: Path, tiny_model: ScoringModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = get_settings()
    s.ensure_data_dir()
    version = register_champion(tiny_model, s.tracking_uri, s.data_dir)
    with service_on_registry(data_dir) as (c, _, _keys):
        assert c.get("/readyz").json()["checks"]["model"]["loaded_from"] == "registry"
    # the registry is now an address where nothing listens
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    get_settings.cache_clear()
    with service_on_registry(data_dir) as (c, _, keys):
        ready = c.get("/readyz")
        assert ready.status_code == 200
        model = ready.json()["checks"]["model"]
        assert model["loaded_from"] == "cache" and model["version"] == version
        r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["lender"]))
        assert r.status_code == 200 and r.json()["model"]["version"] == version


def _hammer(
    c: TestClient, key: str, stop: threading.Event, out: list[dict[str, Any]], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    i = 0
    while not stop.is_set() and time.monotonic() < deadline and i < 2000:
        i += 1
        t0 = time.monotonic()
        if i % 3 == 0:
            r = c.post(
                "/v1/score/batch",
                json={"items": [{"firm_id": f"F{(i + k) % 20:04d}"} for k in range(3)]},
                headers=h(key),
            )
        else:
            r = c.post("/v1/score", json={"firm_id": f"F{i % 20:04d}"}, headers=h(key))
        out.append({"status": r.status_code, "body": r.json(), "t0": t0, "t": time.monotonic()})


def test_promotion_under_load_and_broken_artifacts_are_refused(
    data_dir: Path, tiny_model: ScoringModel, tiny_model_v2: ScoringModel
) -> None:
    s = get_settings()
    s.ensure_data_dir()
    v1 = register_champion(tiny_model, s.tracking_uri, s.data_dir)
    with service_on_registry(data_dir) as (c, app, keys):
        results: list[list[dict[str, Any]]] = [[] for _ in range(4)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hammer, args=(c, keys["lender"], stop, out, 30.0))
            for out in results
        ]
        for t in threads:
            t.start()
        time.sleep(1.5)
        v2 = register_champion(tiny_model_v2, s.tracking_uri, s.data_dir / "v2")
        r = c.post("/v1/admin/reload", headers=h(keys["admin"]))
        reloaded_at = time.monotonic()
        assert r.status_code == 200, r.text
        assert r.json()["previous"]["version"] == v1 and r.json()["current"]["version"] == v2
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(60)
        flat = [x for out in results for x in out]
        assert len(flat) >= 20
        assert all(x["status"] == 200 for x in flat), [x for x in flat if x["status"] != 200][:3]
        seen = set()
        for out in results:
            saw_v2 = False
            for x in out:
                b = x["body"]
                if "results" in b:  # a batch: one version for the batch, named by every item
                    versions = {it["decision"]["model"]["version"] for it in b["results"]}
                    assert versions == {b["model"]["version"]}, b
                    version = b["model"]["version"]
                else:
                    version = b["model"]["version"]
                assert version in (v1, v2)
                seen.add(version)
                if saw_v2:  # a request sent after a v2 answer never gets v1
                    assert version == v2
                saw_v2 = saw_v2 or version == v2
                if x["t0"] > reloaded_at:  # sent after the reload answered
                    assert version == v2
        assert seen == {v1, v2}
        # the audit log names the version that made each decision
        decided = {}
        for x in flat:
            b = x["body"]
            for d in [it["decision"] for it in b["results"]] if "results" in b else [b]:
                decided[d["decision_id"]] = d["model"]["version"]
        with app.state.service.engine.connect() as conn:
            rows = dict(
                conn.execute(sa.text("SELECT decision_id, model_version FROM decisions")).fetchall()
            )
        assert rows == decided

        # broken champions are refused at load with a clear message; v2 stays in service
        good = tiny_model_v2.to_bundle(data_dir / "good_bundle")
        cases = {
            "corrupt": ("model.txt", "this is not a LightGBM model\x00\x01", "LightGBMError"),
            # lightgbm 4.7 segfaults on this one unless the scoring core checks it first
            "truncated": ("model.txt", None, "truncated or corrupt"),
            "newer format": ("meta.json", "format", "newer than this code"),
            "missing file": ("calibrator.json", "delete", "missing calibrator.json"),
        }
        for name, (file, change, expect) in cases.items():
            bundle = data_dir / f"bad_{name.replace(' ', '_')}"
            shutil.copytree(good, bundle)
            target = bundle / file
            if change is None:
                target.write_text(target.read_text()[: len(target.read_text()) // 3])
            elif change == "format":
                meta = json.loads(target.read_text())
                meta["format"] = 99
                target.write_text(json.dumps(meta))
            elif change == "delete":
                target.unlink()
            else:
                target.write_text(change)
            bad = register_bundle(bundle, s.tracking_uri, data_dir / f"w_{name}")
            r = c.post("/v1/admin/reload", headers=h(keys["admin"]))
            assert r.status_code == 503, (name, r.text)
            detail = r.json()["detail"]
            assert "old model kept" in detail and expect in detail, (name, detail)
            card = c.get("/v1/model", headers=h(keys["lender"])).json()
            assert card["version"] == v2 != bad
            ok = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["lender"]))
            assert ok.status_code == 200 and ok.json()["model"]["version"] == v2
            assert c.get("/readyz").json()["checks"]["model"]["version"] == v2


@pytest.mark.postgres
def test_audit_database_outage_mid_load(tmp_path: Path, tiny_model: ScoringModel) -> None:
    with (
        fresh_pg_database("tc_outage") as (url, name, admin),
        running_service(tmp_path / "svc", tiny_model, database_url=url) as svc,
    ):
        c, key, engine = svc["client"], svc["keys"]["a_lender"], svc["engine"]
        results: list[list[dict[str, Any]]] = [[] for _ in range(4)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hammer, args=(c, key, stop, out, 40.0)) for out in results
        ]
        for t in threads:
            t.start()
        time.sleep(1.5)
        with admin.connect() as conn:  # the database goes away (the server stays up)
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": name},
            )
        down_at = time.monotonic()
        time.sleep(2.0)
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["audit_log"]["ok"] is False
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        up_at = time.monotonic()
        # it recovers by itself: no restart, no reload
        deadline = time.monotonic() + 20
        recovered = False
        while time.monotonic() < deadline:
            r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(key))
            if r.status_code == 200:
                recovered = True
                break
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(60)
        assert recovered, "the service did not recover after the database came back"
        assert c.get("/readyz").status_code == 200
        flat = [x for out in results for x in out]
        statuses = {x["status"] for x in flat}
        assert statuses <= {200, 503}, statuses
        failed = [x for x in flat if x["status"] == 503]
        assert failed, "the outage produced no 503"
        assert all(down_at - 0.5 <= x["t"] for x in failed)
        assert all(x["body"]["error"] == "unavailable" for x in failed)
        assert all("decision_id" not in x["body"] and "results" not in x["body"] for x in failed)
        assert any(x["status"] == 200 and x["t"] > up_at for x in flat)
        # every decision returned is in the audit log, and nothing else is; a batch item that
        # could not be read while the database was down (the firm's providers are kept there)
        # carries its own 503, as a request of its own would get
        returned = set()
        for x in flat:
            if x["status"] == 200:
                b = x["body"]
                items = b.get("results", [{"status": 200, "decision": b}])
                for it in items:
                    if it["status"] == 200:
                        returned.add(it["decision"]["decision_id"])
                        continue
                    assert it["status"] == 503 and it["error"]["error"] == "unavailable", it
                    assert it.get("decision") is None and down_at - 0.5 <= x["t"], it
        returned.add(r.json()["decision_id"])
        with engine.connect() as conn:
            stored = {row[0] for row in conn.execute(sa.text("SELECT decision_id FROM decisions"))}
        assert stored == returned
        print(f"\naudit outage: {len(flat)} requests, {len(failed)} got 503, rows {len(stored)}")
