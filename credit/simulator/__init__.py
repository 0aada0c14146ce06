"""A simulator of cross-border e-commerce SMEs, their trade records and their loans.

No public data set holds firm-level customs, logistics and payment histories with loan
outcomes, so tradecredit simulates them. A latent financial-health process per firm
(:mod:`credit.simulator.world`) drives sales, customs outcomes, logistics incidents,
payment behaviour and loan defaults; the records reveal it only noisily, through many
channels. Policy shocks hit exposed firms on their real dates
(:mod:`credit.simulator.shocks`). ``docs/simulator.md`` tells the whole story.

Python API
----------
>>> from credit.simulator import simulate
>>> world = simulate(firms=50, start="2023-01", months=6, seed=1)
>>> list(world.frames())
['firms', 'customs', 'shipments', 'payments', 'loans']
>>> world.firms.shape[0]
50

``world.firms``, ``.customs``, ``.shipments``, ``.payments`` and ``.loans`` are DataFrames
with exactly the columns of :mod:`credit.records` (strings as ``str``, timestamps as
``datetime64[ns]``, ``defaulted`` as nullable ``boolean``); ``world.truth`` holds, per loan,
the true PD and the latent state behind it (for evaluation only, never for training).
``world.write(out_dir, fmt="parquet")`` writes the files ``credit simulate`` writes, and
:func:`credit.simulator.summary.summarize` computes the figures it prints.

Records are observed as of ``world.end`` (the first day after the last simulated month),
which must not be later than today: later payments are unpaid, later closings in transit,
later refunds pending and loans whose outcome window is still open unknown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from credit.simulator.world import Latent

__all__ = ["DEFAULT_START", "RECORD_FILES", "World", "simulate"]

#: Default first month: 36 months from it cover both policy shocks.
DEFAULT_START = "2023-01"
#: The contract files, in dependency order.
RECORD_FILES = ("firms", "customs", "shipments", "payments", "loans")


@dataclass
class World:
    """A simulated world: the contract tables, the truth, and the latent process."""

    start: dt.date
    end: dt.date
    seed: int
    tables: dict[str, pa.Table] = field(repr=False)
    latent: Latent = field(repr=False)

    def _frame(self, name: str) -> pd.DataFrame:
        from credit.simulator.writer import to_frame

        return to_frame(self.tables[name])

    @cached_property
    def firms(self) -> pd.DataFrame:
        return self._frame("firms")

    @cached_property
    def customs(self) -> pd.DataFrame:
        return self._frame("customs")

    @cached_property
    def shipments(self) -> pd.DataFrame:
        return self._frame("shipments")

    @cached_property
    def payments(self) -> pd.DataFrame:
        return self._frame("payments")

    @cached_property
    def loans(self) -> pd.DataFrame:
        return self._frame("loans")

    @cached_property
    def truth(self) -> pd.DataFrame:
        return self._frame("truth")

    def frames(self) -> dict[str, pd.DataFrame]:
        """The five contract tables as DataFrames, in dependency order."""
        return {name: getattr(self, name) for name in RECORD_FILES}

    def record_counts(self) -> dict[str, int]:
        return {name: self.tables[name].num_rows for name in RECORD_FILES}

    def write(self, out_dir: str | Path, fmt: str = "parquet") -> dict[str, Path]:
        """Write ``<name>.<fmt>`` for the five record types and ``truth.parquet``."""
        from credit.simulator.writer import write_tables

        return write_tables(self.tables, Path(out_dir), fmt)


def simulate(
    firms: int,
    start: str | dt.date = DEFAULT_START,
    months: int = 36,
    seed: int = 0,
    *,
    today: dt.date | None = None,
) -> World:
    """Simulate ``firms`` firms over ``months`` months from ``start`` (``YYYY-MM``).

    Parameters
    ----------
    firms : number of firms (some enter during the window, some exit).
    start : first simulated month, ``YYYY-MM`` or a date (its month is used).
    months : number of simulated months.
    seed : random seed; the same seed gives the same world, byte for byte.
    today : the date the end of the simulation may not pass (default: today, UTC).

    Raises
    ------
    ValueError
        When a parameter is out of range or the window ends after ``today``.
    """
    import numpy as np

    from credit.simulator.calendar import Calendar, parse_month
    from credit.simulator.payments import build_payments
    from credit.simulator.trade import build_trade
    from credit.simulator.world import simulate_latent
    from credit.simulator.writer import build_tables

    if firms < 1:
        raise ValueError(f"--firms must be at least 1, got {firms}")
    if firms > 999_999:
        raise ValueError(f"--firms must be below 1,000,000, got {firms}")
    if months < 2:
        raise ValueError(f"--months must be at least 2, got {months}")
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    first = parse_month(start) if isinstance(start, str) else start.replace(day=1)
    cal = Calendar(first, months)
    today = today or dt.datetime.now(dt.UTC).date()
    if cal.end > today:
        raise ValueError(
            f"the simulation would end on {cal.end} (start {first:%Y-%m} + {months} months), "
            f"after today ({today}); records dated in the future are rejected by ingestion. "
            "Choose an earlier --start or fewer --months."
        )
    world_ss, trade_ss, pay_ss = np.random.SeedSequence(seed).spawn(3)
    latent = simulate_latent(np.random.default_rng(world_ss), firms, cal)
    trade = build_trade(np.random.default_rng(trade_ss), latent)
    payments, counterparties = build_payments(np.random.default_rng(pay_ss), latent, trade)
    tables = build_tables(latent, trade, payments, counterparties)
    return World(start=first, end=cal.end, seed=seed, tables=tables, latent=latent)
