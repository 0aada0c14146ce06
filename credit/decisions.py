"""Credit decisions: one firm's feature vector -> a recorded-ready decision.

The API (``POST /v1/score``), ``credit score`` and batch scoring build decisions here, on top
of the one scoring core (:class:`credit.scoring.ScoringModel`): this module turns feature
mappings into the model's numpy matrix (no pandas on the hot path), calls the core once for the
whole batch and shapes each row into a :class:`Decision`. It never computes a score itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Literal

import numpy as np

from credit.decisioning import Verdict
from credit.reasons import top_k_matrix
from credit.records import MAX_UTC_OFFSET_HOURS, MIN_DATE
from credit.scoring import ScoringInputError, ScoringModel
from features import catalog

Explain = Literal["top", "full", "none"]
TOP_K = 4


@dataclass(frozen=True)
class Decision:
    """One scored firm, as returned by the API and written to the audit log."""

    decision_id: str
    firm_id: str
    as_of: datetime
    pd: float
    score: int
    grade: str
    reasons: list[dict[str, Any]]
    model: dict[str, str | None]
    data: dict[str, Any]
    scored_at: datetime
    features: dict[str, Any]
    source: str = "online_store"
    explanation: dict[str, Any] | None = field(default=None)
    #: the consent the decision was made under (``None``: the operator, or posted records)
    consent_id: str | None = None
    #: whose records it used: ``providers``, ``withheld`` (held but not shared under the
    #: consent) and, when computed from records on the spot, ``ingestions``
    lineage: dict[str, Any] | None = None
    #: the records it used were those ingested at or before this moment (replay reads the same)
    knowledge_at: datetime | None = None
    #: the outcome under the caller's policy (approve, decline or refer) and why
    verdict: Verdict | None = None
    #: the review a referred decision opened
    review_id: str | None = None

    def to_response(self) -> dict[str, Any]:
        """The JSON body of a decision (no feature vector: that stays in the audit log)."""
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "firm_id": self.firm_id,
            "as_of": iso(self.as_of),
            "pd": self.pd,
            "score": self.score,
            "grade": self.grade,
            "reasons": self.reasons,
            "model": self.model,
            "data": self.data,
            "scored_at": iso(self.scored_at),
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        if self.consent_id is not None:
            out["consent_id"] = self.consent_id
        if self.lineage is not None:
            out["sources"] = self.lineage.get("providers", [])
        if self.verdict is not None:
            out.update(outcome_fields(self.verdict, self.decision_id, self.review_id))
        return out

    def same_outcome(self, other: Decision, tol: float = 1e-12) -> bool:
        """Whether two decisions agree on everything but their id and time."""
        return (
            self.firm_id == other.firm_id
            and self.as_of == other.as_of
            and abs(self.pd - other.pd) <= tol
            and self.score == other.score
            and self.grade == other.grade
            and [r["code"] for r in self.reasons] == [r["code"] for r in other.reasons]
            and self.model == other.model
        )


def outcome_fields(
    verdict: Verdict, decision_id: str, review_id: str | None, status: str = "open"
) -> dict[str, Any]:
    """What a decision's answer says of its outcome: ``outcome``, ``recommendation``, the
    ``rules`` that fired, the ``policy``, the amount asked and approved up to and, where there
    is one, the ``review`` and the adverse-action ``notice``."""
    out: dict[str, Any] = {
        "outcome": verdict.outcome,
        "recommendation": verdict.recommendation,
        "rules": verdict.rules,
        "policy": verdict.policy,
        "amount": verdict.amount,
        "limit": verdict.limit,
    }
    if review_id is not None:
        out["review"] = {"review_id": review_id, "status": status}
    if verdict.outcome == "declined":
        out["notice"] = f"/v1/decisions/{decision_id}/notice"
    return out


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``."""
    return to_utc(dt).isoformat().replace("+00:00", "Z")


