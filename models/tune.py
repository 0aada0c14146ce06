"""``credit train --tune``: Optuna's TPE search over the LightGBM parameters that matter and the
scorecard's binning, under a wall-clock budget, on the training rows only.

A :class:`Tuner` runs one *study* per set of training rows it is given: in cross-validation one
per outer fold (the search sees that fold's training rows; its held-out rows only score the
tuned model: nested CV) and one on all labelled rows for the registered model; with a time split
one, on the training window (validation for early stopping and the objective; the out-of-time
window is never seen). The budget is shared among the studies still to run, so time a study
leaves unused goes to the next.

Each trial fits exactly as training would (the same early stopping, the same inner K-fold for
small tables), is pruned through LightGBM's callback when its validation AUC trails the median
of earlier trials at the same round, and carries the explanation cost of its model: a trial
over the explanation cap is infeasible for the TPE sampler and is not chosen while a feasible
one exists. The search starts from the configured (data-aware) parameters, each training
candidate and LightGBM's own defaults, so its best trial is never worse on the inner
validation than what training without ``--tune`` would have fitted.

No MLflow here: the trials are returned as :class:`StudyResult` and logged by
``models/registry.py`` as nested runs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from models.dataset import TrainingData
from models.evaluate import compare_auc
from models.splits import stratified_folds

#: LightGBM parameters searched (their ranges below); every other parameter stays as configured
SEARCHED = (
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "learning_rate",
    "lambda_l1",
    "lambda_l2",
    "feature_fraction",
    "bagging_fraction",
    "extra_trees",
    "cat_smooth",
)
MAX_DEPTHS = [-1, 3, 4, 5, 6, 8]
#: LightGBM's own defaults (what a plain model uses), one of the starting points
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "num_leaves": 31,
    "min_child_samples": 20,
    "learning_rate": 0.05,
    "lambda_l2": 0.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
}
_TINY = 1e-8  # log-scale lower bound standing for 0 (L1/L2)
#: share of each study's time for scoring the best trials again on a fresh split
RECHECK_SHARE = 0.15


@dataclass(frozen=True)
class TuneOptions:
    budget_minutes: float = 10.0
    trials: int | None = None  # at most this many LightGBM trials per study
    seed: int = 0
    scorecard_share: float = 0.15  # of each study's time, for the scorecard's binning

    def __post_init__(self) -> None:
        if not self.budget_minutes > 0:
            raise ValueError(
                f"--budget must be a positive number of minutes, got {self.budget_minutes:g}"
            )
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"--trials must be at least 1, got {self.trials}")


@dataclass
class TrialRecord:
    number: int
    state: str  # COMPLETE, PRUNED, FAIL
    value: float | None  # inner validation AUC
    params: dict[str, Any]
    seconds: float
    explain_p99_ms: float | None = None
    trees: int | None = None
    feasible: bool = True


@dataclass
class StudyResult:
    """One study: where it ran, every trial, and what it chose."""

    label: str  # "fold 2", "final model", "training window"
    rows: int
    seconds: float
    best_value: float | None
    best_params: dict[str, Any]  # searched LightGBM parameters of the chosen trial
    trials: list[TrialRecord] = field(default_factory=list)
    scorecard_params: dict[str, Any] = field(default_factory=dict)
    scorecard_trials: list[TrialRecord] = field(default_factory=list)
    default_value: float | None = None  # the first trial: the configured parameters
    #: the standard error (DeLong, paired) of the best trial's gain over the configured ones
    standard_error: float = 0.0
    #: AUC of the rechecked trials (trial number -> AUC) on a fresh split of the same rows
    recheck_auc: dict[int, float] = field(default_factory=dict)

    def summary(self) -> str:
        done = sum(t.state == "COMPLETE" for t in self.trials)
        pruned = sum(t.state == "PRUNED" for t in self.trials)
        best = "-" if self.best_value is None else f"{self.best_value:.4f}"
        start = "-" if self.default_value is None else f"{self.default_value:.4f}"
        line = (
            f"tuning {self.label}: {len(self.trials)} trials ({done} complete, {pruned} pruned) "
            f"in {self.seconds:.0f}s, inner AUC {start} (configured) -> {best} (chosen)"
        )
        if self.recheck_auc:
            first, *rest = self.recheck_auc.items()
            line += f"; on a fresh split configured {first[1]:.4f}"
            if rest:
                line += ", best few " + ", ".join(f"{v:.4f}" for _, v in rest)
                line += f" (a choice had to gain {self.standard_error:.4f}, one paired SE)"
        return line


def suggest(trial: Any, with_categories: bool) -> dict[str, Any]:
    """One point of the search space (LightGBM parameter names)."""
    out: dict[str, Any] = {
        "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
        "max_depth": trial.suggest_categorical("max_depth", MAX_DEPTHS),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 300, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "lambda_l1": trial.suggest_float("lambda_l1", _TINY, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", _TINY, 10.0, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
    }
    if with_categories:
        out["cat_smooth"] = trial.suggest_float("cat_smooth", 1.0, 100.0, log=True)
    return out


def _starting_point(params: Mapping[str, Any], with_categories: bool) -> dict[str, Any]:
    """``params`` as a point of the search space (clipped into its ranges)."""

    def clip(v: float, lo: float, hi: float) -> float:
        return float(min(hi, max(lo, v)))

    depth = int(params.get("max_depth", -1))
    point: dict[str, Any] = {
        "num_leaves": int(clip(int(params.get("num_leaves", 31)), 4, 128)),
        "max_depth": depth if depth in MAX_DEPTHS else -1,
        "min_child_samples": int(clip(int(params.get("min_child_samples", 20)), 5, 300)),
        "learning_rate": clip(float(params.get("learning_rate", 0.1)), 0.01, 0.3),
        "lambda_l1": clip(float(params.get("lambda_l1", 0.0)), _TINY, 10.0),
        "lambda_l2": clip(float(params.get("lambda_l2", 0.0)), _TINY, 10.0),
        "feature_fraction": clip(float(params.get("feature_fraction", 1.0)), 0.3, 1.0),
        "bagging_fraction": clip(float(params.get("bagging_fraction", 1.0)), 0.5, 1.0),
        "extra_trees": bool(params.get("extra_trees", False)),
    }
    if with_categories:
        point["cat_smooth"] = clip(float(params.get("cat_smooth", 10.0)), 1.0, 100.0)
    return point


class _Deadline:
    """A LightGBM callback that prunes the trial once the study's time is up."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self, env: Any) -> None:
        import optuna

        if env.iteration % 10 == 0 and time.perf_counter() > self.at:
            raise optuna.TrialPruned("the study's time budget ran out")


