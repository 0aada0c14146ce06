"""Exchange rates to US dollars, from a table in the ECB reference-rate CSV layout.

The European Central Bank publishes its euro foreign exchange reference rates as CSV
(``eurofxref-hist.csv``: a ``Date`` column, then one column per currency holding the units of
that currency per euro, ``N/A`` where none was published; ``eurofxref.csv`` has the same shape
for one day, with spaces after the commas and dates such as ``01 March 2024``). Any table in
that layout will do: a user may add columns for currencies the ECB does not quote (VND, AED),
in units per euro, or give a table of their own bank's rates.

The rate of a day is used for that day only: a day with no rate (a weekend, a TARGET holiday, a
date outside the table) is no rate, and the row that needs it is rejected, not converted at a
guess.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

_DATE_FORMATS = ("%Y-%m-%d", "%d %B %Y", "%d %b %Y")


class RatesError(ValueError):
    """The rates file cannot be used; the message names the problem."""


def _day(text: str) -> date:
    for f in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), f).date()
        except ValueError:
            continue
    raise ValueError(text)


@dataclass
class Rates:
    """Units of each currency per euro, by day (``EUR`` itself is 1)."""

    per_eur: dict[str, dict[date, float]] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, path: Path | str) -> Rates:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RatesError(f"{path.name}: cannot be read as UTF-8 text ({exc})") from None
        return cls.parse(text, path.name)

    @classmethod
    def parse(cls, text: str, name: str = "fx") -> Rates:
        rows = list(csv.reader(text.lstrip("\ufeff").splitlines()))
        if not rows or not rows[0] or rows[0][0].strip().lower() != "date":
            raise RatesError(
                f"{name}: not in the ECB reference-rate layout (the first column must be "
                "'Date', then one column per currency in units per euro)"
            )
        header = [h.strip().upper() for h in rows[0]]
        out = cls(source=name)
        for cur in header[1:]:
            if cur:
                out.per_eur[cur] = {}
        for n, row in enumerate(rows[1:], start=2):
            if not row or not row[0].strip():
                continue
            try:
                day = _day(row[0])
            except ValueError:
                raise RatesError(f"{name} line {n}: {row[0]!r} is not a date") from None
            for cur, value in zip(header[1:], row[1:], strict=False):
                v = value.strip()
                if not cur or not v or v.upper() == "N/A":
                    continue
                try:
                    rate = float(v)
                except ValueError:
                    raise RatesError(f"{name} line {n}: {cur} rate {v!r} is not a number") from None
                if not rate > 0:
                    raise RatesError(f"{name} line {n}: {cur} rate {v!r} must be > 0")
                out.per_eur[cur][day] = rate
        if "USD" not in out.per_eur:
            raise RatesError(f"{name}: no USD column, so nothing can be converted to US dollars")
        return out

    def _per_eur(self, currency: str, day: date) -> float | None:
        if currency == "EUR":
            return 1.0
        return self.per_eur.get(currency, {}).get(day)

    def usd_per_unit(self, currency: str, day: date) -> float:
        """US dollars per one unit of ``currency`` on ``day``.

        Raises :class:`credit.adapters.base.Reject` when the table has no rate for the day.
        """
        from credit.adapters.base import Reject

        currency = currency.upper()
        if currency == "USD":
            return 1.0
        if currency != "EUR" and currency not in self.per_eur:
            raise Reject(f"no {currency} column in the rates table {self.source}")
        usd, cur = self._per_eur("USD", day), self._per_eur(currency, day)
        if usd is None or cur is None:
            raise Reject(
                f"no {currency} reference rate for {day.isoformat()} in {self.source} (none is "
                "published on weekends and holidays): add the rate of that day to convert it"
            )
        return usd / cur

    def write(self, path: Path | str) -> None:
        """Write the table in the ECB layout (``eurofxref-hist.csv``: newest day first)."""
        currencies = sorted(self.per_eur, key=lambda c: (c != "USD", c))
        days = sorted({d for v in self.per_eur.values() for d in v}, reverse=True)
        lines = [",".join(["Date", *currencies, ""])]
        for d in days:
            cells = [d.isoformat()]
            for c in currencies:
                v = self.per_eur[c].get(d)
                cells.append("N/A" if v is None else f"{v:.6g}")
            lines.append(",".join([*cells, ""]))
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
