"""Backtest: retrain on an expanding window at each period and score the period that follows.

At the start ``T`` of every month (or quarter) from ``--from`` to ``--to`` the model is trained
the way ``credit train`` trains it (:func:`models.train.fit_model`: the same LightGBM
candidates, early stopping and calibration) on every application whose outcome was known at
``T`` (applied at least ``outcome_window_months`` before ``T``: nothing from the future), the
newest ``validation_fraction`` of them held out for early stopping and calibration. It is then
evaluated on the applications of ``[T, next T)`` whose outcome is settled by the data
horizon. Beside it, the model trained at the first period is kept frozen and scored on every
later period: the gap between the two AUC lines is how much a model decays without retraining.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.dataset import TrainingData
from models.evaluate import metrics
from models.htmlkit import pyplot
from models.splits import matured
from models.train import fit_model

Progress = Callable[[str], None]

#: Lighter defaults for a backtest's many refits (``--param`` overrides them).
FAST = {"training.num_boost_round": 400, "training.early_stopping_rounds": 50}

COLUMNS = [
    "period", "start", "train_rows", "train_defaults", "test_rows", "test_defaults",
    "default_rate", "mean_pd", "auc", "frozen_auc", "ece", "brier",
    "calibration_slope", "calibration_intercept", "trees", "note",
]  # fmt: skip


def _noop(_: str) -> None:
    return None


def periods(start: str, end: str, step: str = "month") -> list[pd.Period]:
    """Periods from ``start`` to ``end`` (``YYYY-MM``), monthly or quarterly.

    >>> [str(p) for p in periods("2024-11", "2025-02")]
    ['2024-11', '2024-12', '2025-01', '2025-02']
    >>> [str(p) for p in periods("2024-11", "2025-05", "quarter")]
    ['2024Q4', '2025Q1', '2025Q2']
    """
    if step not in ("month", "quarter"):
        raise ValueError(f"--step must be month or quarter, got {step!r}")
    try:
        a, b = pd.Period(start, freq="M"), pd.Period(end, freq="M")
    except ValueError:
        raise ValueError(f"months must look like 2025-01, got {start!r} and {end!r}") from None
    if b < a:
        raise ValueError(f"--to {end} is before --from {start}")
    if step == "month":
        return list(pd.period_range(a, b, freq="M"))
    return list(pd.period_range(a.asfreq("Q"), b.asfreq("Q"), freq="Q"))


@dataclass
class BacktestResult:
    table: pd.DataFrame
    step: str
    outcome_window_months: int
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Mean AUC of the retrained and of the frozen model over the evaluated periods."""
        ok = self.table.dropna(subset=["auc"])
        both = ok.dropna(subset=["frozen_auc"])
        return {
            "periods": float(len(self.table)),
            "evaluated": float(len(ok)),
            "mean_auc": float(ok["auc"].mean()) if len(ok) else math.nan,
            "mean_frozen_auc": float(both["frozen_auc"].mean()) if len(both) else math.nan,
            "mean_ece": float(ok["ece"].mean()) if len(ok) else math.nan,
        }


