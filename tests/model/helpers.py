"""Small synthetic training tables for model tests (a few hundred rows, known risk directions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from credit.scoring import ScoringModel
from models.dataset import TrainingData, from_frame
from models.params import load_params
from models.train import fit_model


def make_frame(n: int = 600, seed: int = 0, signal: float = 1.0) -> pd.DataFrame:
    """late_share raises risk (+1), revenue lowers it (-1), noise is noise, region is a string
    categorical with one riskier label; firm_id is an identifier, applied_at a time column."""
    rng = np.random.default_rng(seed)
    late = rng.uniform(0, 1, n)
    revenue = rng.normal(0, 1, n)
    noise = rng.normal(0, 1, n)
    region = rng.choice(["EU", "US", "SEA"], n)
    z = -1.6 + signal * (2.2 * late - 0.9 * revenue + 0.6 * (region == "SEA"))
    y = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-z))).astype(int)
    late[rng.uniform(0, 1, n) < 0.05] = np.nan  # some missing values
    return pd.DataFrame(
        {
            "firm_id": [f"F{i:05d}" for i in rng.permutation(n)],
            "applied_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.sort(rng.uniform(0, 700, n)), unit="D"),
            "late_share": late,
            "revenue": revenue,
            "noise": noise,
            "region": region,
            "bad": y,
        }
    )


def tiny_cfg(**over: Any) -> dict[str, Any]:
    """The real parameter file with a tiny, fast LightGBM."""
    cfg = load_params()
    cfg["lightgbm"].update(
        num_leaves=4, min_child_samples=10, learning_rate=0.1, num_threads=1, **over
    )
    cfg["training"].update(num_boost_round=80, early_stopping_rounds=20, candidates=[{}])
    return cfg


def train_tiny(
    n: int = 600, seed: int = 0, monotone: bool = True
) -> tuple[ScoringModel, TrainingData, np.ndarray]:
    """A model fitted on the first 60%, calibrated on the next 20%; returns the test rows."""
    data = from_frame(make_frame(n, seed), "bad", time_column="applied_at", id_column="firm_id")
    idx = np.arange(n)
    fit, val, test = idx[: int(0.6 * n)], idx[int(0.6 * n) : int(0.8 * n)], idx[int(0.8 * n) :]
    mono = [1, -1, 0, 0] if monotone else None
    model, _ = fit_model(
        data, fit, val, tiny_cfg(), monotone=mono, reason_texts={"late_share": "Pays late"}
    )
    return model, data, test
