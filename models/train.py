"""Training: LightGBM with monotone constraints and early stopping, calibration, the scorecard
baseline, out-of-time (or cross-validated) evaluation. No MLflow here (see models/registry.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import roc_auc_score

from credit.scale import ScoreScale
from credit.scoring import MODEL_NAME, ScoringModel
from models.autoparams import Choice
from models.autoparams import resolve as resolve_params
from models.baseline import build_baseline
from models.calibrate import choose_calibrator
from models.dataset import TrainingData
from models.evaluate import compare_auc, evaluate, metrics
from models.fitting import (
    Selected,
    explain_p99_ms,
    fit_booster,
    select,
)
from models.paramspec import AUTO
from models.scorecard import ScorecardModel, fit_scorecard
from models.splits import stratified_folds, stratified_holdout, time_split
from models.summary import summarize_data
from models.tune import StudyResult, TuneOptions, Tuner

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


@dataclass
class FitInfo:
    best_iteration: int
    params: dict[str, Any]
    candidate_auc: list[float]
    calibration: str
    calibration_log_loss: dict[str, float]
    seconds: float
    candidate: int = 0  # index of the kept candidate in training.candidates
    candidate_cost: list[float] = field(default_factory=list)  # explain_cost of each
    cap: CapOutcome | None = None  # what the explanation-cost cap did


def _scoring_model(
    booster: lgb.Booster,
    cal: Any,
    cfg: Mapping[str, Any],
    data: TrainingData,
    reason_texts: Mapping[str, str] | None,
    catalog_version: str | None,
) -> ScoringModel:
    """The fitted booster and calibrator with the configured scale, as the scoring core's model."""
    return ScoringModel(
        booster=booster,
        calibrator=cal,
        scale=ScoreScale.from_dict(cfg.get("scale")),
        feature_names=data.feature_names,
        reason_texts=reason_texts,
        categories=data.categories,
        name=MODEL_NAME,
        catalog_version=catalog_version,
    )


