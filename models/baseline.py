"""The drift baseline of a model and the population stability index (PSI).

At training time :func:`build_baseline` summarises the development population of a model: the
bin edges and proportions of its score and of every feature (``monitoring/baseline.json`` in the
model's MLflow run, :data:`BASELINE_ARTIFACT`). Monitoring (``models/monitor.py``) later bins a
scored population with the *same* edges and compares.

PSI of proportions ``e`` (baseline) and ``a`` (actual) over the same bins::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with empty bins floored at ``1e-4`` so that the logarithm stays finite. Conventional reading:
below 0.1 stable, 0.1 to 0.25 worth a look (``warn``), above 0.25 shifted (``alert``).

Examples
--------
>>> round(psi([0.5, 0.5], [0.4, 0.6]), 6)
0.040547
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from credit.scoring import ScoringModel

BASELINE_ARTIFACT = "monitoring/baseline.json"
BASELINE_FORMAT = 1
PSI_WARN = 0.1
PSI_ALERT = 0.25
PSI_FLOOR = 1e-4
MISSING = "missing"


# ---------------------------------------------------------------------------------------------
# PSI and binned distributions
# ---------------------------------------------------------------------------------------------


def psi(expected: Sequence[float] | npt.ArrayLike, actual: Sequence[float] | npt.ArrayLike,
        floor: float = PSI_FLOOR) -> float:  # fmt: skip
    """Population stability index between two vectors of bin proportions.

    Parameters
    ----------
    expected : baseline proportions (sum to 1).
    actual : proportions of the population monitored, over the same bins.
    floor : proportions below it are raised to it (an empty bin would make the log infinite).

    Raises
    ------
    ValueError
        When the two vectors differ in length or are empty.
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.size == 0:
        raise ValueError(f"PSI needs two proportion vectors of one length, got {e.shape} {a.shape}")
    e, a = np.clip(e, floor, None), np.clip(a, floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def status(value: float, warn: float = PSI_WARN, alert: float = PSI_ALERT) -> str:
    """``ok``, ``warn`` or ``alert`` for a PSI value (``n/a`` when it is not finite)."""
    if not math.isfinite(value):
        return "n/a"
    if value >= alert:
        return "alert"
    if value >= warn:
        return "warn"
    return "ok"


@dataclass(frozen=True)
class Bins:
    """Bin edges of one variable and its baseline proportions.

    ``kind="numeric"``: ``edges`` are interior cut points; bin ``i`` holds
    ``edges[i-1] <= v < edges[i]`` (the first is open below, the last open above).
    ``kind="categorical"``: one bin per category code ``0..len(labels)-1``.
    Either way a last bin holds missing values (NaN), so ``len(proportions)`` is the number of
    value bins plus one.
    """

    kind: str
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    proportions: tuple[float, ...] = ()

    def counts(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Number of ``values`` per bin (missing last)."""
        v = np.asarray(values, dtype=np.float64)
        miss = np.isnan(v)
        if self.kind == "numeric":
            k = len(self.edges) + 1
            idx = np.searchsorted(np.asarray(self.edges), v[~miss], side="right")
        else:
            k = len(self.labels)
            codes = v[~miss].astype(np.int64)
            unseen = (codes < 0) | (codes >= k)
            idx = codes[~unseen]
            miss = miss.copy()
            miss[np.flatnonzero(~miss)[unseen]] = True
        out = np.zeros(k + 1, dtype=np.int64)
        out[:k] = np.bincount(idx, minlength=k)[:k]
        out[k] = int(miss.sum())
        return out

    def shares(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Proportion of ``values`` per bin (zeros when there are no values)."""
        c = self.counts(values).astype(np.float64)
        total = c.sum()
        out: npt.NDArray[np.float64] = c / total if total else c
        return out

    def bin_labels(self) -> list[str]:
        """Human-readable bin names, missing last."""
        if self.kind == "categorical":
            return [*self.labels, MISSING]
        e = [f"{x:.4g}" for x in self.edges]
        if not e:
            return ["all", MISSING]
        return [f"< {e[0]}", *[f"[{a}, {b})" for a, b in zip(e, e[1:], strict=False)],
                f">= {e[-1]}", MISSING]  # fmt: skip

    def psi(self, values: npt.ArrayLike) -> float:
        """PSI of ``values`` against the baseline proportions (NaN when there are no values)."""
        if np.asarray(values).size == 0:
            return math.nan
        return psi(self.proportions, self.shares(values))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "edges": [float(x) for x in self.edges],
            "labels": list(self.labels),
            "proportions": [float(x) for x in self.proportions],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Bins:
        kind = str(d["kind"])
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"unknown bin kind {kind!r}")
        b = cls(
            kind=kind,
            edges=tuple(float(x) for x in d.get("edges", ())),
            labels=tuple(str(x) for x in d.get("labels", ())),
            proportions=tuple(float(x) for x in d.get("proportions", ())),
        )
        expected = (len(b.edges) + 2) if kind == "numeric" else (len(b.labels) + 1)
        if len(b.proportions) != expected:
            raise ValueError(
                f"{kind} bins with {len(b.edges)} edges / {len(b.labels)} labels need "
                f"{expected} proportions, got {len(b.proportions)}"
            )
        return b


def fit_bins(values: npt.ArrayLike, bins: int = 10, labels: Sequence[str] | None = None) -> Bins:
    """Baseline bins of one variable: quantile edges (numeric) or one bin per category.

    Quantile edges that coincide (counts, flags, heavy ties) are merged, so a flag gets two
    value bins and a constant one.

    >>> b = fit_bins([1.0, 2.0, 3.0, 4.0], bins=2)
    >>> b.edges, b.proportions
    ((2.0,), (0.25, 0.75, 0.0))
    """
    v = np.asarray(values, dtype=np.float64)
    if labels is not None:
        b = Bins("categorical", labels=tuple(str(x) for x in labels))
    else:
        finite = v[np.isfinite(v)]
        edges: tuple[float, ...] = ()
        if finite.size:
            # Edges are observed values (no interpolation), so counts and flags cut cleanly.
            qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
            edges = tuple(float(x) for x in np.unique(qs))
            # A cut equal to the minimum leaves its lower bin empty: drop it.
            edges = tuple(x for x in edges if x > float(finite.min()))
        b = Bins("numeric", edges=edges)
    shares = b.shares(v)
    return Bins(b.kind, b.edges, b.labels, tuple(float(x) for x in shares))


# ---------------------------------------------------------------------------------------------
# the baseline of a model
# ---------------------------------------------------------------------------------------------


def build_baseline(
    model: ScoringModel,
    X: npt.ArrayLike,
    population: str = "development",
    bins: int = 10,
) -> dict[str, Any]:
    """The baseline distributions of a model: score, grade and every feature.

    Parameters
    ----------
    model : the model (its scale, feature names and categories are used).
    X : the development feature matrix (columns = ``model.feature_names``).
    population : what ``X`` is, recorded for the reader.
    bins : quantile bins for numeric variables.
    """
    arr = np.asarray(X, dtype=np.float64)
    s = model.predict(arr)
    grades = model.scale.grades
    g = np.asarray(s.grade).astype(str)
    feats = {
        name: fit_bins(arr[:, j], bins, model.categories.get(name)).to_dict()
        for j, name in enumerate(model.feature_names)
    }
    return {
        "format": BASELINE_FORMAT,
        "population": population,
        "rows": int(arr.shape[0]),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "score": fit_bins(s.score.astype(np.float64), bins).to_dict(),
        "mean_pd": float(np.mean(s.pd)) if len(s) else math.nan,
        "grades": {k: float(np.mean(g == k)) if len(g) else 0.0 for k in grades},
        "features": feats,
    }
