"""Loan outcomes as a lender observes them at the simulation end, and the truth behind them.

``defaulted`` means 90+ days past due within 365 days of disbursement. At the end date a
loan is ``True`` once it has reached 90 days past due, ``False`` once its 365-day window
has closed without that, and unknown (null) otherwise; never-disbursed applications have
no outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from credit.simulator.world import OUTCOME_DAYS, Latent


@dataclass
class Outcomes:
    defaulted: np.ndarray  # bool values
    defaulted_known: np.ndarray  # False where the outcome is unknown (null)
    default_day: np.ndarray  # -1 unless defaulted is True
    matured: np.ndarray  # the 365-day window closed before the end


def observe_outcomes(w: Latent) -> Outcomes:
    """What is known about each loan at the simulation end."""
    lb, end = w.loans, w.cal.end_day
    seen_default = lb.will_default & (lb.default_day >= 0) & (lb.default_day < end)
    matured = lb.disbursed & (lb.disbursed_day + OUTCOME_DAYS < end)
    known = seen_default | matured
    return Outcomes(
        defaulted=seen_default,
        defaulted_known=known,
        default_day=np.where(seen_default, lb.default_day, -1),
        matured=matured,
    )


def truth_columns(w: Latent) -> dict[str, np.ndarray]:
    """Per loan: the true PD and the latent state it was computed from (evaluation only)."""
    lb, sh = w.loans, w.shocks
    return {
        "true_pd": lb.pd,
        "health": lb.health,
        "health_trend": lb.trend,
        "leverage": lb.leverage,
        "idiosyncratic": lb.idiosyncratic,
        "segment_risk": lb.segment_risk,
        "exposure_de_minimis": sh.exposure_dm[lb.firm],
        "exposure_gpsr": sh.exposure_gpsr[lb.firm],
        "disbursed": lb.disbursed,
        "will_default": lb.will_default,
        "matured": observe_outcomes(w).matured,
    }