def cap_steps(params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The remedies for a model too costly to explain: a faster learning rate (fewer trees),
    shallower trees (TreeSHAP's cost grows with the square of the depth), or both."""
    lr = float(params.get("learning_rate", 0.1))
    leaves = int(params.get("num_leaves", 31))

    def rate(x: float) -> float:
        return round(min(0.3, lr * x), 6)

    steps: list[tuple[str, dict[str, Any]]] = [
        ("learning rate x2", {"learning_rate": rate(2)}),
        ("depth 6", {"max_depth": 6}),
        ("depth 6, learning rate x2", {"max_depth": 6, "learning_rate": rate(2)}),
        ("learning rate x4", {"learning_rate": rate(4)}),
        (
            "depth 4, at most 15 leaves, learning rate x4",
            {"max_depth": 4, "num_leaves": min(leaves, 15), "learning_rate": rate(4)},
        ),
        (
            "depth 3, 7 leaves, learning rate 0.3",
            {"max_depth": 3, "num_leaves": 7, "learning_rate": 0.3},
        ),
    ]
    out: list[tuple[str, dict[str, Any]]] = []
    seen = [dict(params)]
    for name, change in steps:
        new = {**params, **change}
        if new not in seen:
            seen.append(new)
            out.append((name, new))
    return out


@dataclass
class CapOutcome:
    """What the explanation-cost cap did to one fit."""

    cap_ms: float | None
    p99_ms: float  # the kept model's explanation p99
    met: bool
    step: str = ""  # the remedy applied ("" = none needed)
    uncapped_p99_ms: float | None = None
    uncapped_auc: float | None = None  # validation AUC of the model before the remedy
    capped_auc: float | None = None
    uncapped_trees: int | None = None

    @property
    def auc_cost(self) -> float:
        if self.uncapped_auc is None or self.capped_auc is None:
            return 0.0
        return self.uncapped_auc - self.capped_auc


def _apply_cap(
    sel: Selected,
    refit: Callable[[Sequence[Mapping[str, Any]]], Selected],
    sample: npt.NDArray[np.float64],
    cap_ms: float | None,
) -> tuple[Selected, CapOutcome]:
    t0 = explain_p99_ms(sel.booster, sample)
    if cap_ms is None or t0 <= cap_ms:
        return sel, CapOutcome(cap_ms, t0, True, "", t0, sel.auc, sel.auc)
    # Try every remedy; keep the best validation AUC among those within the cap (the cheapest
    # to explain when none is).
    trees = int(sel.booster.current_iteration())
    tried: list[tuple[Selected, float, str]] = []
    for name, params in cap_steps(sel.params):
        cand = refit([params])
        tried.append((cand, explain_p99_ms(cand.booster, sample), name))
    within = [x for x in tried if x[1] <= cap_ms]
    kept, t, name = (
        max(within, key=lambda x: x[0].auc) if within else min(tried, key=lambda x: x[1])
    )
    return kept, CapOutcome(cap_ms, t, t <= cap_ms, name, t0, sel.auc, kept.auc, trees)


def fit_model(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64] | None,
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None = None,
    reason_texts: Mapping[str, str] | None = None,
    catalog_version: str | None = None,
) -> tuple[ScoringModel, FitInfo]:
    """Fit every parameter candidate on ``fit_idx``, keep the best by validation AUC (or, with
    ``val_idx`` None, by inner K-fold), hold it to the explanation-cost cap, calibrate."""
    t0 = time.perf_counter()
    if AUTO in cfg["lightgbm"].values():  # callers that did not resolve them (backtests)
        cfg, _ = resolve_auto(data, cfg)
    base = dict(cfg["lightgbm"])
    tr = cfg.get("training", {})
    candidates = [{**base, **(c or {})} for c in (tr.get("candidates") or [{}])]
    cat_idx = [data.feature_names.index(c) for c in data.categories]

    def refit(cands: Sequence[Mapping[str, Any]]) -> Selected:
        return select(data, fit_idx, val_idx, cfg, cands, monotone)

    first = refit(candidates)
    sample = data.X[val_idx if val_idx is not None else fit_idx]
    cap = tr.get("explain_p99_ms")
    sel, capped = _apply_cap(first, refit, sample, float(cap) if cap is not None else None)
    cal, losses = choose_calibrator(sel.calibration_raw, sel.calibration_y)
    booster = sel.booster
    if val_idx is not None and bool(tr.get("refit_on_validation", False)):
        # The validation window chose the candidate, the number of trees and the calibration
        # map; the final booster then also learns from it (the newest labelled rows before the
        # out-of-time window). The out-of-time ECE checks that the map still holds.
        rows = np.concatenate([fit_idx, val_idx])
        booster = fit_booster(
            sel.params,
            data.X[rows],
            data.y[rows],
            None,
            None,
            data.feature_names,
            cat_idx,
            monotone,
            int(booster.current_iteration()),
        )
        capped.p99_ms = explain_p99_ms(booster, sample)
        capped.met = cap is None or capped.p99_ms <= float(cap)
    model = _scoring_model(booster, cal, cfg, data, reason_texts, catalog_version)
    info = FitInfo(
        best_iteration=int(booster.current_iteration()),
        params=sel.params,
        candidate_auc=first.aucs,
        calibration=cal.method,
        calibration_log_loss=losses,
        seconds=time.perf_counter() - t0,
        candidate=first.chosen,
        candidate_cost=first.costs,
        cap=capped,
    )
    return model, info


@dataclass
class TrainReport:
    """Everything a training run produced, for logging and printing."""

    mode: str  # "time" or "cv"
    model: ScoringModel
    info: FitInfo
    scorecard: ScorecardModel | None
    metrics: dict[str, float]
    scorecard_metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    eval_y: npt.NDArray[np.int64]
    eval_pd: npt.NDArray[np.float64]
    eval_scorecard_pd: npt.NDArray[np.float64] | None
    eval_x: npt.NDArray[np.float64]
    eval_times: pd.Series | None
    train_pd: npt.NDArray[np.float64]
    fingerprint: dict[str, Any]
    config: dict[str, Any]
    folds: list[dict[str, float]] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)
    oracle_auc: float | None = None
    eval_ids: pd.Series | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: the development population's score and feature distributions (models/baseline.py)
    baseline: dict[str, Any] = field(default_factory=dict)
    #: rows, outcomes and default rate by period of the training table (models/summary.py)
    data_summary: dict[str, Any] = field(default_factory=dict)
    #: the data-aware parameter values, each with its reason (models/autoparams.py)
    auto_params: list[dict[str, Any]] = field(default_factory=list)
    #: the tuner's studies (``--tune``), one per set of training rows (models/tune.py)
    tuning: list[StudyResult] = field(default_factory=list)
    #: the explanation-cost cap: cap, measured p99, remedy, AUC it cost (:func:`explain_summary`)
    explain: dict[str, Any] = field(default_factory=dict)
    #: row positions (in the training table) of the evaluation rows, in eval_* order
    eval_index: npt.NDArray[np.int64] | None = None

    def scorecard_comparison(self) -> dict[str, float] | None:
        """LightGBM against the scorecard on the same evaluation rows (DeLong's paired test,
        :func:`models.evaluate.compare_auc`); ``None`` without a scorecard or without both
        outcomes among the rows."""
        if self.eval_scorecard_pd is None:
            return None
        return compare_auc(self.eval_y, self.eval_pd, self.eval_scorecard_pd)


