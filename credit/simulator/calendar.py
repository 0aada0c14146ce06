"""The simulated calendar: day offsets, month boundaries, seasonality and the real shock dates.

Every date inside the simulator is an integer number of days since the first day of the
start month; they become timestamps only when the tables are built.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

#: Chinese New Year's day; factories and forwarders stop for about three weeks around it.
CNY_DATES: dict[int, dt.date] = {
    2015: dt.date(2015, 2, 19),
    2016: dt.date(2016, 2, 8),
    2017: dt.date(2017, 1, 28),
    2018: dt.date(2018, 2, 16),
    2019: dt.date(2019, 2, 5),
    2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
}

#: End of the US de minimis exemption for China-origin low-value parcels.
US_DE_MINIMIS_END = dt.date(2025, 5, 2)
#: EU General Product Safety Regulation applies.
EU_GPSR = dt.date(2024, 12, 13)

#: Relative export activity by calendar month before the Chinese New Year trough:
#: peak in Q4 (Black Friday, Christmas), mid-year 618 bump.
MONTH_FACTOR = np.array([1.0, 0.97, 1.0, 0.97, 0.98, 1.03, 0.96, 1.0, 1.06, 1.14, 1.32, 1.22])
#: Fraction of activity lost on the days of the New Year stop.
CNY_STOP_DEPTH = 0.6
CNY_STOP_BEFORE, CNY_STOP_AFTER = 8, 14


def parse_month(text: str) -> dt.date:
    """Parse ``YYYY-MM`` into the first day of that month.

    Examples
    --------
    >>> parse_month("2023-07")
    datetime.date(2023, 7, 1)
    """
    try:
        y, m = (int(p) for p in text.strip().split("-")[:2])
        return dt.date(y, m, 1)
    except (ValueError, TypeError):
        raise ValueError(
            f"start month {text!r} is not of the form YYYY-MM (e.g. 2023-01)"
        ) from None


def add_months(d: dt.date, n: int) -> dt.date:
    """First day of the month ``n`` months after the month of ``d``."""
    k = d.year * 12 + d.month - 1 + n
    return dt.date(k // 12, k % 12 + 1, 1)


@dataclass(frozen=True)
class Calendar:
    """Month boundaries of a simulation as day offsets from its first day.

    Parameters
    ----------
    start : first day of the first simulated month.
    months : number of simulated months.
    """

    start: dt.date
    months: int

    @property
    def end(self) -> dt.date:
        """First day after the simulation: every record is observed as of this date."""
        return add_months(self.start, self.months)

    @property
    def end_day(self) -> int:
        return (self.end - self.start).days

    @property
    def month_start(self) -> np.ndarray:
        """Day offset of the first day of each month, plus the end (length ``months + 1``)."""
        return np.array(
            [(add_months(self.start, t) - self.start).days for t in range(self.months + 1)],
            dtype=np.int64,
        )

    @property
    def month_days(self) -> np.ndarray:
        return np.diff(self.month_start)

    @property
    def calendar_month(self) -> np.ndarray:
        """Calendar month (1-12) of each simulated month."""
        return np.array([add_months(self.start, t).month for t in range(self.months)])

    def day(self, d: dt.date) -> int:
        return (d - self.start).days

    def month_of(self, days: np.ndarray) -> np.ndarray:
        """Simulated month index of each day offset (may be < 0 or >= months)."""
        ms = self.month_start
        out = np.searchsorted(ms, days, side="right") - 1
        # days past the end: extrapolate with 30.4-day months
        past = days >= ms[-1]
        if np.any(past):
            out = np.where(past, self.months + (days - ms[-1]) // 30, out)
        return out

    def fraction_after(self, d: dt.date) -> np.ndarray:
        """Per month, the fraction of its days on or after ``d`` (0 before, 1 after)."""
        ms = self.month_start
        day = self.day(d)
        return np.clip((ms[1:] - day) / (ms[1:] - ms[:-1]), 0.0, 1.0)

    def seasonality(self) -> np.ndarray:
        """Multiplicative activity factor per month: calendar pattern times New Year stop."""
        f = MONTH_FACTOR[self.calendar_month - 1].copy()
        ms = self.month_start
        for cny in CNY_DATES.values():
            lo = self.day(cny) - CNY_STOP_BEFORE
            hi = self.day(cny) + CNY_STOP_AFTER
            overlap = np.clip(np.minimum(ms[1:], hi) - np.maximum(ms[:-1], lo), 0, None)
            f *= 1.0 - CNY_STOP_DEPTH * overlap / self.month_days
        return f

    def timestamps(self, days: np.ndarray) -> np.ndarray:
        """Day offsets as ``datetime64[ns]``."""
        base = np.datetime64(self.start.isoformat(), "D")
        return (base + days.astype("timedelta64[D]")).astype("datetime64[ns]")
