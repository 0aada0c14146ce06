"""Probability of default <-> credit score (points to double the odds) and grade bands.

The scale is configuration (``models/params.yaml``, section ``scale``) and is stored with every
model version (``scale.json`` in the model bundle), so a reload scores identically.

``score = offset + factor * ln(good:bad odds)``, with ``factor = pdo / ln 2`` and
``offset = base_score - factor * ln(base_odds)``; clamped to ``[min_score, max_score]``.

Examples
--------
>>> s = ScoreScale()
>>> float(s.score([1 / 51])[0])  # 50:1 good:bad odds -> the base score
600.0
>>> float(s.score([1 / 101])[0]) - 600.0  # odds doubled -> + pdo
20.0
>>> str(s.grade([0.004])[0]), str(s.grade([0.5])[0])
('A', 'F')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Default grade bands: (grade, upper PD bound, exclusive). The last band is unbounded.
DEFAULT_BANDS: tuple[tuple[str, float], ...] = (
    ("A", 0.01),
    ("B", 0.02),
    ("C", 0.05),
    ("D", 0.10),
    ("E", 0.20),
    ("F", 1.0),
)

_EPS = 1e-12


@dataclass(frozen=True)
class ScoreScale:
    """A points-to-double-the-odds score scale with PD grade bands.

    Parameters
    ----------
    base_score : score at ``base_odds``.
    base_odds : good:bad odds that earn ``base_score`` (50 means 50 goods per bad).
    pdo : points to double the odds.
    min_score, max_score : clamp.
    bands : ``(grade, upper_pd)`` pairs with strictly increasing bounds; a PD below
        ``upper_pd`` (and at or above the previous bound) gets that grade; the last band
        catches everything else.
    """

    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    min_score: float = 300.0
    max_score: float = 850.0
    bands: tuple[tuple[str, float], ...] = field(default=DEFAULT_BANDS)

    def __post_init__(self) -> None:
        if self.pdo <= 0:
            raise ValueError(f"scale.pdo must be positive, got {self.pdo}")
        if self.base_odds <= 0:
            raise ValueError(f"scale.base_odds must be positive, got {self.base_odds}")
        if self.min_score >= self.max_score:
            raise ValueError(
                f"scale.min_score ({self.min_score}) must be below max_score ({self.max_score})"
            )
        if not self.bands:
            raise ValueError("scale.bands must list at least one (grade, upper_pd) band")
        bounds = [float(b) for _, b in self.bands]
        if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
            raise ValueError(f"scale.bands upper PD bounds must increase strictly: {bounds}")
        # Normalise (lists from YAML/JSON) into hashable tuples.
        object.__setattr__(self, "bands", tuple((str(g), float(b)) for g, b in self.bands))
        # Precomputed for the scoring hot path.
        object.__setattr__(self, "_upper", np.array([b for _, b in self.bands[:-1]], dtype=float))
        object.__setattr__(self, "_letters", np.asarray([g for g, _ in self.bands], dtype=np.str_))

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    @property
    def grades(self) -> tuple[str, ...]:
        return tuple(g for g, _ in self.bands)

    def score(self, pd: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Scores (float, clamped) for PDs."""
        p = np.clip(np.asarray(pd, dtype=np.float64), _EPS, 1.0 - _EPS)
        s = self.offset + self.factor * (np.log1p(-p) - np.log(p))
        return np.clip(s, self.min_score, self.max_score)

    def score_int(self, pd: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Scores rounded to whole points, as shown to people."""
        return np.rint(self.score(pd)).astype(np.int64)

    def pd_from_score(self, score: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The PD a score stands for (inverse of :meth:`score` inside the clamp)."""
        s = np.asarray(score, dtype=np.float64)
        log_odds_good = (s - self.offset) / self.factor
        return 1.0 / (1.0 + np.exp(log_odds_good))

    def grade(self, pd: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """Grade letters for PDs."""
        idx = np.searchsorted(self._upper, pd, side="right")  # type: ignore[attr-defined]
        out: npt.NDArray[np.str_] = self._letters[idx]  # type: ignore[attr-defined]
        return out

    def score_from_logit(self, logit_pd: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Whole-point scores from the log-odds of default (skips the PD round trip)."""
        s = np.clip(self.offset - self.factor * logit_pd, self.min_score, self.max_score)
        return np.rint(s).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bands"] = [[g, b] for g, b in self.bands]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ScoreScale:
        """Build from configuration (``None`` or ``{}`` gives the defaults)."""
        if not data:
            return cls()
        known = {"base_score", "base_odds", "pdo", "min_score", "max_score", "bands"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown score scale keys {sorted(unknown)}; known: {sorted(known)}")
        kw: dict[str, Any] = {k: v for k, v in data.items() if k != "bands"}
        for k in kw:
            kw[k] = float(kw[k])
        if "bands" in data:
            bands: Sequence[Any] = data["bands"]
            if isinstance(bands, Mapping):
                bands = list(bands.items())
            kw["bands"] = tuple((str(g), float(b)) for g, b in bands)
        return cls(**kw)
