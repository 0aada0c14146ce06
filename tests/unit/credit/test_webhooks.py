"""The outbox and its dispatcher: fan-out, signing, retries, failure, redelivery, leases, and
the events written in the transaction of the action that causes them."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from credit.audit import AuditLog
from credit.consent import ConsentStore
from credit.db import make_engine, upgrade
from credit.decisions import decide
from credit.errors import AuditUnavailableError, InvalidInputError, NotFoundError
from credit.events import deliveries, delivery_attempts, emit, event_row, events
from credit.settings import Settings
from credit.webhooks import (
    Dispatcher,
    NothingToRedeliverError,
    WebhookStore,
    backoff,
    check_url,
    sign,
)
from tests.api_support import firm_features, train_model


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    settings = Settings(
        data_dir=tmp_path,
        webhooks_allow_loopback=True,
        webhooks_retry_base_seconds=0.01,
        webhooks_retry_max_seconds=0.02,
        webhooks_max_attempts=3,
        webhooks_poll_seconds=0.02,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    upgrade(engine)
    yield {"engine": engine, "settings": settings, "hooks": WebhookStore(engine, lambda: settings)}
    engine.dispose()


class Receiver:
    """An httpx mock endpoint: answers ``statuses`` in turn (then 200), keeps every request."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        code = self.statuses.pop(0) if self.statuses else 200
        headers = {"location": "https://elsewhere.example/"} if 300 <= code < 400 else {}
        return httpx.Response(code, headers=headers)


