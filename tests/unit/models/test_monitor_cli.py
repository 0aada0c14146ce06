"""`credit monitor` end to end: audit log -> baseline of the version that scored -> exit code."""

from __future__ import annotations

import json
import math
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
from credit.decisions import decide
from credit.scoring import ScoringModel
from credit.settings import get_settings
from models import registry
from models.dataset import from_frame
from models.train import train_time_split
from tests.model.helpers import make_frame, tiny_cfg

pytestmark = pytest.mark.slow
runner = CliRunner()


def _record(model: ScoringModel, frame: pd.DataFrame, when: datetime) -> pd.DataFrame:
    """Score ``frame`` with ``model`` and write the decisions to the audit log at ``when``."""
    feats = frame[model.feature_names].astype(object).where(frame.notna(), None)
    items = [
        (f"F{i}-{when:%m}", when - timedelta(days=1), row)
        for i, row in enumerate(feats.to_dict(orient="records"))
    ]
    decisions = decide(model, items, explain="none", scored_at=when)
    AuditLog(get_engine()).record(decisions, "tenant-a", None, ["0" * 64] * len(decisions))
    return pd.DataFrame(
        {"firm_id": [d.firm_id for d in decisions], "pd": [d.pd for d in decisions]}
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
    same = _record(model, make_frame(1500, seed=21), jan)
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
    with duckdb.connect(str(store)) as con:
        con.register("loans_frame", loans)
        con.execute("CREATE TABLE loans AS SELECT * FROM loans_frame")

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
