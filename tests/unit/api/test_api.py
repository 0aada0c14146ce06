"""The scoring service through real HTTP (TestClient): success paths, every error code, roles,
tenant isolation, the audit log, SHAP additivity, reload under load, logs."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from api.schemas import BatchResponse, DecisionOut
from credit.keys import create_key, revoke_key
from credit.scoring import ScoringModel
from credit.settings import Settings
from tests.api_support import fresh_pg_database, make_store, train_model
from tests.consent_support import grant, grant_all

#: The firms of ``make_store()``: every tenant that scores here has a consent for each.
FIRMS = [f"F{i:04d}" for i in range(20)]


@pytest.fixture(scope="module")
def model() -> ScoringModel:
    return train_model(version="1")


@pytest.fixture(scope="module")
def model_v2() -> ScoringModel:
    return train_model(seed=7, n_trees=20, version="2")


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    """None (embedded SQLite) or the URL of a fresh PostgreSQL database, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    with fresh_pg_database("tc_api") as (url, _, _):
        yield url


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def service(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    model: ScoringModel,
) -> Iterator[dict[str, Any]]:
    with database(request.param) as url:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("svc"), api_rate_limit=0, database_url=url
        )
        store = make_store()
        app = create_app(settings=settings, model_loader=lambda s: model, online_store=store)
        with TestClient(app) as client:
            engine = app.state.service.engine
            keys = {
                name: create_key(engine, tenant, role)[1]
                for name, tenant, role in [
                    ("a_lender", "bank-a", "lender"),
                    ("a_platform", "bank-a", "platform"),
                    ("b_lender", "bank-b", "lender"),
                    ("admin", "ops", "admin"),
                ]
            }
            grant_all(engine, FIRMS, ("bank-a", "bank-b", "ops"))
            yield {"client": client, "app": app, "keys": keys, "engine": engine, "store": store}
        engine.dispose()


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def audit_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM decisions")).mappings()]


# --- success paths -------------------------------------------------------------------------


def test_score_by_firm_id_returns_a_recorded_decision(service: dict[str, Any]) -> None:
    c, keys, engine = service["client"], service["keys"], service["engine"]
    before = len(audit_rows(engine))
    r = c.post("/v1/score", json={"firm_id": "F0003"}, headers=h(keys["a_lender"]))
    assert r.status_code == 200, r.text
    d = DecisionOut.model_validate(r.json())
    assert d.firm_id == "F0003"
    assert d.as_of.isoformat().startswith("2025-06-30")  # latest materialized features
    assert d.model.version == "1" and d.model.name == "tradecredit-pd"
    assert 300 <= d.score <= 850 and d.grade in "ABCDEF" and 0 < d.pd < 1
    assert len(d.reasons) <= 4
    assert all(r.contribution > 0 for r in d.reasons)
    assert [r.contribution for r in d.reasons] == sorted(
        (r.contribution for r in d.reasons), reverse=True
    )
    assert r.headers["x-request-id"]
    rows = audit_rows(engine)
    assert len(rows) == before + 1
    row = next(x for x in rows if x["decision_id"] == d.decision_id)
    assert row["tenant"] == "bank-a" and row["firm_id"] == "F0003"
    assert row["pd"] == pytest.approx(d.pd, abs=0) and row["score"] == d.score
    assert row["grade"] == d.grade and row["model_version"] == "1"
    assert len(row["request_hash"]) == 64


