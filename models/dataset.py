"""Training tables: read a CSV/Parquet file, turn it into a float matrix without hand preparation.

Numeric columns stay numbers; string (and boolean) columns become categorical codes whose
labels are stored with the model; missing values stay NaN (LightGBM routes them). A
missing target means *outcome unknown*: such rows are never labelled good, they are dropped
from every labelled set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

_TRUE = {"1", "true", "t", "yes", "y", "bad", "default", "defaulted"}
_FALSE = {"0", "false", "f", "no", "n", "good"}


@dataclass
class TrainingData:
    """A prepared training table.

    Attributes
    ----------
    X : float matrix, columns = ``feature_names``; categorical columns hold label indices.
    y : 1 = default, 0 = no default, -1 = outcome unknown.
    times : application time per row (``None`` without a time column).
    ids : row identifiers (``None`` without an id column).
    frame : the original columns that are not features (segments, ids, times...).
    """

    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    feature_names: list[str]
    categories: dict[str, list[str]]
    times: pd.Series | None = None
    ids: pd.Series | None = None
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = ""

    @property
    def labelled(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = self.y >= 0
        return out

    def fingerprint(self) -> dict[str, Any]:
        """Rows, time range and a content hash (features + target), for the run's record."""
        h = hashlib.sha256()
        h.update(",".join(self.feature_names).encode())
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        out: dict[str, Any] = {
            "rows": int(len(self.y)),
            "labelled_rows": int(self.labelled.sum()),
            "defaults": int((self.y == 1).sum()),
            "features": len(self.feature_names),
            "sha256": h.hexdigest(),
        }
        if self.times is not None and len(self.times):
            out["time_min"] = str(self.times.min())
            out["time_max"] = str(self.times.max())
        if self.source:
            out["source"] = self.source
        return out


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by extension)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training table {p} does not exist")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(p)
    raise ValueError(f"training table {p}: expected a .csv or .parquet file, got {suffix!r}")


def encode_target(col: pd.Series) -> npt.NDArray[np.int64]:
    """1 / 0 / -1 (unknown) from booleans, 0/1 numbers or common yes/no words."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        v = pd.to_numeric(col.astype("Float64"), errors="coerce")
        bad = v.notna() & ~v.isin([0, 1])
        if bad.any():
            raise ValueError(
                f"target {col.name!r} must be 0/1 (or true/false); "
                f"found {sorted(v[bad].unique())[:5]}"
            )
        return np.asarray(v.fillna(-1).astype("int64").to_numpy(), dtype=np.int64)
    s = col.astype("string").str.strip().str.lower()
    out = np.full(len(s), -1, dtype=np.int64)
    out[s.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = 1
    out[s.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = 0
    unknown = s.notna() & ~s.isin(_TRUE | _FALSE)
    if unknown.any():
        raise ValueError(
            f"target {col.name!r}: cannot read {sorted(s[unknown].unique())[:5]} as default/no "
            "default; use 0/1, true/false or yes/no"
        )
    return out


def encode_features(
    frame: pd.DataFrame, columns: Sequence[str], categorical: Sequence[str] = ()
) -> tuple[npt.NDArray[np.float64], dict[str, list[str]]]:
    """Float matrix + category labels. Non-numeric columns (and ``categorical``) become codes."""
    X = np.empty((len(frame), len(columns)), dtype=np.float64)
    cats: dict[str, list[str]] = {}
    forced = set(categorical)
    for j, c in enumerate(columns):
        col = frame[c]
        if c in forced or not (
            pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        ):
            if pd.api.types.is_bool_dtype(col):
                X[:, j] = col.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            s = col.astype("string")
            labels = sorted(s.dropna().unique().tolist())
            lookup = {lab: i for i, lab in enumerate(labels)}
            X[:, j] = s.map(lookup).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
            cats[c] = [str(x) for x in labels]
        else:
            X[:, j] = col.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return X, cats


def from_frame(
    frame: pd.DataFrame,
    target: str,
    time_column: str | None = None,
    id_column: str | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
    source: str = "",
) -> TrainingData:
    """Prepare a table: every column except target/time/id/``exclude`` is a feature by default."""
    for name, col in (("target", target), ("time column", time_column), ("id column", id_column)):
        if col is not None and col not in frame.columns:
            raise ValueError(
                f"{name} {col!r} is not in the table; columns: {', '.join(map(str, frame.columns))}"
            )
    skip = {target, *(c for c in (time_column, id_column) if c), *exclude}
    feats = list(features) if features is not None else [c for c in frame.columns if c not in skip]
    absent = [c for c in feats if c not in frame.columns]
    if absent:
        raise ValueError(f"feature columns not in the table: {', '.join(absent)}")
    if not feats:
        raise ValueError("the table has no feature columns besides the target/time/id")
    y = encode_target(frame[target])
    if (y >= 0).sum() == 0:
        raise ValueError(f"target {target!r} has no known outcomes")
    X, cats = encode_features(frame, feats, categorical)
    times = None
    if time_column:
        times = pd.to_datetime(frame[time_column], errors="raise", utc=True).dt.tz_localize(None)
        if times.isna().any():
            raise ValueError(
                f"time column {time_column!r} has {int(times.isna().sum())} empty values"
            )
    ids = frame[id_column].reset_index(drop=True) if id_column else None
    rest = [c for c in frame.columns if c not in feats]
    return TrainingData(
        X=X,
        y=y,
        feature_names=[str(c) for c in feats],
        categories=cats,
        times=times.reset_index(drop=True) if times is not None else None,
        ids=ids,
        frame=frame[rest].reset_index(drop=True),
        source=source,
    )
