"""Security: keys hashed at rest and compared in constant time, revocation at once, failed
authentications rate limited per client, tenant isolation on every endpoint that returns
stored data, and logs that never carry a key, a seller token or a posted record."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.logging import JsonFormatter
from credit.keys import create_key, parse_key, revoke_key
from credit.scoring import ScoringModel
from tests.api_support import posted_body
from tests.consent_support import grant
from tests.reliability.conftest import h, running_service


@pytest.fixture
def svc(tmp_path: Path, tiny_model: ScoringModel) -> Any:
    with running_service(tmp_path / "svc", tiny_model) as s:
        yield s


def test_keys_are_stored_only_as_sha256_hashes(svc: dict[str, Any]) -> None:
    with svc["engine"].connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text("SELECT * FROM api_keys")).mappings()]
    assert len(rows) == len(svc["keys"])
    stored = "\n".join(str(v) for r in rows for v in r.values())
    for plaintext in svc["keys"].values():
        parsed = parse_key(plaintext)  # the secret may itself hold "_"
        assert parsed is not None
        assert plaintext not in stored and parsed[1] not in stored
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        assert sum(r["key_hash"] == digest for r in rows) == 1


def test_key_comparison_is_constant_time_for_known_and_unknown_ids(
    svc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import credit.keys

    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credit.keys.hmac, "compare_digest", spy)
    c, good = svc["client"], svc["keys"]["a_lender"]
    key_id = good.split("_")[1]
    wrong_secret = f"tck_{key_id}_" + "A" * 43
    unknown_id = "tck_ffffffffffff_" + "A" * 43
    assert c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(good)).status_code == 200
    assert (
        c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(wrong_secret)).status_code == 401
    )
    assert c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(unknown_id)).status_code == 401
    # one constant-time comparison per attempt, whether the key id exists or not
    assert len(calls) == 3
    assert all(len(a) == len(b) == 64 for a, b in calls)


def test_revocation_takes_effect_on_the_next_request(svc: dict[str, Any]) -> None:
    c, engine = svc["client"], svc["engine"]
    key, plaintext = create_key(engine, "bank-c", "lender")
    grant(engine, ["F0002"], "bank-c")
    assert c.post("/v1/score", json={"firm_id": "F0002"}, headers=h(plaintext)).status_code == 200
    revoke_key(engine, key.key_id)
    r = c.post("/v1/score", json={"firm_id": "F0002"}, headers=h(plaintext))
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    assert c.get("/v1/model", headers=h(plaintext)).status_code == 401


def test_repeated_failures_from_one_client_are_rate_limited(svc: dict[str, Any]) -> None:
    c, good = svc["client"], svc["keys"]["a_lender"]
    codes = [
        c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(f"tck_{i:012x}_" + "B" * 43))
        for i in range(30)
    ]
    statuses = [r.status_code for r in codes]
    assert statuses[:20] == [401] * 20  # the burst
    assert set(statuses[20:]) == {429}
    assert int(codes[-1].headers["Retry-After"]) >= 1
    # the client is held back before any key is looked at, even with a valid key
    assert c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(good)).status_code == 429


# Endpoints that return stored, tenant-owned data; a new one must be added here.
TENANT_DATA_ENDPOINTS = {
    "GET /v1/decisions/{decision_id}",
    "DELETE /v1/seller-links/{link_id}",
    "GET /v1/consents/{consent_id}",
    "DELETE /v1/consents/{consent_id}",
    "GET /v1/ingestions/{ingestion_id}",
    "GET /v1/reviews/{review_id}",
    "POST /v1/reviews/{review_id}/decision",
    "GET /v1/decisions/{decision_id}/notice",
    "DELETE /v1/webhooks/{webhook_id}",
    "POST /v1/webhooks/{webhook_id}/test",
    "POST /v1/events/{event_id}/redeliver",
    "POST /v1/portfolio/alerts/{alert_id}/close",  # tests/integration/test_portfolio_api.py
}


def test_tenant_isolation_on_every_endpoint_that_returns_stored_data(
    svc: dict[str, Any],
) -> None:
    c, keys, app = svc["client"], svc["keys"], svc["app"]
    # The routes reading stored records by id: everything under /v1 with a path parameter,
    # except the firm-level ones that compute a fresh decision (checked below).
    stored = {
        f"{method.upper()} {path}"
        for path, ops in app.openapi()["paths"].items()
        if path.startswith("/v1/") and "{" in path and "{firm_id}" not in path
        for method in ops
    }
    assert stored == TENANT_DATA_ENDPOINTS
    # decisions made by bank-a through every path that records one
    made = []
    r = c.post("/v1/score", json={"firm_id": "F0003"}, headers=h(keys["a_lender"]))
    made.append(r.json()["decision_id"])
    consent_id = r.json()["consent_id"]  # bank-a's consent the decision was made under
    r = c.post(
        "/v1/score/batch",
        json={"items": [{"firm_id": "F0004"}, {"firm_id": "F0005"}]},
        headers=h(keys["a_lender"]),
    )
    made += [x["decision"]["decision_id"] for x in r.json()["results"]]
    assert len(made) == 3
    for did in made:
        for own in ("a_lender", "a_platform", "a_admin"):
            got = c.get(f"/v1/decisions/{did}", headers=h(keys[own]))
            assert got.status_code == 200 and got.json()["decision_id"] == did
        for other in ("b_lender", "b_platform"):
            got = c.get(f"/v1/decisions/{did}", headers=h(keys[other]))
            assert got.status_code == 404, got.text
            assert "F000" not in got.text  # nothing of the decision leaks
    # bank-b's own decision is invisible to bank-a
    r = c.post("/v1/score", json={"firm_id": "F0003"}, headers=h(keys["b_lender"]))
    did_b = r.json()["decision_id"]
    assert c.get(f"/v1/decisions/{did_b}", headers=h(keys["a_admin"])).status_code == 404
    # an admin of one tenant is not an admin of all
    assert c.get(f"/v1/decisions/{did_b}", headers=h(keys["b_lender"])).status_code == 200
    # recorded under the tenant of the key that asked
    with svc["engine"].connect() as conn:
        tenants = dict(
            conn.execute(sa.text("SELECT decision_id, tenant FROM decisions")).fetchall()
        )
    assert all(tenants[d] == "bank-a" for d in made) and tenants[did_b] == "bank-b"
    # a seller link is revoked only by the tenant that made it; to another it does not exist
    link = c.post("/v1/firms/F0003/seller-link", headers=h(keys["a_platform"])).json()
    got = c.delete(f"/v1/seller-links/{link['link_id']}", headers=h(keys["b_platform"]))
    assert got.status_code == 404 and "F000" not in got.text
    assert c.get(link["path"]).status_code != 403  # still open
    got = c.delete(f"/v1/seller-links/{link['link_id']}", headers=h(keys["a_admin"]))
    assert got.status_code == 200 and got.json()["firm_id"] == "F0003"
    # a consent is read and revoked only by a tenant party to it; to another it does not exist
    for own in ("a_lender", "a_platform", "a_admin"):
        got = c.get(f"/v1/consents/{consent_id}", headers=h(keys[own]))
        assert got.status_code == 200 and got.json()["grantee"] == "bank-a"
    for other in ("b_lender", "b_platform"):
        got = c.get(f"/v1/consents/{consent_id}", headers=h(keys[other]))
        assert got.status_code == 404 and "F000" not in got.text
        got = c.delete(f"/v1/consents/{consent_id}", headers=h(keys[other]))
        assert got.status_code == 404 and "F000" not in got.text
    assert c.get(f"/v1/consents/{consent_id}", headers=h(keys["a_lender"])).json()["state"] == (
        "active"
    )
    # an ingestion (a push) is read only by the tenant that pushed it
    pushed = c.post(
        "/v1/records", json={"records": posted_body()["records"]}, headers=h(keys["a_platform"])
    )
    assert pushed.status_code == 200, pushed.text
    ingestion_id = pushed.json()["ingestion_id"]
    got = c.get(f"/v1/ingestions/{ingestion_id}", headers=h(keys["a_platform"]))
    assert got.status_code == 200 and got.json()["ingestion_id"] == ingestion_id
    got = c.get(f"/v1/ingestions/{ingestion_id}", headers=h(keys["b_platform"]))
    assert got.status_code == 404 and "F000" not in got.text
    # a review (a referred decision: more than the policy approves on its own) is read and
    # decided only by the lender's own reviewers
    engine = app.state.service.engine
    rev_a = create_key(engine, "bank-a", "reviewer", holder="Ana A")[1]
    rev_b = create_key(engine, "bank-b", "reviewer", holder="Bo B")[1]
    r = c.post("/v1/score", json={"firm_id": "F0003", "amount": 1e9}, headers=h(keys["a_lender"]))
    assert r.json()["outcome"] == "referred", r.text
    review_id = r.json()["review"]["review_id"]
    assert c.get(f"/v1/reviews/{review_id}", headers=h(rev_a)).status_code == 200
    body = {"outcome": "declined", "reason_codes": ["AA12"], "note": "too much"}
    for other in (rev_b, keys["b_lender"]):
        got = c.get(f"/v1/reviews/{review_id}", headers=h(other))
        assert got.status_code == 404 and "F000" not in got.text
    got = c.post(f"/v1/reviews/{review_id}/decision", json=body, headers=h(rev_b))
    assert got.status_code == 404 and "F000" not in got.text
    theirs = c.get("/v1/reviews", headers=h(rev_b)).json()["reviews"]
    assert review_id not in {x["review_id"] for x in theirs}
    got = c.post(f"/v1/reviews/{review_id}/decision", json=body, headers=h(rev_a))
    assert got.status_code == 200 and got.json()["outcome"] == "declined"
    # its adverse-action notice, for the lender that declined only
    notice = f"/v1/decisions/{r.json()['decision_id']}/notice"
    assert c.get(notice, headers=h(keys["a_lender"])).status_code == 200
    for other in ("b_lender", "b_platform"):
        got = c.get(notice, headers=h(keys[other]))
        assert got.status_code == 404 and "F000" not in got.text
    # a webhook endpoint and an event are the tenant's own: to another they do not exist
    hook = c.post(
        "/v1/webhooks",
        json={"url": "https://hooks.bank-a.example/tc", "event_types": ["decision.created"]},
        headers=h(keys["a_lender"]),
    ).json()
    events_a = c.get("/v1/events", headers=h(keys["a_lender"])).json()["events"]
    assert {made[0], did_b} & {e["data"].get("decision_id") for e in events_a} == {made[0]}
    event_id = events_a[0]["event_id"]
    for other in ("b_lender", "b_platform"):
        wid = hook["webhook_id"]
        for got in (
            c.post(f"/v1/webhooks/{wid}/test", headers=h(keys[other])),
            c.delete(f"/v1/webhooks/{wid}", headers=h(keys[other])),
            c.post(f"/v1/events/{event_id}/redeliver", headers=h(keys[other])),
        ):
            assert got.status_code == 404 and "F000" not in got.text
        assert c.get("/v1/webhooks", headers=h(keys[other])).json()["webhooks"] == []
        theirs = c.get("/v1/events", headers=h(keys[other])).json()["events"]
        assert event_id not in {e["event_id"] for e in theirs}
        assert made[0] not in {e["data"].get("decision_id") for e in theirs}
    assert (
        c.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=h(keys["a_admin"])).status_code
        == 200
    )


def test_logs_never_contain_keys_tokens_or_posted_records(
    tmp_path: Path, tiny_model: ScoringModel
) -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    # the test client's own request log (httpx) is not the service's
    handler.addFilter(lambda rec: not rec.name.startswith(("httpx", "httpcore")))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    marker = "CPSECRET42"
    try:
        with running_service(tmp_path / "svc", tiny_model, api_log_level="DEBUG") as svc:
            for name in ("tradecredit", "api", "credit"):
                logging.getLogger(name).addHandler(handler)
            c, keys = svc["client"], svc["keys"]
            c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(keys["a_lender"]))
            c.post(
                "/v1/score",
                json={"firm_id": "F0001"},
                headers={"Authorization": "Bearer " + keys["b_lender"]},
            )
            wrong = keys["a_lender"][:-4] + "zzzz"
            c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(wrong))
            posted = posted_body(counterparty_id=marker)
            c.post("/v1/score", json=posted, headers=h(keys["a_lender"]))
            bad = posted_body(counterparty_id=marker)
            bad["records"]["payments"][0]["amount_usd"] = -1.0
            r = c.post("/v1/score", json=bad, headers=h(keys["a_lender"]))
            assert r.status_code == 422 and marker not in r.text  # input not echoed
            link = c.post("/v1/firms/F0001/seller-link", headers=h(keys["a_platform"]))
            assert link.status_code == 201, link.text
            path = link.json()["path"]
            token = path.split("token=", 1)[1]
            c.get(path)
            c.get(path[:-3] + "xyz")  # a forged token
            c.get("/readyz")
    finally:
        for name in ("tradecredit", "api", "credit"):
            logging.getLogger(name).removeHandler(handler)
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = buf.getvalue()
    assert text.count('"msg": "request"') >= 8  # the requests were logged
    for key in keys.values():
        parsed = parse_key(key)  # the secret is the whole 43-character tail, "_" and all
        assert parsed is not None and key not in text and parsed[1] not in text
    assert wrong not in text
    assert token not in text and token.split(".")[-1] not in text
    assert marker not in text and "2025-05-20" not in text
