"""Drift monitoring: the population scored since a date against the model's training baseline.

The baseline (bin edges and proportions of the score and of every feature) is written at
training time by :func:`models.baseline.build_baseline`. :func:`compare` bins a scored
population with the *same* edges and computes the population stability index (PSI) of the score
and of each feature, the grade distribution shift and, when outcomes are known, the default rate
by grade against the PDs predicted. :func:`monitor` reads the decisions audit log
(:meth:`credit.audit.AuditLog.since`) and does this per model version. PSI and its reading
(``ok``/``warn``/``alert``) are described in ``models/baseline.py``.

Besides drift, :func:`monitor` reports the decisions themselves (:class:`DecisionSection`):
approval, decline and referral rates by segment with the adverse impact ratio and the
four-fifths rule, and the override rates of the reviews that closed referred decisions, with how
overridden loans performed once their outcome is known (:mod:`models.outcomes`).
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from credit.audit import MONITORING_COLUMNS, AuditLog
from credit.audit import decisions as decisions_table
from credit.db import get_engine
from credit.scoring import MODEL_NAME, ScoringModel
from credit.settings import get_settings
from features.pipeline import store_horizon
from models import htmlkit, outcomes, tracking
from models.baseline import BASELINE_ARTIFACT, PSI_ALERT, PSI_WARN, Bins, status
from models.params import load_params

# ---------------------------------------------------------------------------------------------
# comparing a population with the baseline
# ---------------------------------------------------------------------------------------------


@dataclass
class DriftResult:
    """What :func:`compare` found for one model version."""

    model_version: str
    rows: int
    score_psi: float
    psi: pd.DataFrame  # variable, kind, psi, status (score first, then features by PSI)
    grades: pd.DataFrame  # grade, baseline share, current share, change
    migration: pd.DataFrame  # first grade x last grade of firms scored more than once
    outcomes: pd.DataFrame  # grade, n, defaults, default_rate, mean_pd, lower, upper, status
    warn: float = PSI_WARN
    alert: float = PSI_ALERT
    score_bins: pd.DataFrame | None = None

    @property
    def alerts(self) -> list[str]:
        """Variables whose PSI crosses the alert threshold."""
        return [str(v) for v in self.psi.loc[self.psi["status"] == "alert", "variable"]]

    @property
    def warnings(self) -> list[str]:
        return [str(v) for v in self.psi.loc[self.psi["status"] == "warn", "variable"]]


def compare(
    baseline: Mapping[str, Any],
    model: ScoringModel,
    X: npt.ArrayLike,
    scores: npt.ArrayLike | None = None,
    grades: Sequence[str] | npt.ArrayLike | None = None,
    firm_ids: Sequence[str] | None = None,
    times: Sequence[Any] | None = None,
    outcomes: npt.ArrayLike | None = None,
    pds: npt.ArrayLike | None = None,
    warn: float = PSI_WARN,
    alert: float = PSI_ALERT,
) -> DriftResult:
    """PSI of the score and every feature, grade shift and migration, outcomes by grade.

    Parameters
    ----------
    baseline : what :func:`models.baseline.build_baseline` wrote for ``model``.
    model : the model that scored the population.
    X : the population's feature matrix (``model.feature_names`` order).
    scores, grades, pds : as recorded (default: recomputed with ``model``).
    firm_ids, times : per row, for the grade migration of firms scored more than once.
    outcomes : 1 default, 0 none, -1 or NaN unknown; per row.
    warn, alert : PSI thresholds.

    Raises
    ------
    ValueError
        When the thresholds are not ``0 < warn <= alert`` or the baseline lacks a feature.
    """
    if not 0 < warn <= alert:
        raise ValueError(f"PSI thresholds must satisfy 0 < warn <= alert, got {warn}, {alert}")
    arr = np.asarray(X, dtype=np.float64)
    if scores is None or grades is None or pds is None:
        s = model.predict(arr)
        scores = s.score if scores is None else scores
        grades = s.grade if grades is None else grades
        pds = s.pd if pds is None else pds
    sc = np.asarray(scores, dtype=np.float64)
    gr = np.asarray(grades).astype(str)
    pdv = np.asarray(pds, dtype=np.float64)
    feats = baseline.get("features", {})
    absent = [f for f in model.feature_names if f not in feats]
    if absent:
        raise ValueError(f"the baseline has no distribution for {', '.join(absent[:5])}")
    score_bins = Bins.from_dict(baseline["score"])
    rows = [
        {"variable": "score", "kind": "score", "psi": score_bins.psi(sc)},
        *[
            {
                "variable": name,
                "kind": feats[name]["kind"],
                "psi": Bins.from_dict(feats[name]).psi(arr[:, j]),
            }
            for j, name in enumerate(model.feature_names)
        ],
    ]
    table = pd.DataFrame(rows)
    table["status"] = [status(v, warn, alert) for v in table["psi"]]
    head, rest = table.iloc[:1], table.iloc[1:].sort_values("psi", ascending=False)
    table = pd.concat([head, rest], ignore_index=True)
    sb = pd.DataFrame(
        {
            "bin": score_bins.bin_labels(),
            "baseline": list(score_bins.proportions),
            "current": list(score_bins.shares(sc)),
        }
    )
    return DriftResult(
        model_version=str(baseline.get("model_version", model.version or "")),
        rows=int(arr.shape[0]),
        score_psi=float(table["psi"].iloc[0]),
        psi=table,
        grades=grade_shift(baseline.get("grades", {}), gr, model.scale.grades),
        migration=grade_migration(firm_ids, times, gr, model.scale.grades),
        outcomes=outcomes_by_grade(gr, pdv, outcomes, model.scale.grades),
        warn=warn,
        alert=alert,
        score_bins=sb,
    )


def grade_shift(
    baseline: Mapping[str, float], grades: npt.ArrayLike, order: Sequence[str]
) -> pd.DataFrame:
    """Share of each grade in the baseline and now."""
    g = np.asarray(grades).astype(str)
    cur = [float(np.mean(g == k)) if g.size else 0.0 for k in order]
    base = [float(baseline.get(k, 0.0)) for k in order]
    return pd.DataFrame(
        {
            "grade": list(order),
            "baseline": base,
            "current": cur,
            "change": [c - b for b, c in zip(base, cur, strict=True)],
        }
    )


def grade_migration(
    firm_ids: Sequence[str] | None,
    times: Sequence[Any] | None,
    grades: npt.ArrayLike,
    order: Sequence[str],
) -> pd.DataFrame:
    """Firms scored more than once: count by first grade (rows) and latest grade (columns)."""
    empty = pd.DataFrame(0, index=pd.Index(list(order), name="first"), columns=list(order))
    if firm_ids is None or times is None or len(firm_ids) == 0:
        return empty
    df = pd.DataFrame(
        {
            "firm": list(firm_ids),
            "t": pd.to_datetime(list(times), utc=True),
            "g": np.asarray(grades),
        }
    ).sort_values(["firm", "t"], kind="stable")
    grouped = df.groupby("firm")["g"]
    pairs = pd.DataFrame({"first": grouped.first(), "last": grouped.last(), "n": grouped.size()})
    pairs = pairs[pairs["n"] > 1]
    if pairs.empty:
        return empty
    grades = list(order)
    m = pd.crosstab(pairs["first"], pairs["last"]).reindex(
        index=grades, columns=grades, fill_value=0
    )
    m.index.name = "first"
    return m.astype(int)


def outcomes_by_grade(
    grades: npt.ArrayLike,
    pds: npt.ArrayLike,
    outcomes: npt.ArrayLike | None,
    order: Sequence[str],
) -> pd.DataFrame:
    """Observed default rate by grade against the mean PD predicted, where outcomes are known.

    ``lower``/``upper`` bound a 95% normal interval of the default rate the mean PD predicts
    for that many loans; ``status`` is ``above``/``below`` when the observed rate falls outside.
    """
    cols = ["grade", "n", "defaults", "default_rate", "mean_pd", "lower", "upper", "status"]
    if outcomes is None:
        return pd.DataFrame(columns=cols)
    y = np.asarray(outcomes, dtype=np.float64)
    known = np.isfinite(y) & (y >= 0)
    g = np.asarray(grades).astype(str)[known]
    p = np.asarray(pds, dtype=np.float64)[known]
    yy = y[known]
    rows = []
    for k in order:
        sel = g == k
        n = int(sel.sum())
        if n == 0:
            continue
        mp = float(p[sel].mean())
        rate = float(yy[sel].mean())
        half = 1.96 * math.sqrt(max(mp * (1 - mp), 1e-12) / n)
        lo, hi = max(0.0, mp - half), min(1.0, mp + half)
        st = "above" if rate > hi else "below" if rate < lo else "ok"
        rows.append([k, n, int(yy[sel].sum()), rate, mp, lo, hi, st])
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------
# reading the audit log and the registry
# ---------------------------------------------------------------------------------------------


def load_decisions(since: datetime, engine: Any = None) -> pd.DataFrame:
    """Decisions recorded at or after ``since`` (all tenants), oldest first."""
    rows = AuditLog(engine or get_engine()).since(since)
    return pd.DataFrame(rows, columns=list(MONITORING_COLUMNS))


def attach_outcomes(
    frame: pd.DataFrame,
    store: str | Path,
    days: int = 31,
    outcome_window_months: int = 12,
    horizon: pd.Timestamp | None = None,
) -> pd.Series:
    """Outcome of the first loan the firm applied for within ``days`` after each decision.

    1 defaulted, 0 repaid, NaN unknown: no such loan, or its outcome window had not closed by
    ``horizon`` (default: the record store's horizon). Defaults inside an open window are known
    early while repayments are not, so counting them would overstate the default rate.
    """
    out = pd.Series(np.nan, index=frame.index, dtype="float64")
    if frame.empty or not Path(store).exists():
        return out
    con = duckdb.connect(str(store), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}  # fmt: skip
        if "loans" not in tables:
            return out
        ids = sorted(set(frame["firm_id"].astype(str)))
        loans = con.execute(
            "SELECT firm_id, applied_at, defaulted FROM loans WHERE firm_id IN "
            "(SELECT unnest(?)) ORDER BY applied_at",
            [ids],
        ).df()
    finally:
        con.close()
    if loans.empty:
        return out
    if horizon is None:
        horizon = store_horizon(str(store))
    if horizon is None:
        return out
    loans["applied_at"] = pd.to_datetime(loans["applied_at"])
    settled = loans["applied_at"] + pd.DateOffset(months=outcome_window_months) <= horizon
    loans["defaulted"] = loans["defaulted"].astype(object).where(settled.to_numpy(), None)
    as_of = pd.to_datetime(frame["as_of"], utc=True).dt.tz_localize(None)
    left = pd.DataFrame(
        {
            "pos": np.arange(len(frame)),
            "firm_id": frame["firm_id"].astype(str).to_numpy(),
            "t": as_of.to_numpy().astype("datetime64[ns]"),
        }
    ).sort_values("t", kind="stable")
    right = pd.DataFrame(
        {
            "firm_id": loans["firm_id"].astype(str).to_numpy(),
            "applied_at": loans["applied_at"].to_numpy().astype("datetime64[ns]"),
            "defaulted": loans["defaulted"].to_numpy(),
        }
    ).sort_values("applied_at", kind="stable")
    # the first application of the same firm on or after the decision, within ``days``
    m = pd.merge_asof(
        left, right, left_on="t", right_on="applied_at", by="firm_id", direction="forward",
        tolerance=pd.Timedelta(days=days),
    )  # fmt: skip
    known = m["defaulted"].notna().to_numpy()
    vals = np.full(len(m), np.nan)
    vals[known] = m.loc[known, "defaulted"].astype(bool).astype(float).to_numpy()
    out.iloc[m["pos"].to_numpy()] = vals  # type: ignore[call-overload]
    return out


def load_baseline(version: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """The baseline a registered model version logged at training time.

    Raises
    ------
    FileNotFoundError
        When the version's run has no ``monitoring/baseline.json`` (trained before it existed).
    """
    from mlflow.artifacts import download_artifacts  # heavy; only when reading a run

    uri = tracking.configure(tracking_uri)
    c = tracking.client(uri)
    mv = c.get_model_version(MODEL_NAME, str(version))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = download_artifacts(
                run_id=mv.run_id, artifact_path=BASELINE_ARTIFACT, dst_path=tmp, tracking_uri=uri
            )
        except Exception as exc:  # mlflow raises several types for an absent artifact
            raise FileNotFoundError(
                f"version {version} (run {mv.run_id}) has no {BASELINE_ARTIFACT}: retrain it "
                "to monitor it"
            ) from exc
        out: dict[str, Any] = json.loads(Path(path).read_text())
    out["model_version"] = str(version)
    return out


# ---------------------------------------------------------------------------------------------
# the decisions themselves: outcomes by segment, overrides
# ---------------------------------------------------------------------------------------------


@dataclass
class DecisionSection:
    """Outcomes of the decisions since the date by segment, and the overrides of their reviews.

    ``judged``: decisions recorded with an outcome under a policy (those made before
    decisioning have none and are left out of the rates); ``firms_known``: judged decisions
    whose firm row was found in the record store (the others' business model and region are
    ``unknown``).
    """

    decisions: int
    judged: int
    firms_known: int
    reviews: int
    rates: pd.DataFrame  # outcome, n, rate
    segments: pd.DataFrame  # models.outcomes.outcome_table
    overrides: dict[str, pd.DataFrame]  # models.outcomes.override_table
    min_n: int = outcomes.MIN_GROUP_N

    @property
    def flagged(self) -> list[str]:
        """``segment=group`` of each group below four-fifths of the best group's approvals."""
        return outcomes.flagged(self.segments)

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = json.loads(df.to_json(orient="records"))
            return out

        return {
            "decisions": self.decisions,
            "judged": self.judged,
            "firms_known": self.firms_known,
            "reviews": self.reviews,
            "min_group_n": self.min_n,
            "four_fifths_flagged": self.flagged,
            "rates": records(self.rates),
            "segments": records(self.segments),
            "overrides": {k: records(v) for k, v in self.overrides.items()},
        }


_VERDICT_COLUMNS = ("decision_id", "outcome", "recommendation", "amount", "review_id")


def load_verdicts(since: datetime, engine: Any = None) -> pd.DataFrame:
    """The policy outcome of each decision recorded at or after ``since`` (NULL before
    decisioning)."""
    engine = engine or get_engine()
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    t = decisions_table
    q = sa.select(*[t.c[c] for c in _VERDICT_COLUMNS]).where(t.c.scored_at >= since)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings().all()]
    return pd.DataFrame(rows, columns=list(_VERDICT_COLUMNS))


