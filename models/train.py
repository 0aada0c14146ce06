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
from models.baseline import build_baseline
from models.calibrate import choose_calibrator
from models.dataset import TrainingData
from models.evaluate import compare_auc, evaluate, metrics
from models.scorecard import ScorecardModel, fit_scorecard
from models.splits import stratified_folds, stratified_holdout, time_split
from models.summary import summarize_data

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


def tree_depth(node: Mapping[str, Any]) -> int:
    """Depth of a tree in LightGBM's ``dump_model()`` form (a leaf has depth 0)."""
    if "left_child" not in node:
        return 0
    return 1 + max(tree_depth(node["left_child"]), tree_depth(node["right_child"]))


def explain_cost(booster: lgb.Booster) -> float:
    """Relative cost of exact TreeSHAP for one row: sum over trees of leaves x depth squared
    (the algorithm's complexity), so candidates can be compared without timing them."""
    total = 0.0
    for tree in booster.dump_model()["tree_info"]:
        d = tree_depth(tree["tree_structure"])
        total += tree["num_leaves"] * max(d, 1) ** 2
    return total


def choose_candidate(aucs: Sequence[float], costs: Sequence[float], tolerance: float) -> int:
    """Index of the candidate to keep: the one cheapest to explain among those whose
    validation AUC is within ``tolerance`` of the best (with 0, simply the best AUC).

    Every decision pays for its reason codes, so a model as accurate as the best but a
    fraction of its size is the better model to serve."""
    best = max(aucs)
    eligible = [i for i, a in enumerate(aucs) if a >= best - tolerance]
    return min(eligible, key=lambda i: (costs[i], -aucs[i]))


def fit_booster(
    params: Mapping[str, Any],
    X_fit: npt.NDArray[np.float64],
    y_fit: npt.NDArray[np.int64],
    X_val: npt.NDArray[np.float64] | None,
    y_val: npt.NDArray[np.int64] | None,
    feature_names: Sequence[str],
    categorical: Sequence[int] = (),
    monotone: Sequence[int] | None = None,
    num_boost_round: int = 5000,
    early_stopping_rounds: int = 200,
) -> lgb.Booster:
    """One LightGBM binary booster, early-stopped on the validation AUC."""
    p = dict(params)
    p.setdefault("objective", "binary")
    p.setdefault("metric", "binary_logloss")
    if "num_threads" not in p:
        # Small tables train faster on one thread than on a contended pool.
        p["num_threads"] = 1 if len(y_fit) < 20_000 else 0
    if monotone is not None and any(monotone):
        mono = [0 if j in set(categorical) else int(m) for j, m in enumerate(monotone)]
        p["monotone_constraints"] = mono
        p.setdefault("monotone_constraints_method", "intermediate")
    dtrain = lgb.Dataset(
        X_fit,
        y_fit,
        feature_name=list(feature_names),
        categorical_feature=list(categorical) or "auto",
        free_raw_data=True,
    )
    if X_val is None or y_val is None:  # fixed number of rounds, no early stopping
        return lgb.train(p, dtrain, num_boost_round=num_boost_round)
    dval = lgb.Dataset(X_val, y_val, reference=dtrain)
    booster = lgb.train(
        p,
        dtrain,
        num_boost_round=num_boost_round,
        valid_sets=[dval],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    if booster.best_iteration and booster.best_iteration < booster.current_iteration():
        # Keep only the trees up to the best iteration so the saved model is what was chosen.
        booster = lgb.Booster(
            model_str=booster.model_to_string(num_iteration=booster.best_iteration)
        )
    return booster


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


def fit_model(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64] | None,
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None = None,
    reason_texts: Mapping[str, str] | None = None,
    catalog_version: str | None = None,
) -> tuple[ScoringModel, FitInfo]:
    """Fit every parameter candidate on ``fit_idx``, keep the best by validation AUC, calibrate."""
    if val_idx is None:
        return fit_model_kfold(data, fit_idx, cfg, monotone, reason_texts, catalog_version)
    t0 = time.perf_counter()
    cat_idx = [data.feature_names.index(c) for c in data.categories]
    base = dict(cfg["lightgbm"])
    tr = cfg.get("training", {})
    candidates = tr.get("candidates") or [{}]
    fitted: list[tuple[lgb.Booster, dict[str, Any]]] = []
    aucs: list[float] = []
    Xv, yv = data.X[val_idx], data.y[val_idx]
    for cand in candidates:
        params = {**base, **(cand or {})}
        b = fit_booster(
            params,
            data.X[fit_idx],
            data.y[fit_idx],
            Xv,
            yv,
            data.feature_names,
            cat_idx,
            monotone,
            int(tr.get("num_boost_round", 5000)),
            int(tr.get("early_stopping_rounds", 200)),
        )
        aucs.append(float(roc_auc_score(yv, b.predict(Xv, raw_score=True))))
        fitted.append((b, params))
    costs = [explain_cost(b) for b, _ in fitted]
    chosen = choose_candidate(aucs, costs, float(tr.get("parsimony_auc_tolerance", 0.0)))
    booster, params = fitted[chosen]
    raw_val = booster.predict(Xv, raw_score=True)
    cal, losses = choose_calibrator(raw_val, yv)
    refit = bool(tr.get("refit_on_validation", False))
    if refit:
        # The validation window chose the candidate, the number of trees and the calibration
        # map; the final booster then also learns from it (the newest labelled rows before the
        # out-of-time window). The out-of-time ECE checks that the map still holds.
        rows = np.concatenate([fit_idx, val_idx])
        booster = fit_booster(
            params,
            data.X[rows],
            data.y[rows],
            None,
            None,
            data.feature_names,
            cat_idx,
            monotone,
            int(booster.current_iteration()),
        )
    model = _scoring_model(booster, cal, cfg, data, reason_texts, catalog_version)
    info = FitInfo(
        best_iteration=int(booster.current_iteration()),
        params=params,
        candidate_auc=aucs,
        calibration=cal.method,
        calibration_log_loss=losses,
        seconds=time.perf_counter() - t0,
        candidate=chosen,
        candidate_cost=costs,
    )
    return model, info


