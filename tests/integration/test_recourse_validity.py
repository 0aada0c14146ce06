"""Every plan the recourse search returns holds when it is replayed from records.

A simulated world (400 firms, 30 months) with a model trained on the whole catalog; for
150 firms at each of three dates, every returned plan (and every "best reachable" one) is
replayed from its description alone (``credit.actions.apply_plan``), its features are
recomputed by the plain online path (:func:`features.pipeline.compute`) and scored by the
scoring core: the grade it claims is the grade it gets. The edited records pass the data
contract, nothing dated before T changes except a payment made at T, the firm's own row is
never touched, and no feature the plan does not disclose moves the risky way.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd
import pytest

from credit.actions import ACTIONS, FIXED_FEATURES, Step, apply_plan, as_it_stands, start
from credit.ingest import validate_records
from credit.recourse import find_plans
from features import catalog
from features.pipeline import compute
from tests.recourse_support import RecourseWorld, build_world

pytestmark = pytest.mark.slow

DATES = ("2024-07-01", "2025-01-01", "2025-06-01")
FIRMS_PER_DATE = 150


@pytest.fixture(scope="module")
def rw(tmp_path_factory: pytest.TempPathFactory) -> RecourseWorld:
    return build_world(tmp_path_factory.mktemp("recourse"))


def _replay(rw: RecourseWorld, recs: Any, firm: Any, as_of: str, plan: dict[str, Any]) -> Any:
    steps = [Step(s["action"], s["level"]) for s in plan["steps"]]
    return apply_plan(recs, firm, as_of, plan["horizon_days"], steps)


@pytest.fixture(scope="module")
def results(rw: RecourseWorld) -> list[tuple[str, str, Any, dict[str, Any]]]:
    out = []
    firms = rw.frames["firms"]["firm_id"].tolist()
    for k, as_of in enumerate(DATES):
        for fid in firms[k * 40 : k * 40 + FIRMS_PER_DATE]:
            recs, firm = rw.firm_records(fid)
            found = find_plans(rw.model, recs, firm, as_of)
            out.append((fid, as_of, (recs, firm), found.as_dict()))
    return out


def _plans(results: list[Any]) -> list[tuple[str, str, Any, dict[str, Any], dict[str, Any]]]:
    return [
        (fid, as_of, inputs, r, p)
        for fid, as_of, inputs, r in results
        for p in [*r["plans"], *([r["best_reachable"]] if r["best_reachable"] else [])]
    ]


def test_the_search_returns_plans_for_many_firms(results: list[Any]) -> None:
    told = Counter(r["status"] for *_, r in results)
    assert len(results) == len(DATES) * FIRMS_PER_DATE
    # many firms get a plan to the next grade; the rest are told the best they can reach
    assert told["plans"] >= 0.3 * len(results), told
    for *_, r in results:
        assert r["status"] in ("already", "in_a_week", "plans", "best", "none")
        assert r["reachable"] == (r["status"] in ("already", "in_a_week", "plans"))
        assert bool(r["plans"]) == (r["status"] == "plans")
        assert (r["best_reachable"] is not None) == (r["status"] == "best")
        assert len(r["plans"]) <= 3
        for p in r["plans"]:
            assert len(p["actions"]) <= 3
            # a plan of actions beats doing nothing over the same time
            if p["steps"]:
                assert p["after"]["pd"] < p["without_plan"]["pd"]
        if r["best_reachable"] is not None:
            assert r["best_reachable"]["after"]["pd"] < r["current"]["pd"]


def test_every_plan_reaches_the_grade_it_claims_when_replayed(
    rw: RecourseWorld, results: list[Any]
) -> None:
    grades = rw.model.scale.grades
    plans = _plans(results)
    assert len(plans) >= 100
    for fid, as_of, (recs, firm), r, p in plans:
        book, applied = _replay(rw, recs, firm, as_of, p)
        values = compute(book.records, book.scored_at, firm=book.firm)
        s = rw.model.predict(rw.model.encode(values))
        assert str(s.grade[0]) == p["after"]["grade"], (fid, as_of, p["steps"])
        assert math.isclose(float(s.pd[0]), p["after"]["pd"], rel_tol=1e-9), (fid, as_of)
        assert [a.action for a in applied] == [a["action"] for a in p["actions"]]
        if p in r["plans"]:
            assert grades.index(p["after"]["grade"]) <= grades.index(r["target_grade"])


def test_replayed_records_pass_the_contract_and_leave_the_past_alone(
    rw: RecourseWorld, results: list[Any]
) -> None:
    for fid, as_of, (recs, firm), _, p in _plans(results)[:150]:
        t = pd.Timestamp(as_of)
        book, _ = _replay(rw, recs, firm, as_of, p)
        assert book.firm == {str(k): v for k, v in firm.items()}
        payload = {k: [_plain(r) for r in v] for k, v in book.records.items()}
        check = validate_records(
            {"firms": [_plain(firm)], **payload}, ingestion_date=book.scored_at.date()
        )
        assert not check.rejected, check.rejected[:3]
        before = as_it_stands(recs, firm, as_of)
        for kind, rows in before.records.items():
            edited = {_key(kind, r): r for r in book.records[kind]}
            for r in rows:
                new = edited[_key(kind, r)]  # no record of the past is dropped
                for col, v in r.items():
                    if new.get(col) != v:
                        # only a state reached from T on: a payment made today or later
                        assert col in ("paid_at", "amount_usd", "mode", "closed_at", "status")
                        if col == "paid_at":
                            assert new[col] >= t
                        else:  # shipments and refunds only change in the projection
                            raise AssertionError((fid, kind, col))


def test_no_plan_moves_an_undisclosed_feature_the_risky_way(
    rw: RecourseWorld, results: list[Any]
) -> None:
    direction = {f.name: f.risk_direction for f in catalog.CATALOG}
    checked = 0
    for _fid, as_of, (recs, firm), _, p in _plans(results):
        book = as_it_stands(recs, firm, as_of)
        base, _ = start(book, p["horizon_days"])
        v0 = compute(base.records, base.scored_at, firm=base.firm)
        after, _ = _replay(rw, recs, firm, as_of, p)
        v1 = compute(after.records, after.scored_at, firm=after.firm)
        allowed = {f for s in p["steps"] for a in ACTIONS if a.name == s["action"]
                   for f in a.side_effects}  # fmt: skip
        disclosed = {e["feature"] for e in p["side_effects"]}
        for f, d in direction.items():
            if not d or math.isnan(v0[f]) or math.isnan(v1[f]):
                continue
            if d * (v1[f] - v0[f]) > 1e-9 * max(1.0, abs(v0[f])):
                assert f in allowed and f in disclosed, (f, p["steps"])
        # the features no action can change (age, history, loan records) only move with
        # time, never with the actions
        for f in FIXED_FEATURES:
            assert v1[f] == v0[f] or (math.isnan(v1[f]) and math.isnan(v0[f]))
        checked += 1
    assert checked >= 100


def _key(kind: str, r: dict[str, Any]) -> str:
    field = {"customs": "declaration_id", "shipments": "shipment_id", "payments": "payment_id",
             "loans": "loan_id"}[kind]  # fmt: skip
    return str(r[field])


def _plain(r: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in r.items():
        if isinstance(v, pd.Timestamp):
            v = v.isoformat()
        elif v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
            v = None
        elif hasattr(v, "item"):
            v = v.item()
        out[k] = v
    return out
