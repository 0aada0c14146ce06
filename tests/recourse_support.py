"""A simulated world with a record store and a LightGBM model trained on the whole catalog,
for the recourse tests and benchmark: plans are recomputed from real simulated records and
scored by a model that reads every catalog feature, as in production."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from credit.scoring import ScoringModel
from credit.simulator import World, simulate
from tests.seller_support import write_store


@dataclass
class RecourseWorld:
    world: World
    store: Path
    model: ScoringModel
    frames: dict[str, pd.DataFrame]

    def firm_records(self, firm_id: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
        """One firm's records (every record type) and its own row."""
        recs = {
            k: self.frames[k][self.frames[k]["firm_id"] == firm_id].to_dict("records")
            for k in ("customs", "shipments", "payments", "loans")
        }
        f = self.frames["firms"]
        return recs, f[f["firm_id"] == firm_id].iloc[0].to_dict()


def build_world(
    path: Path, firms: int = 400, months: int = 30, seed: int = 11, rounds: int = 120
) -> RecourseWorld:
    """Simulate, store, train (time split, calibrated, the catalog's monotone constraints)."""
    from features import catalog
    from features.pipeline import training_set
    from models.dataset import from_frame
    from models.params import load_params
    from models.train import train_time_split

    world = simulate(firms=firms, start="2023-01", months=months, seed=seed)
    frames = dict(world.frames())
    store = path / "store.duckdb"
    write_store(store, frames)
    frame = training_set(str(store))
    names = catalog.feature_names()
    data = from_frame(frame, "defaulted", time_column="as_of", id_column="loan_id", features=names)
    cfg = load_params()
    cfg["lightgbm"].update(num_threads=2)
    cfg["training"].update(num_boost_round=rounds, candidates=[{}])
    report = train_time_split(
        data,
        cfg,
        monotone=catalog.monotone_constraints(),
        reason_texts=catalog.reason_texts(),
        catalog_version=catalog.CATALOG_VERSION,
        with_scorecard=False,
    )
    return RecourseWorld(world, store, report.model, frames)
