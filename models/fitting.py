"""Fitting one LightGBM booster and choosing among parameter candidates: what training
(models/train.py) and the tuner (models/tune.py) share, below both of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from models.dataset import TrainingData
from models.splits import stratified_folds


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


def booster_params(
    params: Mapping[str, Any],
    rows: int,
    categorical: Sequence[int] = (),
    monotone: Sequence[int] | None = None,
    with_auc: bool = False,
) -> dict[str, Any]:
    """The parameters LightGBM gets: objective, metric(s), threads, monotone constraints."""
    p = dict(params)
    p.setdefault("objective", "binary")
    p.setdefault("metric", ["binary_logloss", "auc"] if with_auc else "binary_logloss")
    if "num_threads" not in p:
        # Small tables train faster on one thread than on a contended pool.
        p["num_threads"] = 1 if rows < 20_000 else 0
    if monotone is not None and any(monotone):
        mono = [0 if j in set(categorical) else int(m) for j, m in enumerate(monotone)]
        p["monotone_constraints"] = mono
        p.setdefault("monotone_constraints_method", "intermediate")
    return p


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
    callbacks: Sequence[Callable[..., Any]] = (),
) -> lgb.Booster:
    """One LightGBM binary booster, early-stopped on the validation log loss.

    ``callbacks`` (the tuner's pruning and deadline) also get the validation AUC each round;
    early stopping still looks at the log loss only."""
    p = booster_params(params, len(y_fit), categorical, monotone, bool(callbacks))
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
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False),
            *callbacks,
        ],
    )
    if booster.best_iteration and booster.best_iteration < booster.current_iteration():
        # Keep only the trees up to the best iteration so the saved model is what was chosen.
        booster = lgb.Booster(
            model_str=booster.model_to_string(num_iteration=booster.best_iteration)
        )
    return booster


def explain_p99_ms(
    booster: lgb.Booster, X: npt.NDArray[np.float64], rows: int = 200, repeats: int = 3
) -> float:
    """p99 over rows of one decision's TreeSHAP explanation (milliseconds), through the same
    single-row path the scoring core serves a decision with.

    Each row is timed ``repeats`` times and its fastest time kept, so the figure is the
    model's cost (which varies with the row's paths through the trees) and not the noise of a
    shared machine. Large models are timed on fewer rows (about two seconds in all)."""
    from credit.fastpath.lightgbm_row import single_row_predictor

    if X.shape[0] == 0:
        return 0.0
    fast = single_row_predictor(booster, X.shape[1])

    def once(row: npt.NDArray[np.float64]) -> float:
        t = time.perf_counter()
        if fast is not None:
            fast.contrib(row)
        else:
            booster.predict(row.reshape(1, -1), pred_contrib=True, num_threads=1)
        return time.perf_counter() - t

    sample = np.ascontiguousarray(X[:rows], dtype=np.float64)
    for row in sample[:5]:  # warm-up
        once(row)
    first = min(once(sample[0]) for _ in range(repeats))
    n = int(max(20, min(len(sample), 2.0 / max(first * repeats, 1e-6))))
    times = [min(once(row) for _ in range(repeats)) for row in sample[:n]]
    return float(np.percentile(times, 99) * 1e3)


@dataclass
class Selected:
    """The outcome of fitting parameter candidates: the kept booster and what chose it."""

    booster: lgb.Booster
    params: dict[str, Any]
    aucs: list[float]
    costs: list[float]
    chosen: int
    #: raw scores the calibrator learns from: the validation rows' (holdout) or out-of-fold
    calibration_raw: npt.NDArray[np.float64]
    calibration_y: npt.NDArray[np.int64]

    @property
    def auc(self) -> float:
        return self.aucs[self.chosen]


def select_holdout(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64],
    cfg: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    monotone: Sequence[int] | None,
    callbacks: Sequence[Callable[..., Any]] = (),
) -> Selected:
    cat_idx = [data.feature_names.index(c) for c in data.categories]
    tr = cfg.get("training", {})
    fitted: list[tuple[lgb.Booster, dict[str, Any]]] = []
    aucs: list[float] = []
    Xv, yv = data.X[val_idx], data.y[val_idx]
    for cand in candidates:
        params = dict(cand)
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
            callbacks,
        )
        aucs.append(float(roc_auc_score(yv, b.predict(Xv, raw_score=True))))
        fitted.append((b, params))
    costs = [explain_cost(b) for b, _ in fitted]
    chosen = choose_candidate(aucs, costs, float(tr.get("parsimony_auc_tolerance", 0.0)))
    booster, params = fitted[chosen]
    raw = np.asarray(booster.predict(Xv, raw_score=True), dtype=np.float64)
    return Selected(booster, params, aucs, costs, chosen, raw, yv)


def select_kfold(
    data: TrainingData,
    idx: npt.NDArray[np.int64],
    cfg: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    monotone: Sequence[int] | None,
    callbacks: Sequence[Callable[..., Any]] = (),
) -> Selected:
    """For small tables, where a single holdout wastes rows and is noisy: inner stratified
    K-fold through ``lightgbm.cv``, all folds boosted in step and early-stopped together on
    their mean log loss, picks the candidate (pooled out-of-fold AUC at that common number of
    trees) and the number of trees; the booster is then refitted on all of ``idx``.

    One stopping round for all folds, not one per fold: a fold's AUC is not measured at the
    round that fold itself found best, which would flatter every candidate (and a tuner
    choosing among hundreds of them most)."""
    cat_idx = [data.feature_names.index(c) for c in data.categories]
    tr = cfg.get("training", {})
    k = int(cfg.get("cv", {}).get("inner_folds", 5))
    seed = int(cfg.get("cv", {}).get("seed", 42))
    y = data.y
    inner = stratified_folds(np.where(np.isin(np.arange(len(y)), idx), y, -1), k, seed + 1)
    position = np.full(len(y), -1)
    position[idx] = np.arange(len(idx))
    folds = [(position[a], position[b]) for a, b in inner]
    X, yy = data.X[idx], y[idx]
    fitted: list[tuple[dict[str, Any], npt.NDArray[np.float64], int]] = []
    aucs: list[float] = []
    costs: list[float] = []
    for cand in candidates:
        params = dict(cand)
        p = booster_params(params, len(idx) * (k - 1) // k, cat_idx, monotone, bool(callbacks))
        dtrain = lgb.Dataset(
            X,
            yy,
            feature_name=list(data.feature_names),
            categorical_feature=cat_idx or "auto",
            free_raw_data=False,
        )
        res = lgb.cv(
            p,
            dtrain,
            num_boost_round=int(tr.get("num_boost_round", 5000)),
            folds=folds,
            callbacks=[
                lgb.early_stopping(
                    int(tr.get("early_stopping_rounds", 200)),
                    first_metric_only=True,
                    verbose=False,
                ),
                *callbacks,
            ],
            return_cvbooster=True,
        )
        cvb = res["cvbooster"]
        assert isinstance(cvb, lgb.CVBooster)
        n_trees = max(1, int(cvb.best_iteration))
        oof = np.full(len(idx), np.nan)
        for (_, b), bst in zip(folds, cvb.boosters, strict=True):
            oof[b] = bst.predict(X[b], raw_score=True, num_iteration=n_trees)
        aucs.append(float(roc_auc_score(yy, oof)))
        last = lgb.Booster(model_str=cvb.boosters[-1].model_to_string(num_iteration=n_trees))
        costs.append(explain_cost(last))  # one fold's booster stands for the model's size
        fitted.append((params, oof, n_trees))
    chosen = choose_candidate(aucs, costs, float(tr.get("parsimony_auc_tolerance", 0.0)))
    params, oof, n_trees = fitted[chosen]
    booster = fit_booster(
        params, data.X[idx], y[idx], None, None, data.feature_names, cat_idx, monotone, n_trees
    )
    return Selected(booster, params, aucs, costs, chosen, oof, yy)


def select(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64] | None,
    cfg: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    monotone: Sequence[int] | None,
    callbacks: Sequence[Callable[..., Any]] = (),
) -> Selected:
    """:func:`select_holdout` on ``val_idx``, or :func:`select_kfold` on ``fit_idx`` when
    there is no validation set (small tables)."""
    if val_idx is None:
        return select_kfold(data, fit_idx, cfg, candidates, monotone, callbacks)
    return select_holdout(data, fit_idx, val_idx, cfg, candidates, monotone, callbacks)
