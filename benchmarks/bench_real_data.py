"""Real data through `credit train --table`: 5-fold cross-validated AUC of LightGBM and of the
scorecard baseline on the same folds, beside the published figures, and the difference of the
two on the pooled out-of-fold predictions with DeLong's interval.

    python benchmarks/bench_real_data.py [--only taiwan|german] [--register]

Data: ../shared/data (see its README); nothing is copied into the repository. Each run uses a
temporary data directory (MLflow store included) unless --register is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRADECREDIT_SHARED_DATA", ROOT.parent / "shared" / "data"))

TARGETS = {"taiwan": 0.785, "german": 0.79}
PUBLISHED = {
    "taiwan": "LightGBM ~0.78, LR ~0.72 (README of the data folder)",
    "german": "LR 0.784, best ensemble 0.801 (Lessmann et al. 2015)",
}


def _taiwan(tmp: Path) -> tuple[Path, list[str]]:
    src = DATA / "uci_taiwan_default" / "UCI_Credit_Card.csv"
    return src, ["--target", "default.payment.next.month", "--id-column", "ID"]


def _german(tmp: Path) -> tuple[Path, list[str]]:
    src = DATA / "german_credit" / "german.data"
    df = pd.read_csv(src, sep=r"\s+", header=None)
    df.columns = [f"A{i + 1}" for i in range(20)] + ["class"]
    df["bad"] = (df.pop("class") == 2).astype(int)  # 1 = good, 2 = bad
    out = tmp / "german.csv"
    df.to_csv(out, index=False)
    return out, ["--target", "bad"]


def run(name: str, extra: list[str], register: bool) -> dict:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        table, args = {"taiwan": _taiwan, "german": _german}[name](tmp)
        out = tmp / "out.json"
        env = {**os.environ}
        if not register:
            env["TRADECREDIT_DATA_DIR"] = str(tmp / "var")
        cmd = [
            str(Path(sys.executable).with_name("credit")),
            "train",
            "--table",
            str(table),
            *args,
            "--json",
            str(out),
            *([] if register else ["--no-register"]),
            *extra,
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        res = json.loads(out.read_text())
        res["wall_s"] = time.perf_counter() - t0
        return res


def _gain(d: dict | None) -> str:
    if not d:
        return "-"
    return f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p={d['p_value']:.2g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=sorted(TARGETS))
    ap.add_argument("--register", action="store_true", help="log to the configured MLflow store")
    ap.add_argument("extra", nargs="*", help="extra `credit train` flags (after --)")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"shared data folder not found at {DATA}; nothing to measure")
        return
    rows = []
    for name in [a.only] if a.only else ["german", "taiwan"]:
        r = run(name, a.extra, a.register)
        lgb, card = r["lightgbm"], r["scorecard"]
        rows.append(
            {
                "data": name,
                "LightGBM CV AUC": round(lgb["cv_auc_mean"], 4),
                "+/- (fold std)": round(lgb["cv_auc_std"], 4),
                "scorecard CV AUC": round(card.get("cv_auc_mean", float("nan")), 4),
                "ratio LGB/scorecard": round(lgb["cv_auc_mean"] / card["cv_auc_mean"], 4)
                if card
                else None,
                "LGB - scorecard, pooled OOF [95% CI], DeLong p": _gain(
                    r.get("lightgbm_vs_scorecard")
                ),
                "target": TARGETS[name],
                "meets": lgb["cv_auc_mean"] >= TARGETS[name],
                "LightGBM ECE (OOF)": round(lgb["ece"], 4),
                "published": PUBLISHED[name],
                "seconds": round(r["wall_s"], 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