def test_bearer_header_is_accepted(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    r = c.post(
        "/v1/score",
        json={"firm_id": "F0001"},
        headers={"Authorization": f"Bearer {keys['a_lender']}"},
    )
    assert r.status_code == 200


def test_as_of_selects_the_features_known_then(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    early = c.post(
        "/v1/score", json={"firm_id": "F0002", "as_of": "2025-04-15"}, headers=h(keys["a_lender"])
    ).json()
    late = c.post("/v1/score", json={"firm_id": "F0002"}, headers=h(keys["a_lender"])).json()
    assert early["as_of"] == "2025-03-31T00:00:00Z" and late["as_of"] == "2025-06-30T00:00:00Z"
    too_early = c.post(
        "/v1/score", json={"firm_id": "F0002", "as_of": "2024-01-01"}, headers=h(keys["a_lender"])
    )
    assert too_early.status_code == 404


def test_shap_contributions_add_up_to_the_raw_log_odds(
    service: dict[str, Any], model: ScoringModel
) -> None:
    c, keys = service["client"], service["keys"]
    for firm in ("F0000", "F0005", "F0011"):
        body = c.post(
            "/v1/score", json={"firm_id": firm, "explain": "full"}, headers=h(keys["a_lender"])
        ).json()
        ex = body["explanation"]
        total = ex["base_value"] + sum(ex["contributions"].values())
        assert abs(total - ex["raw_log_odds"]) < 1e-6
        # ... and the raw log-odds are the booster's own for the stored feature vector
        _, feats = service["store"].get(firm)
        from credit.decisions import encode

        raw = model.booster.predict(encode(model, [feats]), raw_score=True)[0]
        assert abs(raw - ex["raw_log_odds"]) < 1e-9
        top = [r["feature"] for r in body["reasons"]]
        positive = sorted(
            (f for f, v in ex["contributions"].items() if v > 0),
            key=lambda f: -ex["contributions"][f],
        )
        assert top == positive[:4]


def test_explain_none_scores_without_reasons(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    a = c.post("/v1/score", json={"firm_id": "F0004"}, headers=h(keys["a_lender"])).json()
    b = c.post(
        "/v1/score", json={"firm_id": "F0004", "explain": "none"}, headers=h(keys["a_lender"])
    ).json()
    assert b["reasons"] == [] and b["pd"] == a["pd"] and b["score"] == a["score"]


def test_batch_scores_valid_items_and_reports_each_invalid_one(service: dict[str, Any]) -> None:
    c, keys, engine = service["client"], service["keys"], service["engine"]
    before = len(audit_rows(engine))
    items = [
        {"firm_id": "F0001"},
        {"firm_id": "NOPE"},  # unknown firm -> 404
        {"firm_id": "bad id!"},  # breaks the id pattern -> 422
        {"firm_id": "F0002", "explain": "full"},
        {"unexpected": 1},  # -> 422
    ]
    r = c.post("/v1/score/batch", json={"items": items}, headers=h(keys["a_lender"]))
    assert r.status_code == 200, r.text
    body = BatchResponse.model_validate(r.json())
    assert (body.scored, body.failed) == (2, 3)
    assert [x.status for x in body.results] == [200, 404, 422, 200, 422]
    assert body.results[2].error is not None
    assert body.results[2].error.detail[0]["loc"] == "items.2.firm_id"
    assert body.results[3].decision is not None and body.results[3].decision.explanation
    single = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_lender"])).json()
    assert body.results[0].decision is not None
    assert body.results[0].decision.pd == single["pd"]
    assert len(audit_rows(engine)) == before + 3  # two from the batch, one single


def test_batch_size_is_bounded(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    r = c.post(
        "/v1/score/batch",
        json={"items": [{"firm_id": "F0001"}] * 1001},
        headers=h(keys["a_lender"]),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == "body.items"
    assert (
        c.post("/v1/score/batch", json={"items": []}, headers=h(keys["a_lender"])).status_code
        == 422
    )


def test_get_decision_for_its_tenant_only(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    d = c.post("/v1/score", json={"firm_id": "F0006"}, headers=h(keys["a_lender"])).json()
    mine = c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["a_lender"]))
    assert mine.status_code == 200
    got = mine.json()
    assert (got["pd"], got["score"], got["grade"]) == (d["pd"], d["score"], d["grade"])
    assert got["reasons"] == d["reasons"] and got["model"] == d["model"]
    assert set(got["features"]) == {
        "late_share_180d",
        "months_of_history",
        "thin_file",
        "settlements_90d",
        "category",
    }
    # same tenant, other role: allowed
    assert (
        c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["a_platform"])).status_code == 200
    )
    other = c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["b_lender"]))
    assert other.status_code == 404  # not 403: ids leak nothing
    unknown = c.get("/v1/decisions/dec_" + "0" * 32, headers=h(keys["a_lender"]))
    assert unknown.status_code == 404
    assert other.json()["detail"] == unknown.json()["detail"].replace(
        "0" * 32, d["decision_id"][4:]
    )
    assert c.get("/v1/decisions/not-an-id", headers=h(keys["a_lender"])).status_code == 422


