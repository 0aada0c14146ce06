"""The industry baseline: a WoE scorecard (monotone bins, logistic regression, points to double
the odds), fitted with optbinning on exactly the rows and features the LightGBM model sees."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from credit.scale import ScoreScale


def _frame(
    X: npt.NDArray[np.float64], names: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    df = pd.DataFrame(X, columns=list(names))
    for c, labels in categories.items():
        codes = df[c].to_numpy()
        lab = np.asarray(labels, dtype=object)
        out = np.full(len(codes), np.nan, dtype=object)
        ok = ~np.isnan(codes)
        out[ok] = lab[codes[ok].astype(int)]
        df[c] = out
    return df


@dataclass
class ScorecardModel:
    """A fitted optbinning scorecard."""

    scorecard: Any
    feature_names: list[str]
    categories: dict[str, list[str]]

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        df = _frame(X, self.feature_names, self.categories)
        out: npt.NDArray[np.float64] = np.asarray(
            self.scorecard.predict_proba(df)[:, 1], dtype=np.float64
        )
        return out

    def table(self) -> pd.DataFrame:
        """The points table (variable, bin, points)."""
        t: pd.DataFrame = self.scorecard.table(style="summary")
        return t

    @property
    def selected(self) -> list[str]:
        bp = self.scorecard.binning_process_
        return [str(v) for v in bp.get_support(names=True)]


def fit_scorecard(
    X: npt.NDArray[np.float64],
    y: npt.ArrayLike,
    feature_names: Sequence[str],
    categories: Mapping[str, Sequence[str]] | None = None,
    scale: ScoreScale | None = None,
    max_n_bins: int = 6,
    min_bin_size: float = 0.05,
) -> ScorecardModel:
    """Fit WoE binning (monotone trend for numeric features) + logistic regression + points.

    Features whose binning carries no information (IV below 0.02) are dropped, as is usual.
    """
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    cats = {k: list(v) for k, v in (categories or {}).items()}
    names = list(feature_names)
    sc = scale or ScoreScale()
    df = _frame(X, names, cats)
    fit_params = {n: {"monotonic_trend": "auto_asc_desc"} for n in names if n not in cats}
    bp = BinningProcess(
        variable_names=names,
        categorical_variables=list(cats) or None,
        max_n_bins=max_n_bins,
        min_bin_size=min_bin_size,
        selection_criteria={"iv": {"min": 0.02}},
        binning_fit_params=fit_params,
    )
    card = Scorecard(
        binning_process=bp,
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": sc.pdo,
            "odds": sc.base_odds,
            "scorecard_points": sc.base_score,
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card.fit(df, np.asarray(y, dtype=np.int64))
    return ScorecardModel(card, names, cats)
