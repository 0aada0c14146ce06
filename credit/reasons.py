"""SHAP contributions -> ranked reason codes with the catalog's texts.

Contributions are exact TreeSHAP values in log-odds (LightGBM ``pred_contrib``); the
features that raise the risk most (largest positive contributions) come first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code.

    Parameters
    ----------
    code : stable short code (``R01``...), from the model's feature order.
    feature : feature name.
    value : the feature's value for this row (``None`` when missing).
    contribution : SHAP contribution in log-odds (positive raises the risk).
    text : human-readable reason (the catalog's text, or the column name).
    """

    code: str
    feature: str
    value: float | str | None
    contribution: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        # field by field: dataclasses.asdict deep-copies and costs more than the decision
        return {
            "code": self.code,
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "text": self.text,
        }


#: Prefix of a reason whose feature has no value: the model counts the absence of data against
#: the firm, so the catalog's "raises risk" text would state a fact the records do not show.
MISSING_PREFIX = "Not enough history to show otherwise: "


#: Prefix of a reason whose feature has no value because the records it needs belong to a
#: provider the consent does not cover: not shared, which is not the same as no history.
NOT_SHARED_PREFIX = "Not shared with you under this consent: "


def reason_text(text: str, value: float | str | None) -> str:
    """The text of a reason: the catalog's text, or for a missing value the same text prefixed.

    >>> reason_text("Buyers pay late", 12.0)
    'Buyers pay late'
    >>> reason_text("Buyers pay late", None)
    'Not enough history to show otherwise: buyers pay late'
    """
    if value is not None:
        return text
    return MISSING_PREFIX + text[:1].lower() + text[1:]


def reason_codes(feature_names: Sequence[str]) -> list[str]:
    """Stable codes for features in model order: ``R01``, ``R02``, ..."""
    width = max(2, len(str(len(feature_names))))
    return [f"R{i + 1:0{width}d}" for i in range(len(feature_names))]


def _value(v: Any, categories: Sequence[str] | None) -> float | str | None:
    if v is None:
        return None
    f = float(v)
    if math.isnan(f):
        return None
    if categories is not None:
        i = int(f)
        return categories[i] if 0 <= i < len(categories) else None
    return f


def top_k_matrix(
    contributions: npt.NDArray[np.float64], top_k: int = 4
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """:func:`top_reasons`'s ranking for a whole contribution matrix at once.

    Returns ``(idx, contribution)``, both ``(n, top_k)``: per row the feature indices of the
    largest contributions, largest first (the same partition-then-stable-sort as
    :func:`top_reasons`); index -1 (contribution NaN) where fewer features raise the risk.
    """
    c = np.asarray(contributions, dtype=np.float64)
    n, m = c.shape
    k = min(top_k, m)
    if n == 0 or k == 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0))
    idx = np.argpartition(-c, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    vals = np.take_along_axis(c, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    # top_reasons stops at the first contribution <= 0: so does the mask (sorted rows)
    keep = np.cumprod(vals > 0.0, axis=1).astype(bool)
    return np.where(keep, idx, -1), np.where(keep, vals, np.nan)


def top_reasons(
    contributions: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    feature_names: Sequence[str],
    codes: Sequence[str],
    texts: Sequence[str],
    top_k: int = 4,
    categories: Mapping[int, Sequence[str]] | None = None,
    positive_only: bool = True,
) -> list[Reason]:
    """Up to ``top_k`` reasons for one row, largest contribution first.

    Parameters
    ----------
    contributions : one row of per-feature contributions (without the base value).
    values : the same row's feature values (as the model saw them).
    feature_names, codes, texts : per feature, in model order.
    top_k : how many reasons at most; ``None``/``0`` or negative means all features.
    categories : for categorical features (by column index), the category labels.
    positive_only : keep only contributions that raise the risk.
    """
    c = contributions
    n = c.shape[0]
    k = n if not top_k or top_k < 0 else min(top_k, n)
    if k < n:
        idx = np.argpartition(-c, k - 1)[:k]
        idx = idx[np.argsort(-c[idx], kind="stable")]
    else:
        idx = np.argsort(-c, kind="stable")
    cats = categories or {}
    out: list[Reason] = []
    for j in idx.tolist():
        cj = float(c[j])
        if positive_only and cj <= 0.0:
            break
        value = _value(values[j], cats.get(j))
        out.append(
            Reason(
                code=codes[j],
                feature=feature_names[j],
                value=value,
                contribution=cj,
                text=reason_text(texts[j], value),
            )
        )
    return out