class Tuner:
    """Runs the studies of one training run within one budget; keeps their results."""

    def __init__(self, options: TuneOptions, studies: int, progress: Callable[[str], None]):
        self.options = options
        self.left = studies
        self.deadline = time.perf_counter() + options.budget_minutes * 60.0
        self.progress = progress
        self.results: list[StudyResult] = []

    def _slice(self) -> float:
        remaining = max(0.0, self.deadline - time.perf_counter())
        share = remaining / max(1, self.left)
        self.left -= 1
        return share

    def tune(
        self,
        data: TrainingData,
        fit_idx: npt.NDArray[np.int64],
        val_idx: npt.NDArray[np.int64] | None,
        cfg: Mapping[str, Any],
        monotone: Sequence[int] | None,
        label: str,
        with_scorecard: bool,
    ) -> dict[str, Any]:
        """Search on ``fit_idx`` (early stopping and objective on ``val_idx``, or inner K-fold
        when it is None); return ``cfg`` with the chosen parameters, ready for fit_model."""
        seconds = self._slice()
        t0 = time.perf_counter()
        sc_share = self.options.scorecard_share if with_scorecard else 0.0
        lgb_until = t0 + seconds * (1.0 - sc_share - RECHECK_SHARE)
        result = _tune_lightgbm(
            data,
            fit_idx,
            val_idx,
            cfg,
            monotone,
            lgb_until,
            t0 + seconds * (1.0 - sc_share),
            self.options,
            label,
        )
        if with_scorecard:
            card_until = t0 + seconds
            _tune_scorecard(data, fit_idx, val_idx, cfg, card_until, self.options, result)
        result.seconds = time.perf_counter() - t0
        self.results.append(result)
        self.progress(result.summary())
        return tuned_config(cfg, result)


def tuned_config(cfg: Mapping[str, Any], result: StudyResult) -> dict[str, Any]:
    """``cfg`` with the study's choice: LightGBM parameters replaced, a single candidate (the
    tuned parameters *are* the candidate), the scorecard's binning if it was searched."""
    out = copy.deepcopy(dict(cfg))
    out["lightgbm"] = {**out["lightgbm"], **result.best_params}
    out.setdefault("training", {})["candidates"] = [{}]
    if result.scorecard_params:
        out["scorecard"] = {**out.get("scorecard", {}), **result.scorecard_params}
    return out


