"""``GET /v1/firms/{id}/recourse`` and the seller page's plans, through real HTTP.

A simulated world in a real DuckDB record store, a model trained on the whole catalog and
the firms' features as of 2025-06-01 in the online store: the route reads the records the
consent covers, and every plan it returns, replayed from its description, gets the grade
it claims.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from credit.actions import Step, apply_plan
from credit.keys import create_key
from credit.settings import Settings
from credit.store import OPERATOR_SOURCE
from features.pipeline import compute
from tests.api_support import MemoryOnlineStore
from tests.consent_support import grant_all
from tests.recourse_support import RecourseWorld, build_world
from tests.seller_support import write_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
N_FIRMS = 40


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("recourse-api")
    rw = build_world(root)
    settings = Settings(data_dir=root / "var", api_rate_limit=0)
    settings.ensure_data_dir()
    write_store(settings.store_path, rw.frames)
    firms = rw.frames["firms"]["firm_id"].tolist()[:N_FIRMS]
    snapshots = {}
    for fid in firms:
        recs, firm = rw.firm_records(fid)
        snapshots[fid] = [(AS_OF, compute(recs, AS_OF, firm=firm))]
    online = MemoryOnlineStore(snapshots)
    app = create_app(settings=settings, model_loader=lambda s: rw.model, online_store=online)
    with TestClient(app) as client:
        assert app.state.service.models.wait(60)
        engine = app.state.service.engine
        keys = {
            role: create_key(engine, tenant, role)[1]
            for tenant, role in (("bank", "lender"), ("shop", "platform"), ("ops", "admin"))
        }
        keys["stranger"] = create_key(engine, "other-bank", "lender")[1]
        grant_all(engine, firms, ("bank", "shop", "ops"), OPERATOR_SOURCE)
        yield {"client": client, "keys": keys, "rw": rw, "firms": firms}
    engine.dispose()


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def answers(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    c, key = svc["client"], svc["keys"]["lender"]
    out = {}
    for fid in svc["firms"]:
        r = c.get(f"/v1/firms/{fid}/recourse", headers=h(key))
        assert r.status_code == 200, r.text
        out[fid] = r.json()
    return out


def test_a_lender_gets_plans_that_hold_on_the_records(
    svc: dict[str, Any], answers: dict[str, dict[str, Any]]
) -> None:
    rw: RecourseWorld = svc["rw"]
    grades = rw.model.scale.grades
    with_plans = [b for b in answers.values() if b["plans"]]
    assert len(with_plans) >= 8
    for fid, body in answers.items():
        assert body["firm_id"] == fid
        assert body["as_of"] == "2025-06-01T00:00:00Z"
        assert body["model"]["name"]
        # the target defaults to one grade better than the current one
        cur = grades.index(body["current"]["grade"])
        assert body["target_grade"] == grades[max(cur - 1, 0)]
        recs, firm = rw.firm_records(fid)
        for p in body["plans"]:
            steps = [Step(s["action"], s["level"]) for s in p["steps"]]
            book, _ = apply_plan(recs, firm, AS_OF, p["horizon_days"], steps)
            values = compute(book.records, book.scored_at, firm=book.firm)
            got = rw.model.predict(rw.model.encode(values))
            assert str(got.grade[0]) == p["after"]["grade"]
            assert grades.index(p["after"]["grade"]) <= grades.index(body["target_grade"])
            assert 1 <= len(p["actions"]) <= 3
            for a in p["actions"]:
                assert a["text"] and a["cost"]["effort"]
            # the SHAP changes add up to the plan's change in log-odds
            total = sum(x["contribution_change"] for x in p["changes"])
            assert abs(total - p["log_odds_change"]) < 1e-6


def test_an_unreachable_target_says_so_and_shows_the_best_grade(
    svc: dict[str, Any], answers: dict[str, dict[str, Any]]
) -> None:
    c, key = svc["client"], svc["keys"]["platform"]
    worst = max(answers, key=lambda f: answers[f]["current"]["pd"])
    r = c.get(f"/v1/firms/{worst}/recourse?target_grade=A", headers=h(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["target_grade"] == "A"
    assert body["reachable"] is False and body["plans"] == []
    assert "reaches grade A" in body["message"]
    if body["best_reachable"] is not None:
        assert body["best_reachable"]["after"]["pd"] < body["current"]["pd"]
        assert body["best_reachable"]["after"]["grade"] in body["message"]


def test_bad_requests_get_a_message_a_caller_can_act_on(svc: dict[str, Any]) -> None:
    c, keys, fid = svc["client"], svc["keys"], svc["firms"][0]
    r = c.get(f"/v1/firms/{fid}/recourse?target_grade=Z", headers=h(keys["lender"]))
    assert r.status_code == 422
    assert "target_grade must be one of A, B, C, D, E, F" in r.json()["detail"]
    r = c.get(f"/v1/firms/{fid}/recourse", headers=h(keys["stranger"]))
    assert r.status_code == 404
    assert "not shared with you" in r.json()["detail"]
    r = c.get(f"/v1/firms/{fid}/recourse")
    assert r.status_code == 401


def test_the_seller_page_shows_the_plans(svc: dict[str, Any], answers: dict[str, Any]) -> None:
    c, key = svc["client"], svc["keys"]["platform"]
    fid = next(f for f, b in answers.items() if len(b["plans"]) >= 2)
    link = c.post(f"/v1/firms/{fid}/seller-link", headers=h(key))
    assert link.status_code == 201, link.text
    page = c.get(link.json()["path"])
    assert page.status_code == 200
    text = page.text
    target = answers[fid]["target_grade"]
    assert f"What would move you to grade {target}" in text
    assert text.count('class="card plan"') == len(answers[fid]["plans"])
    for p in answers[fid]["plans"]:
        for a in p["actions"]:
            assert a["text"].split(" (")[0].replace("'", "&#39;") in text
