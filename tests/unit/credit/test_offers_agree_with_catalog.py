"""The offer engine's amounts agree with the feature catalog where both measure the same thing.

The pending export tax refunds an advance is sized on and the months of history a thin file is
judged by are also catalog features (``pending_tax_refund_usd``, ``months_of_history``),
computed by the feature pipeline's SQL. Both apply the point-in-time rule of ``features.pit``;
on a simulated world, at several dates, they must agree exactly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from credit.offers import compute_bases
from tests.seller_support import simulated_records, write_store


def test_pending_refunds_and_history_match_the_catalog(tmp_path: Path) -> None:
    import features

    frames = simulated_records()
    store = tmp_path / "records.duckdb"
    write_store(store, frames)
    firms = sorted(frames["firms"]["firm_id"])
    dates = [pd.Timestamp("2024-09-15"), pd.Timestamp("2025-03-01"), pd.Timestamp("2025-07-01")]
    spine = pd.DataFrame([(f, d) for f in firms for d in dates], columns=["firm_id", "as_of"])
    built = features.build(store, spine).set_index(["firm_id", "as_of"])
    checked = 0
    for f in firms:
        rec = {
            k: frames[k][frames[k]["firm_id"] == f] for k in ("customs", "shipments", "payments")
        }
        for d in dates:
            b = compute_bases(rec, d)
            row = built.loc[(f, d)]
            assert b.pending_tax_refunds == pytest.approx(row["pending_tax_refund_usd"], abs=0.01)
            assert b.months_of_history == pytest.approx(row["months_of_history"], abs=1e-9)
            checked += 1
    assert checked == 90
    assert (built["pending_tax_refund_usd"] > 0).sum() >= 10  # the comparison is not all zeros
