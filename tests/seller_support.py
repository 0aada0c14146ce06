"""Support for the offer and seller-page tests: a small simulated world in a real record store.

The firms' trade records come from the simulator and sit in a DuckDB record store, so the
offers and the chart are computed from real records. The decision comes from a small LightGBM
model on five catalog features (so reason texts and hints are the catalog's), wrapped in the
one scoring core and fed with hand-set feature vectors: a middling profile for the first firm
(grade C, offers, three reasons) and a high-risk thin file for the second.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from credit.records import RECORD_TYPES
from credit.scale import ScoreScale
from credit.scoring import Calibrator, ScoringModel
from credit.settings import Settings
from tests.api_support import MemoryOnlineStore

SEED = 3
GHOST = "GHOST01"
START, MONTHS = "2024-01", 18

FEATURES = [
    "supplier_dpd_mean_365d",
    "months_of_history",
    "thin_file_flag",
    "inflow_90d",
    "refund_ratio_90d",
]

GOOD_FEATURES: dict[str, Any] = {
    "supplier_dpd_mean_365d": 12.0,
    "months_of_history": 14.0,
    "thin_file_flag": 0.0,
    "inflow_90d": 20_000.0,
    "refund_ratio_90d": 0.09,
}
RISKY_FEATURES: dict[str, Any] = {
    "supplier_dpd_mean_365d": 45.0,
    "months_of_history": 2.0,
    "thin_file_flag": 1.0,
    "inflow_90d": 300.0,
    "refund_ratio_90d": 0.3,
}


def train_model(seed: int = 0) -> ScoringModel:
    """A small PD model on five catalog features, with the catalog's reason texts."""
    import lightgbm as lgb
    import numpy as np

    from features import catalog

    rng = np.random.default_rng(seed)
    n = 4000
    dpd = rng.exponential(8, n)
    months = rng.integers(1, 60, n).astype(float)
    thin = (months < 6).astype(float)
    inflow = rng.lognormal(10, 1.2, n)
    refunds = rng.beta(2, 30, n)
    z = -4.2 + 0.06 * dpd - 0.02 * months + 0.8 * thin - 0.35 * (np.log(inflow) - 10)
    z += 6.0 * refunds
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    X = np.column_stack([dpd, months, thin, inflow, refunds])
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 15,
            "learning_rate": 0.1,
            "verbose": -1,
            "seed": seed,
            "monotone_constraints": [1, -1, 1, -1, 1],
        },
        lgb.Dataset(X, y, feature_name=FEATURES),
        num_boost_round=40,
    )
    return ScoringModel(
        booster,
        Calibrator("platt", a=1.0, b=0.0),
        ScoreScale(),
        FEATURES,
        reason_texts={f: catalog.get(f).reason for f in FEATURES},
        version="1",
        run_id="run-seller",
    )


def simulated_records() -> dict[str, pd.DataFrame]:
    """A 30-firm, 18-month simulated world (records as of 2025-07-01)."""
    from credit.simulator import simulate

    world = simulate(firms=30, start=START, months=MONTHS, seed=SEED)
    return dict(world.frames())


def write_store(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """The frames into a DuckDB record store with the contract's tables."""
    from credit.store import open_store

    con = open_store(path)
    try:
        for name, rt in RECORD_TYPES.items():
            df = frames[name][rt.columns]
            con.register("frame", df)
            con.execute(f"INSERT INTO {name} SELECT {', '.join(rt.columns)} FROM frame")
            con.unregister("frame")
    finally:
        con.close()


def pick_firms(frames: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """The firm with the most products to size (then the most settlements), and the firm
    with the fewest settlements."""
    from credit.offers import compute_bases

    scores = []
    for fid in frames["firms"]["firm_id"]:
        rec = {
            k: frames[k][frames[k]["firm_id"] == fid] for k in ("customs", "shipments", "payments")
        }
        b = compute_bases(rec, "2025-07-01")
        amounts = [b.settlements_180d, b.open_receivables, b.pending_tax_refunds, b.warehouse_stock]
        scores.append((sum(a > 0 for a in amounts), b.settlements_180d, str(fid)))
    scores.sort()
    return scores[-1][2], min(scores, key=lambda t: t[1])[2]


def world_service(data_dir: Path, **settings_kw: Any) -> dict[str, Any]:
    """Settings, online store and record store for a simulated world under ``data_dir``."""
    frames = simulated_records()
    settings = Settings(data_dir=data_dir, api_rate_limit=0, **settings_kw)
    settings.ensure_data_dir()
    write_store(settings.store_path, frames)
    good, risky = pick_firms(frames)
    as_of = datetime(2025, 7, 1, tzinfo=UTC)
    store = MemoryOnlineStore(
        {
            good: [(as_of, GOOD_FEATURES)],
            risky: [(as_of, RISKY_FEATURES)],
            GHOST: [(as_of, GOOD_FEATURES)],  # features but no records in the record store
        }
    )
    return {
        "settings": settings,
        "online": store,
        "frames": frames,
        "good": good,
        "risky": risky,
        "as_of": as_of,
    }
