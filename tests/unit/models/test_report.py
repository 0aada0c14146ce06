"""The model report: logged with every training run, every section present, one single file."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from credit.cli import app
from models import registry
from models.dataset import from_frame
from models.report import SECTIONS
from models.summary import summarize_data
from models.train import train_time_split
from tests.model.helpers import make_frame, tiny_cfg

pytestmark = pytest.mark.slow


def _train(seed: int, rate: float = 0.1):  # type: ignore[no-untyped-def]
    data = from_frame(
        make_frame(1200, seed=1), "bad", time_column="applied_at", id_column="firm_id",
        source="make_frame",
    )  # fmt: skip
    cfg = tiny_cfg()
    cfg["lightgbm"]["learning_rate"] = rate
    cfg["lightgbm"]["seed"] = seed
    cfg["split"]["outcome_window_months"] = 1
    return train_time_split(data, cfg, monotone=[1, -1, 0, 0])


def _artifact(run_id: str, name: str, data_dir: Path) -> Path:
    hits = list((data_dir / "mlartifacts").glob(f"**/{run_id}/artifacts/{name}"))
    assert hits, f"{name} not logged in run {run_id}"
    return hits[0]


def _assert_single_file_with_every_section(text: str) -> None:
    for sid, title in SECTIONS:
        assert f'<section id="{sid}">' in text, sid
        assert f"<h2>{title}</h2>" in text, title
    # nothing outside the file: no links, scripts, stylesheets or remote images
    assert not re.search(r"""(src|href)\s*=\s*['"](?!data:|#)""", text)
    assert "<link" not in text and "<script" not in text and "@import" not in text
    assert text.count("src='data:image/png;base64,") >= 4  # ROC, reliability, SHAP, by period


def test_each_training_run_logs_a_self_contained_report(data_dir: Path, tmp_path: Path) -> None:
    first = registry.log_training(_train(seed=1))
    assert first.version == "1"
    text = _artifact(first.run_id, "report.html", data_dir).read_text()
    _assert_single_file_with_every_section(text)
    assert "There is no champion yet" in text
    assert "1,200" in text  # rows of the training table in the data summary
    assert "late_share" in text and "mean |SHAP|" in text
    assert "LightGBM - scorecard = " in text and "DeLong p = " in text
    assert _artifact(first.run_id, "monitoring/baseline.json", data_dir).is_file()
    registry.promote("1")

    second = registry.log_training(_train(seed=2, rate=0.05))
    text2 = _artifact(second.run_id, "report.html", data_dir).read_text()
    _assert_single_file_with_every_section(text2)
    assert "champion (version 1)" in text2  # scored on version 2's evaluation set
    assert "this model - champion = " in text2

    out = tmp_path / "v1.html"
    res = CliRunner().invoke(app, ["report", "--version", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    regenerated = out.read_text()
    _assert_single_file_with_every_section(regenerated)
    assert "This version (1) is the current champion." in regenerated

    res = CliRunner().invoke(app, ["report", "--version", "9"])
    assert res.exit_code == 1


def test_data_summary_counts_rows_and_default_rate_by_period() -> None:
    f = make_frame(300, seed=2)
    f.loc[:9, "bad"] = None  # ten unknown outcomes
    s = summarize_data(from_frame(f, "bad", time_column="applied_at", id_column="firm_id"))
    assert (s["rows"], s["labelled_rows"], s["unknown_outcome_rows"]) == (300, 290, 10)
    assert s["period"] == "quarter"  # about 23 months of applications
    assert sum(p["rows"] for p in s["by_period"]) == 300
    assert sum(p["defaults"] for p in s["by_period"]) == s["defaults"]


def test_data_summary_default_rate_counts_matured_applications_only() -> None:
    f = make_frame(300, seed=2)
    data = from_frame(f, "bad", time_column="applied_at", id_column="firm_id")
    horizon = pd.Timestamp(f["applied_at"].max())
    s = summarize_data(data, horizon, outcome_window_months=6)
    last = s["by_period"][-1]  # applied within 6 months of the horizon: none matured
    assert last["matured"] == 0 and last["default_rate"] is None
    first = s["by_period"][0]
    assert first["matured"] == first["labelled"] == first["rows"]
