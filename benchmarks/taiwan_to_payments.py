"""Do the payment features hold on real payment histories? The UCI Taiwan credit-card data's six
monthly statements become `payments` records, go through ingestion and the feature catalog, and
the catalog's features are scored with the same 5-fold CV as `credit train --table`; beside
them, the AUC of the raw PAY_*, BILL_AMT* and PAY_AMT* columns alone (the same information).

    python benchmarks/taiwan_to_payments.py [--rows N]

Mapping (one client = one firm; as-of date 2005-10-01, after the September statement):
* month m with repayment status s >= 1 ("s months late"): a `supplier_payment` of the month's
  bill (BILL_AMT) due 30*s days before the end of month m and paid at the end of month m, so its
  days past due are 30*s; when September's status is s >= 1, the last s statements are still
  unpaid at the as-of date (overdue and unpaid);
* status <= 0 (no consumption, paid in full, revolving): the bill is paid on its due date;
* each month's PAY_AMT: a paid `supplier_payment` without a due date (an outflow).
The -2/-1/0 distinction has no place in the record contract and is lost (the --table side
keeps it), as are negative bill amounts (credits).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRADECREDIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
AS_OF = pd.Timestamp("2005-10-01")
# PAY_0 / BILL_AMT1 / PAY_AMT1 = September 2005 ... PAY_6 / BILL_AMT6 / PAY_AMT6 = April 2005
MONTHS = [
    ("PAY_0", "BILL_AMT1", "PAY_AMT1", "2005-09"),
    ("PAY_2", "BILL_AMT2", "PAY_AMT2", "2005-08"),
    ("PAY_3", "BILL_AMT3", "PAY_AMT3", "2005-07"),
    ("PAY_4", "BILL_AMT4", "PAY_AMT4", "2005-06"),
    ("PAY_5", "BILL_AMT5", "PAY_AMT5", "2005-05"),
    ("PAY_6", "BILL_AMT6", "PAY_AMT6", "2005-04"),
]
TARGET = "default.payment.next.month"
NTD_PER_USD = 32.0


def to_records(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(firms, payments) frames that satisfy the record contract."""
    firm = "tw" + df["ID"].astype(str)
    firms = pd.DataFrame(
        {
            "firm_id": firm,
            "registered_at": pd.Timestamp("2004-01-01"),
            "business_model": "b2c",
            "main_category": "textiles_apparel",
            "home_region": "TW",
        }
    )
    parts = []
    last = MONTHS[0][3]
    for pay, bill, paid, month in MONTHS:
        start = pd.Timestamp(month + "-01")
        end = start + pd.offsets.MonthEnd(0)
        s = df[pay].to_numpy()
        late = np.maximum(s, 0)
        due = end - pd.to_timedelta(30 * late, unit="D")
        due = pd.DatetimeIndex(np.where(late > 0, due, start + pd.Timedelta(days=24)))
        paid_at = pd.Series(np.where(late > 0, end, due), dtype="datetime64[ns]")
        if month == last:
            paid_at[late > 0] = pd.NaT  # still overdue at the as-of date
        else:
            # "s months late" in September: the last s statements are all still unpaid
            back = MONTHS.index((pay, bill, paid, month))
            paid_at[df["PAY_0"].to_numpy() > back] = pd.NaT
        amount = df[bill].clip(lower=0).to_numpy() / NTD_PER_USD
        has_bill = (s != -2) & (amount > 0)
        parts.append(
            pd.DataFrame(
                {
                    "payment_id": firm + f"-bill-{month}",
                    "firm_id": firm,
                    "kind": "supplier_payment",
                    "direction": "out",
                    "amount_usd": amount,
                    "currency": "TWD",
                    "counterparty_id": "bank",
                    "occurred_at": due - pd.Timedelta(days=20),  # the statement
                    "due_at": due,
                    "paid_at": paid_at.to_numpy(),
                }
            )[has_bill]
        )
        amt = df[paid].to_numpy() / NTD_PER_USD
        parts.append(
            pd.DataFrame(
                {
                    "payment_id": firm + f"-paid-{month}",
                    "firm_id": firm,
                    "kind": "supplier_payment",
                    "direction": "out",
                    "amount_usd": amt,
                    "currency": "TWD",
                    "counterparty_id": "bank",
                    "occurred_at": start + pd.Timedelta(days=14),
                    "due_at": pd.NaT,
                    "paid_at": start + pd.Timedelta(days=14),
                }
            )[amt > 0]
        )
    payments = pd.concat(parts, ignore_index=True)
    return firms, payments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=0, help="use only the first N clients")
    a = ap.parse_args()
    src = DATA / "uci_taiwan_default" / "UCI_Credit_Card.csv"
    if not src.is_file():
        print(f"{src} not found; nothing to measure")
        return
    from credit.ingest import ingest_dir
    from features.catalog import feature_names
    from features.pipeline import build
    from models.dataset import from_frame
    from models.params import load_params
    from models.train import train_cv

    df = pd.read_csv(src)
    if a.rows:
        df = df.head(a.rows)
    t0 = time.perf_counter()
    firms, payments = to_records(df)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "in").mkdir()
        firms.to_parquet(d / "in" / "firms.parquet", index=False)
        payments.to_parquet(d / "in" / "payments.parquet", index=False)
        store = d / "records.duckdb"
        rep = ingest_dir(d / "in", store, ingestion_date=AS_OF.date())
        print(f"ingested {len(payments)} payments of {len(firms)} firms: {rep}"[:300])
        spine = pd.DataFrame({"firm_id": firms["firm_id"], "as_of": AS_OF})
        feats = build(str(store), spine)
    t_feat = time.perf_counter() - t0
    names = [n for n in feature_names() if feats[n].nunique(dropna=False) > 1]
    feats[TARGET] = df[TARGET].to_numpy()
    cfg = load_params()
    cat = from_frame(feats, TARGET, features=names)
    raw_cols = [c for m in MONTHS for c in m[:3]]
    raw = from_frame(df, TARGET, features=raw_cols)
    r_cat = train_cv(cat, cfg, with_scorecard=False)
    r_raw = train_cv(raw, cfg, with_scorecard=False)
    a_cat, a_raw = r_cat.metrics["cv_auc_mean"], r_raw.metrics["cv_auc_mean"]
    print(f"catalog features used ({len(names)}): {', '.join(names)}")
    print(f"records -> features: {t_feat:.1f}s")
    print(f"{'5-fold CV AUC, catalog features from payments records':58s} {a_cat:.5f}")
    print(f"{'5-fold CV AUC, --table on PAY_*, BILL_AMT*, PAY_AMT* alone':58s} {a_raw:.5f}")
    print(f"{'difference (target: within 0.01)':58s} {a_cat - a_raw:+.5f}")
    print(f"ratio catalog/table: {a_cat / a_raw:.4f}")


if __name__ == "__main__":
    main()