class FakeSender:
    """A dispatcher's sender that hands each attempt to ``receiver`` as an httpx request."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def __aenter__(self) -> FakeSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def post(self, url: str, body: bytes, headers: Any) -> int:
        return self.receiver(
            httpx.Request("POST", url, content=body, headers=dict(headers))
        ).status_code


def run(env: dict[str, Any], receiver: Receiver, name: str = "d1") -> Dispatcher:
    d = Dispatcher(
        env["engine"], lambda: env["settings"], name=name, sender=lambda s: FakeSender(receiver)
    )
    asyncio.run(asyncio.wait_for(d.run(until_idle=True), 30))
    return d


def put(engine: sa.Engine, *rows: dict[str, Any]) -> None:
    with engine.begin() as conn:
        emit(conn, list(rows))


def table(engine: sa.Engine, t: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t)).mappings()]


# ---- endpoint URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback", "ok"),
    [
        ("https://lender.example/hooks", False, True),
        ("https://lender.example:8443/h?x=1", False, True),
        ("http://lender.example/hooks", False, False),
        ("http://127.0.0.1:9000/h", False, False),
        ("http://127.0.0.1:9000/h", True, True),
        ("http://localhost:9000/h", True, True),
        ("http://[::1]:9000/h", True, True),
        ("http://10.0.0.5/h", True, False),  # plain http off loopback, even in development
        ("https://10.0.0.5/h", False, False),  # a private address
        ("https://169.254.169.254/latest", False, False),  # link-local (cloud metadata)
        ("https://user:pw@lender.example/h", False, False),
        ("ftp://lender.example/h", False, False),
        ("lender.example/h", False, False),
    ],
)
def test_endpoint_urls_are_https_or_allowed_loopback(url: str, loopback: bool, ok: bool) -> None:
    if ok:
        assert check_url(url, loopback) == url
    else:
        with pytest.raises(InvalidInputError):
            check_url(url, loopback)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        full = min(60.0, 2.0 * 2 ** (attempt - 1))
        waits = [backoff(attempt, 2.0, 60.0, rng) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len({round(w, 6) for w in waits}) > 150  # jittered, not in step


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"decision.created","timestamp":"2026-12-04T00:00:00Z","data":{}}'
    headers = sign(secret, "msg_abc", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers)["type"] == "decision.created"
    with pytest.raises(Exception):  # noqa: B017 - the library's own verification error
        Webhook(secret).verify(body.replace(b"{}", b'{"x":1}'), headers)


# ---- fan-out and delivery -----------------------------------------------------------------


def test_events_go_to_the_tenants_subscribed_endpoints_only_signed(env: dict[str, Any]) -> None:
    hooks, engine = env["hooks"], env["engine"]
    a, secret_a = hooks.create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    a2, _ = hooks.create("bank-a", "http://127.0.0.1:9/a2", ["review.completed"])
    b, _ = hooks.create("bank-b", "http://127.0.0.1:9/b", ["decision.created"])
    mine = event_row("bank-a", "decision.created", {"decision_id": "d1"}, firm_id="F1")
    other = event_row("bank-a", "consent.granted", {"consent_id": "c1"}, firm_id="F1")
    put(engine, mine, other)
    rx = Receiver()
    run(env, rx)
    assert [r.url.path for r in rx.requests] == ["/a"]
    req = rx.requests[0]
    assert req.headers["webhook-id"] == mine["event_id"]
    body = Webhook(secret_a).verify(req.content, dict(req.headers))
    assert body == {
        "type": "decision.created",
        "timestamp": mine["created_at"].isoformat().replace("+00:00", "Z"),
        "data": {"decision_id": "d1"},
    }
    assert {e["event_id"]: e["fanned_out"] for e in table(engine, events)} == {
        mine["event_id"]: True,
        other["event_id"]: True,
    }
    (dl,) = table(engine, deliveries)
    assert dl["webhook_id"] == a["webhook_id"] and dl["status"] == "delivered"
    (att,) = table(engine, delivery_attempts)
    assert att["outcome"] == "delivered" and att["status_code"] == 200
    assert att["latency_ms"] >= 0 and att["dispatcher"] == "d1"
    assert a2["webhook_id"] != b["webhook_id"]


def test_an_endpoint_gets_no_event_from_before_it_existed(env: dict[str, Any]) -> None:
    old = event_row("bank-a", "decision.created", {}, now=datetime.now(UTC) - timedelta(minutes=5))
    put(env["engine"], old)
    env["hooks"].create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    rx = Receiver()
    run(env, rx)
    assert rx.requests == [] and table(env["engine"], deliveries) == []


def test_retries_with_backoff_then_failed_then_redelivered(env: dict[str, Any]) -> None:
    hooks, engine = env["hooks"], env["engine"]
    hooks.create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    ev = event_row("bank-a", "decision.created", {"n": 1})
    put(engine, ev)
    rx = Receiver([500, 503, 302, 200])  # three attempts allowed: the 302 is the last
    run(env, rx)
    assert len(rx.requests) == 3
    assert len({r.headers["webhook-id"] for r in rx.requests}) == 1  # one id on every attempt
    (dl,) = table(engine, deliveries)
    assert dl["status"] == "failed" and dl["attempts"] == 3 and dl["last_status"] == 302
    atts = sorted(table(engine, delivery_attempts), key=lambda a: a["attempt"])
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in atts] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "failed", 302),
    ]
    assert "redirects are not followed" in atts[2]["error"]
    shown = hooks.events("bank-a")[0]["deliveries"][0]
    assert shown["status"] == "failed" and len(shown["attempt_log"]) == 3
    # kept for redelivery: a fresh set of attempts, then delivered
    out = hooks.redeliver("bank-a", ev["event_id"])
    assert out["deliveries"][0]["status"] == "pending"
    assert out["deliveries"][0]["max_attempts"] == 6
    run(env, rx)
    (dl,) = table(engine, deliveries)
    assert dl["status"] == "delivered" and dl["attempts"] == 4
    with pytest.raises(NotFoundError):
        hooks.redeliver("bank-b", ev["event_id"])  # another tenant's event


def test_a_test_event_goes_to_its_endpoint_only(env: dict[str, Any]) -> None:
    hooks = env["hooks"]
    a, _ = hooks.create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    hooks.create("bank-a", "http://127.0.0.1:9/other", ["decision.created"])
    ev = hooks.test("bank-a", a["webhook_id"])
    assert ev["type"] == "webhook.test"
    with pytest.raises(NotFoundError):
        hooks.test("bank-b", a["webhook_id"])
    rx = Receiver()
    run(env, rx)
    assert [r.url.path for r in rx.requests] == ["/a"]
    assert json.loads(rx.requests[0].content)["type"] == "webhook.test"


def test_a_deleted_endpoint_gets_nothing_more(env: dict[str, Any]) -> None:
    hooks, engine = env["hooks"], env["engine"]
    a, _ = hooks.create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    put(engine, event_row("bank-a", "decision.created", {}))
    with pytest.raises(NotFoundError):
        hooks.delete("bank-b", a["webhook_id"])
    d = Dispatcher(engine, lambda: env["settings"], name="d1")
    assert d.fan_out() == 1  # a delivery is queued, then the endpoint goes
    hooks.delete("bank-a", a["webhook_id"])
    assert hooks.endpoints("bank-a") == []
    rx = Receiver()
    run(env, rx)
    assert rx.requests == []
    (dl,) = table(engine, deliveries)
    assert dl["status"] == "failed" and dl["last_error"] == "endpoint deleted"
    (ev,) = table(engine, events)
    with pytest.raises(NothingToRedeliverError, match="endpoints were deleted"):
        hooks.redeliver("bank-a", ev["event_id"])
    late = event_row("bank-a", "decision.created", {})
    put(engine, late)
    with pytest.raises(NothingToRedeliverError, match="not fanned out"):
        hooks.redeliver("bank-a", late["event_id"])
    Dispatcher(engine, lambda: env["settings"], name="d1").fan_out()
    with pytest.raises(NothingToRedeliverError, match="none of your endpoints"):
        hooks.redeliver("bank-a", late["event_id"])


def test_an_expired_lease_is_claimed_again_and_the_lost_attempt_abandoned(
    env: dict[str, Any],
) -> None:
    engine = env["engine"]
    env["hooks"].create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    put(engine, event_row("bank-a", "decision.created", {}))
    dead = Dispatcher(engine, lambda: env["settings"], name="dead")
    dead.fan_out()
    (claim,) = dead.claim(10)  # ... and it dies before sending
    assert dead.claim(10) == []  # held under its lease: nobody takes it meanwhile
    with engine.begin() as conn:
        conn.execute(
            deliveries.update().values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    rx = Receiver()
    run(env, rx, name="alive")
    assert len(rx.requests) == 1
    atts = sorted(table(engine, delivery_attempts), key=lambda a: a["attempt"])
    assert [(a["dispatcher"], a["outcome"]) for a in atts] == [
        ("dead", "abandoned"),
        ("alive", "delivered"),
    ]
    # the dead dispatcher's late result changes nothing
    dead.finish(claim, 500, 1.0, "late")
    (dl,) = table(engine, deliveries)
    assert dl["status"] == "delivered" and dl["attempts"] == 2


def test_subscriptions_are_checked(env: dict[str, Any]) -> None:
    hooks = env["hooks"]
    with pytest.raises(InvalidInputError, match="unknown event type"):
        hooks.create("bank-a", "https://x.example/h", ["decision.made"])
    with pytest.raises(InvalidInputError, match="unknown event type"):
        hooks.create("bank-a", "https://x.example/h", ["webhook.test"])
    strict = WebhookStore(env["engine"], lambda: Settings(data_dir=env["settings"].data_dir))
    with pytest.raises(InvalidInputError, match="loopback"):
        strict.create("bank-a", "http://127.0.0.1:9/a", ["decision.created"])
    hook, secret = strict.create("bank-a", "https://x.example/h", ["decision.created"])
    assert secret.startswith("whsec_") and "secret" not in hook
    assert all("secret" not in h for h in strict.endpoints("bank-a"))


# ---- written in the transaction of the action ---------------------------------------------


def _decision(model: Any, firm: str = "F1") -> Any:
    (d,) = decide(
        model,
        [(firm, datetime(2025, 6, 30, tzinfo=UTC), firm_features(1))],
        "top",
    )
    return d


def test_a_decision_and_its_event_are_written_together_or_not_at_all(
    env: dict[str, Any],
) -> None:
    engine = env["engine"]
    audit = AuditLog(engine)
    model = train_model()
    d = _decision(model)
    audit.record([d], "bank-a", None, ["h1"])
    (ev,) = table(engine, events)
    assert ev["type"] == "decision.created" and ev["tenant"] == "bank-a"
    assert ev["data"]["decision_id"] == d.decision_id and ev["data"]["grade"] == d.grade
    # the same decision again: the insert fails, so no event either
    with pytest.raises(AuditUnavailableError):
        audit.record([_decision(model, "F2"), d], "bank-a", None, ["h2", "h1"])
    assert len(table(engine, events)) == 1


def test_offer_updated_only_when_the_best_offer_changes(env: dict[str, Any]) -> None:
    engine = env["engine"]
    audit = AuditLog(engine)
    model = train_model()

    def offers(amount: float | None) -> dict[str, Any]:
        found = [] if amount is None else [{"product": "loan", "amount": amount, "apr": 0.1}]
        return {"offers": found}

    for amount in (1000.0, 1000.0, 2000.0, None, None):
        audit.record([_decision(model)], "bank-a", None, ["h"], offers=[offers(amount)])
    ups = [e for e in table(engine, events) if e["type"] == "offer.updated"]
    moves = [
        ((e["data"]["before"] or {}).get("amount"), (e["data"]["after"] or {}).get("amount"))
        for e in sorted(ups, key=lambda e: e["event_id"])
    ]
    assert moves == [(None, 1000.0), (1000.0, 2000.0), (2000.0, None)]


def test_consent_changes_are_events_of_the_grantee(env: dict[str, Any]) -> None:
    engine = env["engine"]
    store = ConsentStore(engine)
    c = store.attest(
        "F1", "bank-a", ["credit_assessment"], 12, provider="market", key_id=None, statement="ok"
    )
    store.revoke(c.consent_id, by="seller")
    store.revoke(c.consent_id, by="seller")  # idempotent: one event
    req = store.request(
        "F1", "bank-b", ["credit_assessment"], 6, requested_by="bank-b", key_id=None
    )
    store.decide(req.consent_id, False, firm_providers=["market"], evidence={})
    got = sorted(table(engine, events), key=lambda e: e["event_id"])
    assert [(e["tenant"], e["type"], e["data"]["state"]) for e in got] == [
        ("bank-a", "consent.granted", "active"),
        ("bank-a", "consent.revoked", "revoked"),
        ("bank-b", "consent.declined", "declined"),
    ]
    assert got[0]["data"]["sources"] == ["market"] and got[0]["firm_id"] == "F1"


def test_a_closed_review_is_an_event_a_pending_second_is_not(env: dict[str, Any]) -> None:
    from credit.reviews import ReviewStore, review_row, reviews

    engine = env["engine"]
    terms = {"outcomes": ["approved", "declined"], "four_eyes_above": 1000.0}
    with engine.begin() as conn:
        conn.execute(
            reviews.insert(),
            [
                review_row(
                    f"rev_{i:032x}",
                    f"dec_{i}",
                    "bank-a",
                    "F1",
                    "declined",
                    "D",
                    amount,
                    terms,
                    datetime.now(UTC),
                )
                for i, amount in ((1, 500.0), (2, 5000.0))
            ],
        )
    store = ReviewStore(engine)
    kw = {"key_id": None, "channel": "api", "note": "checked"}
    store.decide(
        f"rev_{1:032x}", "bank-a", holder="ann", outcome="approved", reason_codes=["RA01"], **kw
    )
    store.decide(
        f"rev_{2:032x}", "bank-a", holder="ann", outcome="approved", reason_codes=["RA01"], **kw
    )  # four eyes: awaiting a second reviewer
    got = table(engine, events)
    assert [(e["type"], e["data"]["review_id"], e["data"]["outcome"]) for e in got] == [
        ("review.completed", f"rev_{1:032x}", "approved")
    ]
    assert got[0]["data"]["override"] is True and got[0]["data"]["decided_by"] == "ann"
    store.decide(
        f"rev_{2:032x}", "bank-a", holder="bob", outcome="approved", reason_codes=["RA01"], **kw
    )
    assert len(table(engine, events)) == 2


@pytest.mark.postgres
def test_on_postgresql_a_failed_decision_write_leaves_no_event(tmp_path: Path) -> None:
    from tests.api_support import fresh_pg_database

    with fresh_pg_database("tc_outbox") as (url, _, _):
        engine = make_engine(url)
        upgrade(engine)
        audit = AuditLog(engine)
        model = train_model()
        d = _decision(model)
        audit.record([d], "bank-a", None, ["h1"])
        # the decision and its event go in one pipeline: the duplicate fails it all
        with pytest.raises(AuditUnavailableError):
            audit.record([_decision(model, "F2"), d], "bank-a", None, ["h2", "h1"])
        assert len(table(engine, events)) == 1
        audit.record([_decision(model, "F3")], "bank-a", None, ["h3"])  # the pool is sound
        assert len(table(engine, events)) == 2
        engine.dispose()


def test_the_network_sender_follows_no_redirect_and_keeps_to_the_timeout(
    env: dict[str, Any],
) -> None:
    from credit.webhooks import HttpSender
    from tests.webhook_support import Receiver as LoopbackReceiver

    engine = env["engine"]
    settings = env["settings"].model_copy(update={"webhooks_timeout_seconds": 0.3})
    moved = LoopbackReceiver(status=302).start()
    slow = LoopbackReceiver(delay=1.0).start()
    try:
        hooks = WebhookStore(engine, lambda: settings)
        hooks.create("bank-a", moved.url, ["decision.created"])
        hooks.create("bank-a", slow.url, ["decision.created"])
        put(engine, event_row("bank-a", "decision.created", {}))
        d = Dispatcher(engine, lambda: settings, name="net", sender=HttpSender)
        asyncio.run(asyncio.wait_for(d.run(until_idle=True), 30))
    finally:
        moved.stop()
        slow.stop()
    paths = [h["x-path"] for _, h, _, _ in moved.received]
    assert paths == ["/hook"] * 3  # three attempts, none to the redirect's target
    atts = table(engine, delivery_attempts)
    errors = Counter((a["status_code"], (a["error"] or "").split(":")[0]) for a in atts)
    assert errors == {(302, "HTTP 302"): 3, (None, "timed out"): 3}
    assert all(a["latency_ms"] < 900 for a in atts if a["status_code"] is None)