def load_firms(store: str | Path, firm_ids: Sequence[str]) -> pd.DataFrame:
    """``firm_id``, ``business_model``, ``home_region`` of the firms on record (empty without
    a record store or a ``firms`` table)."""
    cols = ["firm_id", "business_model", "home_region"]
    if not firm_ids or not Path(store).exists():
        return pd.DataFrame(columns=cols)
    con = duckdb.connect(str(store), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}  # fmt: skip
        if "firms" not in tables:
            return pd.DataFrame(columns=cols)
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'firms'"
        ).fetchall()}  # fmt: skip
        sel = ", ".join(c if c in have else f"NULL AS {c}" for c in cols)
        return con.execute(
            f"SELECT {sel} FROM firms WHERE firm_id IN (SELECT unnest(?))",
            [sorted(set(map(str, firm_ids)))],
        ).df()
    finally:
        con.close()


def load_reviews(engine: Any = None, decision_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Closed reviews (:func:`models.outcomes.reviews_frame`), only those of ``decision_ids``
    when given; empty when the database has no reviews table yet."""
    from credit.reviews import ReviewStore

    try:
        closed = ReviewStore(engine or get_engine()).all_closed()
    except SQLAlchemyError:
        closed = []
    rv = outcomes.reviews_frame(closed)
    if decision_ids is not None:
        rv = rv[rv["decision_id"].isin(set(decision_ids))]
    return rv.reset_index(drop=True)


def decision_section(
    frame: pd.DataFrame,
    verdicts: pd.DataFrame,
    firms: pd.DataFrame | None = None,
    reviews: pd.DataFrame | None = None,
    grades: Sequence[str] | None = None,
    min_n: int = outcomes.MIN_GROUP_N,
) -> DecisionSection:
    """The decision section from what :func:`monitor` loaded.

    Parameters
    ----------
    frame : decisions (``decision_id``, ``firm_id``, ``features`` as recorded and optionally
        ``defaulted``: 1/0/NaN, the outcome of the loan that followed).
    verdicts : :func:`load_verdicts` (``decision_id``, ``outcome``, ``recommendation``).
    firms : :func:`load_firms`; segments of firms not in it are ``unknown``.
    reviews : :func:`load_reviews`.
    grades : the model's grades, best first (orders the override table by grade).
    """
    keys = ("firm_age_days", "us_export_share_365d", "eu_export_share_365d")
    feats = pd.DataFrame(
        {
            k: [f.get(k) if isinstance(f, Mapping) else None for f in frame["features"]]
            for k in keys
        },
        index=frame.index,
    )
    df = pd.concat([frame[["decision_id", "firm_id"]], feats], axis=1)
    if "defaulted" in frame.columns:
        df["defaulted"] = pd.to_numeric(frame["defaulted"], errors="coerce")
    v = verdicts.drop_duplicates("decision_id").set_index("decision_id")["outcome"]
    df["outcome"] = df["decision_id"].map(v)
    known_firms = 0
    if firms is not None and len(firms):
        f = firms.drop_duplicates("firm_id").set_index("firm_id")
        ids = df["firm_id"].astype(str)
        df["business_model"] = ids.map(f["business_model"])
        df["home_region"] = ids.map(f["home_region"])
        known_firms = int((ids.isin(f.index) & df["outcome"].isin(outcomes.OUTCOMES)).sum())
    seg = pd.concat([outcomes.segments(df), df[["decision_id", "outcome"]]], axis=1)
    judged = int(df["outcome"].isin(outcomes.OUTCOMES).sum())
    rv = reviews if reviews is not None else outcomes.reviews_frame([])
    return DecisionSection(
        decisions=len(df),
        judged=judged,
        firms_known=known_firms,
        reviews=len(rv),
        rates=outcomes.outcome_rates(seg),
        segments=outcomes.outcome_table(seg, min_n=min_n),
        overrides=outcomes.override_table(rv, df, grades=grades),
        min_n=min_n,
    )


@dataclass
class MonitorReport:
    since: datetime
    decisions: int
    results: list[DriftResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # version -> why
    decisioning: DecisionSection | None = None

    @property
    def alert(self) -> bool:
        """Whether the score or any feature crossed the alert threshold."""
        return any(r.alerts for r in self.results)

    def alerting(self, on: str = "any") -> bool:
        """``on="any"``: the score or a feature crossed the alert threshold; ``"score"``: the
        score did."""
        if on == "score":
            return any("score" in r.alerts for r in self.results)
        if on != "any":
            raise ValueError(f"alert-on must be 'any' or 'score', got {on!r}")
        return self.alert

    @property
    def score_psi(self) -> float:
        """Score PSI of the version that scored the most decisions (NaN without any)."""
        if not self.results:
            return math.nan
        return max(self.results, key=lambda r: r.rows).score_psi


def monitor(
    since: datetime,
    warn: float = PSI_WARN,
    alert: float = PSI_ALERT,
    engine: Any = None,
    store: str | Path | None = None,
    tracking_uri: str | None = None,
    outcome_days: int = 31,
    outcome_window_months: int | None = None,
) -> MonitorReport:
    """Compare the decisions since ``since`` with the baseline of the version that made them.

    ``outcome_window_months`` defaults to ``split.outcome_window_months`` of the parameters.
    """
    frame = load_decisions(since, engine)
    rep = MonitorReport(since=since, decisions=len(frame))
    if frame.empty:
        return rep
    store = store or get_settings().store_path
    if outcome_window_months is None:
        outcome_window_months = int(load_params()["split"].get("outcome_window_months", 12))
    frame["outcome"] = attach_outcomes(frame, store, outcome_days, outcome_window_months)
    cache = Path(tempfile.mkdtemp(prefix="monitor-"))
    grades: Sequence[str] | None = None
    for version, part in frame.groupby("model_version", sort=True):
        v = str(version)
        if not v.isdigit():
            rep.skipped[v] = "not a registered version"
            continue
        try:
            base = load_baseline(v, tracking_uri)
            model = ScoringModel.load(
                f"models:/{MODEL_NAME}/{v}", tracking_uri=tracking_uri, cache_dir=cache
            )
        except (FileNotFoundError, RuntimeError, ValueError) as exc:
            rep.skipped[v] = str(exc)
            continue
        grades = grades or model.scale.grades
        feats = pd.DataFrame(list(part["features"]))
        X = model.encode(feats)
        rep.results.append(
            compare(
                base,
                model,
                X,
                scores=part["score"].to_numpy(dtype=np.float64),
                grades=part["grade"].astype(str).to_numpy(),
                pds=part["pd"].to_numpy(dtype=np.float64),
                firm_ids=part["firm_id"].astype(str).tolist(),
                times=part["as_of"].tolist(),
                outcomes=part["outcome"].to_numpy(dtype=np.float64),
                warn=warn,
                alert=alert,
            )
        )
    ids = frame["decision_id"].astype(str).tolist()
    rep.decisioning = decision_section(
        frame.assign(defaulted=frame["outcome"]),
        load_verdicts(since, engine),
        load_firms(store, frame["firm_id"].astype(str).tolist()),
        load_reviews(engine, ids),
        grades=grades,
    )
    return rep


# ---------------------------------------------------------------------------------------------
# the latest score PSI, for /metrics
# ---------------------------------------------------------------------------------------------


def latest_path(data_dir: str | Path | None = None) -> Path:
    """Where ``credit monitor`` leaves its latest figures (read by the service's /metrics)."""
    if data_dir is None:
        data_dir = get_settings().data_dir
    return Path(data_dir) / "monitoring" / "latest.json"


def write_latest(
    rep: MonitorReport, data_dir: str | Path | None = None, alert: bool | None = None
) -> Path:
    """Record the latest score PSI per version (atomically replaced); ``alert`` is the verdict
    the caller acted on (default: :attr:`MonitorReport.alert`)."""
    p = latest_path(data_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "since": rep.since.isoformat(),
        "decisions": rep.decisions,
        "score_psi": rep.score_psi if math.isfinite(rep.score_psi) else None,
        "by_version": {r.model_version: r.score_psi for r in rep.results},
        "alert": rep.alert if alert is None else alert,
    }
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(p)
    return p


def read_latest_score_psi(data_dir: str | Path | None = None) -> float:
    """The score PSI of the last ``credit monitor`` run (NaN when there was none)."""
    try:
        v = json.loads(latest_path(data_dir).read_text()).get("score_psi")
    except (OSError, ValueError):
        return math.nan
    return float(v) if isinstance(v, int | float) else math.nan


# ---------------------------------------------------------------------------------------------
# the HTML report of a monitoring run
# ---------------------------------------------------------------------------------------------


def render_html(rep: MonitorReport) -> str:
    """A self-contained HTML page (inlined PNG, no external reference) of a monitoring run."""
    plt = htmlkit.pyplot()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>tradecredit drift monitoring</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem}",
        "table{border-collapse:collapse;font-size:.88rem;margin:.5rem 0 1rem}",
        "th,td{border:1px solid #dde3ee;padding:.2rem .5rem}td.num{text-align:right}",
        ".alert{color:#b00020;font-weight:600}.warn{color:#a15c00}img{max-width:100%}",
        "</style></head><body>",
        "<h1>Drift monitoring</h1>",
        f"<p>Decisions since {html.escape(rep.since.isoformat())}: {rep.decisions}. "
        f"Generated {datetime.now(UTC).isoformat(timespec='seconds')}.</p>",
    ]
    verdict = "alert" if rep.alert else "ok"
    parts.append(f"<p class='{verdict}'>Overall: {verdict.upper()}</p>")
    for v, why in rep.skipped.items():
        parts.append(f"<p class='warn'>Version {html.escape(v)} not monitored: "
                     f"{html.escape(why)}</p>")  # fmt: skip
    for r in rep.results:
        parts.append(f"<section id='version-{html.escape(r.model_version)}'>")
        parts.append(
            f"<h2>Model version {html.escape(r.model_version)}: {r.rows} decisions, "
            f"score PSI {r.score_psi:.4f}</h2>"
            f"<p>Thresholds: warn {r.warn}, alert {r.alert}. Alerts: "
            f"{html.escape(', '.join(r.alerts) or 'none')}; warnings: "
            f"{html.escape(', '.join(r.warnings) or 'none')}.</p>"
        )
        if r.score_bins is not None:
            fig, ax = plt.subplots(figsize=(8, 3.2))
            x = np.arange(len(r.score_bins))
            ax.bar(x - 0.2, r.score_bins["baseline"], 0.4, label="training baseline")
            ax.bar(x + 0.2, r.score_bins["current"], 0.4, label="scored since")
            ax.set_xticks(x)
            ax.set_xticklabels(r.score_bins["bin"], rotation=45, ha="right", fontsize=7)
            ax.set(ylabel="share", title="Score distribution")
            ax.legend()
            parts.append(htmlkit.img(htmlkit.png(fig), "score distribution"))
        parts.append("<h3>PSI by variable</h3>" + htmlkit.table(r.psi))
        parts.append("<h3>Grade distribution</h3>" + htmlkit.table(r.grades))
        parts.append("<h3>Grade migration (firms scored more than once: first to latest)</h3>")
        parts.append(htmlkit.table(r.migration, index=True))
        parts.append("<h3>Default rate by grade against predicted PD</h3>")
        parts.append(
            htmlkit.table(r.outcomes)
            if not r.outcomes.empty
            else "<p>No outcomes yet for these decisions (no matching loans with a known "
            "outcome in the record store).</p>"
        )
        parts.append("</section>")
    if rep.decisioning is not None:
        parts.append(decision_html(rep.decisioning))
    parts.append("</body></html>")
    return "\n".join(parts)


