"""Benchmark `credit simulate`: seconds, records per second, peak memory; optional learnability.

Usage::

    .venv/bin/python benchmarks/bench_simulate.py                  # 20,000 firms x 36 months
    .venv/bin/python benchmarks/bench_simulate.py --firms 2000 --learnability

The issue's budget is 20,000 firms over 36 months in at most 180 s and 4 GB; the ratio to
it is printed. ``--learnability`` fits LightGBM on a plain set of point-in-time features
built here from the records (not the project's feature catalog) and compares its
out-of-time AUC with the oracle AUC of the true PD on the same loans, and with the worst
past days-past-due heuristic: the check that the records reveal what drives defaults.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BUDGET_S = 180.0
BUDGET_GB = 4.0


def _days(ts: pd.Series, start: pd.Timestamp) -> np.ndarray:
    d = (ts - start).dt.days
    return d.fillna(-1).to_numpy(dtype=np.int64)


def learnability_features(world) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:  # noqa: ANN001
    """Point-in-time features as of each application's month start, from the records only."""
    cal = world.latent.cal
    n, m = len(world.firms), cal.months
    start = pd.Timestamp(world.start)
    fid = {f: i for i, f in enumerate(world.firms["firm_id"])}

    def month(days: np.ndarray) -> np.ndarray:
        return np.where(days >= 0, cal.month_of(days), -1)

    def grid(firm: np.ndarray, mon: np.ndarray, val: np.ndarray | None = None) -> np.ndarray:
        ok = (mon >= 0) & (mon < m)
        g = np.zeros((n, m + 1))
        np.add.at(g, (firm[ok], mon[ok] + 1), 1.0 if val is None else val[ok])
        return np.cumsum(g, axis=1)  # g[:, t] = sum over months < t

    def overdue(firm: np.ndarray, due: np.ndarray, paid: np.ndarray) -> np.ndarray:
        """Count of items due before month start t and unpaid at it."""
        g = np.zeros((n, m + 2))
        md, mp = month(due), np.where(paid >= 0, month(paid), m + 10)
        ok = (due >= 0) & (md + 1 <= m)
        np.add.at(g, (firm[ok], md[ok] + 1), 1.0)
        ok2 = ok & (mp + 1 <= m)
        np.add.at(g, (firm[ok2], mp[ok2] + 1), -1.0)
        return np.cumsum(g, axis=1)[:, : m + 1]

    grids: dict[str, np.ndarray] = {}
    p = world.payments
    pf = p["firm_id"].map(fid).to_numpy()
    occ, due, paid = (_days(p[c], start) for c in ("occurred_at", "due_at", "paid_at"))
    amt = p["amount_usd"].to_numpy()
    for kind in ("settlement", "refund", "chargeback", "fee", "b2b_receipt", "supplier_payment"):
        k = (p["kind"] == kind).to_numpy()
        grids[f"{kind}_amt"] = grid(pf[k], month(occ[k]), amt[k])
        grids[f"{kind}_n"] = grid(pf[k], month(occ[k]))
    for kind in ("settlement", "b2b_receipt", "supplier_payment", "loan_repayment"):
        k = (p["kind"] == kind).to_numpy() & (paid >= 0) & (due >= 0)
        grids[f"{kind}_delay"] = grid(pf[k], month(paid[k]), (paid[k] - due[k]).astype(float))
        grids[f"{kind}_late"] = grid(pf[k], month(paid[k]), (paid[k] - due[k] > 5).astype(float))
        grids[f"{kind}_paid_n"] = grid(pf[k], month(paid[k]))
        k2 = (p["kind"] == kind).to_numpy() & (due >= 0)
        grids[f"{kind}_overdue"] = overdue(pf[k2], due[k2], paid[k2])
    c = world.customs
    cf = c["firm_id"].map(fid).to_numpy()
    cd = month(_days(c["declared_at"], start))
    exp = (c["direction"] == "export").to_numpy()
    grids["export_value"] = grid(cf[exp], cd[exp], c["value_usd"].to_numpy()[exp])
    grids["decl_n"] = grid(cf, cd)
    for st in ("inspected", "held", "rejected"):
        k = (c["status"] == st).to_numpy()
        grids[f"cust_{st}"] = grid(cf[k], cd[k])
    sd = month(_days(c["tax_refund_settled_at"], start))
    settle = (c["tax_refund_settled_at"] - c["declared_at"]).dt.days.to_numpy()
    k = c["tax_refund_settled_at"].notna().to_numpy()
    grids["refund_days"] = grid(cf[k], sd[k], settle[k].astype(float))
    for st in ("paid", "denied"):
        k = (c["tax_refund_status"] == st).to_numpy()
        grids[f"refund_{st}"] = grid(cf[k], sd[k])
    s = world.shipments
    sf = s["firm_id"].map(fid).to_numpy()
    cm = month(_days(s["closed_at"], start))
    grids["ship_closed"] = grid(sf, cm)
    for st in ("returned", "lost", "damaged"):
        k = (s["status"] == st).to_numpy()
        grids[f"ship_{st}"] = grid(sf[k], cm[k])

    loans = world.loans
    known = loans["defaulted"].notna().to_numpy() & world.truth["matured"].to_numpy(dtype=bool)
    lf = loans["firm_id"].map(fid).to_numpy()
    lt = month(_days(loans["applied_at"], start))
    feats: dict[str, np.ndarray] = {}

    def win(name: str, k: int) -> np.ndarray:
        g = grids[name]
        return g[lf, lt] - g[lf, np.maximum(lt - k, 0)]

    eps = 1.0
    for k in (3, 6, 12):
        sales = win("settlement_amt", k) + win("b2b_receipt_amt", k)
        feats[f"refund_ratio_{k}"] = win("refund_amt", k) / (win("settlement_amt", k) + eps)
        feats[f"chargebacks_{k}"] = win("chargeback_n", k) / (win("settlement_n", k) + eps)
        feats[f"fee_ratio_{k}"] = win("fee_amt", k) / (sales + eps)
        feats[f"cost_ratio_{k}"] = win("supplier_payment_amt", k) / (sales + eps)
        for kind in ("settlement", "b2b_receipt", "supplier_payment"):
            nn = win(f"{kind}_paid_n", k)
            per = np.where(nn > 0, 1.0 / np.maximum(nn, 1), np.nan)
            feats[f"{kind}_delay_{k}"] = win(f"{kind}_delay", k) * per
            feats[f"{kind}_late_{k}"] = win(f"{kind}_late", k) * per
        dn = win("decl_n", k) + eps
        for st in ("inspected", "held", "rejected"):
            feats[f"cust_{st}_{k}"] = win(f"cust_{st}", k) / dn
        rs = win("refund_paid", k) + win("refund_denied", k)
        per_refund = np.where(rs > 0, 1.0 / np.maximum(rs, 1), np.nan)
        feats[f"refund_denied_{k}"] = win("refund_denied", k) * per_refund
        feats[f"refund_days_{k}"] = win("refund_days", k) * per_refund
        sc = win("ship_closed", k) + eps
        for st in ("returned", "lost", "damaged"):
            feats[f"ship_{st}_{k}"] = win(f"ship_{st}", k) / sc
    for kind in ("settlement", "b2b_receipt", "supplier_payment", "loan_repayment"):
        feats[f"{kind}_overdue_now"] = grids[f"{kind}_overdue"][lf, lt]
    paid_n = win("loan_repayment_paid_n", 36)
    feats["loan_late_share"] = win("loan_repayment_late", 36) / (paid_n + eps)
    ev = grids["export_value"]
    feats["export_growth_3"] = np.log1p(win("export_value", 3)) - np.log1p(
        ev[lf, np.maximum(lt - 3, 0)] - ev[lf, np.maximum(lt - 6, 0)]
    )
    feats["export_growth_12"] = np.log1p(win("export_value", 6)) - np.log1p(
        ev[lf, np.maximum(lt - 6, 0)] - ev[lf, np.maximum(lt - 12, 0)]
    )
    feats["log_sales_6"] = np.log1p(win("settlement_amt", 6) + win("b2b_receipt_amt", 6))
    feats["loan_to_sales"] = loans["amount_usd"].to_numpy() / (
        (win("settlement_amt", 3) + win("b2b_receipt_amt", 3)) / 3 + eps
    )
    feats["term_days"] = loans["term_days"].to_numpy()
    X = pd.DataFrame(feats)
    X["product"] = loans["product"].astype("category").cat.codes
    firms = world.firms.set_index("firm_id")
    X["business_model"] = loans["firm_id"].map(firms["business_model"]).astype("category").cat.codes
    X["category"] = loans["firm_id"].map(firms["main_category"]).astype("category").cat.codes
    from credit.simulator.summary import worst_past_dpd

    X["worst_dpd"] = worst_past_dpd(loans, world.payments).to_numpy()
    return X[known].reset_index(drop=True), loans.loc[known, "defaulted"].to_numpy(bool), known


