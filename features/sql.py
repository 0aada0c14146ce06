"""SQL generation: the catalog's declarations -> one query over a spine.

The query reads the record tables (``firms``, ``customs``, ``shipments``, ``payments``,
``loans``, with exactly the contract's columns) and a spine table of
``(row_id, firm_id, as_of)``, and returns one row per spine row: ``row_id``, every catalog
feature in catalog order (``DOUBLE``), and ``main_market``.

Shape of the query
------------------
1. a *scan* per source: the spine joined to the firm's records that are known at ``as_of``
   (:func:`features.pit.known`) and within the longest window any feature of that scan
   uses, with the records' as-of state (:func:`features.pit.state_columns`) and ``age``;
2. one ``GROUP BY row_id`` per scan computing every aggregate with ``FILTER`` clauses,
   plus a small per-key grouping for concentration indices (HHI) and the main market;
3. a final projection turning aggregates into features, then derived features.

It is written in DuckDB's dialect; :func:`feature_sql` transpiles it to other dialects
with SQLGlot (``spark`` for clusters, ``sqlite`` for the online path, where a compiled
statement is reused from call to call), so no feature is ever written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from features.catalog import CATALOG, Feature
from features.pit import SOURCES, Lags, known, state_columns
from features.regions import region_sql

if TYPE_CHECKING:  # pragma: no cover
    from sqlglot import exp

SPINE_TABLE = "_tc_spine"
MONTH_DAYS = 30
N_MONTHS = 12


@dataclass(frozen=True)
class Scan:
    """A source as features see it: a record table, optionally filtered."""

    table: str
    where: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


SCANS: dict[str, Scan] = {
    "customs": Scan(
        "customs",
        extra={"hs2": "substr(e.hs_code, 1, 2)", "region": region_sql("e.destination_country")},
    ),
    "shipments": Scan("shipments", extra={"region": region_sql("e.destination_country")}),
    "payments": Scan("payments"),
    "loan_payments": Scan("payments", where="e.kind = 'loan_repayment'"),
    "loans": Scan("loans"),
}


def _and(*conds: str | None) -> str | None:
    parts = [f"({c})" for c in conds if c]
    return " AND ".join(parts) if parts else None


def _win(lo: int, width: int | None) -> str | None:
    """Records with ``lo < age <= lo + width`` (``width`` None: no upper bound)."""
    if width is None:
        return None if lo == 0 else f"age > {lo}"
    if lo == 0:
        return f"age <= {width}"
    return f"age > {lo} AND age <= {lo + width}"


def _agg(func: str, arg: str, cond: str | None) -> str:
    """``func(arg)`` over the records meeting ``cond``.

    Written as ``func(CASE WHEN cond THEN arg END)`` rather than with ``FILTER``: the same
    result (aggregates skip NULLs), and DuckDB computes it markedly faster.
    """
    if not cond:
        return f"{func}({arg})"
    if arg == "*":
        return f"COUNT(CASE WHEN {cond} THEN 1 END)"
    if arg.startswith("DISTINCT "):
        return f"{func}(DISTINCT CASE WHEN {cond} THEN {arg[9:]} END)"
    return f"{func}(CASE WHEN {cond} THEN {arg} END)"


def _lookback(features: list[Feature]) -> int | None:
    longest = 0
    for f in features:
        if f.window_days is None:
            return None
        span = f.window_days
        if f.aggregation in ("growth", "ratio_trend", "mean_trend"):
            span = (f.prior_offset_days or f.window_days) + f.window_days
        longest = max(longest, span)
    return longest


class _Builder:
    """Accumulates the aggregate columns of each scan and the final feature expressions."""

    def __init__(self) -> None:
        self.aggs: dict[str, list[str]] = {}  # scan -> "expr AS col"
        self.post: dict[str, list[str]] = {}  # scan -> expressions over the aggregates
        self.groups: list[str] = []  # extra CTEs (per-key groupings)
        self.group_joins: list[str] = []
        self.months: dict[tuple[str, str | None, str], str] = {}  # -> CTE name
        self.final: dict[str, str] = {}
        self._n = 0
        self._seen: dict[tuple[str, str], str] = {}
        self._groups: dict[tuple[str, str, str | None, str], str] = {}

    def col(self, scan: str, expr: str) -> str:
        """The column holding aggregate ``expr`` of ``scan`` (shared when already asked)."""
        key = (scan, expr)
        if key not in self._seen:
            self._n += 1
            self._seen[key] = f"a{self._n}"
            self.aggs.setdefault(scan, []).append(f"{expr} AS {self._seen[key]}")
        return self._seen[key]

    def monthly(self, f: Feature) -> str:
        """Statistics of twelve 30-day periods (b0 = most recent) of ``value``.

        Periods with no record count as 0. Returns the name of a CTE with one row per spine
        row and columns ``active``, ``cv``, ``peak``, ``last_vs_mean`` and ``max_drop``.
        """
        key = (f.source, f.filter, f.value)
        if key not in self.months:
            m = f"m{len(self.months)}"
            n = float(N_MONTHS)
            cond = _and(f.filter, _win(0, N_MONTHS * MONTH_DAYS))
            self.groups += [
                f"{m} AS (SELECT row_id, CAST(ceil(age / {MONTH_DAYS}) AS INTEGER) - 1 AS b, "
                f"SUM({f.value}) AS v FROM scan_{f.source} WHERE {cond} GROUP BY row_id, "
                f"CAST(ceil(age / {MONTH_DAYS}) AS INTEGER) - 1)",
                # the mean over all 12 periods, and the next more recent period (pb = b - 1)
                f"{m}w AS (SELECT row_id, b, v, SUM(v) OVER (PARTITION BY row_id) / {n} AS mean,"
                f" LAG(b) OVER (PARTITION BY row_id ORDER BY b) AS pb, "
                f"LAG(v) OVER (PARTITION BY row_id ORDER BY b) AS pv FROM {m})",
                f"{m}s AS (SELECT row_id, "
                "COUNT(CASE WHEN v > 0 THEN 1 END) AS active, "
                # empty periods deviate from the mean by the mean itself
                f"sqrt((SUM((v - mean) * (v - mean)) + ({n} - COUNT(*)) * MAX(mean) * MAX(mean))"
                f" / {n}) / NULLIF(MAX(mean), 0) AS cv, "
                "MAX(v) / NULLIF(SUM(v), 0) AS peak, "
                "SUM(CASE WHEN b = 0 THEN v ELSE 0 END) / NULLIF(MAX(mean), 0) AS last_vs_mean, "
                "MAX(CASE WHEN b >= 1 AND v > 0 THEN "
                "(v - CASE WHEN pb = b - 1 THEN pv ELSE 0 END) / v END) AS max_drop "
                f"FROM {m}w GROUP BY row_id)",
            ]
            self.group_joins.append(f"LEFT JOIN {m}s ON {m}s.row_id = sp.row_id")
            self.months[key] = f"{m}s"
        return self.months[key]

    def grouping(self, source: str, key: str, cond: str | None, value: str | None) -> str:
        """A per-(row, key) grouping CTE of ``scan_<source>`` under ``cond``.

        ``value`` is summed per key; ``None`` (a distinct count) shares any grouping with
        the same key and condition.
        """
        if value is None:
            for (src, k, c, _v), name in self._groups.items():
                if (src, k, c) == (source, key, cond):
                    return name
            value = "1"
        gkey = (source, key, cond, value)
        if gkey not in self._groups:
            name = f"g{len(self._groups)}"
            self._groups[gkey] = name
            self.groups.append(
                f"{name} AS (SELECT row_id, {key} AS k, SUM({value}) AS v FROM scan_{source} "
                f"WHERE {cond or 'TRUE'} GROUP BY row_id, {key})"
            )
            # concentration (Herfindahl) and number of keys of each row
            self.groups.append(
                f"{name}s AS (SELECT row_id, SUM(v * v) / NULLIF(SUM(v) * SUM(v), 0) AS hhi, "
                f"COUNT(k) AS n FROM {name} GROUP BY row_id)"
            )
            self.group_joins.append(f"LEFT JOIN {name}s ON {name}s.row_id = sp.row_id")
        return self._groups[gkey]


def _compile(b: _Builder, f: Feature) -> str:
    """The final SQL expression of one (non-derived) feature."""
    a = f.aggregation
    w0 = _win(0, f.window_days)
    cond = _and(f.filter, w0)
    prior = _win(f.prior_offset_days or f.window_days or 0, f.window_days)
    if f.source == "firms":
        return f"ff.{f.name}"
    if f.source == "history":
        return f"hist.{f.name}"
    if a == "sum":
        return f"COALESCE({b.col(f.source, _agg('SUM', f.value, cond))}, 0)"
    if a == "count":
        return f"COALESCE({b.col(f.source, _agg('COUNT', '*', cond))}, 0)"
    if a in ("mean", "max", "median"):
        func = {"mean": "AVG", "max": "MAX", "median": "MEDIAN"}[a]
        return b.col(f.source, _agg(func, f.value, cond))
    if a == "distinct":
        return f"COALESCE({b.grouping(f.source, f.key or '', cond, None)}s.n, 0)"
    if a == "ratio":
        num = b.col(f.source, _agg("SUM", f.value, cond))
        den_value = f.denominator_value or f.value
        den = b.col(f.source, _agg("SUM", den_value, _and(f.denominator_filter, w0)))
        return f"COALESCE({num}, 0) / NULLIF({den}, 0)"
    if a == "growth":
        cur = b.col(f.source, _agg("SUM", f.value, cond))
        prev = b.col(f.source, _agg("SUM", f.value, _and(f.filter, prior)))
        return f"(COALESCE({cur}, 0) - {prev}) / NULLIF({prev}, 0)"
    if a == "ratio_trend":
        den_value = f.denominator_value or f.value
        parts = []
        for win in (w0, prior):
            num = b.col(f.source, _agg("SUM", f.value, _and(f.filter, win)))
            den = b.col(f.source, _agg("SUM", den_value, _and(f.denominator_filter, win)))
            parts.append(f"COALESCE({num}, 0) / NULLIF({den}, 0)")
        return f"({parts[0]}) - ({parts[1]})"
    if a == "mean_trend":
        cur = b.col(f.source, _agg("AVG", f.value, cond))
        prev = b.col(f.source, _agg("AVG", f.value, _and(f.filter, prior)))
        return f"{cur} - {prev}"
    if a == "days_since_last":
        return b.col(f.source, _agg("MIN", "age", cond))
    if a == "mean_gap_days":
        mx = b.col(f.source, _agg("MAX", "age", cond))
        mn = b.col(f.source, _agg("MIN", "age", cond))
        n = b.col(f.source, _agg("COUNT", "*", cond))
        return f"({mx} - {mn}) / NULLIF({n} - 1, 0)"
    if a == "hhi":
        return f"{b.grouping(f.source, f.key or '', cond, f.value)}s.hhi"
    if a.startswith("monthly_"):
        m = b.monthly(f)
        if a == "monthly_active":
            return f"COALESCE({m}.active, 0)"
        if a == "monthly_cv":
            return f"{m}.cv"
        if a == "monthly_peak_share":
            return f"{m}.peak"
        if a == "monthly_last_vs_mean":
            return f"{m}.last_vs_mean"
        if a == "monthly_max_drop":
            # a period-to-period rise is no drop: clip at 0
            return f"CASE WHEN {m}.max_drop IS NULL THEN NULL ELSE greatest({m}.max_drop, 0) END"
    raise ValueError(f"feature {f.name}: aggregation {a!r} is not supported on {f.source}")


def _scan_cte(name: str, features: list[Feature], lags: Lags) -> str:
    scan = SCANS[name]
    src = SOURCES[scan.table]
    lag = lags.as_dict()[scan.table]
    ev = f"e.{src.event_time}"
    cols = [
        "sp.row_id",
        "sp.as_of",
        "e.*",
        f"date_diff('second', {ev}, sp.as_of) / 86400.0 AS age",
    ]
    state = state_columns(scan.table, "e", "sp.as_of", lags)
    cols += [f"{expr} AS {col}" for col, expr in state.items()]
    cols += [f"{expr} AS {col}" for col, expr in scan.extra.items()]
    lookback = _lookback(features)
    where = _and(
        known(ev, "sp.as_of", lag),
        f"{ev} >= sp.as_of - INTERVAL '{lookback}' DAY" if lookback is not None else None,
        scan.where,
    )
    return (
        f"scan_{name} AS (SELECT {', '.join(cols)} FROM {SPINE_TABLE} sp "
        f"JOIN {scan.table} e ON e.firm_id = sp.firm_id WHERE {where})"
    )


def _firm_cte(features: list[Feature], lags: Lags) -> str:
    reg = known("f.registered_at", "sp.as_of", lags.firms)
    exprs = [f"{f.expr} AS {f.name}" for f in features]
    return (
        f"ff AS (SELECT sp.row_id, {', '.join(exprs)} FROM (SELECT sp.row_id, sp.as_of, "
        f"f.registered_at, {reg} AS is_registered FROM {SPINE_TABLE} sp "
        f"LEFT JOIN firms f ON f.firm_id = sp.firm_id) sp)"
    )


def _history_ctes(features: list[Feature], lags: Lags) -> list[str]:
    ctes, firsts, joins = [], [], []
    for table in ("customs", "shipments", "payments"):
        ev = SOURCES[table].event_time
        alias = f"first_{table}"
        ctes.append(
            f"{alias} AS (SELECT firm_id, MIN({ev}) AS first_at FROM {table} GROUP BY firm_id)"
        )
        joins.append(f"LEFT JOIN {alias} ON {alias}.firm_id = sp.firm_id")
        # the earliest record is the first to become known: known(min) == any known
        lag = lags.as_dict()[table]
        firsts.append(
            f"CASE WHEN {known(f'{alias}.first_at', 'sp.as_of', lag)} THEN {alias}.first_at END"
        )
    exprs = ", ".join(f"{f.expr} AS {f.name}" for f in features)
    ctes.append(
        f"hist AS (SELECT row_id, {exprs or 'NULL AS _none'} FROM (SELECT sp.row_id, sp.as_of, "
        f"least({', '.join(firsts)}) AS first_known_at FROM {SPINE_TABLE} sp "
        f"{' '.join(joins)}) h)"
    )
    return ctes


def _main_market_cte(b: _Builder) -> str:
    """The region with the largest export value over 365 days (ties: alphabetical)."""
    g = b.grouping("customs", "region", _and("direction = 'export'", _win(0, 365)), "value_usd")
    return (
        f"mm AS (SELECT row_id, k AS main_market FROM (SELECT row_id, k, ROW_NUMBER() OVER "
        f"(PARTITION BY row_id ORDER BY v DESC, k) AS rn FROM {g}) r WHERE rn = 1)"
    )


@lru_cache(maxsize=16)
def _duckdb_sql(lags: Lags) -> str:
    features = list(CATALOG)
    base_names = {f.name for f in features if f.source != "derived"}
    for f in features:
        if f.source == "derived":
            refs = [n for n in base_names if n in (f.expr or "")]
            if not refs:
                raise ValueError(f"derived feature {f.name} references no base feature")
    by_scan: dict[str, list[Feature]] = {}
    for f in features:
        if f.source in SCANS:
            by_scan.setdefault(f.source, []).append(f)
    # main_market reads the customs scan over 365 days
    by_scan.setdefault("customs", [])
    b = _Builder()
    mm = _main_market_cte(b)
    # distinct counts last: they reuse the per-key groupings of HHIs and the main market
    order = sorted(
        (f for f in features if f.source != "derived"), key=lambda f: f.aggregation == "distinct"
    )
    for f in order:
        b.final[f.name] = _compile(b, f)

    ctes = [_scan_cte(name, fs or [], lags) for name, fs in by_scan.items()]
    for name in by_scan:
        inner = ", ".join(["row_id", *b.aggs.get(name, [])])
        post = ", ".join(["g.*", *b.post.get(name, [])])
        ctes.append(
            f"agg_{name} AS (SELECT {post} FROM (SELECT {inner} FROM scan_{name} "
            f"GROUP BY row_id) g)"
        )
    ctes += b.groups
    ctes.append(mm)
    ctes.append(_firm_cte([f for f in features if f.source == "firms"], lags))
    ctes += _history_ctes([f for f in features if f.source == "history"], lags)

    joins = [f"LEFT JOIN agg_{n} ON agg_{n}.row_id = sp.row_id" for n in by_scan]
    joins += b.group_joins
    joins += [
        "LEFT JOIN ff ON ff.row_id = sp.row_id",
        "LEFT JOIN hist ON hist.row_id = sp.row_id",
        "LEFT JOIN mm ON mm.row_id = sp.row_id",
    ]
    # aggregate names (a1, m0_b3, ...) are unique across scans: qualify them by their CTE
    qualified: dict[str, str] = {}
    for name in by_scan:
        for item in b.aggs.get(name, []) + b.post.get(name, []):
            col = item.rsplit(" AS ", 1)[1]
            qualified[col] = f"agg_{name}.{col}"
    import re

    def qualify(expr: str) -> str:
        return re.sub(r"\b(a\d+)\b", lambda m: qualified.get(m[1], m[1]), expr)

    base_cols = ", ".join(
        f"CAST({qualify(expr)} AS DOUBLE) AS {name}" for name, expr in b.final.items()
    )
    ctes.append(
        f"base AS (SELECT sp.row_id, {base_cols}, COALESCE(mm.main_market, 'NONE') "
        f"AS main_market FROM {SPINE_TABLE} sp {' '.join(joins)})"
    )
    out = []
    for f in features:
        if f.source == "derived":
            out.append(f"CAST({f.expr} AS DOUBLE) AS {f.name}")
        else:
            out.append(f.name)
    return (
        f"WITH {', '.join(ctes)} SELECT row_id, {', '.join(out)}, main_market FROM base "
        "ORDER BY row_id"
    )


def feature_sql(lags: Lags | None = None, dialect: str = "duckdb") -> str:
    """The query computing every catalog feature for the spine table ``_tc_spine``.

    Parameters
    ----------
    lags : availability lags (default :class:`features.pit.Lags`).
    dialect : ``duckdb`` (native), ``sqlite`` (the online engine, timestamps as integer
        microseconds) or any SQLGlot dialect name such as ``spark``.

    Returns
    -------
    str
        One ``SELECT`` statement: ``row_id``, the features in catalog order, ``main_market``.
    """
    sql = _duckdb_sql(lags or Lags())
    if dialect == "duckdb":
        return sql
    if dialect == "sqlite":
        return _sqlite_sql(lags or Lags())
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb").transform(_double_literal)
    return tree.sql(dialect=dialect)


# --- SQLite: the online path's engine -------------------------------------------------------

#: microseconds in a day: SQLite holds every timestamp as integer microseconds since the epoch
DAY_MICROS = 86_400_000_000
#: the aggregate function SQLite is given for DuckDB's ``median``
SQLITE_MEDIAN = "tc_median"


@lru_cache(maxsize=16)
def _sqlite_sql(lags: Lags) -> str:
    """The DuckDB query in SQLite's dialect, with its temporal arithmetic made exact.

    SQLite has no timestamp type; the online engine stores timestamps as integer
    microseconds since the epoch (UTC) and this rewrite keeps DuckDB's semantics on them:
    ``t + INTERVAL 'n' DAY`` adds ``n`` days of microseconds, ``CAST(t AS DATE)`` floors to
    midnight, ``date_diff('day', a, b)`` counts midnights crossed and ``date_diff('second', a,
    b)`` whole seconds crossed (floors, also before 1970, where SQLite's integer division
    rounds toward zero), and ``median`` becomes :data:`SQLITE_MEDIAN`, an aggregate the
    engine registers. Everything else is SQLGlot's translation.
    """
    import sqlglot

    tree = sqlglot.parse_one(_duckdb_sql(lags), read="duckdb").transform(_sqlite_temporal)
    return tree.sql(dialect="sqlite")


def _floor(node: exp.Expression, unit: int) -> exp.Expression:
    """``node`` rounded down to a multiple of ``unit`` (microseconds): an exact floor, also
    before 1970, where SQLite's integer ``%`` and ``/`` round toward zero."""
    from sqlglot import exp

    d = exp.Literal.number(unit)
    wrapped = exp.Paren(this=exp.Add(this=exp.Mod(this=node, expression=d), expression=d))
    mod = exp.Mod(this=wrapped, expression=d.copy())
    return exp.Paren(this=exp.Sub(this=node.copy(), expression=exp.Paren(this=mod)))


