"""Support for the API tests: a tiny trained model, an in-memory online store, keys."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from credit.scale import ScoreScale
from credit.scoring import Calibrator, ScoringModel

FEATURES = ["late_share_180d", "months_of_history", "thin_file", "settlements_90d", "category"]
CATEGORIES = {"category": ["food", "cosmetics", "electronics_digital"]}
TEXTS = {
    "late_share_180d": "Many invoices paid late in the last 180 days",
    "months_of_history": "Short trading history",
    "thin_file": "Too little history",
    "settlements_90d": "Low platform settlements in the last 90 days",
    "category": "Product category",
}


def train_model(seed: int = 0, n_trees: int = 30, version: str = "1") -> ScoringModel:
    """A small LightGBM PD model on synthetic data, wrapped in the scoring core."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    n = 3000
    late = rng.uniform(0, 1, n)
    months = rng.integers(1, 60, n).astype(float)
    thin = (months < 6).astype(float)
    vol = rng.lognormal(9, 1, n)
    cat = rng.integers(0, 3, n).astype(float)
    z = -3.5 + 3.0 * late - 0.02 * months + 0.8 * thin - 0.3 * (np.log(vol) - 9) + 0.3 * cat
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    X = np.column_stack([late, months, thin, vol, cat])
    X[rng.uniform(size=n) < 0.05, 0] = np.nan  # some missing values
    ds = lgb.Dataset(X, y, feature_name=FEATURES, categorical_feature=[4], free_raw_data=False)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 15,
            "learning_rate": 0.1,
            "verbose": -1,
            "seed": seed,
        },
        ds,
        num_boost_round=n_trees,
    )
    return ScoringModel(
        booster,
        Calibrator("platt", a=1.0, b=0.0),
        ScoreScale(),
        FEATURES,
        reason_texts=TEXTS,
        categories=CATEGORIES,
        version=version,
        run_id=f"run{version}",
        metadata={"trained_at": "2026-01-01T00:00:00Z"},
    )


def posted_body(as_of: str = "2025-06-30", **payment: Any) -> dict[str, Any]:
    """A ``POST /v1/score`` body with posted records: firm F0001 and one settlement, whose
    fields ``payment`` overrides (e.g. ``counterparty_id=``, ``amount_usd=``)."""
    return {
        "as_of": as_of,
        "firm": {
            "firm_id": "F0001",
            "registered_at": "2021-04-12",
            "business_model": "b2c",
            "main_category": "home_furnishings",
            "home_region": "CN-ZJ",
        },
        "records": {
            "payments": [
                {
                    "payment_id": "P1",
                    "firm_id": "F0001",
                    "kind": "settlement",
                    "direction": "in",
                    "amount_usd": 1712.0,
                    "currency": "USD",
                    "counterparty_id": "amazon",
                    "occurred_at": "2025-05-20",
                    "paid_at": "2025-05-20",
                    **payment,
                }
            ]
        },
    }


def firm_features(i: int) -> dict[str, Any]:
    rng = np.random.default_rng(1000 + i)
    months = float(rng.integers(1, 60))
    return {
        "late_share_180d": float(rng.uniform()),
        "months_of_history": months,
        "thin_file": float(months < 6),
        "settlements_90d": float(rng.lognormal(9, 1)),
        "category": CATEGORIES["category"][i % 3],
    }


class MemoryOnlineStore:
    """``get(firm_id, as_of=None) -> (as_of, features) | None`` over a dict (tests only)."""

    def __init__(self, rows: Mapping[str, list[tuple[datetime, dict[str, Any]]]]) -> None:
        self.rows = {k: sorted(v, key=lambda r: r[0]) for k, v in rows.items()}
        self.fail = False

    def get(
        self, firm_id: str, as_of: datetime | None = None
    ) -> tuple[datetime, dict[str, Any]] | None:
        if self.fail:
            raise ConnectionError("online store down")
        hits = [r for r in self.rows.get(firm_id, []) if as_of is None or r[0] <= as_of]
        return hits[-1] if hits else None


def make_store(n_firms: int = 20) -> MemoryOnlineStore:
    t1 = datetime(2025, 3, 31, tzinfo=UTC)
    t2 = datetime(2025, 6, 30, tzinfo=UTC)
    return MemoryOnlineStore(
        {
            f"F{i:04d}": [(t1, firm_features(i)), (t2, firm_features(i + 5000))]
            for i in range(n_firms)
        }
    )


def catalog_frame(n_firms: int, as_of: str, seed: int = 0) -> Any:
    """A feature table over the real catalog's features (random values, some missing)."""
    import pandas as pd

    from features.catalog import feature_names

    names = feature_names()
    rng = np.random.default_rng(seed)
    X = rng.lognormal(0, 1, (n_firms, len(names)))
    X[rng.uniform(size=X.shape) < 0.05] = np.nan
    df = pd.DataFrame(X, columns=names)
    df.insert(0, "as_of", pd.Timestamp(as_of))
    df.insert(0, "firm_id", [f"F{i:05d}" for i in range(n_firms)])
    return df


def train_catalog_model(
    version: str | None = None, n_trees: int = 30, seed: int = 0
) -> ScoringModel:
    """A small LightGBM model over the catalog's features, with the catalog's reason texts."""
    import lightgbm as lgb

    from features.catalog import feature_names, get

    names = feature_names()
    df = catalog_frame(1500, "2025-01-01", seed=seed)
    X = df[names].to_numpy()
    z = (
        -3
        + 0.6 * np.nan_to_num(X[:, 0])
        - 0.4 * np.nan_to_num(X[:, 1])
        + 0.3 * np.nan_to_num(X[:, 5])
    )
    y = (np.random.default_rng(seed).uniform(size=len(z)) < 1 / (1 + np.exp(-z))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": seed, "num_threads": 1},
        lgb.Dataset(X, y, feature_name=names),
        num_boost_round=n_trees,
    )
    return ScoringModel(
        booster,
        Calibrator("platt", a=0.9, b=0.1),
        ScoreScale(),
        names,
        reason_texts={n: get(n).reason for n in names},
        version=version,
        run_id=None,
        metadata={"trained_at": "2026-01-01T00:00:00Z"},
    )


def register_champion(model: ScoringModel, tracking_uri: str, workdir: Any) -> str:
    """Log ``model``'s bundle to MLflow, register it and point ``@champion`` at it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from credit.scoring import MODEL_NAME

    bundle = model.to_bundle(workdir / "bundle")
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    exp = client.get_experiment_by_name("api-tests") or None
    exp_id = (
        exp.experiment_id
        if exp
        else client.create_experiment(
            "api-tests", artifact_location=(workdir / "mlartifacts").resolve().as_uri()
        )
    )
    run = client.create_run(exp_id)
    client.log_artifacts(run.info.run_id, str(bundle), "bundle")
    client.set_terminated(run.info.run_id)
    with contextlib.suppress(Exception):  # already registered by an earlier call
        client.create_registered_model(MODEL_NAME)
    mv = client.create_model_version(
        MODEL_NAME, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id
    )
    client.set_registered_model_alias(MODEL_NAME, "champion", mv.version)
    return str(mv.version)


PG_URL = os.environ.get("TRADECREDIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "tc_test") -> Iterator[tuple[str, str, sa.Engine]]:
    """(url, name, admin engine) of a new PostgreSQL database, dropped afterwards; the test
    is skipped when the server is unreachable."""
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url, name, admin
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
