"""Fit the PD calibration map on the validation window (isotonic or Platt, chosen by log loss).

Both candidates are strictly increasing maps of the raw log-odds (see
:class:`credit.scoring.Calibrator`), so calibration never changes the ranking: AUC and the
order of the SHAP reasons are the booster's. The choice is made on out-of-fold log loss
inside the validation window (5-fold), so isotonic's flexibility is not rewarded for
fitting the same rows it is judged on; the winner is then refitted on the whole window.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from credit.scoring import Calibrator

_P_MIN = 1e-6


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, _P_MIN, 1.0 - _P_MIN)
    out: npt.NDArray[np.float64] = np.log(q) - np.log1p(-q)
    return out


def fit_platt(z: npt.ArrayLike, y: npt.ArrayLike) -> Calibrator:
    """``pd = sigmoid(a z + b)`` by (nearly unpenalised) logistic regression on the raw log-odds."""
    zz = np.asarray(z, dtype=np.float64).reshape(-1, 1)
    yy = np.asarray(y, dtype=np.int64)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(zz, yy)
    a = float(lr.coef_[0, 0])
    if a <= 0:  # a model that ranks worse than chance on validation: keep the raw ranking
        a = 1e-3
    return Calibrator(method="platt", a=a, b=float(lr.intercept_[0]))


def fit_isotonic(z: npt.ArrayLike, y: npt.ArrayLike, min_block: int = 20) -> Calibrator:
    """Centred isotonic regression: knots at block centres, strictly increasing, Platt tails.

    Parameters
    ----------
    min_block : blocks smaller than this are merged with their neighbour before the knots
        are placed, so a handful of rows cannot pin an extreme PD.
    """
    zz = np.asarray(z, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    platt = fit_platt(zz, yy)
    order = np.argsort(zz, kind="stable")
    zs, ys = zz[order], yy[order]
    fitted = IsotonicRegression(out_of_bounds="clip").fit(zs, ys).predict(zs)
    # Blocks: runs of equal fitted value.
    cuts = np.flatnonzero(np.diff(fitted) != 0) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(zs)]))
    blocks: list[list[float]] = []  # [sum z, sum y, n]
    for s, e in zip(starts, ends, strict=True):
        blocks.append([float(zs[s:e].sum()), float(ys[s:e].sum()), float(e - s)])
    merged: list[list[float]] = []
    for b in blocks:
        if merged and merged[-1][2] < min_block:
            m = merged[-1]
            m[0] += b[0]
            m[1] += b[1]
            m[2] += b[2]
        else:
            merged.append(list(b))
    if len(merged) > 1 and merged[-1][2] < min_block:
        last = merged.pop()
        for i in range(3):
            merged[-1][i] += last[i]
    # Merging can break monotonicity of the means only by pooling; re-pool adjacent violators.
    pooled: list[list[float]] = []
    for b in merged:
        pooled.append(b)
        while len(pooled) > 1 and pooled[-2][1] / pooled[-2][2] >= pooled[-1][1] / pooled[-1][2]:
            last = pooled.pop()
            for i in range(3):
                pooled[-1][i] += last[i]
    if len(pooled) < 2:
        return platt
    # Smooth the block rates away from 0/1 (one pseudo-default spread by Platt's estimate).
    xs = np.array([b[0] / b[2] for b in pooled])
    prior = platt(xs)
    rates = np.array([(b[1] + prior[i]) / (b[2] + 1.0) for i, b in enumerate(pooled)])
    ly = _logit(rates)
    keep = np.concatenate(([True], (np.diff(xs) > 0) & (np.diff(ly) > 0)))
    xs, ly = xs[keep], ly[keep]
    if len(xs) < 2:
        return platt
    return Calibrator(
        method="isotonic", a=platt.a, b=platt.b, x=tuple(xs.tolist()), y=tuple(ly.tolist())
    )


def choose_calibrator(
    z: npt.ArrayLike, y: npt.ArrayLike, n_splits: int = 5, seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """Pick isotonic or Platt by out-of-fold log loss on ``(z, y)``; refit the winner on all.

    Returns
    -------
    calibrator, and the out-of-fold log loss of each candidate
    (``{"platt": ..., "isotonic": ...}``).
    """
    zz = np.asarray(z, dtype=np.float64)
    yy = np.asarray(y, dtype=np.int64)
    if zz.shape != yy.shape or zz.ndim != 1:
        raise ValueError("calibration needs one raw score per label")
    n_pos = int(yy.sum())
    if n_pos == 0 or n_pos == len(yy):
        raise ValueError("calibration window holds only one class; widen the validation window")
    folds = min(n_splits, n_pos, len(yy) - n_pos)
    losses: dict[str, float] = {}
    if folds >= 2:
        oof = {"platt": np.empty(len(yy)), "isotonic": np.empty(len(yy))}
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for tr, te in skf.split(zz.reshape(-1, 1), yy):
            oof["platt"][te] = fit_platt(zz[tr], yy[tr])(zz[te])
            oof["isotonic"][te] = fit_isotonic(zz[tr], yy[tr])(zz[te])
        losses = {k: float(log_loss(yy, np.clip(v, _P_MIN, 1 - _P_MIN))) for k, v in oof.items()}
        best = min(losses, key=lambda k: losses[k])
    else:
        best = "platt"
    cal = fit_isotonic(zz, yy) if best == "isotonic" else fit_platt(zz, yy)
    return cal, losses
