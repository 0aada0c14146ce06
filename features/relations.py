"""The relations the catalog implies between features: what any set of records satisfies.

A feature vector computed from records always satisfies them; a vector proposed by a
method that edits features directly (a counterfactual library) may not, and then no firm
could have it. Every relation is read off the declarations in :mod:`features.catalog`:

* ``derived`` features equal their expression over the other features;
* a ``sum``/``count`` over a shorter window is at most the same one over a longer window;
* a ``ratio`` whose numerator records are a subset of its denominator's lies in [0, 1]
  (the numerator's filter extends the denominator's, or there is no denominator filter);
* counts are whole numbers >= 0, flags are 0 or 1, sums, counts, distinct counts, means,
  medians and maxima of non-negative fields are >= 0, concentrations (HHI) lie in [0, 1]
  and active months are at most 12.

:func:`violations` lists the relations a vector breaks (NaN is "no records" and satisfies
the relations it takes part in, except a derived feature, whose NaN must match its
expression's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import duckdb

from features.catalog import CATALOG, Feature

Vector = Mapping[str, float]


@dataclass(frozen=True)
class Relation:
    name: str
    #: (vector, its derived features' expressions evaluated) -> the relation holds
    holds: Callable[[Vector, Vector], bool]


def _nan(x: float) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _close(a: float, b: float) -> bool:
    if _nan(a) or _nan(b):
        return _nan(a) and _nan(b)
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


@cache
def _derived_sql() -> dict[str, str]:
    return {f.name: str(f.expr) for f in CATALOG if f.source == "derived"}


def _derived_values(v: Vector) -> dict[str, float]:
    """The derived features' expressions evaluated over ``v`` (DuckDB, the catalog's own
    dialect)."""
    exprs = _derived_sql()
    names = [f.name for f in CATALOG if f.source != "derived"]
    cols = ", ".join(f"CAST(? AS DOUBLE) AS {n}" for n in names)
    sel = ", ".join(f"CAST(({e}) AS DOUBLE) AS {n}" for n, e in exprs.items())
    params = [None if _nan(v[n]) else float(v[n]) for n in names]
    con = _con()
    row = con.execute(f"SELECT {sel} FROM (SELECT {cols})", params).fetchone()  # noqa: S608
    assert row is not None
    return {n: (math.nan if x is None else float(x)) for n, x in zip(exprs, row, strict=True)}


@cache
def _con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def _window_key(f: Feature) -> tuple[object, ...]:
    return (f.source, f.aggregation, f.filter, f.value)


def _subset(f: Feature) -> bool:
    """The numerator's records are among the denominator's."""
    if f.denominator_value not in (None, f.value):
        return False
    if f.denominator_filter is None:
        return True
    return f.filter is not None and f.filter.startswith(f.denominator_filter + " AND ")


_NON_NEGATIVE = ("sum", "count", "distinct", "mean", "median", "max", "monthly_active")


def _equals_expression(n: str) -> Callable[[Vector, Vector], bool]:
    return lambda v, d: _close(v[n], d[n])


def _at_most(a: str, b: str) -> Callable[[Vector, Vector], bool]:
    return lambda v, _d: _nan(v[a]) or _nan(v[b]) or v[a] <= v[b] * (1 + 1e-9) + 1e-9


def _within(n: str, lo: float, hi: float) -> Callable[[Vector, Vector], bool]:
    return lambda v, _d: _nan(v[n]) or lo <= v[n] <= hi * (1 + 1e-9)


def _whole(n: str) -> Callable[[Vector, Vector], bool]:
    return lambda v, _d: _nan(v[n]) or (v[n] >= 0 and float(v[n]).is_integer())


def _flag(n: str) -> Callable[[Vector, Vector], bool]:
    return lambda v, _d: _nan(v[n]) or v[n] in (0, 1)


@cache
def relations() -> tuple[Relation, ...]:
    out = [Relation(f"{n} = its expression", _equals_expression(n)) for n in _derived_sql()]
    nested: dict[tuple[object, ...], list[Feature]] = {}
    for f in CATALOG:
        if f.aggregation in ("sum", "count") and f.window_days is not None:
            nested.setdefault(_window_key(f), []).append(f)
    for group in nested.values():
        group.sort(key=lambda f: int(f.window_days or 0))
        for short, long in zip(group, group[1:], strict=False):
            out.append(Relation(f"{short.name} <= {long.name}", _at_most(short.name, long.name)))
    for f in CATALOG:
        n = f.name
        if (f.aggregation == "ratio" and _subset(f)) or f.aggregation == "hhi":
            out.append(Relation(f"0 <= {n} <= 1", _within(n, 0.0, 1.0)))
        if f.dtype == "count":
            out.append(Relation(f"{n} is a whole number >= 0", _whole(n)))
        if f.dtype == "flag":
            out.append(Relation(f"{n} is 0 or 1", _flag(n)))
        if f.aggregation in _NON_NEGATIVE and f.source != "derived":
            out.append(Relation(f"{n} >= 0", _within(n, 0.0, math.inf)))
        if f.aggregation == "monthly_active":
            out.append(Relation(f"{n} <= 12", _within(n, 0.0, 12.0)))
    return tuple(out)


def violations(v: Vector) -> list[str]:
    """The catalog relations ``v`` breaks (empty: some set of records could produce it, as
    far as the catalog can tell)."""
    derived = _derived_values(v)
    return [r.name for r in relations() if not r.holds(v, derived)]