def fit_model_kfold(
    data: TrainingData,
    idx: npt.NDArray[np.int64],
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None = None,
    reason_texts: Mapping[str, str] | None = None,
    catalog_version: str | None = None,
) -> tuple[ScoringModel, FitInfo]:
    """For small tables, where a single holdout wastes rows and is noisy: inner stratified
    K-fold picks the candidate (pooled out-of-fold AUC) and the number of trees (mean best
    iteration), the calibrator is fitted on the out-of-fold raw scores, and the booster is
    refitted on all of ``idx`` with that number of trees."""
    t0 = time.perf_counter()
    cat_idx = [data.feature_names.index(c) for c in data.categories]
    base = dict(cfg["lightgbm"])
    tr = cfg.get("training", {})
    k = int(cfg.get("cv", {}).get("inner_folds", 5))
    seed = int(cfg.get("cv", {}).get("seed", 42))
    y = data.y
    inner = stratified_folds(np.where(np.isin(np.arange(len(y)), idx), y, -1), k, seed + 1)
    fitted: list[tuple[dict[str, Any], npt.NDArray[np.float64], int]] = []
    aucs: list[float] = []
    costs: list[float] = []
    for cand in tr.get("candidates") or [{}]:
        params = {**base, **(cand or {})}
        oof = np.full(len(y), np.nan)
        iters: list[int] = []
        for a, b in inner:
            bst = fit_booster(
                params,
                data.X[a],
                y[a],
                data.X[b],
                y[b],
                data.feature_names,
                cat_idx,
                monotone,
                int(tr.get("num_boost_round", 5000)),
                int(tr.get("early_stopping_rounds", 200)),
            )
            iters.append(int(bst.current_iteration()))
            oof[b] = bst.predict(data.X[b], raw_score=True)
        aucs.append(float(roc_auc_score(y[idx], oof[idx])))
        costs.append(explain_cost(bst))  # the last inner fold's booster stands for its size
        fitted.append((params, oof, max(1, int(round(float(np.mean(iters)))))))
    chosen = choose_candidate(aucs, costs, float(tr.get("parsimony_auc_tolerance", 0.0)))
    params, oof, n_trees = fitted[chosen]
    booster = fit_booster(
        params, data.X[idx], y[idx], None, None, data.feature_names, cat_idx, monotone, n_trees
    )
    cal, losses = choose_calibrator(oof[idx], y[idx])
    model = _scoring_model(booster, cal, cfg, data, reason_texts, catalog_version)
    info = FitInfo(
        n_trees, params, aucs, cal.method, losses, time.perf_counter() - t0, chosen, costs
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
) -> TrainReport:
    """Train on the oldest applications, early-stop and calibrate on the next, test on the
    newest."""
    if data.times is None:
        raise ValueError("a time split needs a time column")
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
    t = time.perf_counter()
    model, info = fit_model(
        data, split.train, split.validation, cfg, monotone, reason_texts, catalog_version
    )
    secs["lightgbm"] = time.perf_counter() - t
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
) -> TrainReport:
    """Stratified K-fold: each fold trains (with an inner validation holdout for early stopping
    and calibration) and is scored on its held-out fold; LightGBM and the scorecard see the same
    folds. The registered model is then fitted on all labelled rows the same way."""
    cv = cfg.get("cv", {})
    ev = cfg.get("evaluation", {})
    k = int(cv.get("folds", 5))
    inner = float(cv.get("inner_validation_fraction", 0.2))
    seed = int(cv.get("seed", 42))
    folds = stratified_folds(data.y, k, seed)
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

    for i, (tr, te) in enumerate(folds, start=1):
        fit_idx, val_idx = holdout(tr, seed + i)
        t = time.perf_counter()
        m, info = fit_model(data, fit_idx, val_idx, cfg, monotone, reason_texts, catalog_version)
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
                int(sc_cfg.get("max_n_bins", 6)),
                float(sc_cfg.get("min_bin_size", 0.05)),
            )
            oof_card[te] = card.predict_proba(data.X[te])
            secs["scorecard"] += time.perf_counter() - t
            row["scorecard_auc"] = float(roc_auc_score(data.y[te], oof_card[te]))
        fold_rows.append(row)
        progress(
            f"fold {i}/{k}: LightGBM AUC {row['auc']:.4f}"
            + (f", scorecard AUC {row['scorecard_auc']:.4f}" if with_scorecard else "")
        )
    lab = np.flatnonzero(data.y >= 0)
    fit_idx, val_idx = holdout(lab, seed)
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
    progress(f"final model: {info.best_iteration} trees, calibration {info.calibration}")
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
    )