def _tune_lightgbm(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64] | None,
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None,
    until: float,
    recheck_until: float,
    options: TuneOptions,
    label: str,
) -> StudyResult:
    import optuna
    from optuna_integration.lightgbm import LightGBMPruningCallback

    from models.fitting import explain_p99_ms, select

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = dict(cfg["lightgbm"])
    tr = cfg.get("training", {})
    cap = tr.get("explain_p99_ms")
    cats = bool(data.categories)
    sample = data.X[val_idx if val_idx is not None else fit_idx][:100]

    sampler = optuna.samplers.TPESampler(seed=options.seed, n_startup_trials=8)
    # A trial is cut when its validation AUC trails the median of earlier trials at the same
    # round, after 100 rounds (slow learning rates are not judged before they get going).
    pruner = optuna.pruners.MedianPruner(n_startup_trials=10, n_warmup_steps=100, interval_steps=10)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    starts = [_starting_point({**base, **(c or {})}, cats) for c in tr.get("candidates") or [{}]]
    starts.append(_starting_point({**base, **LIGHTGBM_DEFAULTS}, cats))
    for s in starts:
        study.enqueue_trial(s, skip_if_exists=True)
    deadline = _Deadline(until)

    def objective(trial: Any) -> float:
        params = {**base, **suggest(trial, cats)}
        callbacks = [
            LightGBMPruningCallback(trial, "auc", valid_name="validation", report_interval=10),
            deadline,
        ]
        sel = select(data, fit_idx, val_idx, cfg, [params], monotone, callbacks)
        t = explain_p99_ms(sel.booster, sample, rows=100, repeats=2)
        trial.set_user_attr("explain_p99_ms", t)
        trial.set_user_attr("trees", int(sel.booster.current_iteration()))
        over = 0.0 if cap is None else t - float(cap)
        trial.set_user_attr("over_cap_ms", over)
        trial.set_constraint("explain_cap_ms", over)  # TPE: infeasible when positive
        return sel.auc

    budget = max(0.0, until - time.perf_counter())
    study.optimize(
        objective,
        n_trials=options.trials,
        timeout=budget,
        catch=(ValueError,),
        gc_after_trial=False,
    )
    trials = [_record(t) for t in study.trials]
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    feasible = [t for t in done if t.feasible] or done
    # The winner's curse: the best of a hundred noisy trials on the same rows is mostly luck
    # (German, 800 rows: tuned folds lost 0.015 AUC to the defaults). So the configured
    # parameters and the search's best few are scored again on a fresh split of the same
    # training rows (another seed: no outer row, no selection on it), and the search's choice
    # replaces the configured parameters only if it beats them there by one standard error of
    # the paired difference of the two AUCs (DeLong).
    n_cfg = len(tr.get("candidates") or [{}])
    configured = sorted((t for t in feasible if t.number < n_cfg), key=lambda t: -(t.value or 0.0))[
        :1
    ]
    top = [t for t in sorted(feasible, key=lambda t: -(t.value or 0.0)) if t not in configured]
    recheck = _recheck(
        data, fit_idx, val_idx, cfg, monotone, base, [*configured, *top[:4]], recheck_until
    )
    best_params: dict[str, Any] = {}
    best_value: float | None = None
    se = 0.0
    if recheck:
        by_fresh = max(recheck, key=lambda r: r[1])
        chosen = by_fresh
        if configured and recheck[0][0] is configured[0] and by_fresh is not recheck[0]:
            d = compare_auc(recheck[0][3], by_fresh[2], recheck[0][2])
            se = 0.0 if d is None else (d["ci_high"] - d["ci_low"]) / (2 * 1.959964)
            if d is None or d["diff"] < se:
                chosen = recheck[0]
        best = chosen[0]
        best_params = {k: best.params[k] for k in best.params if k in SEARCHED}
        best_value = best.value
        fresh = {r[0].number: r[1] for r in recheck}
    else:
        fresh = {}
    first = trials[0] if trials else None
    return StudyResult(
        label=label,
        rows=int(len(fit_idx) + (0 if val_idx is None else len(val_idx))),
        seconds=0.0,
        best_value=best_value,
        best_params=_lightgbm_values(best_params),
        trials=trials,
        default_value=first.value if first and first.state == "COMPLETE" else None,
        standard_error=se,
        recheck_auc=fresh,
    )


