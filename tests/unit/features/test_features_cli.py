"""``credit features build | materialize | describe`` end to end on a small simulated store."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from credit.cli import app
from features.catalog import CATALOG_VERSION, feature_names
from features.pipeline import TRAINING_COLUMNS
from tests.oracle_features import load_world

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    from credit.simulator import simulate

    return dict(simulate(firms=40, start="2023-01", months=24, seed=3).frames())


@pytest.fixture
def store(settings, world: dict[str, pd.DataFrame]) -> Path:  # type: ignore[no-untyped-def]
    from credit.store import open_store

    con = open_store()  # the store in TRADECREDIT_DATA_DIR
    load_world(con, world)
    con.close()
    return settings.store_path


def test_build_loan_spine_is_the_training_set(store: Path, tmp_path: Path, world: dict) -> None:
    out = tmp_path / "train.parquet"
    res = runner.invoke(app, ["features", "build", "--spine", "loans", "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert list(df.columns) == TRAINING_COLUMNS + feature_names()
    assert len(df) == len(world["loans"])
    assert df["loan_id"].is_unique
    assert (df["as_of"].to_numpy() == pd.to_datetime(df["as_of"]).to_numpy()).all()
    assert str(df["defaulted"].dtype) == "boolean"
    # unknown outcomes stay unknown, never "good"
    assert df["defaulted"].isna().sum() == world["loans"]["defaulted"].isna().sum()
    assert set(df["main_market"]) <= {"US", "EU", "JP", "SEA", "LATAM", "ME", "OTHER", "NONE"}
    assert set(df["business_model"]) <= {"b2b", "b2c", "mixed"}
    import pyarrow.parquet as pq

    meta = pq.read_schema(out).metadata
    assert meta[b"tradecredit.catalog_version"].decode() == CATALOG_VERSION


def test_build_monthly_spine(store: Path, tmp_path: Path, world: dict) -> None:
    out = tmp_path / "monthly.parquet"
    res = runner.invoke(
        app,
        ["features", "build", "--spine", "monthly", "--from", "2024-01", "--to", "2024-03",
         "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert sorted(df["as_of"].unique()) == list(
        pd.to_datetime(["2024-02-01", "2024-03-01", "2024-04-01"])
    )
    registered = world["firms"].set_index("firm_id")["registered_at"]
    assert (registered.loc[df["firm_id"]].to_numpy() < df["as_of"].to_numpy()).all()
    assert df.groupby("as_of").size().max() <= len(world["firms"])


def test_bad_options_are_clear(store: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.parquet")
    res = runner.invoke(app, ["features", "build", "--spine", "weekly", "--out", out])
    assert res.exit_code == 2 and "loans or monthly" in res.output
    res = runner.invoke(app, ["features", "build", "--lag", "customs", "--out", out])
    assert res.exit_code == 2 and "TYPE=DAYS" in res.output
    res = runner.invoke(
        app, ["features", "build", "--spine", "monthly", "--from", "2024-05", "--to", "2024-01",
              "--out", out],
    )  # fmt: skip
    assert res.exit_code == 2 and "before" in res.output


def test_missing_store_says_what_to_do(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = runner.invoke(app, ["features", "build", "--out", str(tmp_path / "x.parquet")])
    assert res.exit_code == 2
    assert "credit ingest" in res.output


def test_materialize_fills_the_online_store(store: Path, settings, world: dict) -> None:  # type: ignore[no-untyped-def]
    from features.online import OnlineStore

    res = runner.invoke(app, ["features", "materialize"])
    assert res.exit_code == 0, res.output
    online = OnlineStore()
    assert online.count() == len(world["firms"])
    firm = world["firms"]["firm_id"].iloc[0]
    got = online.get(firm)
    assert got is not None
    as_of, feats = got
    assert list(feats) == feature_names()
    assert as_of > world["payments"]["occurred_at"].max()
    assert not math.isnan(feats["months_of_history"])
    assert online.get(firm, as_of - pd.Timedelta(days=1)) is None


def test_describe_writes_the_data_dictionary(tmp_path: Path) -> None:
    out = tmp_path / "features.md"
    assert runner.invoke(app, ["features", "describe", "--out", str(out)]).exit_code == 0
    text = out.read_text()
    for name in feature_names():
        assert f"`{name}`" in text
    assert CATALOG_VERSION in text
    res = runner.invoke(app, ["features", "describe", "--out", str(out), "--check"])
    assert res.exit_code == 0


def test_docs_features_md_is_up_to_date() -> None:
    from features.describe import render_markdown

    path = ROOT / "docs" / "features.md"
    assert path.read_text() == render_markdown(), (
        "docs/features.md is out of date: run `credit features describe`"
    )


def test_monthly_spine_defaults_to_the_last_12_complete_months(
    store: Path, tmp_path: Path, world: dict
) -> None:
    out = tmp_path / "monthly.parquet"
    res = runner.invoke(app, ["features", "build", "--spine", "monthly", "--out", str(out)])
    assert res.exit_code == 0, res.output
    moments = sorted(pd.read_parquet(out)["as_of"].unique())
    assert len(moments) == 12
    last_event = world["payments"]["occurred_at"].max()
    assert moments[-1] <= last_event + pd.Timedelta(days=1)
    assert all(pd.Timestamp(m).day == 1 for m in moments)
