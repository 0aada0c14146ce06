"""`credit train --table`, `credit models`, `credit promote` end to end on a tiny table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from credit.cli import app
from tests.model.helpers import make_frame

pytestmark = pytest.mark.slow

TINY = [
    "--param", "num_leaves=4",
    "--param", "min_child_samples=10",
    "--param", "learning_rate=0.1",
    "--param", "num_threads=1",
    "--param", "training.num_boost_round=60",
    "--param", "training.early_stopping_rounds=15",
    "--param", "training.candidates=[{}]",
    "--param", "cv.kfold_below_rows=0",
]  # fmt: skip


def test_train_table_cv_register_promote_and_list(tmp_path, data_dir) -> None:
    table = tmp_path / "t.csv"
    frame = make_frame(400, seed=5)
    frame.loc[::50, "bad"] = None  # unknown outcomes: never labelled good
    frame.to_csv(table, index=False)
    out = tmp_path / "out.json"
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["train", "--table", str(table), "--target", "bad", "--id-column", "firm_id",
         "--exclude", "applied_at", "--promote", "--json", str(out), *TINY],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert got["mode"] == "cv" and got["version"] == "1" and got["promoted"]
    assert len(got["folds"]) == 5
    assert got["lightgbm"]["n"] == 392  # 8 unknown outcomes left out
    assert 0.6 < got["lightgbm"]["cv_auc_mean"] <= 1.0
    assert "cv_auc_mean" in got["scorecard"]
    vs = got["lightgbm_vs_scorecard"]  # DeLong on the pooled out-of-fold predictions
    assert vs["diff"] == pytest.approx(got["lightgbm"]["auc"] - got["scorecard"]["auc"], abs=1e-9)
    assert "LightGBM - scorecard" in res.output and "DeLong p" in res.output
    assert "LightGBM" in res.output and "scorecard" in res.output

    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert rows[0]["version"] == "1" and rows[0]["aliases"] == "champion"

    res = runner.invoke(app, ["promote", "--version", "1"])
    assert res.exit_code == 1 and "already champion" in res.output
    res = runner.invoke(app, ["promote", "--version", "1", "--force"])
    assert res.exit_code == 2 and "--reason" in res.output


def test_train_explains_bad_input(tmp_path) -> None:
    table = tmp_path / "t.csv"
    make_frame(100).to_csv(table, index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--table", str(table), "--target", "nope"])
    assert res.exit_code == 2
    assert "target 'nope' is not in the table" in res.output
    res = runner.invoke(app, ["train", "--table", str(tmp_path / "absent.csv"), "--target", "bad"])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["train", "--table", str(table), "--target", "bad", "--param", "x"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output
