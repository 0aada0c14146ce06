"""Reason codes: order, positive-only, and the wording for missing values."""

from __future__ import annotations

import numpy as np

from credit.reasons import MISSING_PREFIX, top_reasons


def test_largest_risk_raising_contributions_first_and_missing_values_say_so() -> None:
    names = ["late_share", "refund_rate", "export_growth"]
    texts = ["Buyers pay late", "Many refunds", "Exports are falling"]
    contributions = np.array([0.10, 0.30, -0.20])  # export_growth lowers the risk
    values = np.array([0.4, np.nan, 0.1])  # refund_rate has no data in the window
    reasons = top_reasons(contributions, values, names, ["R1", "R2", "R3"], texts, top_k=4)
    # only the two risk-raising features, largest first
    assert [r.feature for r in reasons] == ["refund_rate", "late_share"]
    # a missing value does not claim the fact; a present one keeps the catalog text
    assert reasons[0].value is None
    assert reasons[0].text == MISSING_PREFIX + "many refunds"
    assert reasons[1].value == 0.4 and reasons[1].text == "Buyers pay late"