def _sqlite_temporal(node: exp.Expression) -> exp.Expression:
    """One node of the DuckDB query rewritten for SQLite (see :func:`_sqlite_sql`).

    SQLGlot does not visit the children of a replaced node, so each branch rewrites the
    children it keeps itself."""
    from sqlglot import exp

    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval):
        iv = node.expression
        unit = iv.unit.name.upper() if iv.unit else ""
        if unit != "DAY":
            raise ValueError(f"SQLite rewrite: unsupported interval unit {unit!r}")
        micros = exp.Literal.number(int(iv.this.name) * DAY_MICROS)
        return type(node)(this=node.this.copy().transform(_sqlite_temporal), expression=micros)
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE:
        return _floor(node.this.copy().transform(_sqlite_temporal), DAY_MICROS)
    if isinstance(node, exp.DateDiff):
        end, start = (
            (a.this if isinstance(a, exp.Cast) and a.to.this == exp.DataType.Type.DATE else a)
            .copy()
            .transform(_sqlite_temporal)
            for a in (node.this, node.expression)
        )
        unit = node.unit.name.upper() if node.unit else ""
        size = {"DAY": DAY_MICROS, "SECOND": 1_000_000}.get(unit)
        if size is not None:
            # whole units between the floors: midnights (or second marks) crossed
            span = exp.Sub(this=_floor(end, size), expression=_floor(start, size))
            d = exp.Literal.number(size)
            return exp.Paren(this=exp.Div(this=exp.Paren(this=span), expression=d, typed=True))
        raise ValueError(f"SQLite rewrite: unsupported date_diff unit {unit!r}")
    if isinstance(node, exp.Median):
        return exp.Anonymous(
            this=SQLITE_MEDIAN, expressions=[node.this.copy().transform(_sqlite_temporal)]
        )
    return node


def _double_literal(node: exp.Expression) -> exp.Expression:
    """A fractional literal (``30.4375``) as ``CAST(30.4375 AS DOUBLE)``.

    DuckDB computes ``int / 30.4375`` in floating point; Spark would read the literal as a
    DECIMAL and round the quotient to its scale (measured: 5e-8 off in months_of_history).
    """
    from sqlglot import exp

    fractional = isinstance(node, exp.Literal) and node.is_number and not node.this.isdigit()
    if fractional and not isinstance(node.parent, exp.Cast):
        return exp.cast(node.copy(), exp.DataType.build("DOUBLE"))
    return node
