"""The data summary of a training table: rows, outcomes, time range and the default rate by
period (the first section of the model report, logged with every training run)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from models.dataset import TrainingData
from models.splits import matured


def summarize_data(
    data: TrainingData,
    horizon: pd.Timestamp | None = None,
    outcome_window_months: int | None = None,
) -> dict[str, Any]:
    """Rows, outcomes, time range and the default rate by period of a training table.

    Periods are quarters when the table spans more than 18 months, else months. With a
    ``horizon`` and an outcome window, the default rate of a period counts only matured
    applications (outcome window closed by the horizon): the outcomes known early in an open
    window are mostly defaults, and would overstate the rate.
    """
    y = np.asarray(data.y)
    lab = y >= 0
    out: dict[str, Any] = {
        "source": data.source,
        "rows": int(len(y)),
        "labelled_rows": int(lab.sum()),
        "unknown_outcome_rows": int((~lab).sum()),
        "defaults": int((y == 1).sum()),
        "default_rate": float(y[lab].mean()) if lab.any() else math.nan,
        "features": len(data.feature_names),
        "categorical_features": sorted(data.categories),
        "by_period": [],
    }
    if data.times is not None and len(data.times):
        t = pd.to_datetime(data.times).reset_index(drop=True)
        out["time_min"], out["time_max"] = str(t.min()), str(t.max())
        span = (t.max() - t.min()).days / 30.4
        freq = "Q" if span > 18 else "M"
        period = t.dt.to_period(freq).astype(str)
        mature = np.ones(len(y), dtype=bool)
        if horizon is not None and outcome_window_months is not None:
            mature = matured(t, pd.Timestamp(horizon), int(outcome_window_months))
            out["horizon"] = str(horizon)
            out["outcome_window_months"] = int(outcome_window_months)
        df = pd.DataFrame({"period": period, "y": y, "mature": mature})
        rows = []
        for p, g in df.groupby("period", sort=True):
            known = (g["y"] >= 0) & g["mature"]
            rows.append(
                {
                    "period": str(p),
                    "rows": int(len(g)),
                    "labelled": int((g["y"] >= 0).sum()),
                    "matured": int(known.sum()),
                    "defaults": int((g["y"] == 1).sum()),
                    "default_rate": float((g["y"][known] == 1).mean()) if known.any() else None,
                }
            )
        out["period"] = "quarter" if freq == "Q" else "month"
        out["by_period"] = rows
    return out
