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


def test_top_k_matrix_ranks_like_top_reasons_row_by_row() -> None:
    import numpy as np

    from credit.reasons import top_k_matrix, top_reasons

    rng = np.random.default_rng(3)
    c = rng.normal(size=(300, 12))
    c[:50] = -np.abs(c[:50])  # nothing raises the risk
    c[50:100, :10] = -1.0  # at most two positive contributions
    c[100:120] = 0.25  # ties everywhere
    names = [f"f{j}" for j in range(12)]
    codes = [f"R{j:02d}" for j in range(12)]
    idx, vals = top_k_matrix(c, 4)
    for i in range(len(c)):
        expected = top_reasons(c[i], np.zeros(12), names, codes, names, top_k=4)
        got = [(int(j), float(v)) for j, v in zip(idx[i], vals[i], strict=True) if j >= 0]
        assert got == [(names.index(r.feature), r.contribution) for r in expected]
        assert all(j == -1 for j in idx[i][len(expected) :])
