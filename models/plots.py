"""PNG plots of a training run: ROC, reliability, scores, SHAP, importance, AUC by month."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve

from models.htmlkit import pyplot
from models.train import TrainReport


def write_plots(report: TrainReport, out: str | Path, shap_rows: int = 2000) -> list[Path]:
    """Write every plot of ``report`` into ``out``; returns the files written."""
    plt = pyplot()
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    y, p = report.eval_y, report.eval_pd
    label = "out-of-time" if report.mode == "time" else "cross-validated (out-of-fold)"

    def save(fig: Any, name: str) -> None:
        path = d / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)

    # ROC
    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"LightGBM (AUC {report.metrics.get('auc', float('nan')):.3f})")
    if report.eval_scorecard_pd is not None:
        f2, t2, _ = roc_curve(y, report.eval_scorecard_pd)
        sc_auc = report.scorecard_metrics.get("auc", float("nan"))
        ax.plot(f2, t2, label=f"scorecard (AUC {sc_auc:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, {label}")
    ax.legend(loc="lower right")
    save(fig, "roc.png")

    # Reliability
    fig, ax = plt.subplots(figsize=(5, 5))
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, "o-", label="LightGBM (calibrated)")
    hi = float(max(mean.max(), frac.max()) * 1.05)
    ax.plot([0, hi], [0, hi], "k:", lw=0.8)
    ax.set(
        xlabel="mean predicted PD",
        ylabel="observed default rate",
        title=f"Reliability (ECE {report.metrics.get('ece', float('nan')):.4f})",
    )
    ax.legend(loc="upper left")
    save(fig, "reliability.png")

    # Score distribution by outcome
    fig, ax = plt.subplots(figsize=(6, 4))
    s = report.model.scale.score(p)
    bins = np.linspace(report.model.scale.min_score, report.model.scale.max_score, 56)
    ax.hist(s[y == 0], bins=bins, alpha=0.6, density=True, label="no default")
    ax.hist(s[y == 1], bins=bins, alpha=0.6, density=True, label="default")
    ax.set(xlabel="score", ylabel="density", title="Score distribution by outcome")
    ax.legend()
    save(fig, "score_distribution.png")

    # SHAP summary
    n = min(shap_rows, len(y))
    rng = np.random.default_rng(0)
    rows = rng.choice(len(y), size=n, replace=False) if n < len(y) else np.arange(len(y))
    X = report.eval_x[rows]
    contrib = report.model.contributions(X)[:, :-1]
    import shap  # heavy (numba, llvmlite): only when plotting

    shap.summary_plot(
        contrib,
        X,
        feature_names=report.model.feature_names,
        show=False,
        max_display=20,
        rng=np.random.default_rng(0),  # the dots' jitter: reproducible, global RNG untouched
    )
    fig = plt.gcf()
    fig.suptitle("SHAP (log-odds), sample of the evaluation set")
    save(fig, "shap_summary.png")

    # Importance (gain)
    fig, ax = plt.subplots(figsize=(6, 6))
    gain = report.model.booster.feature_importance(importance_type="gain")
    order = np.argsort(gain)[-20:]
    ax.barh([report.model.feature_names[i] for i in order], gain[order])
    ax.set(xlabel="total gain", title="Feature importance (top 20)")
    save(fig, "feature_importance.png")

    # AUC by month
    by_month = report.tables.get("by_month")
    if by_month is not None and len(by_month):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(by_month["group"], by_month["auc"], "o-")
        ax.set(xlabel="application month", ylabel="AUC", title="AUC by month")
        ax.tick_params(axis="x", rotation=60)
        save(fig, "auc_by_month.png")
    return files
