"""`credit monitor` end to end: audit log -> baseline of the version that scored -> exit code."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from api.metrics import Metrics
from credit.audit import AuditLog
from credit.cli import app
from credit.db import dispose_engines, get_engine, upgrade
from credit.decisioning import evaluate
from credit.decisions import decide
from credit.policy import Policy, default_policy, policy_from_dict
from credit.reviews import ReviewStore, new_review_id, review_row
from credit.scoring import ScoringModel
from credit.settings import get_settings
from models import registry
from models.dataset import from_frame
from models.train import train_time_split
from tests.model.helpers import make_frame, tiny_cfg

pytestmark = pytest.mark.slow
runner = CliRunner()


def _lenient() -> Policy:
    """The default policy approving down to grade E (the tiny model's PDs are high)."""
    data = default_policy().model_dump()
    data["decision"]["approve"]["grade_at_least"] = "E"
    return policy_from_dict(data)


def _record(
    model: ScoringModel, frame: pd.DataFrame, when: datetime, judge: bool = False
) -> pd.DataFrame:
    """Score ``frame`` with ``model`` and write the decisions to the audit log at ``when``;
    ``judge``: under a policy too, a referred decision opening its review."""
    feats = frame[model.feature_names].astype(object).where(frame.notna(), None)
    items = [
        (f"F{i}-{when:%m}", when - timedelta(days=1), row)
        for i, row in enumerate(feats.to_dict(orient="records"))
    ]
    decisions = decide(model, items, explain="none", scored_at=when)
    reviews = []
    if judge:
        policy = _lenient()
        judged = []
        for d in decisions:
            v = evaluate(policy, d.pd, d.grade, d.features, None, model.scale.grades)
            rid = new_review_id() if v.outcome == "referred" else None
            judged.append(replace(d, verdict=v, review_id=rid))
            if rid is not None:
                terms = {"outcomes": ["approved", "declined"], "four_eyes_above": 50_000}
                row = review_row(rid, d.decision_id, "tenant-a", d.firm_id, v.recommendation,
                                 d.grade, v.exposure, terms, when)  # fmt: skip
                reviews.append(row)
        decisions = judged
    AuditLog(get_engine()).record(
        decisions, "tenant-a", None, ["0" * 64] * len(decisions), review_rows=reviews
    )
    return pd.DataFrame(
        {
            "firm_id": [d.firm_id for d in decisions],
            "pd": [d.pd for d in decisions],
            "outcome": [d.verdict.outcome if d.verdict else None for d in decisions],
            "recommendation": [
                d.verdict.recommendation if d.verdict else None for d in decisions
            ],  # fmt: skip
            "review_id": [d.review_id for d in decisions],
        }
    )


def test_monitor_flags_a_shifted_population_and_not_an_unshifted_one(tmp_path: Path) -> None:
    data = from_frame(make_frame(1200, seed=1), "bad", time_column="applied_at",
                      id_column="firm_id")  # fmt: skip
    cfg = tiny_cfg()
    cfg["split"]["outcome_window_months"] = 1
    reg = registry.log_training(train_time_split(data, cfg, monotone=[1, -1, 0, 0]))
    model = ScoringModel.load(f"models:/tradecredit-pd/{reg.version}")
    upgrade(get_engine())

    jan = datetime(2025, 1, 10, tzinfo=UTC)
    same = _record(model, make_frame(1500, seed=21), jan, judge=True)
    # reviewers close five referred decisions the model would decline: bob confirms three
    # approvals alice started (four eyes: above 50,000), alice agrees with the model twice
    store_r = ReviewStore(get_engine())
    referred = same[(same["outcome"] == "referred") & (same["recommendation"] == "declined")]
    assert len(referred) >= 5
    rids = referred["review_id"].tolist()[:5]
    kw = {"key_id": None, "channel": "cli", "note": "checked"}
    for rid in rids[:3]:
        store_r.decide(rid, None, holder="alice", outcome="approved", reason_codes=["RA01"], **kw)
        store_r.decide(rid, None, holder="bob", outcome="approved", reason_codes=["RA01"], **kw)
    for rid in rids[3:]:
        store_r.decide(rid, None, holder="alice", outcome="declined", reason_codes=["AA01"], **kw)
    # outcomes for January's firms: a loan applied 5 days after the score, default ~ PD
    rng = np.random.default_rng(0)
    loans = pd.DataFrame(
        {
            "firm_id": same["firm_id"],
            "applied_at": pd.Timestamp("2025-01-14"),
            "defaulted": rng.uniform(size=len(same)) < same["pd"],
        }
    )
    # a later application moves the store's horizon past January's 12-month outcome window
    later = pd.DataFrame({"firm_id": ["other"], "applied_at": [pd.Timestamp("2026-02-01")],
                          "defaulted": [None]})  # fmt: skip
    loans = pd.concat([loans, later], ignore_index=True)
    store = get_settings().store_path
    store.parent.mkdir(parents=True, exist_ok=True)
    # the firm rows of the first 600 firms: their business model and region
    firms = pd.DataFrame(
        {
            "firm_id": same["firm_id"][:600],
            "business_model": ["b2b", "b2c"] * 300,
            "home_region": "CN-GD",
        }
    )
    with duckdb.connect(str(store)) as con:
        con.register("loans_frame", loans)
        con.execute("CREATE TABLE loans AS SELECT * FROM loans_frame")
        con.register("firms_frame", firms)
        con.execute("CREATE TABLE firms AS SELECT * FROM firms_frame")

    out = tmp_path / "jan.json"
    res = runner.invoke(app, ["monitor", "--since", "2025-01-01", "--json", str(out),
                                 "--out", str(tmp_path / "jan.html")])  # fmt: skip
    assert res.exit_code == 0, res.output
    body = json.loads(out.read_text())
    v = body["versions"][reg.version]
    assert v["rows"] == 1500 and v["alerts"] == []
    assert v["score_psi"] < 0.1
    assert sum(o["n"] for o in v["outcomes"]) == 1500  # every decision matched its loan
    assert "ok" in res.output
    # the decisions themselves: outcomes by segment, overrides
    d = body["decisioning"]
    assert (d["decisions"], d["judged"], d["firms_known"], d["reviews"]) == (1500, 1500, 600, 5)
    counts = same["outcome"].value_counts()
    assert min(counts.get(o, 0) for o in ("approved", "declined", "referred")) > 0
    assert {r["outcome"]: r["n"] for r in d["rates"]} == {
        o: int(counts.get(o, 0)) for o in ("approved", "declined", "referred")
    }
    bm = {r["group"]: r for r in d["segments"] if r["segment"] == "business_model"}
    assert set(bm) == {"b2b", "b2c", "unknown"} and bm["unknown"]["n"] == 900
    b2b = same["outcome"][:600:2]
    assert bm["b2b"]["n"] == 300
    assert bm["b2b"]["approval_rate"] == pytest.approx(float((b2b == "approved").mean()))
    best = max(bm["b2b"]["approval_rate"], bm["b2c"]["approval_rate"])
    assert bm["b2c"]["air"] == pytest.approx(bm["b2c"]["approval_rate"] / best)
    o = d["overrides"]
    assert {r["direction"]: r["reviews"] for r in o["by_direction"]} == {
        "decline->approve": 3, "approve->decline": 0, "none": 2,
    }  # fmt: skip
    assert {r["reviewer"]: (r["reviews"], r["overrides"]) for r in o["by_reviewer"]} == {
        "alice": (2, 0), "bob": (3, 3),
    }  # fmt: skip
    perf = {r["group"]: r for r in o["performance"]}
    over = perf["approved: override (model said decline)"]
    y = loans.set_index("firm_id")["defaulted"]
    firms_over = same.set_index("review_id").loc[rids[:3], "firm_id"]
    assert (over["n"], over["known"]) == (3, 3)  # every January loan's window has closed
    assert over["defaults"] == int(y.loc[firms_over].sum())
    auto = perf["approved automatically (no review)"]
    assert auto["n"] == int(counts.get("approved", 0)) and auto["known"] == auto["n"]
    assert "outcomes by segment" in res.output and "overrides by direction" in res.output

    shifted = make_frame(1500, seed=22)
    shifted["late_share"] += 0.6
    shifted["revenue"] -= 1.2
    _record(model, shifted, jan + timedelta(days=60))
    out = tmp_path / "mar.json"
    html = tmp_path / "mar.html"
    res = runner.invoke(app, ["monitor", "--since", "2025-03-01", "--json", str(out),
                                 "--out", str(html)])  # fmt: skip
    assert res.exit_code == 1, res.output
    v = json.loads(out.read_text())["versions"][reg.version]
    assert v["rows"] == 1500
    assert "score" in v["alerts"] and v["score_psi"] >= 0.25
    page = html.read_text()
    assert "PSI by variable" in page and "Grade migration" in page
    # March's decisions were made without a policy: counted, not judged
    assert "0 of 1500 decisions carry an outcome under a policy" in page
    assert "src='data:image/png;base64," in page and "http" not in page.split("<body>")[1]

    # /metrics exposes the latest score PSI
    text = Metrics().render().decode()
    line = next(x for x in text.splitlines() if x.startswith("tradecredit_monitor_score_psi "))
    assert math.isclose(float(line.split()[1]), v["score_psi"], rel_tol=1e-9)

    # higher thresholds: the same population passes
    res = runner.invoke(app, ["monitor", "--since", "2025-03-01", "--psi-warn", "5",
                                 "--psi-alert", "50", "--out", str(html)])  # fmt: skip
    assert res.exit_code == 0, res.output
    dispose_engines()