def _segments(
    data: TrainingData, idx: npt.NDArray[np.int64], names: Sequence[str]
) -> dict[str, pd.Series]:
    return {
        n: data.frame[n].iloc[idx].reset_index(drop=True) for n in names if n in data.frame.columns
    }


def train_time_split(
    data: TrainingData,
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None = None,
    reason_texts: Mapping[str, str] | None = None,
    catalog_version: str | None = None,
    segments: Sequence[str] = (),
    horizon: pd.Timestamp | None = None,
    with_scorecard: bool = True,
    progress: Progress = _noop,
    tune: TuneOptions | None = None,
) -> TrainReport:
    """Train on the oldest applications, early-stop and calibrate on the next, test on the
    newest."""
    if data.times is None:
        raise ValueError("a time split needs a time column")
    cfg, auto = resolve_auto(data, cfg, progress)
    sp = cfg.get("split", {})
    ev = cfg.get("evaluation", {})
    secs: dict[str, float] = {}
    split = time_split(
        data.times,
        data.y,
        float(sp.get("validation_fraction", 0.2)),
        float(sp.get("oot_fraction", 0.2)),
        int(sp.get("outcome_window_months", 12)),
        horizon=horizon,
    )
    progress(
        f"split: train {len(split.train)}, validation {len(split.validation)} "
        f"(from {split.validation_start.date()}), out-of-time {len(split.oot)} "
        f"(from {split.oot_start.date()}); horizon {split.horizon.date()}"
    )
    tuner = Tuner(tune, 1, progress) if tune is not None else None
    if tuner is not None:
        t = time.perf_counter()
        cfg = tuner.tune(
            data, split.train, split.validation, cfg, monotone, "training window", with_scorecard
        )
        secs["tuning"] = time.perf_counter() - t
    t = time.perf_counter()
    model, info = fit_model(
        data, split.train, split.validation, cfg, monotone, reason_texts, catalog_version
    )
    secs["lightgbm"] = time.perf_counter() - t
    progress(_cap_line(info))
    tried = ", ".join(
        f"{a:.4f}{'*' if i == info.candidate else ''}" for i, a in enumerate(info.candidate_auc)
    )
    progress(
        f"LightGBM: {info.best_iteration} trees, calibration {info.calibration} "
        f"({secs['lightgbm']:.1f}s); candidates' validation AUC {tried} (* kept)"
    )
    card = None
    card_pd = None
    card_metrics: dict[str, float] = {}
    yo = data.y[split.oot]
    if with_scorecard:
        t = time.perf_counter()
        fit_rows = np.concatenate([split.train, split.validation])
        sc_cfg = cfg.get("scorecard", {})
        card = fit_scorecard(
            data.X[fit_rows],
            data.y[fit_rows],
            data.feature_names,
            data.categories,
            model.scale,
            int(sc_cfg.get("max_n_bins", 6)),
            float(sc_cfg.get("min_bin_size", 0.05)),
        )
        card_pd = card.predict_proba(data.X[split.oot])
        card_metrics = metrics(yo, card_pd, int(ev.get("ece_bins", 10)))
        secs["scorecard"] = time.perf_counter() - t
        progress(f"scorecard: {len(card.selected)} variables ({secs['scorecard']:.1f}s)")
    p_oot = model.predict(data.X[split.oot]).pd
    p_train = model.predict(data.X[split.train]).pd
    head, tables = evaluate(
        yo,
        p_oot,
        segments=_segments(data, split.oot, segments),
        times=data.times.iloc[split.oot],
        train_scores=model.scale.score(p_train),
        scores=model.scale.score(p_oot),
        ece_bins=int(ev.get("ece_bins", 10)),
        psi_bins=int(ev.get("psi_bins", 10)),
        min_segment_rows=int(ev.get("min_segment_rows", 50)),
    )
    return TrainReport(
        mode="time",
        model=model,
        info=info,
        scorecard=card,
        metrics=head,
        scorecard_metrics=card_metrics,
        tables=tables,
        eval_y=yo,
        eval_pd=p_oot,
        eval_scorecard_pd=card_pd,
        eval_x=data.X[split.oot],
        eval_times=data.times.iloc[split.oot].reset_index(drop=True),
        train_pd=p_train,
        fingerprint=data.fingerprint(),
        config=copy.deepcopy(dict(cfg)),
        split={
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "oot_rows": len(split.oot),
            "validation_start": str(split.validation_start),
            "oot_start": str(split.oot_start),
            "horizon": str(split.horizon),
            "outcome_window_months": int(sp.get("outcome_window_months", 12)),
        },
        eval_ids=data.ids.iloc[split.oot].reset_index(drop=True) if data.ids is not None else None,
        seconds=secs,
        baseline=build_baseline(model, data.X[np.concatenate([split.train, split.validation])]),
        data_summary=summarize_data(data, split.horizon, int(sp.get("outcome_window_months", 12))),
        auto_params=[c.__dict__ for c in auto],
        tuning=tuner.results if tuner is not None else [],
        explain=explain_summary(info, []),
        eval_index=split.oot,
    )