def _recheck(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64] | None,
    cfg: Mapping[str, Any],
    monotone: Sequence[int] | None,
    base: Mapping[str, Any],
    trials: Sequence[TrialRecord],
    until: float,
) -> list[tuple[TrialRecord, float, npt.NDArray[np.float64], npt.NDArray[np.int64]]]:
    """Each trial's parameters fitted and scored again on a fresh split of the same rows, in
    order, while time is left (the first, the configured parameters, always)."""
    from models.fitting import select
    from models.splits import stratified_holdout

    fresh = copy.deepcopy(dict(cfg))
    fresh.setdefault("cv", {})["seed"] = int(fresh.get("cv", {}).get("seed", 42)) + 1000
    # the fresh split: other inner folds (small tables) or another holdout of the same rows
    f2, v2 = fit_idx, None
    if val_idx is not None:
        rows = np.concatenate([fit_idx, val_idx])
        f2, v2 = stratified_holdout(rows, data.y, len(val_idx) / len(rows), fresh["cv"]["seed"])
    out: list[tuple[TrialRecord, float, npt.NDArray[np.float64], npt.NDArray[np.int64]]] = []
    for i, t in enumerate(trials):
        if i > 0 and time.perf_counter() > until:
            break
        params = {**base, **_lightgbm_values({k: v for k, v in t.params.items() if k in SEARCHED})}
        sel = select(data, f2, v2, fresh, [params], monotone)
        out.append((t, sel.auc, sel.calibration_raw, sel.calibration_y))
    return out


def _lightgbm_values(point: Mapping[str, Any]) -> dict[str, Any]:
    """A search point as parameter-file values (tiny L1/L2 written as 0, plain Python types)."""
    out: dict[str, Any] = {}
    for k, v in point.items():
        if k in ("lambda_l1", "lambda_l2") and float(v) <= _TINY * 1.0001:
            out[k] = 0.0
        elif isinstance(v, bool | np.bool_):
            out[k] = bool(v)
        elif isinstance(v, int | np.integer):
            out[k] = int(v)
        else:
            out[k] = round(float(v), 6)
    return out


def _record(t: Any) -> TrialRecord:
    over = t.user_attrs.get("over_cap_ms")
    return TrialRecord(
        number=int(t.number),
        state=t.state.name,
        value=None if t.value is None else float(t.value),
        params=dict(t.params),
        seconds=(t.duration.total_seconds() if t.duration else 0.0),
        explain_p99_ms=t.user_attrs.get("explain_p99_ms"),
        trees=t.user_attrs.get("trees"),
        feasible=over is None or float(over) <= 0.0,
    )


def _tune_scorecard(
    data: TrainingData,
    fit_idx: npt.NDArray[np.int64],
    val_idx: npt.NDArray[np.int64] | None,
    cfg: Mapping[str, Any],
    until: float,
    options: TuneOptions,
    result: StudyResult,
) -> None:
    """The scorecard's binning (bins per variable, smallest bin share), by validation AUC (or
    inner 3-fold AUC without a validation window)."""
    import optuna

    from credit.scale import ScoreScale
    from models.scorecard import fit_scorecard

    scale = ScoreScale.from_dict(cfg.get("scale"))
    sc = cfg.get("scorecard", {})
    y = data.y
    if val_idx is None:
        seed = int(cfg.get("cv", {}).get("seed", 42))
        mask = np.where(np.isin(np.arange(len(y)), fit_idx), y, -1)
        parts = stratified_folds(mask, 3, seed + 7)
    else:
        parts = [(fit_idx, val_idx)]

    def objective(trial: Any) -> float:
        bins = trial.suggest_int("max_n_bins", 3, 10)
        size = trial.suggest_float("min_bin_size", 0.02, 0.1)
        pred = np.full(len(y), np.nan)
        for a, b in parts:
            if time.perf_counter() > until:
                raise optuna.TrialPruned("the study's time budget ran out")
            card = fit_scorecard(
                data.X[a], y[a], data.feature_names, data.categories, scale, bins, size
            )
            pred[b] = card.predict_proba(data.X[b])
        rows = np.concatenate([b for _, b in parts])
        return float(roc_auc_score(y[rows], pred[rows]))

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=options.seed)
    )
    study.enqueue_trial(
        {
            "max_n_bins": int(min(10, max(3, int(sc.get("max_n_bins", 6))))),
            "min_bin_size": float(min(0.1, max(0.02, float(sc.get("min_bin_size", 0.05))))),
        }
    )
    study.optimize(
        objective,
        n_trials=20,
        timeout=max(0.0, until - time.perf_counter()),
        catch=(ValueError,),
    )
    result.scorecard_trials = [_record(t) for t in study.trials]
    done = [t for t in result.scorecard_trials if t.state == "COMPLETE"]
    if done:
        best = max(done, key=lambda t: (t.value or 0.0, -t.number))
        result.scorecard_params = {
            "max_n_bins": int(best.params["max_n_bins"]),
            "min_bin_size": round(float(best.params["min_bin_size"]), 4),
        }