def learnability(world) -> dict[str, float]:  # noqa: ANN001
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    X, y, known = learnability_features(world)
    applied = world.loans.loc[known, "applied_at"].to_numpy()
    pd_true = world.truth.loc[known, "true_pd"].to_numpy()
    order = np.argsort(applied, kind="stable")
    n = len(order)
    tr, va, te = order[: int(0.6 * n)], order[int(0.6 * n) : int(0.75 * n)], order[int(0.75 * n) :]
    model = lgb.LGBMClassifier(
        n_estimators=2000,
        learning_rate=0.02,
        num_leaves=15,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.7,
        reg_lambda=5.0,
        verbose=-1,
    )
    model.fit(
        X.iloc[tr],
        y[tr],
        eval_set=[(X.iloc[va], y[va])],
        eval_metric="auc",
        callbacks=[lgb.early_stopping(100, verbose=False)],
    )
    score = model.predict_proba(X.iloc[te])[:, 1]
    return {
        "train_loans": float(len(tr)),
        "test_loans": float(len(te)),
        "test_defaults": float(y[te].sum()),
        "model_auc": float(roc_auc_score(y[te], score)),
        "oracle_auc": float(roc_auc_score(y[te], pd_true[te])),
        "worst_dpd_auc": float(roc_auc_score(y[te], X["worst_dpd"].to_numpy()[te])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--firms", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--start", default="2023-01")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    ap.add_argument("--learnability", action="store_true")
    args = ap.parse_args(argv)

    from credit.simulator import simulate
    from credit.simulator.summary import summarize

    t0 = time.perf_counter()
    world = simulate(args.firms, args.start, args.months, args.seed)
    t_sim = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        world.write(Path(tmp), args.format)
        size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
    total = time.perf_counter() - t0
    records = sum(world.record_counts().values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"firms x months        {args.firms:,} x {args.months}")
    print(f"records               {records:,}  ({size_mb:.0f} MB of {args.format})")
    print(f"seconds               simulate {t_sim:.1f}, simulate+write {total:.1f}")
    print(f"records/s             {records / total:,.0f}")
    print(f"peak memory           {peak_gb:.2f} GB")
    scale = args.firms * args.months / (20_000 * 36)
    print(
        f"vs budget (scaled)    time {total / (BUDGET_S * scale):.2f} x 180 s, "
        f"memory {peak_gb / BUDGET_GB:.2f} x 4 GB"
    )
    s = summarize(world)
    print(f"default rate          {s['default_rate']:.2%} on {s['loans_matured']:,} matured loans")
    print(f"oracle AUC            {s['oracle_auc']:.3f}")
    print(f"worst-DPD AUC         {s['worst_dpd_auc']:.3f}")
    if args.learnability:
        r = learnability(world)
        print(
            f"learnability          {r['train_loans']:.0f} train / {r['test_loans']:.0f} "
            f"out-of-time loans ({r['test_defaults']:.0f} defaults)"
        )
        print(f"  LightGBM OOT AUC    {r['model_auc']:.3f}")
        gap = r["oracle_auc"] - r["model_auc"]
        print(f"  oracle on same      {r['oracle_auc']:.3f}  (gap {gap:.3f})")
        print(f"  worst-DPD on same   {r['worst_dpd_auc']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
