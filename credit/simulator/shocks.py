"""Policy shocks on their real dates, hitting firms by exposure.

* US de minimis end (2 May 2025): consumer parcels from China to the US lose the duty-free
  low-value route. Direct-mail B2C volume to the US falls by about half (after a
  front-loading bump in March and April), holds and losses rise, and sellers that depend
  on it lose financial health; sellers with US warehouses shift volume to 9810 restocks.
* EU GPSR (13 Dec 2024): non-food consumer goods sold to EU consumers need an EU
  responsible person and safety documentation. Inspections, holds and returns on those
  lanes rise, volume dips, and exposed sellers lose some health.

Firms without the exposure are untouched, which is what the shock tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from credit.simulator.calendar import EU_GPSR, US_DE_MINIMIS_END, Calendar, add_months
from credit.simulator.population import (
    CONSUMER_GOODS,
    COUNTRIES,
    COUNTRY_MARKET,
    MARKETS,
    Population,
)

US = COUNTRIES.index("US")
EU = MARKETS.index("EU")

#: Health lost at full exposure, and its monthly persistence.
DE_MINIMIS_HEALTH_HIT = 1.2
GPSR_HEALTH_HIT = 0.8
HIT_PERSISTENCE = 0.94


@dataclass
class Shocks:
    """Shock timing per month and exposure per firm (and per lane)."""

    dm_after: np.ndarray  # (months,) fraction of the month after the de minimis end
    gpsr_after: np.ndarray  # (months,) fraction of the month under GPSR
    frontload: np.ndarray  # (months,) 1 in the two months before the de minimis end
    lane_us_b2c: np.ndarray  # (n, 2) bool: consumer direct-mail lane to the US
    lane_eu_consumer: np.ndarray  # (n, 2) bool: consumer-goods lane to the EU
    exposure_dm: np.ndarray  # (n,) share of sales on US direct-mail lanes
    exposure_gpsr: np.ndarray  # (n,) share of sales of consumer goods to EU consumers
    health: np.ndarray  # (n, months) additive effect on financial health


def _decayed(after: np.ndarray) -> np.ndarray:
    """A hit that arrives with the shock and fades by ``HIT_PERSISTENCE`` a month."""
    out = np.zeros_like(after)
    level, prev = 0.0, 0.0
    for t, a in enumerate(after):
        level = level * HIT_PERSISTENCE + (a - prev)
        prev = a
        out[t] = level
    return out


def build_shocks(cal: Calendar, pop: Population) -> Shocks:
    """Exposure of every firm to both shocks and their effect on health over time."""
    dm_after = cal.fraction_after(US_DE_MINIMIS_END)
    gpsr_after = cal.fraction_after(EU_GPSR)
    fl_lo, fl_hi = cal.fraction_after(add_months(US_DE_MINIMIS_END, -2)), dm_after
    frontload = np.clip(fl_lo - fl_hi, 0.0, 1.0)

    consumer = pop.b2c_share > 0
    lane_us_b2c = (pop.lane_country == US) & consumer[:, None]
    lane_eu_consumer = (
        (COUNTRY_MARKET[pop.lane_country] == EU)
        & consumer[:, None]
        & CONSUMER_GOODS[pop.category][:, None]
    )
    direct = pop.b2c_share * (1.0 - pop.warehouse_share)
    exposure_dm = direct * (pop.lane_share * lane_us_b2c).sum(axis=1)
    exposure_gpsr = pop.b2c_share * (pop.lane_share * lane_eu_consumer).sum(axis=1)
    health = -(
        DE_MINIMIS_HEALTH_HIT * exposure_dm[:, None] * _decayed(dm_after)[None, :]
        + GPSR_HEALTH_HIT * exposure_gpsr[:, None] * _decayed(gpsr_after)[None, :]
    )
    return Shocks(
        dm_after=dm_after,
        gpsr_after=gpsr_after,
        frontload=frontload,
        lane_us_b2c=lane_us_b2c,
        lane_eu_consumer=lane_eu_consumer,
        exposure_dm=exposure_dm,
        exposure_gpsr=exposure_gpsr,
        health=health,
    )