def to_utc(value: datetime | date | str) -> datetime:
    """A timezone-aware UTC datetime; naive values and bare dates are taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: How many days past today (UTC) a decision's ``as_of`` may lie: one, so that a caller whose
#: date is already ahead of UTC's (up to UTC+14:00) can ask as of its own today.
AS_OF_DAYS_AHEAD = 1


class AsOfRangeError(ValueError):
    """An ``as_of`` outside the range the data contract accepts for a point in time."""


def as_of_range(today: date | None = None) -> tuple[datetime, datetime]:
    """The ``as_of`` values accepted, ``[start, end)`` in UTC: from the data contract's earliest
    date (:data:`credit.records.MIN_DATE`) to the end of the day after today (UTC)."""
    today = today or datetime.now(UTC).date()
    start = datetime.fromisoformat(MIN_DATE).replace(tzinfo=UTC)
    end = datetime.combine(today + timedelta(days=AS_OF_DAYS_AHEAD + 1), time(), UTC)
    return start, end


def checked_as_of(
    value: datetime | date | str, name: str = "as_of", *, today: date | None = None
) -> datetime:
    """The moment a decision is asked for, as a timezone-aware UTC datetime, or
    :class:`AsOfRangeError` (a ``ValueError``) naming ``name`` and the valid range.

    The one range check of ``as_of`` (the API's request schema and query parameter, the
    commands' ``--as-of``): not before the data contract's earliest date, at most
    :data:`AS_OF_DAYS_AHEAD` day after today (UTC), with a UTC offset within +/-14:00 like
    every timestamp of the contract. A string that is not ISO 8601 is a plain ``ValueError``.
    """
    start, end = as_of_range(today)
    last = end - timedelta(seconds=1)
    problem = AsOfRangeError(
        f"{name} must lie between {start:%Y-%m-%dT%H:%M:%S}Z and {last:%Y-%m-%dT%H:%M:%S}Z "
        f"(the data contract's earliest date to {AS_OF_DAYS_AHEAD} day after today, UTC), "
        f"with a UTC offset within +/-{MAX_UTC_OFFSET_HOURS:02d}:00"
    )
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is not None and abs(offset) > timedelta(hours=MAX_UTC_OFFSET_HOURS):
            raise problem
    try:
        utc = to_utc(value)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise problem from None
    if not start <= utc < end:
        raise problem
    return utc


def request_hash(payload: Any) -> str:
    """sha256 of the canonical JSON of a request (keys sorted), for the audit log."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def new_decision_id() -> str:
    return "dec_" + uuid.uuid4().hex


def _finite(v: Any) -> Any:
    if type(v) is float:  # the common case first: this runs for every feature of a decision
        return v if v - v == 0.0 else None  # NaN and +-inf give NaN
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _vector(feats: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The recorded feature vector: model order, non-finite numbers as ``None``."""
    out: dict[str, Any] = {}
    for f in names:  # inline for floats, the common case (~90 per decision)
        v = feats[f]
        out[f] = (v if v - v == 0.0 else None) if type(v) is float else _finite(v)
    return out


class _Encoder:
    """Feature mappings -> the model's float matrix, categorical labels -> codes."""

    def __init__(self, model: ScoringModel) -> None:
        self.names = list(model.feature_names)
        self.lookup = {
            j: {lab: float(i) for i, lab in enumerate(model.categories[f])}
            for j, f in enumerate(self.names)
            if f in model.categories
        }
        self.numeric = [j for j in range(len(self.names)) if j not in self.lookup]
        self.numeric_names = [self.names[j] for j in self.numeric]

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        n, m = len(rows), len(self.names)
        out = np.empty((n, m), dtype=np.float64)
        for i, row in enumerate(rows):
            try:  # the common case, in one numpy assignment: numbers, None -> NaN
                values = [row[f] for f in self.numeric_names]
                if self.lookup:
                    out[i, self.numeric] = values
                    for j, labels in self.lookup.items():
                        v = row[self.names[j]]
                        out[i, j] = labels.get(str(v), np.nan) if v is not None else np.nan
                else:
                    out[i] = values
                continue
            except (KeyError, TypeError, ValueError):
                pass  # a missing feature or a non-number: the checks below name it
            missing = [f for f in self.names if f not in row]
            if missing:
                raise ScoringInputError(
                    f"feature vector lacks {len(missing)} model feature(s): "
                    f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}"
                )
            for j, f in enumerate(self.names):
                v = row[f]
                if j in self.lookup:
                    out[i, j] = self.lookup[j].get(str(v), np.nan) if v is not None else np.nan
                elif v is None:
                    out[i, j] = np.nan
                else:
                    try:
                        out[i, j] = float(v)
                    except (TypeError, ValueError) as exc:
                        raise ScoringInputError(
                            f"feature {f!r} must be numeric, got {v!r}"
                        ) from exc
        return out


_encoders: weakref.WeakKeyDictionary[ScoringModel, _Encoder] = weakref.WeakKeyDictionary()


def encode(model: ScoringModel, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The model's feature matrix for feature mappings (one per row)."""
    enc = _encoders.get(model)
    if enc is None:
        enc = _encoders[model] = _Encoder(model)
    return enc.encode(rows)


@cache
def reason_hint(feature: str) -> str | None:
    """The catalog's hint for improving ``feature`` (``None`` for features outside it)."""
    try:
        hint = catalog.get(feature).hint
    except KeyError:
        return None
    return str(hint) if hint else None


def data_sufficiency(features: Mapping[str, Any]) -> dict[str, Any]:
    """``{thin_file, history_months}`` from the catalog's two data-sufficiency features
    (``None`` when the model has none of them, as a bring-your-own table)."""
    thin = _finite(features.get(catalog.THIN_FILE))
    months = _finite(features.get(catalog.HISTORY_MONTHS))
    return {"thin_file": None if thin is None else bool(thin), "history_months": months}


def decide(
    model: ScoringModel,
    items: Sequence[tuple[str, datetime, Mapping[str, Any]]],
    explain: Explain | Sequence[Explain] = "top",
    source: str = "online_store",
    scored_at: datetime | None = None,
) -> list[Decision]:
    """Score ``(firm_id, as_of, features)`` items with ``model`` in one call to the core.

    Parameters
    ----------
    model : the scoring core to use (one version for the whole call).
    items : firm id, the as-of date of its features, and the feature mapping (every model
        feature must be a key; ``None`` means missing).
    explain : ``"top"`` (up to 4 reason codes), ``"full"`` (also every contribution, the base
        value and the raw log-odds) or ``"none"`` (no SHAP work); one value or one per item.
    source : ``online_store`` or ``posted``, recorded with each decision.

    Raises
    ------
    ScoringInputError
        When a feature vector does not fit the model.
    """
    if not items:
        return []
    modes = [explain] * len(items) if isinstance(explain, str) else list(explain)
    if len(modes) != len(items):
        raise ValueError("explain must be one value or one per item")
    X = encode(model, [f for _, _, f in items])
    now = scored_at or datetime.now(UTC)
    identity = model.identity()
    names = model.feature_names
    need_shap = [i for i, m in enumerate(modes) if m != "none"]
    reasons: dict[int, list[dict[str, Any]]] = {}
    explanations: dict[int, dict[str, Any]] = {}
    if need_shap:
        ex = model.explain(X[need_shap], top_k=TOP_K)
        pd_, score_, grade_ = ex.scores.pd, ex.scores.score, ex.scores.grade
        pdv = np.empty(len(items))
        scv = np.empty(len(items), dtype=np.int64)
        grv = np.empty(len(items), dtype=object)
        pdv[need_shap], scv[need_shap], grv[need_shap] = pd_, score_, grade_
        for r, i in enumerate(need_shap):
            reasons[i] = [
                {
                    **{k: _finite(v) for k, v in rs.to_dict().items()},
                    "hint": reason_hint(rs.feature),
                }
                for rs in ex.reasons[r]
            ]
            if modes[i] == "full":
                explanations[i] = {
                    "base_value": float(ex.base_value[r]),
                    "raw_log_odds": float(ex.scores.raw[r]),
                    "contributions": {
                        f: float(c) for f, c in zip(names, ex.contributions[r], strict=True)
                    },
                }
        rest = [i for i, m in enumerate(modes) if m == "none"]
        if rest:
            s = model.predict(X[rest])
            pdv[rest], scv[rest], grv[rest] = s.pd, s.score, s.grade
    else:
        s = model.predict(X)
        pdv, scv, grv = s.pd, s.score, s.grade.astype(object)
    out = []
    for i, (firm_id, as_of, feats) in enumerate(items):
        vector = _vector(feats, names)
        out.append(
            Decision(
                decision_id=new_decision_id(),
                firm_id=firm_id,
                as_of=to_utc(as_of),
                pd=float(pdv[i]),
                score=int(scv[i]),
                grade=str(grv[i]),
                reasons=reasons.get(i, []),
                model=identity,
                data=data_sufficiency(feats),
                scored_at=now,
                features=vector,
                source=source,
                explanation=explanations.get(i),
            )
        )
    return out


def score_frame(
    model: ScoringModel,
    frame: Any,
    reasons: bool = True,
    chunk_size: int = 20_000,
    progress: Any = None,
) -> Any:
    """Batch scoring of a feature table (pandas DataFrame), chunk by chunk.

    Parameters
    ----------
    model : the scoring core.
    frame : one row per firm: ``firm_id``, ``as_of`` (optional) and every model feature.
    reasons : add up to four reason codes per row (``reason_1`` ... with their contributions).
    chunk_size : rows per call to the core (bounds memory for SHAP matrices).
    progress : called with the number of rows done after each chunk.

    Returns
    -------
    pandas.DataFrame
        firm_id, as_of, pd, score, grade, model_version and, with reasons,
        ``reason_k`` / ``reason_k_feature`` / ``reason_k_contribution`` for k = 1..4.
    """
    import pandas as pd

    if "firm_id" not in frame.columns:
        raise ScoringInputError("the feature table needs a firm_id column")
    parts = []
    for start in range(0, len(frame), chunk_size):
        part = frame.iloc[start : start + chunk_size]
        X = model.encode(part)
        out = pd.DataFrame({"firm_id": part["firm_id"].astype(str).to_numpy()})
        if "as_of" in part.columns:
            out["as_of"] = pd.to_datetime(part["as_of"], utc=True).to_numpy()
        if reasons:
            ex = model.explain(X, top_k=TOP_K, reason_objects=False)
            scores = ex.scores
        else:
            scores = model.predict(X)
        out["pd"] = scores.pd
        out["score"] = scores.score
        out["grade"] = scores.grade
        out["model_version"] = model.version
        if reasons:
            idx, contrib = top_k_matrix(ex.contributions, TOP_K)
            codes = np.array([*model.reason_codes, None], dtype=object)
            names = np.array([*model.feature_names, None], dtype=object)
            for k in range(idx.shape[1]):
                out[f"reason_{k + 1}"] = codes[idx[:, k]]  # index -1 picks the None
                out[f"reason_{k + 1}_feature"] = names[idx[:, k]]
                out[f"reason_{k + 1}_contribution"] = contrib[:, k]
        parts.append(out)
        if progress is not None:
            progress(len(part))
    if not parts:
        return pd.DataFrame(columns=["firm_id", "pd", "score", "grade", "model_version"])
    return pd.concat(parts, ignore_index=True)