def train_cv(
    data: TrainingData,
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None = None,
    reason_texts: Mapping[str, str] | None = None,
    catalog_version: str | None = None,
    segments: Sequence[str] = (),
    with_scorecard: bool = True,
    progress: Progress = _noop,
    tune: TuneOptions | None = None,
) -> TrainReport:
    """Stratified K-fold: each fold trains (with an inner validation holdout for early stopping
    and calibration) and is scored on its held-out fold; LightGBM and the scorecard see the same
    folds. The registered model is then fitted on all labelled rows the same way.

    With ``tune``, each fold's parameters are searched on that fold's training rows only
    (nested cross-validation) and the registered model's on all labelled rows."""
    cfg, auto = resolve_auto(data, cfg, progress)
    cv = cfg.get("cv", {})
    ev = cfg.get("evaluation", {})
    k = int(cv.get("folds", 5))
    inner = float(cv.get("inner_validation_fraction", 0.2))
    seed = int(cv.get("seed", 42))
    folds = stratified_folds(data.y, k, seed)
    tuner = Tuner(tune, k + 1, progress) if tune is not None else None
    fold_infos: list[FitInfo] = []
    n = len(data.y)
    oof = np.full(n, np.nan)
    oof_card = np.full(n, np.nan)
    fold_rows: list[dict[str, float]] = []
    secs = {"lightgbm": 0.0, "scorecard": 0.0}
    sc_cfg = cfg.get("scorecard", {})
    info: FitInfo | None = None
    small = int((data.y >= 0).sum()) < int(cv.get("kfold_below_rows", 5000))

    def holdout(rows: npt.NDArray[np.int64], s: int) -> tuple[Any, Any]:
        return (rows, None) if small else stratified_holdout(rows, data.y, inner, s)

    def tuned(
        fit_idx: npt.NDArray[np.int64], val_idx: npt.NDArray[np.int64] | None, label: str
    ) -> dict[str, Any]:
        if tuner is None:
            return dict(cfg)
        t = time.perf_counter()
        out = tuner.tune(data, fit_idx, val_idx, cfg, monotone, label, with_scorecard)
        secs["tuning"] = secs.get("tuning", 0.0) + time.perf_counter() - t
        return out

    for i, (tr, te) in enumerate(folds, start=1):
        fit_idx, val_idx = holdout(tr, seed + i)
        fold_cfg = tuned(fit_idx, val_idx, f"fold {i}/{k}")
        fold_sc = fold_cfg.get("scorecard", {})
        t = time.perf_counter()
        m, info = fit_model(
            data, fit_idx, val_idx, fold_cfg, monotone, reason_texts, catalog_version
        )
        fold_infos.append(info)
        secs["lightgbm"] += time.perf_counter() - t
        oof[te] = m.predict(data.X[te]).pd
        row = {"fold": float(i), "auc": float(roc_auc_score(data.y[te], oof[te]))}
        if with_scorecard:
            t = time.perf_counter()
            card = fit_scorecard(
                data.X[tr],
                data.y[tr],
                data.feature_names,
                data.categories,
                m.scale,
                int(fold_sc.get("max_n_bins", 6)),
                float(fold_sc.get("min_bin_size", 0.05)),
            )
            oof_card[te] = card.predict_proba(data.X[te])
            secs["scorecard"] += time.perf_counter() - t
            row["scorecard_auc"] = float(roc_auc_score(data.y[te], oof_card[te]))
        fold_rows.append(row)
        progress(
            f"fold {i}/{k}: LightGBM AUC {row['auc']:.4f}"
            + (f", scorecard AUC {row['scorecard_auc']:.4f}" if with_scorecard else "")
            + f"; {_cap_line(info)}"
        )
    lab = np.flatnonzero(data.y >= 0)
    fit_idx, val_idx = holdout(lab, seed)
    cfg = tuned(fit_idx, val_idx, "final model")
    sc_cfg = cfg.get("scorecard", {})
    t = time.perf_counter()
    model, info = fit_model(data, fit_idx, val_idx, cfg, monotone, reason_texts, catalog_version)
    secs["final_model"] = time.perf_counter() - t
    card_final = None
    if with_scorecard:
        card_final = fit_scorecard(
            data.X[lab],
            data.y[lab],
            data.feature_names,
            data.categories,
            model.scale,
            int(sc_cfg.get("max_n_bins", 6)),
            float(sc_cfg.get("min_bin_size", 0.05)),
        )
    progress(
        f"final model: {info.best_iteration} trees, calibration {info.calibration}; "
        f"{_cap_line(info)}"
    )
    y_lab = data.y[lab]
    head, tables = evaluate(
        y_lab,
        oof[lab],
        segments=_segments(data, lab, segments),
        times=data.times.iloc[lab] if data.times is not None else None,
        ece_bins=int(ev.get("ece_bins", 10)),
        min_segment_rows=int(ev.get("min_segment_rows", 50)),
    )
    head["cv_auc_mean"] = float(np.mean([r["auc"] for r in fold_rows]))
    head["cv_auc_std"] = float(np.std([r["auc"] for r in fold_rows]))
    card_metrics: dict[str, float] = {}
    if with_scorecard:
        card_metrics = metrics(y_lab, oof_card[lab], int(ev.get("ece_bins", 10)))
        card_metrics["cv_auc_mean"] = float(np.mean([r["scorecard_auc"] for r in fold_rows]))
        card_metrics["cv_auc_std"] = float(np.std([r["scorecard_auc"] for r in fold_rows]))
    return TrainReport(
        mode="cv",
        model=model,
        info=info,
        scorecard=card_final,
        metrics=head,
        scorecard_metrics=card_metrics,
        tables=tables,
        eval_y=y_lab,
        eval_pd=oof[lab],
        eval_scorecard_pd=oof_card[lab] if with_scorecard else None,
        eval_x=data.X[lab],
        eval_times=data.times.iloc[lab].reset_index(drop=True) if data.times is not None else None,
        train_pd=oof[lab],
        fingerprint=data.fingerprint(),
        config=copy.deepcopy(dict(cfg)),
        folds=fold_rows,
        split={"folds": k, "inner_validation_fraction": inner, "seed": seed},
        eval_ids=data.ids.iloc[lab].reset_index(drop=True) if data.ids is not None else None,
        seconds=secs,
        baseline=build_baseline(model, data.X[lab]),
        data_summary=summarize_data(data),
        auto_params=[c.__dict__ for c in auto],
        tuning=tuner.results if tuner is not None else [],
        explain=explain_summary(info, fold_infos),
        eval_index=lab,
    )


