"""MLflow: logging training runs, the ``tradecredit-pd`` registered model, champion promotion.

The top of the ``models`` package: it logs what training produced (``models/train.py``), its
plots (``models/plots.py``) and report (``models/report.py``), and nothing in ``models``
imports it. The store itself (``configure``, ``client``, ``champion_version``) is in
``models/tracking.py``: import it from there. Models are promoted by alias (``champion``),
never by stage.

MLflow (and ``models/pyfunc.py``, which imports it) is imported inside the functions that log or
read runs: it takes seconds to import.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit.scoring import MODEL_NAME, ScoringModel
from models.evaluate import compare_auc, describe_auc_difference
from models.evaluate import metrics as compute_metrics
from models.params import load_params
from models.plots import write_plots
from models.report import log_report, log_run_extras
from models.tracking import (
    CHAMPION,
    OOT_ARTIFACT,
    TARGET_COLUMN,
    champion_version,
    client,
    configure,
)
from models.train import TrainReport


def _flat(prefix: str, d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(key + ".", v))
        elif isinstance(v, list | tuple):
            out[key] = json.dumps(v)[:500]
        else:
            out[key] = v
    return out


def _log_explain(explain: Mapping[str, Any]) -> None:
    """The explanation-cost cap: the cap, the registered model's p99, the AUC it cost."""
    import mlflow

    if not explain:
        return
    names = {
        "cap_ms": "explain_cap_ms",
        "p99_ms": "explain_p99_ms",
        "uncapped_p99_ms": "explain_uncapped_p99_ms",
        "validation_auc_cost": "explain_cap_validation_auc_cost",
        "folds_mean_validation_auc_cost": "explain_cap_folds_mean_validation_auc_cost",
    }
    mlflow.log_metrics(
        {m: float(explain[k]) for k, m in names.items() if explain.get(k) is not None}
    )
    mlflow.set_tags(
        {
            "explain_cap_met": str(bool(explain.get("met"))),
            "explain_remedy": explain.get("remedy") or "none",
        }
    )


def _log_tuning(report: TrainReport, tuned_params: Path | None) -> None:
    """Each trial as a nested run of the active (parent) run; the choice on the parent."""
    import mlflow

    final = report.tuning[-1]
    mlflow.log_params(
        {
            "tuning.studies": len(report.tuning),
            "tuning.trials": sum(len(s.trials) for s in report.tuning),
            **{f"tuned.{k}": v for k, v in final.best_params.items()},
            **{f"tuned.scorecard.{k}": v for k, v in final.scorecard_params.items()},
        }
    )
    mlflow.log_metric("seconds_tuning", float(sum(s.seconds for s in report.tuning)))
    if final.best_value is not None:
        mlflow.log_metric("tuning_best_inner_auc", final.best_value)
    if final.default_value is not None:
        mlflow.log_metric("tuning_configured_inner_auc", final.default_value)
    if tuned_params is not None:
        mlflow.log_artifact(str(tuned_params), "tuning")
    # One run per trial, nested under the active run, written with one batch call each (about
    # three store calls per trial instead of one per parameter and metric).
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    parent = mlflow.active_run()
    assert parent is not None
    client = MlflowClient()
    now = int(time.time() * 1000)
    for study in report.tuning:
        for family, trials in (("lightgbm", study.trials), ("scorecard", study.scorecard_trials)):
            for t in trials:
                run = client.create_run(
                    parent.info.experiment_id,
                    run_name=f"{study.label} {family} trial {t.number}",
                    tags={
                        "mlflow.parentRunId": parent.info.run_id,
                        "tuning_study": study.label,
                        "model_family": f"{family}-trial",
                        "trial_state": t.state,
                        "feasible": str(t.feasible),
                    },
                )
                figures = {
                    "inner_auc": t.value,
                    "seconds": t.seconds,
                    "explain_p99_ms": t.explain_p99_ms,
                    "trees": t.trees,
                }
                client.log_batch(
                    run.info.run_id,
                    metrics=[
                        Metric(k, float(v), now, 0) for k, v in figures.items() if v is not None
                    ],
                    params=[Param(k, str(v)[:500]) for k, v in t.params.items()],
                    tags=[RunTag("trial_number", str(t.number))],
                )
                client.set_terminated(run.info.run_id)