def backtest(
    data: TrainingData,
    cfg: Mapping[str, Any],
    start: str,
    end: str,
    step: str = "month",
    monotone: Sequence[int] | None = None,
    min_train_rows: int = 100,
    min_test_rows: int = 20,
    horizon: pd.Timestamp | None = None,
    progress: Progress = _noop,
) -> BacktestResult:
    """Expanding-window retraining, one row per period (see the module docstring).

    A period is evaluated on its applications whose outcome window closed by ``horizon``
    (default: the latest application time): outcomes known early in an open window are
    mostly defaults and would bias the figures.

    Raises
    ------
    ValueError
        When the table has no time column or the period arguments are invalid.
    """
    if data.times is None:
        raise ValueError("a backtest needs application times (a time column)")
    window = int(cfg.get("split", {}).get("outcome_window_months", 12))
    val_frac = float(cfg.get("split", {}).get("validation_fraction", 0.2))
    ece_bins = int(cfg.get("evaluation", {}).get("ece_bins", 10))
    times = pd.Series(pd.to_datetime(data.times)).reset_index(drop=True)
    y = np.asarray(data.y)
    labelled = y >= 0
    h = pd.Timestamp(horizon) if horizon is not None else times.max()
    settled = labelled & matured(times, h, window)
    rows: list[dict[str, Any]] = []
    frozen = None
    for per in periods(start, end, step):
        t0 = per.start_time
        t1 = (per + 1).start_time
        dev = np.flatnonzero(labelled & matured(times, t0, window))
        test = np.flatnonzero(settled & (times >= t0).to_numpy() & (times < t1).to_numpy())
        row: dict[str, Any] = {c: math.nan for c in COLUMNS}
        row.update(
            period=str(per),
            start=str(t0.date()),
            train_rows=len(dev),
            train_defaults=int(y[dev].sum()),
            test_rows=len(test),
            test_defaults=int(y[test].sum()),
            note="",
        )
        if len(dev) < min_train_rows or len(set(y[dev].tolist())) < 2:
            row["note"] = f"train: < {min_train_rows} settled outcomes or one class"
            rows.append(row)
            progress(f"{per}: skipped ({row['note']})")
            continue
        order = dev[np.argsort(times.iloc[dev].to_numpy(), kind="stable")]
        cut = int(round(len(order) * (1 - val_frac)))
        fit_idx, val_idx = np.sort(order[:cut]), np.sort(order[cut:])
        if len(set(y[val_idx].tolist())) < 2 or len(set(y[fit_idx].tolist())) < 2:
            row["note"] = "validation: one class only"
            rows.append(row)
            progress(f"{per}: skipped ({row['note']})")
            continue
        model, info = fit_model(data, fit_idx, val_idx, cfg, monotone)
        row["trees"] = info.best_iteration
        if frozen is None:
            frozen = model
        if len(test) < min_test_rows or len(set(y[test].tolist())) < 2:
            row["note"] = f"test: < {min_test_rows} settled outcomes or one class"
            rows.append(row)
            progress(f"{per}: trained on {len(dev)}; not evaluated ({row['note']})")
            continue
        p = model.predict(data.X[test]).pd
        m = metrics(y[test], p, ece_bins)
        row.update({k: m.get(k, math.nan) for k in
                    ("default_rate", "mean_pd", "auc", "ece", "brier", "calibration_slope",
                     "calibration_intercept")})  # fmt: skip
        if frozen is not model:
            pf = frozen.predict(data.X[test]).pd
            row["frozen_auc"] = metrics(y[test], pf, ece_bins).get("auc", math.nan)
        else:
            row["frozen_auc"] = row["auc"]
        rows.append(row)
        progress(
            f"{per}: train {len(dev)}, test {len(test)}, AUC {row['auc']:.3f} "
            f"(frozen {row['frozen_auc']:.3f}), ECE {row['ece']:.3f}"
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return BacktestResult(table, step, window, {k: v for k, v in cfg.items()})


def plot(result: BacktestResult, path: str | Path) -> Path:
    """AUC per period (retrained and frozen) above default rate against mean PD."""
    plt = pyplot()
    t = result.table
    x = np.arange(len(t))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    a1.plot(x, t["auc"].astype(float), "o-", label="retrained each period")
    a1.plot(x, t["frozen_auc"].astype(float), "s--", label="frozen (first period's model)")
    a1.set(ylabel="out-of-time AUC", title=f"Backtest, expanding window, by {result.step}")
    a1.legend(loc="lower left")
    a2.plot(x, t["default_rate"].astype(float), "o-", label="observed default rate")
    a2.plot(x, t["mean_pd"].astype(float), "s--", label="mean predicted PD")
    a2.set(ylabel="rate", xlabel="period")
    a2.legend(loc="upper left")
    a2.set_xticks(x)
    a2.set_xticklabels(t["period"].astype(str), rotation=60)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
