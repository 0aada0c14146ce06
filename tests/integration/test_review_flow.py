"""Approve, decline or refer through real HTTP: every score answer has an outcome and the
rules that fired; a referred decision opens a review; reviewers (named key holders) decide it,
four eyes on an override above the policy's amount; bad review input is a clear 4xx and
records nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.policy import _default_data
from credit.reviews import review_actions, reviews
from credit.settings import Settings
from tests.api_support import make_store, train_model
from tests.consent_support import grant, h

TENANT = "bank-a"


def _policy(tmp: Path, **decision: Any) -> Path:
    folder = tmp / "policies"
    folder.mkdir(exist_ok=True)
    data = dict(_default_data())
    data["name"] = TENANT
    data["decision"] = {**data["decision"], **decision}
    (folder / f"{TENANT}.yaml").write_text(yaml.safe_dump(data))
    return folder


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # approve grades A to C up to 10,000 (the tiny model's firms are C to F); overriding the
    # model above 5,000 needs two reviewers
    policy_dir = _policy(
        tmp_path,
        decline=[{"name": "pd_ceiling", "text": "PD above our ceiling", "pd_at_least": 0.5}],
        refer=[],
        approve={"grade_at_least": "C", "max_amount": 10000},
        review={"outcomes": ["approved", "declined"], "four_eyes_above": 5000},
    )
    settings = Settings(data_dir=tmp_path / "var", api_rate_limit=0, policy_dir=policy_dir)
    model = train_model()
    app = create_app(settings=settings, model_loader=lambda s: model, online_store=make_store())
    with TestClient(app) as c:
        engine = app.state.service.engine
        keys = {
            "lender": create_key(engine, TENANT, "lender")[1],
            "ana": create_key(engine, TENANT, "reviewer", holder="Ana Reviewer")[1],
            "ben": create_key(engine, TENANT, "reviewer", holder="Ben Second")[1],
            "other": create_key(engine, "bank-b", "reviewer", holder="Eve Elsewhere")[1],
        }
        grant(engine, [f"F{i:04d}" for i in range(20)], TENANT)
        yield {"c": c, "keys": keys, "engine": engine}
    engine.dispose()


def _score_all(c: Any, key: str, amount: float | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(20):
        body: dict[str, Any] = {"firm_id": f"F{i:04d}"}
        if amount is not None:
            body["amount"] = amount
        r = c.post("/v1/score", json=body, headers=h(key))
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def _counts(engine: Any) -> tuple[int, int]:
    with engine.connect() as conn:
        n_rev = conn.execute(sa.select(sa.func.count()).select_from(reviews)).scalar_one()
        n_act = conn.execute(sa.select(sa.func.count()).select_from(review_actions)).scalar_one()
    return int(n_rev), int(n_act)


def test_every_answer_has_an_outcome_and_referred_ones_open_reviews(svc: dict[str, Any]) -> None:
    c, keys = svc["c"], svc["keys"]
    answers = _score_all(c, keys["lender"])
    for a in answers:
        assert a["outcome"] in ("approved", "declined", "referred")
        assert a["policy"] == {"name": TENANT, "version": "1"}
        assert a["rules"], a
        if a["outcome"] == "approved":
            assert a["grade"] in "ABC" and "review" not in a
        elif a["outcome"] == "declined":
            assert a["pd"] >= 0.5 and a["rules"][0]["rule"] == "pd_ceiling"
            assert a["notice"] == f"/v1/decisions/{a['decision_id']}/notice"
        else:
            assert a["grade"] in "DEF" and a["review"]["status"] == "open"
            assert a["recommendation"] == "declined"
            assert [r["rule"] for r in a["rules"]] == ["approve.grade_at_least"]
    referred = [a for a in answers if a["outcome"] == "referred"]
    assert referred, "the tiny model should refer some firms under this policy"
    listed = c.get("/v1/reviews?status=open", headers=h(keys["ana"])).json()["reviews"]
    assert {r["decision_id"] for r in listed} == {a["decision_id"] for a in referred}
    # another lender's reviewer sees none of them
    assert c.get("/v1/reviews", headers=h(keys["other"])).json()["reviews"] == []
    assert {a["outcome"] for a in answers} == {"approved", "declined", "referred"}
    # an approvable firm asking for more than the limit is referred, the model recommending it
    a = next(x for x in answers if x["outcome"] == "approved")
    r = c.post(
        "/v1/score", json={"firm_id": a["firm_id"], "amount": 25000}, headers=h(keys["lender"])
    )
    big = r.json()
    assert big["outcome"] == "referred" and big["recommendation"] == "approved"
    assert [x["rule"] for x in big["rules"]] == ["approve.max_amount"]


def test_review_detail_has_decision_features_offers_and_records(svc: dict[str, Any]) -> None:
    c, keys = svc["c"], svc["keys"]
    referred = [a for a in _score_all(c, keys["lender"]) if a["outcome"] == "referred"]
    rid = referred[0]["review"]["review_id"]
    r = c.get(f"/v1/reviews/{rid}", headers=h(keys["ana"]))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["decision"]["decision_id"] == referred[0]["decision_id"]
    assert d["decision"]["reasons"] == referred[0]["reasons"]
    names = {f["feature"] for f in d["features"]}
    assert "late_share_180d" in names
    assert d["status"] == "open" and d["exposure"] == 10000  # no amount: the approval limit
    # the review of another tenant is not found
    assert c.get(f"/v1/reviews/{rid}", headers=h(keys["other"])).status_code == 404
    # once the seller revokes the consent, the review keeps the recorded decision but shows
    # none of the firm's data
    from credit.consent import ConsentStore

    store = ConsentStore(svc["engine"])
    grant_ = store.active(TENANT, d["firm_id"], "credit_assessment")
    assert grant_ is not None and grant_.consent_id is not None
    store.revoke(grant_.consent_id, by="seller")
    after = c.get(f"/v1/reviews/{rid}", headers=h(keys["ana"])).json()
    assert after["records"]["shared"] is False and after["offers"] is None
    assert "not shared with you" in after["records"]["detail"]
    assert after["decision"]["decision_id"] == d["decision"]["decision_id"]


def test_four_eyes_on_an_override_above_the_policy_amount(svc: dict[str, Any]) -> None:
    c, keys, engine = svc["c"], svc["keys"], svc["engine"]
    a = next(
        x for x in _score_all(c, keys["lender"], amount=20000) if x["recommendation"] == "declined"
    )
    rid = a["review"]["review_id"]
    approve = {"outcome": "approved", "reason_codes": ["RA01"], "note": "Bank statements seen."}
    first = c.post(f"/v1/reviews/{rid}/decision", json=approve, headers=h(keys["ana"]))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "awaiting_second"
    assert first.json()["pending_outcome"] == "approved" and first.json()["outcome"] is None
    # the same holder cannot approve twice, even with another key of hers
    again_key = create_key(engine, TENANT, "reviewer", holder="Ana Reviewer")[1]
    before = _counts(engine)
    for key in (keys["ana"], again_key):
        again = c.post(f"/v1/reviews/{rid}/decision", json=approve, headers=h(key))
        assert again.status_code == 409 and "second reviewer" in again.json()["detail"]
    assert _counts(engine) == before  # nothing recorded
    second = c.post(f"/v1/reviews/{rid}/decision", json=approve, headers=h(keys["ben"]))
    assert second.status_code == 200, second.text
    done = second.json()
    assert done["status"] == "closed" and done["outcome"] == "approved" and done["override"]
    assert [x["holder"] for x in done["actions"]] == ["Ana Reviewer", "Ben Second"]
    assert [x["effect"] for x in done["actions"]] == ["awaiting_second", "closed"]
    # the recorded decision shows the closed review
    dec = c.get(f"/v1/decisions/{a['decision_id']}", headers=h(keys["lender"])).json()
    assert dec["review"] == {"review_id": rid, "status": "closed", "outcome": "approved"}
    # closed: no further decision
    late = c.post(f"/v1/reviews/{rid}/decision", json=approve, headers=h(keys["ben"]))
    assert late.status_code == 409 and "already closed" in late.json()["detail"]


def test_following_the_model_or_a_small_override_needs_one_reviewer(svc: dict[str, Any]) -> None:
    c, keys = svc["c"], svc["keys"]
    small = [x for x in _score_all(c, keys["lender"], amount=3000) if x["outcome"] == "referred"]
    follow = {"outcome": "declined", "reason_codes": ["AA02"], "note": "Volume too small."}
    r = c.post(
        f"/v1/reviews/{small[0]['review']['review_id']}/decision",
        json=follow,
        headers=h(keys["ana"]),
    )
    assert r.json()["status"] == "closed" and r.json()["override"] is False
    override = {"outcome": "approved", "reason_codes": ["RA03"], "note": "Known customer."}
    r = c.post(
        f"/v1/reviews/{small[1]['review']['review_id']}/decision",
        json=override,
        headers=h(keys["ana"]),
    )
    # an override, but 3,000 is under the four-eyes amount of 5,000
    assert r.json()["status"] == "closed" and r.json()["override"] is True


def test_bad_review_input_is_a_clear_4xx_and_records_nothing(svc: dict[str, Any]) -> None:
    c, keys, engine = svc["c"], svc["keys"], svc["engine"]
    rid = next(x for x in _score_all(c, keys["lender"]) if x["outcome"] == "referred")["review"][
        "review_id"
    ]
    before = _counts(engine)
    ok = {"outcome": "approved", "reason_codes": ["RA01"], "note": "fine"}
    cases = [
        ("/v1/reviews/rev_" + "0" * 32 + "/decision", ok, keys["ana"], 404, "no review"),
        (f"/v1/reviews/{rid}/decision", {**ok, "reason_codes": ["ZZ99"]}, keys["ana"], 422, "ZZ99"),
        # an approval reason on a decline
        (
            f"/v1/reviews/{rid}/decision",
            {**ok, "outcome": "declined"},
            keys["ana"],
            422,
            "not in the documented list",
        ),
        (f"/v1/reviews/{rid}/decision", {**ok, "outcome": "referred"}, keys["ana"], 422, "outcome"),
        (f"/v1/reviews/{rid}/decision", ok, keys["lender"], 403, ""),  # not a reviewer
        (f"/v1/reviews/{rid}/decision", ok, keys["other"], 404, "no review"),  # not its tenant
    ]
    for url, body, key, status, words in cases:
        r = c.post(url, json=body, headers=h(key))
        assert r.status_code == status, (body, r.text)
        assert words in r.text
    assert _counts(engine) == before


def test_an_outcome_the_policy_does_not_allow_is_refused(tmp_path: Path) -> None:
    policy_dir = _policy(
        tmp_path,
        approve={"grade_at_least": "C", "max_amount": 10000},
        review={"outcomes": ["declined"], "four_eyes_above": 5000},
    )
    settings = Settings(data_dir=tmp_path / "var", api_rate_limit=0, policy_dir=policy_dir)
    model = train_model()
    app = create_app(settings=settings, model_loader=lambda s: model, online_store=make_store())
    with TestClient(app) as c:
        engine = app.state.service.engine
        lender = create_key(engine, TENANT, "lender")[1]
        ana = create_key(engine, TENANT, "reviewer", holder="Ana")[1]
        grant(engine, [f"F{i:04d}" for i in range(20)], TENANT)
        rid = next(x for x in _score_all(c, lender) if x["outcome"] == "referred")["review"][
            "review_id"
        ]
        r = c.post(
            f"/v1/reviews/{rid}/decision",
            json={"outcome": "approved", "reason_codes": ["RA01"], "note": "x"},
            headers=h(ana),
        )
        assert r.status_code == 422 and "not allowed by the policy" in r.json()["detail"]
    engine.dispose()


def test_reviews_on_the_command_line_with_four_eyes_across_channels(
    svc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``credit reviews list|show|decide`` on the same database: a first approval over the
    API, the same holder refused on the command line, a second holder closing it there."""
    import json

    from typer.testing import CliRunner

    from credit.cli import app as cli
    from credit.settings import get_settings

    c, keys = svc["c"], svc["keys"]
    a = next(
        x for x in _score_all(c, keys["lender"], amount=20000) if x["recommendation"] == "declined"
    )
    rid = a["review"]["review_id"]
    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TRADECREDIT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        out = runner.invoke(cli, ["reviews", "list", "--status", "open", "--json"])
        assert out.exit_code == 0, out.output
        assert rid in {r["review_id"] for r in json.loads(out.output)}
        out = runner.invoke(cli, ["reviews", "show", rid])
        assert out.exit_code == 0, out.output
        assert f"review {rid}  (open)" in out.output and "approve.grade_at_least" in out.output
        body = {"outcome": "approved", "reason_codes": ["RA02"], "note": "Guarantee provided."}
        r = c.post(f"/v1/reviews/{rid}/decision", json=body, headers=h(keys["ana"]))
        assert r.json()["status"] == "awaiting_second"
        args = ["reviews", "decide", rid, "--outcome", "approved", "--reason", "RA02",
                "--note", "Seen the guarantee."]  # fmt: skip
        same = runner.invoke(cli, [*args, "--reviewer", "Ana Reviewer"])
        assert same.exit_code == 1 and "second reviewer" in same.output
        bad = runner.invoke(cli, [*args[:-2], "--note", "x", "--reason", "AA01",
                                  "--reviewer", "Ben Second"])  # fmt: skip
        assert bad.exit_code == 1 and "AA01" in bad.output
        ok = runner.invoke(cli, [*args, "--reviewer", "Ben Second"])
        assert ok.exit_code == 0, ok.output
        assert f"review {rid} closed: approved" in ok.output
    finally:
        get_settings.cache_clear()
    listed = c.get(f"/v1/reviews/{rid}", headers=h(keys["ana"])).json()
    assert [(x["holder"], x["channel"]) for x in listed["actions"]] == [
        ("Ana Reviewer", "http"),
        ("Ben Second", "cli"),
    ]