def resolve_auto(
    data: TrainingData, cfg: Mapping[str, Any], progress: Progress = _noop
) -> tuple[dict[str, Any], list[Choice]]:
    """Resolve the ``auto`` parameters from the labelled rows, defaults and columns of ``data``
    (models/autoparams.py) and say each choice and why."""
    rows = int(data.labelled.sum())
    resolved, chosen = resolve_params(cfg, rows, int((data.y == 1).sum()), len(data.feature_names))
    if chosen:
        progress("data-aware parameters: " + "; ".join(c.line() for c in chosen))
    return resolved, chosen


def _cap_line(info: FitInfo) -> str:
    c = info.cap
    if c is None:
        return ""
    if c.cap_ms is None:
        return f"explanation p99 {c.p99_ms:.2f} ms (no cap)"
    line = f"explanation p99 {c.p99_ms:.2f} ms (cap {c.cap_ms:g} ms"
    if c.step:
        line += (
            f"; uncapped {c.uncapped_trees} trees took {c.uncapped_p99_ms:.2f} ms, remedy "
            f"'{c.step}' cost {c.auc_cost:+.4f} validation AUC"
        )
    line += ")"
    if not c.met:
        line += " - CAP NOT MET"
    return line


def explain_summary(final: FitInfo, folds: Sequence[FitInfo]) -> dict[str, Any]:
    """The cap, the registered model's explanation p99, and the AUC capping cost on validation
    (the registered model's, and the mean over the folds in cross-validation)."""
    c = final.cap
    if c is None:
        return {}
    out: dict[str, Any] = {
        "cap_ms": c.cap_ms,
        "p99_ms": round(c.p99_ms, 4),
        "met": c.met,
        "remedy": c.step,
        "uncapped_p99_ms": None if c.uncapped_p99_ms is None else round(c.uncapped_p99_ms, 4),
        "uncapped_trees": c.uncapped_trees,
        "validation_auc_uncapped": c.uncapped_auc,
        "validation_auc_capped": c.capped_auc,
        "validation_auc_cost": c.auc_cost,
    }
    caps = [f.cap for f in folds if f.cap is not None]
    if caps:
        out["folds_capped"] = sum(bool(x.step) for x in caps)
        out["folds_cap_met"] = sum(x.met for x in caps)
        out["folds_mean_validation_auc_cost"] = float(np.mean([x.auc_cost for x in caps]))
        out["folds_max_p99_ms"] = round(max(x.p99_ms for x in caps), 4)
    return out
