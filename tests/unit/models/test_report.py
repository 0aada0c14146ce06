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
    # decisions under the default policy: the table beside the report, its figures as metrics
    assert "judged approved, declined or referred by policy <code>default@1</code>" in text
    seg = pd.read_csv(_artifact(first.run_id, "report/decisions_by_segment.csv", data_dir))
    # a table of its own: no firm rows, no catalog features, so every segment is unknown
    assert set(seg["group"]) == {"unknown"} and (seg["status"] == "unknown").all()
    oot_rows = int(seg["n"].iloc[0])
    assert (seg["n"] == oot_rows).all() and oot_rows > 100
    from models import tracking

    m = tracking.client().get_run(first.run_id).data.metrics
    rates = [m["policy_approval_rate"], m["policy_decline_rate"], m["policy_referral_rate"]]
    assert sum(rates) == pytest.approx(1.0)
    assert m["policy_approval_rate"] == pytest.approx(float(seg["approval_rate"].iloc[0]))
    assert m["policy_four_fifths_flags"] == 0.0
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


def _material(n: int = 400):  # type: ignore[no-untyped-def]
    import numpy as np

    from models.report import RunMaterial
    from models.tracking import TARGET_COLUMN
    from tests.model.helpers import train_tiny

    model, _, _ = train_tiny(600, seed=5)
    ev = make_frame(n, seed=9)
    ev[TARGET_COLUMN] = ev.pop("bad")
    ev["firm_age_days"] = np.where(np.arange(n) % 2 == 0, 100.0, 4000.0)  # half under a year
    attrs = pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(n)],
            "amount_usd": [250_000.0 if i % 10 == 0 else 10_000.0 for i in range(n)],
            "business_model": ["b2b" if i < n // 2 else "b2c" for i in range(n)],
            "home_region": ["CN-GD"] * n,
        }
    )
    mat = RunMaterial("run", None, "", {}, {}, {}, evaluation_set=ev, attributes=attrs)
    return model, mat


def _policy(grade_at_least: str, pd_at_least: float):  # type: ignore[no-untyped-def]
    import yaml

    from credit.policy import policy_from_dict

    path = Path(__file__).parents[3] / "credit" / "policies" / "default.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(name="lenient", version="2")
    data["decision"]["approve"]["grade_at_least"] = grade_at_least
    data["decision"]["decline"][0]["pd_at_least"] = pd_at_least
    return policy_from_dict(data)


def test_policy_decisions_on_the_evaluation_set() -> None:
    from models.outcomes import apply_policy
    from models.report import policy_decisions
    from models.tracking import TARGET_COLUMN

    model, mat = _material()
    # the default policy approves grades A to C only: none of these risky rows
    dec = policy_decisions(mat, model)
    assert dec.policy == "default@1" and dec.rows == 400
    assert dec.rates.set_index("outcome").loc["approved", "n"] == 0
    assert dec.segments["air"].isna().all() and (dec.segments["status"] != "reference").all()
    # a lender approving every grade below a PD of 0.5
    policy = _policy(grade_at_least="F", pd_at_least=0.5)
    dec = policy_decisions(mat, model, policy)
    assert dec.policy == "lenient@2"
    ev = mat.evaluation_set.assign(amount_usd=mat.attributes["amount_usd"])
    judged = apply_policy(model, ev, policy)
    assert judged["outcome"].nunique() == 3
    rates = dec.rates.set_index("outcome")
    expected = judged["outcome"].value_counts()
    assert rates["n"].to_dict() == {o: int(expected.get(o, 0)) for o in rates.index}
    # every tenth loan asks for more than the automatic limit: never approved automatically
    assert (judged["outcome"].iloc[::10] != "approved").all()
    y = ev[TARGET_COLUMN]
    appr = judged["outcome"] == "approved"
    assert rates.loc["approved", "defaults"] == int(y[appr].sum())
    assert rates.loc["approved", "default_rate"] == pytest.approx(float(y[appr].mean()))
    seg = dec.segments.set_index(["segment", "group"])
    b2b = judged["outcome"].iloc[:200]
    assert seg.loc[("business_model", "b2b"), "n"] == 200
    assert seg.loc[("business_model", "b2b"), "approval_rate"] == pytest.approx(
        float((b2b == "approved").mean())
    )
    assert seg.loc[("region", "CN-GD"), "status"] == "reference"
    assert seg.loc[("region", "CN-GD"), "air"] == 1.0
    young, old = judged["outcome"].iloc[::2], judged["outcome"].iloc[1::2]
    air = (young == "approved").mean() / (old == "approved").mean()
    best = min(air, 1 / air)
    band = seg.loc["firm_age_band"]
    assert band["air"].min() == pytest.approx(best)
    assert bool(band["four_fifths_flag"].any()) == (best < 0.8)
    assert set(dec.segments.loc[dec.segments["segment"] == "firm_age_band", "group"]) == {
        "<1y", "5y+",
    }  # fmt: skip
    assert "us_export_share_365d" in dec.note  # the model has no export shares
    m = dec.metrics()
    assert m["policy_approval_rate"] == pytest.approx(float(appr.mean()))
    assert m["policy_four_fifths_flags"] == float(len(dec.flagged))


def test_policy_decisions_without_firm_attributes_says_so() -> None:
    from models.report import policy_decisions

    model, mat = _material()
    mat.attributes = None
    dec = policy_decisions(mat, model)
    bm = dec.segments[dec.segments["segment"] == "business_model"]
    assert bm["group"].tolist() == ["unknown"] and bm["n"].tolist() == [400]
    assert "no firm attributes" in dec.note
    mat.evaluation_set = None
    assert policy_decisions(mat, model).segments.empty


def test_evaluation_attributes_come_from_the_record_store(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import duckdb

    from models.report import evaluation_attributes

    store = tmp_path / "records.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("CREATE TABLE loans (loan_id TEXT, firm_id TEXT, amount_usd DOUBLE)")
        con.execute("INSERT INTO loans VALUES ('L1', 'a', 5000), ('L2', 'b', 7000), "
                    "('L3', 'zz', 1)")  # fmt: skip
        con.execute("CREATE TABLE firms (firm_id TEXT, business_model TEXT, home_region TEXT)")
        con.execute("INSERT INTO firms VALUES ('a', 'b2b', 'CN-GD'), ('b', 'b2c', 'CN-ZJ')")
    rep = SimpleNamespace(
        fingerprint={"source": str(store)}, eval_ids=pd.Series(["L2", "L9", "L1", "L3"])
    )
    got = evaluation_attributes(rep)  # type: ignore[arg-type]
    assert got is not None
    assert got["loan_id"].tolist() == ["L2", "L9", "L1", "L3"]  # evaluation order
    bm = got["business_model"]
    assert (bm.iloc[0], bm.iloc[2]) == ("b2c", "b2b") and pd.isna(bm.iloc[1])  # L9: no loan
    assert got["amount_usd"].iloc[[0, 2]].tolist() == [7000.0, 5000.0]
    assert pd.isna(got["home_region"].iloc[3])  # a loan whose firm has no row
    rep.fingerprint = {"source": "make_frame"}
    assert evaluation_attributes(rep) is None  # type: ignore[arg-type]
