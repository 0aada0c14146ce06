"""Registry and promotion gate on the embedded MLflow store (SQLite in the test's data dir)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from credit.scoring import ModelUnavailableError, ScoringModel
from models import registry, tracking
from models.dataset import from_frame
from models.train import train_time_split
from tests.model.helpers import make_frame, tiny_cfg

pytestmark = pytest.mark.slow


def _report(signal: float, seed: int = 0):
    frame = make_frame(500, seed=seed, signal=signal)
    data = from_frame(frame, "bad", time_column="applied_at", id_column="firm_id")
    cfg = tiny_cfg()
    cfg["split"]["outcome_window_months"] = 0
    return train_time_split(data, cfg, monotone=[1, -1, 0, 0], with_scorecard=False)


def test_gate_refuses_a_worse_challenger_and_the_alias_stays(data_dir) -> None:
    good = registry.log_training(_report(signal=1.0))
    assert good.version == "1"
    first = registry.promote("1", cfg=tiny_cfg())
    assert first.promoted and first.previous is None
    assert tracking.champion_version() == "1"

    # A challenger trained on (almost) no signal, judged on its own out-of-time rows.
    worse = registry.log_training(_report(signal=0.05))
    res = registry.promote(worse.version, cfg=tiny_cfg())
    assert not res.promoted
    assert "does not beat the champion" in res.message
    assert res.challenger["auc"] < res.champion["auc"]
    # the same rows scored by both: DeLong's interval around the (negative) gain
    gain = res.auc_gain
    assert gain["diff"] == pytest.approx(res.challenger["auc"] - res.champion["auc"], abs=1e-6)
    assert gain["ci_low"] < gain["diff"] < gain["ci_high"]
    assert tracking.champion_version() == "1"  # the alias did not move

    with pytest.raises(ValueError, match="--force needs --reason"):
        registry.promote(worse.version, force=True, cfg=tiny_cfg())
    forced = registry.promote(worse.version, force=True, reason="incident drill", cfg=tiny_cfg())
    assert forced.promoted and tracking.champion_version() == worse.version
    c = tracking.client()
    tags = c.get_model_version(registry.MODEL_NAME, worse.version).tags
    assert tags["promotion_reason"] == "incident drill"
    assert tags["promoted_from"] == "1" and tags["promotion_forced"] == "true"
    assert json.loads(tags["promotion_metrics"])["champion"]["auc"] == pytest.approx(
        res.champion["auc"], abs=1e-6
    )
    assert json.loads(tags["promotion_metrics"])["auc_gain"]["diff"] == pytest.approx(
        gain["diff"], abs=1e-6
    )

    rows = registry.list_versions()
    assert [r["version"] for r in rows] == [worse.version, "1"]
    assert rows[0]["aliases"] == "champion"
    assert float(rows[1]["auc"]) > 0.5


def test_load_champion_keeps_a_local_copy(data_dir, settings, monkeypatch) -> None:
    rep = _report(signal=1.0)
    reg = registry.log_training(rep)
    registry.promote(reg.version, cfg=tiny_cfg())
    # A fresh process has no process-wide MLflow URI: load must use the settings' URI alone.
    import mlflow

    other = f"sqlite:///{settings.data_dir / 'elsewhere.db'}"
    mlflow.set_tracking_uri(other)
    mlflow.set_registry_uri(other)
    m = ScoringModel.load("models:/tradecredit-pd@champion")
    assert m.identity() == {"name": "tradecredit-pd", "version": "1", "run_id": reg.run_id}
    np.testing.assert_allclose(m.predict(rep.eval_x).pd, rep.eval_pd, rtol=0, atol=1e-12)
    assert m.scale == rep.model.scale and m.metadata["evaluation"] == "oot"

    # Registry unreachable: the cached copy for the same URI still loads.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    again = ScoringModel.load("models:/tradecredit-pd@champion", tracking_uri="http://127.0.0.1:9")
    assert again.version == "1"
    with pytest.raises(ModelUnavailableError, match="no cached copy"):
        ScoringModel.load("models:/tradecredit-pd/5", tracking_uri="http://127.0.0.1:9")
    with pytest.raises(ModelUnavailableError, match="model URI must look like"):
        ScoringModel.load("runs:/abc/model")


def test_pyfunc_returns_pd_score_grade(data_dir) -> None:
    import mlflow.pyfunc

    rep = _report(signal=1.0)
    reg = registry.log_training(rep)
    model = mlflow.pyfunc.load_model(f"models:/tradecredit-pd/{reg.version}")
    frame = registry.decoded_frame(rep.model, rep.eval_x[:20])
    out = model.predict(frame)
    assert list(out.columns) == ["pd", "score", "grade"]
    np.testing.assert_allclose(out["pd"].to_numpy(), rep.eval_pd[:20], atol=1e-12)
    assert model.metadata.signature is not None
    # logged as code beside the bundle's text files: nothing in the registry is unpickled
    from mlflow.artifacts import download_artifacts

    files = {
        p.name for p in Path(download_artifacts(f"models:/tradecredit-pd/{reg.version}")).rglob("*")
    }
    assert "pyfunc_model.py" in files and {"model.txt", "calibrator.json", "meta.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))], files
    run = tracking.client().get_run(reg.run_id)
    assert run.data.tags["catalog_version"] == "none"
    assert "oot_auc" in run.data.metrics and "oot_ece" in run.data.metrics
    arts = {a.path for a in tracking.client().list_artifacts(reg.run_id, "plots")}
    assert {"plots/roc.png", "plots/reliability.png", "plots/shap_summary.png"} <= arts