def test_model_card_and_health(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    card = c.get("/v1/model", headers=h(keys["a_platform"])).json()
    assert card["version"] == "1" and card["features"][0] == "late_share_180d"
    assert card["scale"]["pdo"] == 20.0 and card["trained_at"] == "2026-01-01T00:00:00Z"
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["model"]["version"] == "1"
    metrics = c.get("/metrics").text
    assert (
        'tradecredit_http_requests_total{method="POST",route="/v1/score",status="200"}' in metrics
    )
    assert "tradecredit_decision_score_bucket" in metrics
    assert "tradecredit_decisions_total{grade=" in metrics


def test_openapi_has_an_example_on_every_endpoint(service: dict[str, Any]) -> None:
    c = service["client"]
    assert c.get("/docs").status_code == 200
    spec = c.get("/openapi.json").json()
    mine = {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/score",
        "/v1/score/batch",
        "/v1/decisions/{decision_id}",
        "/v1/model",
        "/v1/admin/reload",
    }
    assert mine <= set(spec["paths"])
    for path, ops in spec["paths"].items():
        if path not in mine:  # other resources' routers test their own docs
            continue
        for method, op in ops.items():
            ok = op["responses"].get("200", {}).get("content", {})
            has_example = any("example" in v or "examples" in v for v in ok.values())
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if body:
                schema_ref = body.get("schema", {}).get("$ref", "")
                has_body_example = "examples" in body or (
                    schema_ref
                    and "examples" in spec["components"]["schemas"][schema_ref.split("/")[-1]]
                )
                assert has_body_example, f"{method} {path} request has no example"
            assert has_example, f"{method} {path} has no response example"


# --- errors ----------------------------------------------------------------------------------


def test_401_for_missing_wrong_and_revoked_keys(service: dict[str, Any]) -> None:
    c, engine = service["client"], service["engine"]
    assert c.post("/v1/score", json={"firm_id": "F0001"}).status_code == 401
    wrong = c.post(
        "/v1/score", json={"firm_id": "F0001"}, headers=h("tck_000000000000_" + "a" * 43)
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    key, plaintext = create_key(engine, "bank-c", "lender")
    grant(engine, ["F0001"], "bank-c")
    assert c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(plaintext)).status_code == 200
    revoke_key(engine, key.key_id)
    assert c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(plaintext)).status_code == 401


