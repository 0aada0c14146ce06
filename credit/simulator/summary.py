"""The figures ``credit simulate`` prints: volumes, default rate, B2B share, oracle AUC.

The oracle AUC ranks loans by their true PD (from ``truth``) against the observed
outcomes; the heuristic AUC ranks them by the worst days past due on the firm's earlier
loan instalments as of the application date, computed from the payment records alone.
Both use the loans whose 365-day outcome window closed before the end, the same loans a
model is evaluated on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from credit.simulator import World

#: Export regimes whose value counts as B2B: B2B direct export, export to an overseas
#: warehouse (China's customs classes 9810 as B2B) and general trade.
B2B_REGIMES = ("9710", "9810", "0110")


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, score))


def worst_past_dpd(loans: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """Per loan, the worst days past due of the firm's instalments as of ``applied_at``.

    Only instalments issued and due before the application count; one paid after the
    application counts as unpaid on that day. Loans of firms without any: 0.
    """
    rep = payments.loc[
        payments["kind"] == "loan_repayment", ["firm_id", "occurred_at", "due_at", "paid_at"]
    ]
    m = loans[["loan_id", "firm_id", "applied_at"]].merge(rep, on="firm_id", how="inner")
    m = m[(m["occurred_at"] < m["applied_at"]) & (m["due_at"] < m["applied_at"])]
    settled = m["paid_at"].where(m["paid_at"] <= m["applied_at"], m["applied_at"])
    dpd = ((settled - m["due_at"]).dt.days).clip(lower=0)
    worst = dpd.groupby(m["loan_id"]).max()
    return loans["loan_id"].map(worst).fillna(0).astype(float).set_axis(loans.index)


def summarize(world: World) -> dict[str, Any]:
    """Volumes, loans, default rates, B2B value share and the two reference AUCs."""
    loans, truth = world.loans, world.truth
    counts = world.record_counts()
    disbursed = loans["disbursed_at"].notna()
    known = loans["defaulted"].notna()
    matured = truth["matured"].to_numpy(dtype=bool)
    y = loans.loc[matured, "defaulted"].to_numpy(dtype=bool)
    firms = world.firms.set_index("firm_id")
    seg = loans.loc[matured, "firm_id"].map(firms["business_model"])
    by_segment = pd.Series(y).groupby(seg.to_numpy()).mean().round(4).to_dict()
    cust = world.customs
    exports = cust[cust["direction"] == "export"]
    b2b_share = (
        float(
            exports.loc[exports["regime"].isin(B2B_REGIMES), "value_usd"].sum()
            / exports["value_usd"].sum()
        )
        if len(exports)
        else float("nan")
    )
    heuristic = worst_past_dpd(loans.loc[matured], world.payments)
    return {
        "firms": counts["firms"],
        "records": counts,
        "records_total": int(sum(counts.values())),
        "loans": int(len(loans)),
        "loans_disbursed": int(disbursed.sum()),
        "loans_outcome_known": int(known.sum()),
        "loans_matured": int(matured.sum()),
        "default_rate": float(y.mean()) if y.size else float("nan"),
        "default_rate_by_business_model": by_segment,
        "b2b_value_share": b2b_share,
        "oracle_auc": _auc(y, truth.loc[matured, "true_pd"].to_numpy()),
        "worst_dpd_auc": _auc(y, heuristic.to_numpy()),
        "start": world.start.isoformat(),
        "end": world.end.isoformat(),
    }