def _finite(d: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {
        f"{prefix}{k}": float(v)
        for k, v in d.items()
        if isinstance(v, int | float | np.floating) and np.isfinite(v)
    }


def decoded_frame(model: ScoringModel, X: np.ndarray) -> pd.DataFrame:
    """The feature matrix as a table with category labels (what a caller would send)."""
    df = pd.DataFrame(X, columns=model.feature_names)
    for c, labels in model.categories.items():
        codes = df[c].to_numpy()
        lab = np.asarray(labels, dtype=object)
        vals = np.full(len(codes), None, dtype=object)
        ok = ~np.isnan(codes)
        vals[ok] = lab[codes[ok].astype(int)]
        df[c] = vals
    return df


@dataclass
class Registered:
    run_id: str
    version: str | None
    scorecard_run_id: str | None
    promotion: PromotionResult | None = None


def log_training(
    report: TrainReport,
    run_name: str | None = None,
    register: bool = True,
    tracking_uri: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    tuned_params: Path | None = None,
) -> Registered:
    """Log the LightGBM run (and the scorecard as its own run); register the model.

    With tuning, every trial of every study is a nested run of the LightGBM run, and the
    chosen parameters (``tuned_params``, the file ``credit train --params`` reads) an artifact
    of it."""
    import mlflow
    from mlflow.models import infer_signature

    from models.pyfunc import TradeCreditPD  # imports mlflow

    configure(tracking_uri)
    model = report.model
    set_name = "oot" if report.mode == "time" else "cv"
    tags = {
        "model_family": "lightgbm",
        "evaluation": set_name,
        "catalog_version": model.catalog_version or "none",
        "dataset_sha256": report.fingerprint.get("sha256", ""),
        "dataset_source": str(report.fingerprint.get("source", "")),
        **(extra_tags or {}),
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(run_name=run_name or f"lightgbm-{report.mode}", tags=tags) as run,
    ):
        t = Path(tmp)
        params = {
            **_flat("lgb.", report.info.params),
            **_flat("split.", report.split),
            "training.best_iteration": report.info.best_iteration,
            "training.candidate": report.info.candidate,
            "training.calibration": report.info.calibration,
            "training.mode": report.mode,
            "params_version": report.config.get("version"),
            "catalog_version": model.catalog_version or "none",
            "n_features": model.n_features,
        }
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(_finite(report.metrics, f"{set_name}_"))
        if report.scorecard_metrics:
            mlflow.log_metrics(_finite(report.scorecard_metrics, f"scorecard_{set_name}_"))
        if report.oracle_auc is not None:
            mlflow.log_metric("oracle_auc", report.oracle_auc)
        comparison = report.scorecard_comparison()
        if comparison is not None:
            mlflow.log_metrics(
                {
                    f"auc_gain_vs_scorecard{suffix}": comparison[key]
                    for suffix, key in (
                        ("", "diff"),
                        ("_ci_low", "ci_low"),
                        ("_ci_high", "ci_high"),
                        ("_p_value", "p_value"),
                    )
                }
            )
        for i, auc in enumerate(report.info.candidate_auc):
            mlflow.log_metric("candidate_validation_auc", auc, step=i)
        for i, cost in enumerate(report.info.candidate_cost):
            mlflow.log_metric("candidate_explain_cost", cost, step=i)
        for k, v in report.info.calibration_log_loss.items():
            mlflow.log_metric(f"calibration_log_loss_{k}", v)
        for k, v in report.seconds.items():
            mlflow.log_metric(f"seconds_{k}", v)
        for row in report.folds:
            step = int(row["fold"])
            mlflow.log_metric("fold_auc", row["auc"], step=step)
            if "scorecard_auc" in row:
                mlflow.log_metric("fold_scorecard_auc", row["scorecard_auc"], step=step)
        if report.auto_params:
            mlflow.log_params({f"auto.{c['name']}": c["value"] for c in report.auto_params})
            mlflow.log_dict({"choices": report.auto_params}, "data_aware_params.json")
        _log_explain(report.explain)
        if report.tuning:
            _log_tuning(report, tuned_params)
        mlflow.log_dict(report.fingerprint, "dataset/fingerprint.json")
        mlflow.log_dict(model.scale.to_dict(), "scale.json")
        mlflow.log_dict(report.config, "params.yaml")
        for name, table in report.tables.items():
            p = t / f"{name}.csv"
            table.to_csv(p, index=False)
            mlflow.log_artifact(str(p), "evaluation")
        # The evaluation set itself, so a promotion can score the champion on the same rows.
        oot = decoded_frame(model, report.eval_x)
        oot[TARGET_COLUMN] = report.eval_y
        oot.to_parquet(t / "oot.parquet", index=False)
        mlflow.log_artifact(str(t / "oot.parquet"), "evaluation")
        for f in write_plots(report, t / "plots"):
            mlflow.log_artifact(str(f), "plots")
        # Data summary, monitoring baseline, evaluation predictions (models/report.py).
        log_run_extras(report)
        # The model: bundle + pyfunc wrapper.
        model.run_id = run.info.run_id
        model.metadata.update(
            {
                "trained_at": report.trained_at,
                "evaluation": set_name,
                "metrics": {k: v for k, v in report.metrics.items() if np.isfinite(v)},
                "dataset": report.fingerprint,
                "split": report.split,
            }
        )
        bundle = model.to_bundle(t / "bundle")
        example = oot.drop(columns=[TARGET_COLUMN]).head(5)
        out = TradeCreditPD()
        out._model = model
        with warnings.catch_warnings():
            # integer 'score' column hint: the score is a whole number by design
            warnings.simplefilter("ignore", UserWarning)
            sig = infer_signature(example, out.predict(None, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={"bundle": str(bundle)},
            signature=sig,
            input_example=example,
            registered_model_name=MODEL_NAME if register else None,
            # Explicit requirements: inferring them starts a subprocess that re-imports the
            # world (about 10 s per model).
            pip_requirements=_requirements(),
        )
        run_id = run.info.run_id
    version = (
        str(info.registered_model_version) if register and info.registered_model_version else None
    )
    if version:
        c = client(tracking_uri)
        key = {k: report.metrics[k] for k in ("auc", "ece", "brier", "ks") if k in report.metrics}
        for k, v in key.items():
            c.set_model_version_tag(MODEL_NAME, version, f"{set_name}_{k}", f"{v:.6f}")
        c.set_model_version_tag(MODEL_NAME, version, "evaluation", set_name)
        c.set_model_version_tag(MODEL_NAME, version, "catalog_version", tags["catalog_version"])
        c.set_model_version_tag(MODEL_NAME, version, "trained_at", report.trained_at)
        c.set_model_version_tag(MODEL_NAME, version, "dataset_sha256", tags["dataset_sha256"])
    # The model report (report.html), compared with the champion before any promotion.
    log_report(run_id, version, model, tracking_uri)
    card_run = None
    if report.scorecard is not None:
        with (
            tempfile.TemporaryDirectory() as tmp,
            mlflow.start_run(
                run_name=f"scorecard-{report.mode}",
                tags={**tags, "model_family": "scorecard", "baseline_for_run": run_id},
            ) as srun,
        ):
            mlflow.log_params(
                {
                    **_flat("scorecard.", report.config.get("scorecard", {})),
                    "selected_variables": len(report.scorecard.selected),
                    "catalog_version": model.catalog_version or "none",
                }
            )
            mlflow.log_metrics(_finite(report.scorecard_metrics, f"{set_name}_"))
            p = Path(tmp) / "scorecard_points.csv"
            report.scorecard.table().to_csv(p, index=False)
            mlflow.log_artifact(str(p))
            mlflow.log_dict(report.fingerprint, "dataset/fingerprint.json")
            mlflow.log_dict(model.scale.to_dict(), "scale.json")
            card_run = srun.info.run_id
    return Registered(run_id=run_id, version=version, scorecard_run_id=card_run)


def _requirements() -> list[str]:
    out = []
    for dist in ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn", "tradecredit"):
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return out


# ---------------------------------------------------------------------------------------------
# promotion
# ---------------------------------------------------------------------------------------------


@dataclass
class PromotionResult:
    promoted: bool
    version: str
    previous: str | None
    message: str
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] = field(default_factory=dict)
    #: challenger against champion on the same rows (DeLong), when both could score them
    auc_gain: dict[str, float] = field(default_factory=dict)

    @property
    def auc_gain_line(self) -> str:
        """:attr:`auc_gain` in one line for people ("" when there was no comparison)."""
        if not self.auc_gain:
            return ""
        return describe_auc_difference(self.auc_gain, "challenger", "champion")


def _evaluation_set(c: Any, run_id: str, tracking_uri: str) -> pd.DataFrame:
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifacts(
            run_id=run_id, artifact_path=OOT_ARTIFACT, dst_path=tmp, tracking_uri=tracking_uri
        )
        return pd.read_parquet(path)


def _score_on(
    model: ScoringModel, frame: pd.DataFrame, ece_bins: int
) -> tuple[dict[str, float], np.ndarray]:
    """The model's metrics on ``frame`` and its PDs."""
    X = model.encode(frame)
    p = model.predict(X).pd
    return compute_metrics(frame[TARGET_COLUMN].to_numpy(), p, ece_bins), p


def promote(
    version: str,
    force: bool = False,
    reason: str | None = None,
    cfg: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> PromotionResult:
    """Move ``champion`` to ``version`` if it beats the champion on the challenger's evaluation
    set (AUC higher by ``promotion.min_auc_gain``, ECE at most ``promotion.ece_tolerance`` worse);
    ``force`` (with a ``reason``) skips the gate. Every promotion is recorded as tags."""
    if force and not (reason and reason.strip()):
        raise ValueError("--force needs --reason TEXT saying why the gate is overridden")
    cfg = cfg or load_params()
    gate = cfg.get("promotion", {})
    min_gain = float(gate.get("min_auc_gain", 0.0))
    tol = float(gate.get("ece_tolerance", 0.005))
    ece_bins = int(cfg.get("evaluation", {}).get("ece_bins", 10))
    uri = configure(tracking_uri)
    c = client(uri)
    mv = c.get_model_version(MODEL_NAME, str(version))
    current = champion_version(uri)
    if current == str(version):
        return PromotionResult(
            False, str(version), current, f"version {version} is already champion"
        )
    cache = Path(tempfile.mkdtemp(prefix="promote-"))
    chall = ScoringModel.load(f"models:/{MODEL_NAME}/{version}", tracking_uri=uri, cache_dir=cache)
    res_ch: dict[str, float] = {}
    res_champ: dict[str, float] = {}
    auc_gain: dict[str, float] = {}
    if current is not None:
        frame = _evaluation_set(c, mv.run_id, uri)
        champ = ScoringModel.load(
            f"models:/{MODEL_NAME}/{current}", tracking_uri=uri, cache_dir=cache
        )
        res_ch, p_ch = _score_on(chall, frame, ece_bins)
        try:
            res_champ, p_champ = _score_on(champ, frame, ece_bins)
            auc_gain = _auc_gain(frame[TARGET_COLUMN].to_numpy(), p_ch, p_champ)
        except ValueError as exc:  # the champion cannot score these features
            if not force:
                return PromotionResult(
                    False,
                    str(version),
                    current,
                    f"refused: the champion (version {current}) cannot score the challenger's "
                    f"evaluation set ({exc}); use --force --reason to replace it anyway",
                    res_ch,
                )
        if not force and res_champ:
            gain = res_ch["auc"] - res_champ["auc"]
            worse_ece = res_ch["ece"] - res_champ["ece"]
            problems = []
            if gain <= min_gain:
                problems.append(
                    f"AUC {res_ch['auc']:.4f} does not beat the champion's {res_champ['auc']:.4f}"
                    + (f" by more than {min_gain}" if min_gain else "")
                )
            if worse_ece > tol:
                problems.append(
                    f"ECE {res_ch['ece']:.4f} is worse than the champion's {res_champ['ece']:.4f} "
                    f"by more than the tolerance {tol}"
                )
            if problems:
                return PromotionResult(
                    False,
                    str(version),
                    current,
                    f"refused on {int(res_ch['n'])} evaluation rows of version {version}: "
                    + "; ".join(problems),
                    res_ch,
                    res_champ,
                    auc_gain,
                )
    c.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    why = reason or ("first champion" if current is None else "passed the promotion gate")
    record = {
        "promoted_at": now,
        "promoted_from": current or "none",
        "promoted_to": str(version),
        "promotion_reason": why,
        "promotion_forced": str(bool(force)).lower(),
        "promotion_metrics": json.dumps(
            {
                "challenger": short_metrics(res_ch),
                "champion": short_metrics(res_champ),
                "auc_gain": auc_gain,
            }
        ),
    }
    for k, v in record.items():
        c.set_model_version_tag(MODEL_NAME, str(version), k, v)
    c.set_registered_model_tag(MODEL_NAME, "last_promotion", json.dumps(record))
    if current is not None:
        c.set_model_version_tag(MODEL_NAME, current, "replaced_by", str(version))
        c.set_model_version_tag(MODEL_NAME, current, "replaced_at", now)
    return PromotionResult(
        True,
        str(version),
        current,
        f"version {version} is champion ({why})",
        res_ch,
        res_champ,
        auc_gain,
    )


def _auc_gain(y: np.ndarray, p_challenger: np.ndarray, p_champion: np.ndarray) -> dict[str, float]:
    """Challenger minus champion AUC on the same rows with its interval (empty when the rows
    hold a single outcome). The gate itself stays ``promotion.min_auc_gain``; this says how
    much of the gain could be noise."""
    d = compare_auc(y, p_challenger, p_champion)
    return {k: round(v, 6) for k, v in d.items()} if d else {}


def short_metrics(m: Mapping[str, float]) -> dict[str, float]:
    """AUC, ECE, Brier and row count, rounded: a promotion's figures in one line."""
    return {k: round(float(m[k]), 6) for k in ("auc", "ece", "brier", "n") if k in m}


def list_versions(tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Registered versions, newest first, with aliases and key metrics."""
    from mlflow.exceptions import MlflowException

    c = client(tracking_uri)
    try:
        rm = c.get_registered_model(MODEL_NAME)
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, v in (rm.aliases or {}).items():
        aliases.setdefault(str(v), []).append(alias)
    rows = []
    for mv in c.search_model_versions(f"name='{MODEL_NAME}'"):
        tags = mv.tags or {}
        ev = tags.get("evaluation", "oot")
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                "evaluation": ev,
                "auc": tags.get(f"{ev}_auc"),
                "ece": tags.get(f"{ev}_ece"),
                "brier": tags.get(f"{ev}_brier"),
                "catalog_version": tags.get("catalog_version"),
                "trained_at": tags.get("trained_at"),
                "run_id": mv.run_id,
                "promoted_at": tags.get("promoted_at"),
            }
        )
    rows.sort(key=lambda r: int(r["version"]), reverse=True)
    return rows