def test_403_for_the_wrong_role(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_platform"]))
    assert r.status_code == 403 and "lender" in r.json()["detail"]
    assert c.post("/v1/admin/reload", headers=h(keys["a_lender"])).status_code == 403
    assert (
        c.post(
            "/v1/score/batch", json={"items": [{"firm_id": "F0001"}]}, headers=h(keys["a_platform"])
        ).status_code
        == 403
    )


def test_404_unknown_firm(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    r = c.post("/v1/score", json={"firm_id": "F9999"}, headers=h(keys["a_lender"]))
    assert r.status_code == 404
    assert r.json()["detail"] == "firm F9999 not found or not shared with you"
    # shared with the caller, but never materialized: the answer says what to run
    grant(service["engine"], ["F9998"], "bank-a")
    r = c.post("/v1/score", json={"firm_id": "F9998"}, headers=h(keys["a_lender"]))
    assert r.status_code == 404 and "materialize" in r.json()["detail"]


def test_422_names_the_field_path(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    firm = {
        "firm_id": "F1",
        "registered_at": "2020-01-01",
        "business_model": "b2b",
        "main_category": "food",
        "home_region": "CN-GD",
    }
    payment = {
        "payment_id": "p1",
        "firm_id": "F1",
        "kind": "fee",
        "direction": "out",
        "amount_usd": -5,
        "currency": "XXQ",
        "counterparty_id": "c1",
        "occurred_at": "2025-01-01",
    }
    r = c.post(
        "/v1/score",
        json={"firm": firm, "records": {"payments": [payment]}},
        headers=h(keys["a_lender"]),
    )
    assert r.status_code == 422
    locs = {e["loc"]: e["msg"] for e in r.json()["detail"]}
    assert "body.records.payments.0.amount_usd" in locs
    assert "ISO 4217" in locs["body.records.payments.0.currency"]
    assert "-5" not in r.text  # input values are not echoed back
    for bad in (
        {},
        {"firm_id": "F1", "as_of": "not-a-date"},
        {"firm_id": "x" * 65},
        {"records": {"payments": []}},
    ):
        assert c.post("/v1/score", json=bad, headers=h(keys["a_lender"])).status_code == 422
    not_json = c.post(
        "/v1/score",
        content=b"{nope",
        headers={**h(keys["a_lender"]), "content-type": "application/json"},
    )
    assert not_json.status_code == 422


def test_413_for_an_oversized_body(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]
    big = b'{"firm_id": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = c.post(
        "/v1/score",
        content=big,
        headers={**h(keys["a_lender"]), "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_429_with_retry_after(tmp_path: Path, model: ScoringModel) -> None:
    settings = Settings(data_dir=tmp_path / "rl", api_rate_limit=1.0, api_rate_burst=3)
    app = create_app(settings=settings, model_loader=lambda s: model, online_store=make_store())
    with TestClient(app) as c:
        _, key = create_key(app.state.service.engine, "bank-a", "lender")
        grant(app.state.service.engine, ["F0001"], "bank-a")
        codes = [c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(key)) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        assert int(codes[-1].headers["retry-after"]) >= 1
        # failed authentications from one client are limited too
        bad = [c.get("/v1/model", headers=h("nope")).status_code for _ in range(25)]
        assert bad[:20] == [401] * 20 and bad[-1] == 429


def test_503_without_a_model_then_reload_fixes_it(tmp_path: Path, model: ScoringModel) -> None:
    available: list[ScoringModel] = []

    def loader(_: Settings) -> ScoringModel:
        if not available:
            raise RuntimeError("registry has no champion")
        return available[-1]

    settings = Settings(data_dir=tmp_path / "nomodel", api_rate_limit=0)
    app = create_app(settings=settings, model_loader=loader, online_store=make_store())
    with TestClient(app) as c:
        engine = app.state.service.engine
        _, lender = create_key(engine, "bank-a", "lender")
        _, admin = create_key(engine, "ops", "admin")
        grant(engine, FIRMS, "bank-a")
        r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(lender))
        assert r.status_code == 503 and "no model" in r.json()["detail"]
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "champion" in ready.json()["checks"]["model"]["reason"]
        failed = c.post("/v1/admin/reload", headers=h(admin))
        assert failed.status_code == 503
        available.append(model)
        ok = c.post("/v1/admin/reload", headers=h(admin)).json()
        assert ok == {"previous": None, "current": model.identity(), "propagated": True}
        assert c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(lender)).status_code == 200
        assert audit_rows(engine)[0]["model_version"] == "1"


def test_audit_failure_means_503_and_no_decision(service: dict[str, Any]) -> None:
    c, keys, engine = service["client"], service["keys"], service["engine"]
    before = audit_rows(engine)
    with engine.begin() as conn:  # the audit table disappears: every insert fails
        conn.execute(sa.text("ALTER TABLE decisions RENAME TO decisions_away"))
    try:
        r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_lender"]))
        batch = c.post(
            "/v1/score/batch", json={"items": [{"firm_id": "F0001"}]}, headers=h(keys["a_lender"])
        )
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE decisions_away RENAME TO decisions"))
    assert r.status_code == 503 and batch.status_code == 503
    assert "pd" not in r.text and "decision_id" not in r.text and "results" not in batch.text
    assert audit_rows(engine) == before
    assert "tradecredit_audit_write_failures_total 2.0" in c.get("/metrics").text


def test_online_store_down_is_503(service: dict[str, Any]) -> None:
    c, keys, store = service["client"], service["keys"], service["store"]
    store.fail = True
    try:
        r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_lender"]))
    finally:
        store.fail = False
    assert r.status_code == 503


def test_a_bug_gives_a_json_500_without_a_trace(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import credit.service as use_cases

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(use_cases, "decide", broken)
    c, keys = service["client"], service["keys"]
    r = c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_lender"]))
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal_error" and body["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text and "secret internals" not in r.text


# --- reload, logs ----------------------------------------------------------------------------


def test_reload_during_requests_names_the_version_that_scored(
    tmp_path: Path, model: ScoringModel, model_v2: ScoringModel
) -> None:
    current = [model]
    settings = Settings(data_dir=tmp_path / "reload", api_rate_limit=0)
    app = create_app(
        settings=settings, model_loader=lambda s: current[0], online_store=make_store()
    )
    from credit.decisions import decide

    found = make_store().get("F0007")
    assert found is not None
    as_of, feats = found
    expected = {m.version: decide(m, [("F0007", as_of, feats)])[0].pd for m in (model, model_v2)}
    assert expected["1"] != expected["2"]
    with TestClient(app) as c:
        engine = app.state.service.engine
        _, lender = create_key(engine, "bank-a", "lender")
        _, admin = create_key(engine, "ops", "admin")
        grant(engine, FIRMS, "bank-a")
        results: list[Any] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                r = c.post("/v1/score", json={"firm_id": "F0007"}, headers=h(lender))
                results.append((r.status_code, r.json()))

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(6):
            current[0] = model_v2 if i % 2 == 0 else model
            assert c.post("/v1/admin/reload", headers=h(admin)).status_code == 200
        stop.set()
        for t in threads:
            t.join()
        after = c.post("/v1/score", json={"firm_id": "F0007"}, headers=h(lender)).json()
    assert after["model"]["version"] == "1"
    assert results and all(code == 200 for code, _ in results)
    versions = {body["model"]["version"] for _, body in results}
    assert versions <= {"1", "2"}
    for _, body in results:  # each response is wholly the version it names
        assert body["pd"] == expected[body["model"]["version"]]
    rows = {r["decision_id"]: r for r in audit_rows(engine)}
    for _, body in results:
        assert rows[body["decision_id"]]["model_version"] == body["model"]["version"]


def test_logs_carry_request_ids_but_never_keys_or_records(
    service: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    c, keys = service["client"], service["keys"]
    firm = {
        "firm_id": "F77",
        "registered_at": "2020-01-01",
        "business_model": "b2b",
        "main_category": "food",
        "home_region": "SECRET-REGION",
    }
    with caplog.at_level(logging.INFO, logger="tradecredit"):
        c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_lender"]))
        c.post(
            "/v1/score",
            json={"firm": firm, "records": {"payments": [{"x": "SECRET-REC"}]}},
            headers=h(keys["a_lender"]),
        )
        c.post("/v1/score", json={"firm_id": "F0001"}, headers={"X-API-Key": "tck_bad_SECRETKEY"})
    from api.logging import JsonFormatter

    fmt = JsonFormatter()
    lines = [fmt.format(r) for r in caplog.records if r.name.startswith("tradecredit")]
    text = "\n".join(lines)
    assert any('"request_id"' in ln and '"route": "/v1/score"' in ln for ln in lines)
    for secret in (keys["a_lender"], "SECRET-REGION", "SECRET-REC", "SECRETKEY"):
        assert secret not in text


def test_413_without_content_length_and_request_id_echo(service: dict[str, Any]) -> None:
    c, keys = service["client"], service["keys"]

    def chunks() -> Iterator[bytes]:  # chunked upload: no Content-Length to check up front
        yield b'{"firm_id": "'
        for _ in range(6):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    r = c.post(
        "/v1/score",
        content=chunks(),
        headers={**h(keys["a_lender"]), "content-type": "application/json"},
    )
    assert r.status_code == 413
    ok = c.post(
        "/v1/score",
        json={"firm_id": "F0001"},
        headers={**h(keys["a_lender"]), "X-Request-ID": "trace-42"},
    )
    assert ok.headers["x-request-id"] == "trace-42"
    odd = c.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert odd.headers["x-request-id"] != "bad id with spaces"


def test_a_reload_reaches_every_worker_on_the_service_database(
    tmp_path: Path, model: ScoringModel, model_v2: ScoringModel
) -> None:
    """Two workers (two apps on one service database, as `--workers 2` or two replicas run):
    a reload through one is followed by the other within the poll interval."""
    import time

    current = [model]
    settings = Settings(
        data_dir=tmp_path / "workers", api_rate_limit=0, api_reload_poll_seconds=0.1
    )
    apps = [
        create_app(settings=settings, model_loader=lambda s: current[0], online_store=make_store())
        for _ in range(2)
    ]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        engine = apps[0].state.service.engine
        _, lender = create_key(engine, "bank-a", "lender")
        _, admin = create_key(engine, "ops", "admin")
        grant(engine, FIRMS, "bank-a")

        def version(c: TestClient) -> str:
            r = c.post("/v1/score", json={"firm_id": "F0007"}, headers=h(lender))
            return str(r.json()["model"]["version"])

        assert version(a) == version(b) == "1"
        time.sleep(0.3)  # nothing recorded: nobody reloads
        assert version(b) == "1"
        current[0] = model_v2
        r = a.post("/v1/admin/reload", headers=h(admin)).json()
        assert r["current"]["version"] == "2" and r["propagated"] is True
        assert version(a) == "2"
        deadline = time.monotonic() + 5
        while version(b) != "2":
            assert time.monotonic() < deadline, "the other worker never followed the reload"
            time.sleep(0.05)
