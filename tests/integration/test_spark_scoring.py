"""Batch scoring on Spark equals the in-process scoring core, row for row.

A tiny model is trained, registered in an embedded MLflow store and promoted to ``champion``;
the same feature table is scored in process (:func:`credit.decisions.score_frame`) and on
Spark ``local[2]`` (``mlflow.pyfunc.spark_udf`` for PD/score/grade, ``mapInPandas`` for the
reasons).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason='PySpark is not installed: pip install "tradecredit[spark]"')

from credit.decisions import TOP_K, score_frame  # noqa: E402
from credit.scoring import CHAMPION_URI, ScoringModel  # noqa: E402
from credit.settings import get_settings  # noqa: E402
from features.spark import session  # noqa: E402
from models import registry  # noqa: E402
from models.dataset import from_frame  # noqa: E402
from models.spark_scoring import score, score_to_parquet  # noqa: E402
from models.train import train_time_split  # noqa: E402
from tests.model.helpers import make_frame, tiny_cfg  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(data dir, tracking URI) of an embedded store whose champion is a tiny model."""
    d = tmp_path_factory.mktemp("spark-scoring") / "var"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADECREDIT_DATA_DIR", str(d))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        get_settings.cache_clear()
        data = from_frame(
            make_frame(400, seed=3), "bad", time_column="applied_at", id_column="firm_id"
        )
        cfg = tiny_cfg()
        cfg["split"]["outcome_window_months"] = 0
        report = train_time_split(data, cfg, monotone=[1, -1, 0, 0], with_scorecard=False)
        reg = registry.log_training(report)
        if reg.version is None:
            raise RuntimeError("the tiny model was not registered")
        registry.promote(reg.version, cfg=cfg)
        uri = get_settings().tracking_uri
        yield d, uri
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    s = session("local[2]", app_name="tradecredit-test-scoring")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A feature table unseen in training, with missing values and an unseen label."""
    frame = make_frame(250, seed=11).rename(columns={"applied_at": "as_of"})
    frame = frame.drop(columns=["bad"])
    frame.loc[frame.index[:5], "region"] = "MARS"  # unseen category -> missing
    frame.loc[frame.index[5:10], "revenue"] = np.nan
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    path = tmp_path_factory.mktemp("spark-features") / "features.parquet"
    frame.to_parquet(path, index=False)
    return path, frame


def _in_process(uri: str, frame: pd.DataFrame, reasons: bool) -> pd.DataFrame:
    model = ScoringModel.load(CHAMPION_URI, tracking_uri=uri)
    return score_frame(model, frame, reasons=reasons).sort_values("firm_id", ignore_index=True)


def test_spark_scores_equal_the_in_process_scorer(spark, champion, features) -> None:
    _, uri = champion
    path, frame = features
    expected = _in_process(uri, frame, reasons=True)
    sdf = spark.read.parquet(str(path))
    got = score(spark, sdf, tracking_uri=uri, reasons=True).toPandas()
    got = got.sort_values("firm_id", ignore_index=True)

    assert len(got) == len(frame) == len(expected)
    assert got["firm_id"].tolist() == expected["firm_id"].tolist()
    np.testing.assert_allclose(got["pd"], expected["pd"], rtol=1e-12, atol=0)
    assert got["score"].astype("int64").tolist() == expected["score"].astype("int64").tolist()
    assert got["grade"].tolist() == expected["grade"].tolist()
    assert set(got["model_version"]) == {"1"}
    # the comparison is not between constants
    assert got["pd"].nunique() > 10 and got["reason_1"].notna().sum() > 50
    for k in range(1, TOP_K + 1):
        for col in (f"reason_{k}", f"reason_{k}_feature"):
            assert got[col].tolist() == expected[col].tolist(), col
        np.testing.assert_allclose(
            got[f"reason_{k}_contribution"].astype(float),
            expected[f"reason_{k}_contribution"].astype(float),
            rtol=1e-12,
            equal_nan=True,
        )


def test_score_to_parquet_without_reasons(spark, champion, features, tmp_path) -> None:
    _, uri = champion
    path, frame = features
    res = score_to_parquet(path, tmp_path / "scores", tracking_uri=uri, spark=spark)
    written = pd.read_parquet(tmp_path / "scores").sort_values("firm_id", ignore_index=True)
    expected = _in_process(uri, frame, reasons=False)

    assert res.rows == len(frame) and res.version == "1"
    assert sum(res.grades.values()) == len(frame)
    assert list(written.columns) == ["firm_id", "as_of", "pd", "score", "grade", "model_version"]
    np.testing.assert_allclose(written["pd"], expected["pd"], rtol=1e-12, atol=0)
    assert written["grade"].tolist() == expected["grade"].tolist()
    # as_of travels unchanged (UTC wall-clock time)
    assert (
        pd.to_datetime(written["as_of"]).tolist()
        == pd.to_datetime(frame.sort_values("firm_id")["as_of"]).tolist()
    )


def test_cli_scores_on_spark(spark, champion, features, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from credit.cli import app

    data_dir, _ = champion
    path, frame = features
    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    out = tmp_path / "cli-scores"
    res = CliRunner().invoke(
        app,
        ["score", "--engine", "spark", "--input", str(path), "--out", str(out), "--no-reasons"],
    )
    assert res.exit_code == 0, res.output
    assert f"scored {len(frame)} rows on Spark with model version 1" in res.output
    assert len(pd.read_parquet(out)) == len(frame)