def decision_html(d: DecisionSection) -> str:
    """The decisions section of the monitoring page."""
    parts = [
        "<section id='decisioning'>",
        "<h2>Decisions: outcomes by segment and overrides</h2>",
        f"<p>{d.judged} of {d.decisions} decisions carry an outcome under a policy (older ones "
        f"were made before decisioning); the firm's own row was found in the record store for "
        f"{d.firms_known} of them (the others' business model and region are unknown).</p>",
        "<h3>Outcome rates</h3>" + htmlkit.table(d.rates),
        "<h3>Outcome rates by segment, adverse impact ratio</h3>",
        "<p>AIR: the group's approval rate over the best group's (groups of at least "
        f"{d.min_n} decisions, unknown excluded). The four-fifths rule flags an AIR below 0.8; "
        f"groups under {d.min_n} decisions are marked small, and the unknown group, not judged. "
        "Flagged: "
        f"<span class='{'alert' if d.flagged else ''}'>"
        f"{html.escape(', '.join(d.flagged) or 'none')}</span>.</p>",
        htmlkit.table(d.segments),
        f"<h3>Overrides ({d.reviews} closed reviews)</h3>",
        "<h4>By direction</h4>" + htmlkit.table(d.overrides["by_direction"]),
        "<h4>By reviewer (who closed the review)</h4>" + htmlkit.table(d.overrides["by_reviewer"]),
        "<h4>By grade</h4>" + htmlkit.table(d.overrides["by_grade"]),
        "<h4>How the loans performed (outcome known once the loan's window closed)</h4>",
        htmlkit.table(d.overrides["performance"]),
        "</section>",
    ]
    return "\n".join(parts)
