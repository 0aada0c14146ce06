"""The model report: one self-contained ``report.html`` per training run, for model validators.

Built from what the run logged in MLflow (metrics, ``evaluation/*`` tables and predictions,
``plots/*.png``, ``report/data_summary.json``) plus the registered model itself, so the report of
any registered version can be regenerated later (``credit report --version V``) exactly as
training wrote it. Images are inlined as base64 PNG; the file references nothing outside itself.

Sections: data summary, out-of-time metrics, calibration by grade, metrics by segment and month,
top features with their catalog descriptions, SHAP summary, comparison with the scorecard and
with the champion, decisions under the default policy (outcome rates by segment, adverse impact
ratio, four-fifths rule: :mod:`models.outcomes`), known limitations.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from credit.policy import Policy, PolicyError, default_policy
from credit.scoring import MODEL_NAME, ScoringModel
from features.catalog import get as catalog_feature
from models import htmlkit, outcomes, tracking
from models.baseline import BASELINE_ARTIFACT
from models.evaluate import compare_auc, describe_auc_difference
from models.evaluate import metrics as compute_metrics
from models.tracking import TARGET_COLUMN
from models.train import TrainReport

log = logging.getLogger(__name__)

REPORT_ARTIFACT = "report.html"
SUMMARY_ARTIFACT = "report/data_summary.json"
PREDICTIONS_ARTIFACT = "evaluation/predictions.parquet"
#: Per evaluation row (same order as ``evaluation/oot.parquet``): the loan's amount and its
#: firm's business model and region, read from the record store at training time.
ATTRIBUTES_ARTIFACT = "evaluation/oot_attributes.parquet"
#: The decisions-by-segment table of the report, logged beside it.
DECISIONS_ARTIFACT = "report/decisions_by_segment.csv"
TEMPLATE = Path(__file__).with_name("templates") / "report.html"

#: Section ids, in order (tests check each is present).
SECTIONS = (
    ("data", "Data summary"),
    ("oot", "Out-of-time metrics"),
    ("calibration", "Calibration by grade"),
    ("segments", "Metrics by segment and month"),
    ("features", "Top features"),
    ("shap", "SHAP summary"),
    ("comparison", "Comparison with the scorecard and the champion"),
    ("decisions", "Decisions under the default policy"),
    ("limitations", "Known limitations"),
)

_HEADLINE = ["n", "default_rate", "mean_pd", "auc", "gini", "ks", "brier", "log_loss", "ece",
             "calibration_slope", "calibration_intercept", "psi_score"]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# what training adds to the run
# ---------------------------------------------------------------------------------------------


def log_run_extras(report: TrainReport) -> None:
    """Inside an active MLflow run: the data summary, the monitoring baseline and the
    evaluation predictions (what the report and ``credit monitor`` read back later)."""
    import mlflow  # heavy; only when logging a run

    summary = getattr(report, "data_summary", None)
    if summary:
        mlflow.log_dict(_clean(summary), SUMMARY_ARTIFACT)
    baseline = getattr(report, "baseline", None)
    if baseline:
        mlflow.log_dict(_clean(baseline), BASELINE_ARTIFACT)
    pred = pd.DataFrame({"y": report.eval_y, "pd": report.eval_pd})
    if report.eval_scorecard_pd is not None:
        pred["scorecard_pd"] = report.eval_scorecard_pd
    if report.eval_times is not None:
        pred["time"] = pd.to_datetime(report.eval_times).to_numpy()
    attrs = evaluation_attributes(report)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "predictions.parquet"
        pred.to_parquet(p, index=False)
        mlflow.log_artifact(str(p), "evaluation")
        if attrs is not None:
            a = Path(tmp) / Path(ATTRIBUTES_ARTIFACT).name
            attrs.to_parquet(a, index=False)
            mlflow.log_artifact(str(a), "evaluation")


def evaluation_attributes(report: TrainReport) -> pd.DataFrame | None:
    """``loan_id``, ``amount_usd``, ``business_model``, ``home_region`` of each evaluation row,
    in evaluation order, when the training set came from a record store (its ``loans`` and
    ``firms`` tables); ``None`` otherwise (a table of one's own carries no firm rows)."""
    src = str(report.fingerprint.get("source") or "")
    ids = report.eval_ids
    if ids is None or not src.endswith(".duckdb") or not Path(src).is_file():
        return None
    import duckdb

    try:
        con = duckdb.connect(src, read_only=True)
    except duckdb.Error as exc:
        log.warning("cannot read the firms of the evaluation set from %s: %s", src, exc)
        return None
    try:
        found = con.execute(
            "SELECT l.loan_id, l.amount_usd, f.business_model, f.home_region FROM loans l "
            "LEFT JOIN firms f ON f.firm_id = l.firm_id WHERE l.loan_id IN (SELECT unnest(?))",
            [sorted(set(ids.astype(str)))],
        ).df()
    except duckdb.Error as exc:
        log.warning("cannot read the firms of the evaluation set from %s: %s", src, exc)
        return None
    finally:
        con.close()
    found["loan_id"] = found["loan_id"].astype(str)
    out = found.drop_duplicates("loan_id").set_index("loan_id").reindex(ids.astype(str))
    return out.reset_index(names="loan_id")


def log_report(
    run_id: str,
    version: str | None = None,
    model: ScoringModel | None = None,
    tracking_uri: str | None = None,
) -> Path | None:
    """Build the report of ``run_id`` and log it to the run as ``report.html``.

    Called at the end of every training run; a failure is logged, never raised, so that a
    plotting problem cannot lose a trained model.
    """
    try:
        uri = tracking.configure(tracking_uri)
        decisions: dict[str, PolicyDecisions] = {}
        text = build_report(
            run_id, version=version, model=model, tracking_uri=uri, collect=decisions
        )
        d = Path(tempfile.mkdtemp(prefix="report-"))
        path = d / REPORT_ARTIFACT
        path.write_text(text, encoding="utf-8")
        c = tracking.client(uri)
        c.log_artifact(run_id, str(path))
        if "decisions" in decisions:
            log_decisions(run_id, decisions["decisions"], uri)
        return path
    except Exception as exc:  # the model is already logged; the report is documentation
        log.warning("could not build the model report of run %s: %s", run_id, exc, exc_info=True)
        return None


# ---------------------------------------------------------------------------------------------
# building the report from a run
# ---------------------------------------------------------------------------------------------


@dataclass
class RunMaterial:
    """Everything the report reads from one training run."""

    run_id: str
    version: str | None
    run_name: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    evaluation_set: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    attributes: pd.DataFrame | None = None  # ATTRIBUTES_ARTIFACT


def read_run(run_id: str, version: str | None = None, tracking_uri: str | None = None
             ) -> RunMaterial:  # fmt: skip
    """Download what the report needs from a run's artifacts."""
    from mlflow.artifacts import download_artifacts  # heavy; only when reading a run

    uri = tracking.configure(tracking_uri)
    c = tracking.client(uri)
    run = c.get_run(run_id)
    mat = RunMaterial(
        run_id=run_id,
        version=version,
        run_name=run.info.run_name or "",
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
        tags=dict(run.data.tags),
    )
    names = {a.path for a in c.list_artifacts(run_id)}
    with tempfile.TemporaryDirectory() as tmp:
        for folder in ("evaluation", "plots", "report"):
            if folder not in names:
                continue
            local = Path(
                download_artifacts(
                    run_id=run_id, artifact_path=folder, dst_path=tmp, tracking_uri=uri
                )
            )
            for f in sorted(local.iterdir()):
                if f.suffix == ".csv":
                    mat.tables[f.stem] = pd.read_csv(f)
                elif f.name == "oot.parquet":
                    mat.evaluation_set = pd.read_parquet(f)
                elif f.name == "predictions.parquet":
                    mat.predictions = pd.read_parquet(f)
                elif f.name == Path(ATTRIBUTES_ARTIFACT).name:
                    mat.attributes = pd.read_parquet(f)
                elif f.suffix == ".png":
                    mat.images[f.stem] = f.read_bytes()
                elif f.name == "data_summary.json":
                    mat.summary = json.loads(f.read_text())
    return mat


def build_report(
    run_id: str,
    version: str | None = None,
    model: ScoringModel | None = None,
    tracking_uri: str | None = None,
    champion: ScoringModel | None | str = "registry",
    collect: dict[str, PolicyDecisions] | None = None,
) -> str:
    """The HTML report of a training run.

    Parameters
    ----------
    run_id : the LightGBM training run.
    version : its registered version (used to load the model when ``model`` is not given).
    model : the trained model, when the caller has it in memory.
    champion : the model to compare with; ``"registry"`` loads the current ``champion``
        (skipped when it is this very version), ``None`` skips the comparison.
    collect : when given, receives the decisions section's figures under ``"decisions"``.
    """
    uri = tracking.configure(tracking_uri)
    mat = read_run(run_id, version, uri)
    cache = Path(tempfile.mkdtemp(prefix="report-models-"))
    if model is None:
        if version is None:
            raise ValueError("build_report needs the model or its registered version")
        model = ScoringModel.load(f"models:/{MODEL_NAME}/{version}", tracking_uri=uri,
                                  cache_dir=cache)  # fmt: skip
    champ_note = ""
    champ_model: ScoringModel | None = None
    champ_version: str | None = None
    if champion == "registry":
        champ_version = tracking.champion_version(uri)
        if champ_version is None:
            champ_note = "There is no champion yet: this is the first registered model."
        elif champ_version == str(version):
            champ_note = f"This version ({version}) is the current champion."
        else:
            champ_model = ScoringModel.load(
                f"models:/{MODEL_NAME}/{champ_version}", tracking_uri=uri, cache_dir=cache
            )
    elif champion is not None and not isinstance(champion, str):
        champ_model, champ_version = champion, champion.version
    else:
        champ_note = "No champion comparison was requested."
    decisions = policy_decisions(mat, model)
    if collect is not None:
        collect["decisions"] = decisions
    return render(mat, model, champ_model, champ_version, champ_note, decisions=decisions)


def _clean(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def calibration_by_grade(model: ScoringModel, y: Any, pd_: Any) -> pd.DataFrame:
    """Rows, defaults, observed default rate and mean predicted PD per grade."""
    yy = np.asarray(y, dtype=np.float64)
    p = np.asarray(pd_, dtype=np.float64)
    g = model.scale.grade(p).astype(str)
    bounds = dict(model.scale.bands)
    lo = 0.0
    rows = []
    for grade in model.scale.grades:
        hi = bounds[grade]
        sel = g == grade
        n = int(sel.sum())
        rows.append(
            {
                "grade": grade,
                "PD band": f"[{lo:.2%}, {hi:.2%})" if hi < 1 else f">= {lo:.2%}",
                "n": n,
                "defaults": int(yy[sel].sum()) if n else 0,
                "default_rate": float(yy[sel].mean()) if n else math.nan,
                "mean_pd": float(p[sel].mean()) if n else math.nan,
            }
        )
        lo = hi
    return pd.DataFrame(rows)


def top_features(model: ScoringModel, X: np.ndarray, k: int = 15) -> tuple[pd.DataFrame, Any]:
    """Features by mean |SHAP| on ``X`` with their catalog descriptions; also the SHAP matrix."""
    contrib = model.contributions(X)[:, :-1]
    imp = np.abs(contrib).mean(axis=0)
    order = np.argsort(-imp)[:k]
    rows = []
    for j in order:
        name = model.feature_names[j]
        rows.append(
            {
                "feature": name,
                "mean |SHAP| (log-odds)": float(imp[j]),
                "description": _description(name),
            }
        )
    return pd.DataFrame(rows), contrib


def _description(name: str) -> str:
    try:
        return catalog_feature(name).description
    except KeyError:
        return "(not a catalog feature: bring-your-own table column)"


@dataclass
class PolicyDecisions:
    """The evaluation set judged under a policy (the report's decisions section)."""

    policy: str  # name@version
    rows: int
    rates: pd.DataFrame  # outcome, n, rate, defaults, default_rate
    segments: pd.DataFrame  # models.outcomes.outcome_table
    note: str = ""  # why there is no table, or what the segments lack

    @property
    def flagged(self) -> list[str]:
        return outcomes.flagged(self.segments)

    def metrics(self) -> dict[str, float]:
        """Headline figures for MLflow: ``policy_{approval,decline,referral}_rate``,
        ``policy_min_air`` (over the groups judged) and ``policy_four_fifths_flags``."""
        out: dict[str, float] = {}
        names = {"approved": "approval", "declined": "decline", "referred": "referral"}
        for o, r in zip(self.rates["outcome"], self.rates["rate"], strict=True):
            if o in names and math.isfinite(float(r)):
                out[f"policy_{names[o]}_rate"] = float(r)
        judged = self.segments[~self.segments["status"].isin(("small", "n/a"))]
        air = pd.to_numeric(judged["air"], errors="coerce").dropna()
        if len(air):
            out["policy_min_air"] = float(air.min())
        out["policy_four_fifths_flags"] = float(len(self.flagged))
        return out


def policy_decisions(
    mat: RunMaterial, model: ScoringModel, policy: Policy | None = None
) -> PolicyDecisions:
    """The evaluation set judged under ``policy`` (default: the shipped default policy):
    outcome rates with the observed default rate of each, and the outcome rates by segment
    with the adverse impact ratio (:func:`models.outcomes.outcome_table`).

    The evaluation set holds the features (firm age, export shares); the business model,
    region and amount applied for come from ``evaluation/oot_attributes.parquet`` when training
    read a record store, else they are ``unknown`` (and no amount is given).
    """
    policy = policy or default_policy()
    ident = f"{policy.name}@{policy.version}"
    empty = pd.DataFrame()
    ev = mat.evaluation_set
    if ev is None or not len(ev):
        return PolicyDecisions(ident, 0, empty, empty, "The run logged no evaluation set.")
    frame = ev.reset_index(drop=True)
    notes = []
    attrs = mat.attributes
    if attrs is not None and len(attrs) == len(frame):
        extra = attrs.reset_index(drop=True)[
            [c for c in ("amount_usd", "business_model", "home_region") if c in attrs]
        ]
        frame = pd.concat([frame.drop(columns=list(extra.columns), errors="ignore"), extra],
                          axis=1)  # fmt: skip
    else:
        notes.append(
            "The run logged no firm attributes for its evaluation rows (trained on a table of "
            "its own, or before they were logged): business model and region are unknown and "
            "no amount is given (approved up to the automatic limit)."
        )
    try:
        judged = outcomes.apply_policy(model, frame, policy)
    except PolicyError as exc:
        return PolicyDecisions(ident, len(frame), empty, empty,
                               f"The policy does not fit the model: {exc}")  # fmt: skip
    seg = pd.concat([outcomes.segments(frame), judged[["outcome"]]], axis=1)
    rates = outcomes.outcome_rates(seg)
    if TARGET_COLUMN in frame.columns:
        y = pd.to_numeric(frame[TARGET_COLUMN], errors="coerce").where(lambda v: v >= 0)
        by = y.groupby(judged["outcome"])
        rates["defaults"] = [int(by.sum().get(o, 0)) for o in rates["outcome"]]
        rates["default_rate"] = [float(by.mean().get(o, math.nan)) for o in rates["outcome"]]
    missing = [
        c
        for c in ("firm_age_days", "us_export_share_365d", "eu_export_share_365d")
        if c not in frame.columns
    ]
    if missing:
        notes.append(
            f"The model has no {', '.join(missing)}: the segments read from them are unknown."
        )
    return PolicyDecisions(ident, len(frame), rates, outcomes.outcome_table(seg), " ".join(notes))


def log_decisions(run_id: str, dec: PolicyDecisions, tracking_uri: str | None = None) -> None:
    """The decisions-by-segment table (``report/decisions_by_segment.csv``) and its headline
    figures as metrics of the run."""
    if dec.segments.empty:
        return
    c = tracking.client(tracking.configure(tracking_uri))
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / Path(DECISIONS_ARTIFACT).name
        dec.segments.to_csv(p, index=False)
        c.log_artifact(run_id, str(p), str(Path(DECISIONS_ARTIFACT).parent))
    for k, v in dec.metrics().items():
        c.log_metric(run_id, k, v)


def render(
    mat: RunMaterial,
    model: ScoringModel,
    champion: ScoringModel | None = None,
    champion_version: str | None = None,
    champion_note: str = "",
    decisions: PolicyDecisions | None = None,
) -> str:
    """The report HTML from a run's material and its model (``decisions``: the decisions
    section, computed with the default policy when not given)."""
    plt = htmlkit.pyplot()
    ev = mat.tags.get("evaluation", "oot")
    set_label = "out-of-time" if ev == "oot" else "cross-validated (out-of-fold)"
    prefix, card_prefix = f"{ev}_", f"scorecard_{ev}_"
    head = {k: mat.metrics.get(prefix + k) for k in _HEADLINE}
    card = {k: mat.metrics.get(card_prefix + k) for k in _HEADLINE}
    metrics_df = pd.DataFrame(
        {
            "metric": _HEADLINE,
            "LightGBM": [head[k] for k in _HEADLINE],
            "scorecard": [card[k] for k in _HEADLINE],
        }
    ).dropna(subset=["LightGBM", "scorecard"], how="all")

    # -- data summary
    s = mat.summary
    data_rows = pd.DataFrame(
        [
            ("source", s.get("source") or mat.tags.get("dataset_source", "")),
            ("rows", s.get("rows")),
            ("labelled rows", s.get("labelled_rows")),
            ("unknown outcome (excluded)", s.get("unknown_outcome_rows")),
            ("defaults", s.get("defaults")),
            ("default rate", s.get("default_rate")),
            ("features", s.get("features")),
            ("first application", s.get("time_min")),
            ("last application", s.get("time_max")),
            ("catalog version", mat.tags.get("catalog_version")),
            ("dataset sha256", mat.tags.get("dataset_sha256", "")[:16]),
        ],
        columns=["", "value"],
    )
    by_period = pd.DataFrame(s.get("by_period", []))
    split = {k[len("split.") :]: v for k, v in mat.params.items() if k.startswith("split.")}
    split_df = pd.DataFrame(sorted(split.items()), columns=["split", "value"])
    period_img = None
    if not by_period.empty and by_period["default_rate"].notna().any():
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(by_period["period"], by_period["default_rate"].astype(float))
        ax.set(ylabel="default rate", title=f"Default rate by {s.get('period', 'period')}")
        ax.tick_params(axis="x", rotation=60)
        period_img = htmlkit.png(fig)

    # -- calibration by grade, from the evaluation predictions
    pred = mat.predictions
    if pred is None and mat.evaluation_set is not None:  # older runs: rescore the evaluation set
        Xe = model.encode(mat.evaluation_set)
        pred = pd.DataFrame({"y": mat.evaluation_set[TARGET_COLUMN], "pd": model.predict(Xe).pd})
    calib = calibration_by_grade(model, pred["y"], pred["pd"]) if pred is not None else None

    # -- segments and months
    seg_tables = [
        (name[3:].replace("_", " "), t) for name, t in sorted(mat.tables.items())
        if name.startswith("by_") and name != "by_month"
    ]  # fmt: skip
    by_month = mat.tables.get("by_month")

    # -- features and SHAP
    feat_df = pd.DataFrame()
    shap_png = mat.images.get("shap_summary")
    X_eval = None
    if mat.evaluation_set is not None and len(mat.evaluation_set):
        ev_frame = mat.evaluation_set.sample(n=min(2000, len(mat.evaluation_set)), random_state=0)
        X_eval = model.encode(ev_frame)
        feat_df, contrib = top_features(model, X_eval)
        if shap_png is None:
            import shap  # heavy (numba, llvmlite): only for runs logged without the plot

            shap.summary_plot(contrib, X_eval, feature_names=model.feature_names, show=False,
                              max_display=20)  # fmt: skip
            shap_png = htmlkit.png(plt.gcf())

    # -- comparison
    comp = metrics_df.copy()
    scorecard_note = ""
    if pred is not None and "scorecard_pd" in pred:
        vs_card = compare_auc(pred["y"], pred["pd"], pred["scorecard_pd"])
        if vs_card:
            scorecard_note = describe_auc_difference(vs_card, "LightGBM", "scorecard")
    champ_df = pd.DataFrame()
    if champion is not None and mat.evaluation_set is not None:
        y_eval = mat.evaluation_set[TARGET_COLUMN].to_numpy()
        try:
            p_ch = champion.predict(champion.encode(mat.evaluation_set)).pd
            p_me = model.predict(model.encode(mat.evaluation_set)).pd
            m_ch, m_me = compute_metrics(y_eval, p_ch), compute_metrics(y_eval, p_me)
            keys = [k for k in ("n", "auc", "gini", "ks", "brier", "ece") if k in m_me]
            champ_df = pd.DataFrame(
                {
                    "metric": keys,
                    "this model": [m_me.get(k) for k in keys],
                    f"champion (version {champion_version})": [m_ch.get(k) for k in keys],
                }
            )
            champion_note = (
                f"Both models scored on this run's {set_label} evaluation set ({len(y_eval)} rows)."
            )
            vs_champ = compare_auc(y_eval, p_me, p_ch)
            if vs_champ:
                champion_note += " " + describe_auc_difference(vs_champ, "this model", "champion")
        except ValueError as exc:
            champion_note = (
                f"The champion (version {champion_version}) cannot score this "
                f"run's evaluation set: {exc}"
            )

    if decisions is None:
        decisions = policy_decisions(mat, model)
    limitations = _limitations(mat, head, calib, s)
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(["html"]))
    tpl = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return tpl.render(
        title=f"tradecredit-pd {('version ' + mat.version) if mat.version else ''} "
        f"model report".replace("  ", " "),
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=mat.run_id,
        run_name=mat.run_name,
        version=mat.version,
        trained_at=mat.tags.get("trained_at") or model.metadata.get("trained_at", ""),
        calibration=mat.params.get("training.calibration", model.calibrator.method),
        trees=mat.params.get("training.best_iteration", ""),
        sections=SECTIONS,
        set_label=set_label,
        data_table=Markup(htmlkit.table(data_rows)),
        split_table=Markup(htmlkit.table(split_df)),
        period_table=Markup(htmlkit.table(by_period)),
        period_img=Markup(htmlkit.img(period_img, "default rate by period")),
        metrics_table=Markup(htmlkit.table(metrics_df)),
        roc_img=Markup(htmlkit.img(mat.images.get("roc"), "ROC curve")),
        reliability_img=Markup(htmlkit.img(mat.images.get("reliability"), "reliability diagram")),
        calibration_table=Markup(htmlkit.table(calib) if calib is not None else ""),
        segment_tables=[(n, Markup(htmlkit.table(t))) for n, t in seg_tables],
        month_table=Markup(
            htmlkit.table(by_month)
            if by_month is not None
            else "<p class='muted'>No time column.</p>"
        ),
        month_img=Markup(htmlkit.img(mat.images.get("auc_by_month"), "AUC by month")),
        features_table=Markup(htmlkit.table(feat_df)),
        shap_img=Markup(htmlkit.img(shap_png, "SHAP summary")),
        comparison_table=Markup(htmlkit.table(comp)),
        scorecard_note=scorecard_note,
        champion_table=Markup(htmlkit.table(champ_df) if not champ_df.empty else ""),
        champion_note=champion_note,
        decisions_policy=decisions.policy,
        decisions_rows=decisions.rows,
        decisions_note=decisions.note,
        decisions_flagged=", ".join(decisions.flagged) or "none",
        decisions_min_n=outcomes.MIN_GROUP_N,
        decisions_rates=Markup(htmlkit.table(decisions.rates)),
        decisions_table=Markup(htmlkit.table(decisions.segments)),
        limitations=limitations,
    )


def _limitations(
    mat: RunMaterial,
    head: Mapping[str, Any],
    calib: pd.DataFrame | None,
    summary: Mapping[str, Any],
) -> list[str]:
    out = [
        "Outcomes are only known once a loan's outcome window has closed; applications inside "
        "the last window are excluded from training and evaluation (right-censoring), so the "
        "model has not seen the most recent conditions.",
        "The evaluation set is one period: its metrics carry sampling error and describe the "
        "population of that period, not of the next one (see the backtest for decay over time).",
        "Only applications that reached the lender are labelled: rejected or never-applying "
        "firms are absent (reject inference is not attempted).",
    ]
    src = str(summary.get("source") or mat.tags.get("dataset_source", ""))
    if "simul" in src.lower() or "records.duckdb" in src:
        out.append(
            "Trained on the record store; when the records come from the simulator the figures "
            "describe simulated firms and say nothing about real-world performance."
        )
    n = head.get("n")
    if isinstance(n, int | float) and n < 1000:
        out.append(f"Small evaluation set ({int(n)} rows): AUC and calibration are imprecise.")
    ece = head.get("ece")
    if isinstance(ece, int | float) and ece > 0.02:
        out.append(f"Expected calibration error {ece:.3f} exceeds 0.02 on the evaluation set.")
    if calib is not None:
        thin = [str(g) for g, k in zip(calib["grade"], calib["n"], strict=True) if 0 < k < 30]
        if thin:
            out.append(f"Grades with fewer than 30 evaluation rows: {', '.join(thin)}; their "
                       "observed default rates are not reliable.")  # fmt: skip
    psi_v = head.get("psi_score")
    if isinstance(psi_v, int | float) and psi_v >= 0.1:
        out.append(f"The score distribution moved between training and evaluation "
                   f"(PSI {psi_v:.3f}).")  # fmt: skip
    return out
