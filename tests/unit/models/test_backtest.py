"""Backtest: expanding window, nothing from the future, one row per period, table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from credit.cli import app
from models.backtest import COLUMNS, backtest, periods, plot
from models.dataset import from_frame
from tests.model.helpers import make_frame, tiny_cfg

pytestmark = pytest.mark.slow


def test_periods_and_their_validation() -> None:
    assert [str(p) for p in periods("2024-12", "2025-01")] == ["2024-12", "2025-01"]
    assert [str(p) for p in periods("2024-02", "2024-12", "quarter")] == [
        "2024Q1", "2024Q2", "2024Q3", "2024Q4",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="before"):
        periods("2025-02", "2025-01")
    with pytest.raises(ValueError, match="month or quarter"):
        periods("2025-01", "2025-02", "week")


def test_expanding_window_uses_only_matured_outcomes(tmp_path: Path) -> None:
    frame = make_frame(1500, seed=4)  # applications from 2024-01 over about 23 months
    data = from_frame(frame, "bad", time_column="applied_at", id_column="firm_id")
    cfg = tiny_cfg()
    cfg["split"]["outcome_window_months"] = 3
    res = backtest(data, cfg, "2024-04", "2025-09", step="quarter", monotone=[1, -1, 0, 0])
    t = res.table
    assert list(t.columns) == COLUMNS
    assert list(t["period"]) == ["2024Q2", "2024Q3", "2024Q4", "2025Q1", "2025Q2", "2025Q3"]
    times = pd.to_datetime(frame["applied_at"])
    for _, row in t.iterrows():
        start = pd.Timestamp(row["start"])
        # trained only on applications whose 3-month outcome window closed by the period start
        assert row["train_rows"] == int((times + pd.DateOffset(months=3) <= start).sum())
        end = (pd.Period(row["period"], freq="Q") + 1).start_time
        settled = times + pd.DateOffset(months=3) <= times.max()  # outcome known by the end
        assert row["test_rows"] == int(((times >= start) & (times < end) & settled).sum())
    assert (np.diff(t["train_rows"]) >= 0).all()  # the window only expands
    ok = t.dropna(subset=["auc"])
    assert len(ok) >= 4
    assert (ok["auc"] > 0.6).all()  # the signal in make_frame is strong
    assert ok["frozen_auc"].notna().all()
    assert (ok["ece"] >= 0).all()
    png = plot(res, tmp_path / "bt.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_command_on_a_table(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    make_frame(1000, seed=6).to_csv(table, index=False)
    out = tmp_path / "bt"
    res = CliRunner().invoke(
        app,
        ["backtest", "--from", "2024-07", "--to", "2025-06", "--step", "quarter",
         "--table", str(table), "--target", "bad", "--time-column", "applied_at",
         "--exclude", "firm_id", "--param", "split.outcome_window_months=3",
         "--param", "num_leaves=4", "--param", "training.num_boost_round=60",
         "--param", "training.candidates=[{}]", "--out", str(out),
         "--json", str(tmp_path / "bt.json")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (out / "backtest.png").is_file()
    csv = pd.read_csv(out / "backtest.csv")
    assert list(csv["period"]) == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    body = json.loads((tmp_path / "bt.json").read_text())
    assert body["summary"]["evaluated"] >= 3
    assert 0.5 < body["summary"]["mean_auc"] <= 1.0
    bad = CliRunner().invoke(app, ["backtest", "--from", "2025-01", "--to", "2024-01",
                                   "--table", str(table), "--target", "bad",
                                   "--time-column", "applied_at"])  # fmt: skip
    assert bad.exit_code == 2
