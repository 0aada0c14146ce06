"""SQL generated from the data contract to validate a whole file in one pass.

Every check of :mod:`credit.records` becomes one branch of a ``CASE`` expression that
returns the number of the first check a row fails (``NULL`` when it passes them all).
The numbers index :attr:`CheckPlan.checks`, which holds the field and the reason a person
can act on. Reasons are fixed texts (the offending value is stored beside them), so the
most frequent reasons of a file can be counted with a ``GROUP BY``.

The order of the checks, first failure wins:

1. per field, in contract order: required, type (parse), allowed values, pattern,
   range, not before 1900, not after the ingestion date;
2. the record type's :class:`~credit.records.RowRule` s;
3. code lists (ISO 3166 countries, ISO 4217 currencies), then references (a known firm,
   an existing customs declaration);
4. duplicates of the record ID within the file (the first valid row is kept);
5. the store: an ID already stored with different content is rejected; an identical
   row is counted as already present and adds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from credit.records import (
    ID_HELP,
    ID_PATTERN,
    MAX_UTC_OFFSET_HOURS,
    MIN_DATE,
    TEXT_HELP,
    TEXT_PATTERN,
    FieldSpec,
    RecordType,
)

#: Accepted shapes of a date: ``YYYY-MM-DD`` or an ISO 8601 timestamp, optional offset.
_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?)?"
#: A UTC offset within +/-14:00 (``MAX_UTC_OFFSET_HOURS``), and one beyond it.
_OFFSET = r"[+-]((0[0-9]|1[0-3])(:?[0-5][0-9])?|14(:?00)?)"
_OFFSET_BEYOND = r"[+-]((1[5-9]|[2-9][0-9])(:?[0-9]{2})?|14:?([0-5][1-9]|[1-5]0))"
assert MAX_UTC_OFFSET_HOURS == 14, "the offset patterns above spell out +/-14:00"
ISO_DATE_RE = "^" + _DATE_TIME + r"(Z|" + _OFFSET + ")?$"
OFFSET_BEYOND_RE = "^" + _DATE_TIME + _OFFSET_BEYOND + "$"
#: The common case without an offset parses several times faster as a plain TIMESTAMP.
_NAIVE_RE = "^" + _DATE_TIME + "$"
_COMMON_SHAPES = ("____-__-__", "____-__-__T__:__:__", "____-__-__ __:__:__")
_INT_RE = r"^[+-]?[0-9]{1,18}(\.0*)?$"
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")

VOCABULARY_HELP = {
    "iso3166": "an ISO 3166-1 alpha-2 country code in upper case (e.g. CN, US, DE)",
    "iso4217": "an ISO 4217 currency code in upper case (e.g. USD, CNY, EUR)",
}
_TYPE_HELP = {
    "timestamp": "a valid date: YYYY-MM-DD or an ISO 8601 timestamp "
    "(e.g. 2025-03-01T14:05:00+08:00)",
    "float": "a finite number (use . as the decimal separator, no thousands separator)",
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
}


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _num(x: float) -> str:
    return repr(float(x))


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Check:
    """One way a row can fail: the field reported and the reason given."""

    field: str
    reason: str


@dataclass
class CheckPlan:
    """The numbered checks of one record type (index 0 is unused)."""

    checks: list[Check] = field(default_factory=lambda: [Check("", "")])

    def add(self, field_name: str, reason: str) -> int:
        self.checks.append(Check(field_name, reason))
        return len(self.checks) - 1


def typed_expr(f: FieldSpec, src: str, src_type: str | None) -> str:
    """SQL turning the source column ``src`` (of DuckDB type ``src_type``) into the contract type.

    ``src_type`` is ``None`` when the (optional) column is absent from the file. A value
    that cannot be converted becomes ``NULL``; the type check then reports it.
    """
    if src_type is None:
        return f"CAST(NULL AS {f.sql_type})"
    t = src_type.upper()
    is_text = t == "VARCHAR"
    if f.dtype == "string":
        return f"NULLIF({src}, '')" if is_text else f"CAST({src} AS VARCHAR)"
    if f.dtype == "float":
        inner = (
            f"TRY_CAST(NULLIF({src}, '') AS DOUBLE)" if is_text else f"TRY_CAST({src} AS DOUBLE)"
        )
        return f"(CASE WHEN isfinite({inner}) THEN {inner} END)"
    if f.dtype == "int":
        if is_text:
            return (
                f"(CASE WHEN regexp_full_match(trim({src}), '{_INT_RE}') "
                f"THEN TRY_CAST(TRY_CAST(trim({src}) AS DOUBLE) AS BIGINT) END)"
            )
        if t in {"FLOAT", "DOUBLE", "REAL"} or t.startswith("DECIMAL"):
            return f"(CASE WHEN {src} = round({src}) THEN TRY_CAST({src} AS BIGINT) END)"
        return f"TRY_CAST({src} AS BIGINT)"
    if f.dtype == "bool":
        if is_text:
            low = f"lower(trim({src}))"
            return (
                f"(CASE WHEN {low} IN ({', '.join(map(lit, _TRUE))}) THEN TRUE "
                f"WHEN {low} IN ({', '.join(map(lit, _FALSE))}) THEN FALSE END)"
            )
        return f"TRY_CAST({src} AS BOOLEAN)"
    if f.dtype == "timestamp":
        if is_text:
            # The common shapes are recognised with LIKE, several times cheaper than a
            # regular expression; the cast then rejects non-digits and impossible dates.
            # A bare TIMESTAMP cast would drop an offset, so values carrying one go
            # through TIMESTAMPTZ and are converted to UTC.
            common = " OR ".join(f"{src} LIKE '{shape}'" for shape in _COMMON_SHAPES)
            return (
                f"(CASE WHEN {common} THEN TRY_CAST({src} AS TIMESTAMP) "
                f"WHEN regexp_full_match({src}, '{_NAIVE_RE}') "
                f"THEN TRY_CAST({src} AS TIMESTAMP) "
                f"WHEN regexp_full_match({src}, '{ISO_DATE_RE}') "
                f"THEN timezone('UTC', TRY_CAST({src} AS TIMESTAMPTZ)) END)"
            )
        if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
            return f"timezone('UTC', {src})"
        return f"TRY_CAST({src} AS TIMESTAMP)"
    raise ValueError(f"unsupported contract dtype {f.dtype!r}")  # pragma: no cover


def raw_missing_expr(src: str, src_type: str | None) -> str:
    """SQL that is TRUE when the source value is empty."""
    if src_type is None:
        return "TRUE"
    if src_type.upper() == "VARCHAR":
        return f"({src} IS NULL OR {src} = '')"
    return f"({src} IS NULL)"


def field_branches(
    f: FieldSpec,
    raw: str,
    src_type: str | None,
    typed: str,
    plan: CheckPlan,
    ingestion_date: date,
) -> list[str]:
    """``WHEN ... THEN code`` branches for one field, in check order."""
    out: list[str] = []

    def when(cond: str, reason: str) -> None:
        out.append(f"WHEN {cond} THEN {plan.add(f.name, reason)}")

    missing = raw_missing_expr(raw, src_type)
    if f.required:
        when(missing, f"{f.name} is required and is empty")
    if f.dtype == "timestamp" and src_type is not None and src_type.upper() == "VARCHAR":
        # A text timestamp whose offset is out of range does not parse (ISO_DATE_RE): say why.
        when(
            f"NOT {missing} AND {typed} IS NULL AND regexp_full_match({raw}, '{OFFSET_BEYOND_RE}')",
            f"{f.name} has a UTC offset beyond +/-{MAX_UTC_OFFSET_HOURS:02d}:00 "
            "(check the time zone)",
        )
    if src_type is not None:
        when(
            f"NOT {missing} AND {typed} IS NULL",
            f"{f.name} is not {_TYPE_HELP[f.dtype]}",
        )
    present = f"{typed} IS NOT NULL"
    if f.allowed is not None:
        when(
            f"{present} AND {typed} NOT IN ({', '.join(map(lit, f.allowed))})",
            f"{f.name} must be one of: {', '.join(f.allowed)}",
        )
    if f.pattern is not None:
        if f.pattern == ID_PATTERN:
            help_ = f"{f.name} is not a valid identifier ({ID_HELP})"
        elif f.pattern == r"^[0-9]{6}$":
            help_ = f"{f.name} must be exactly 6 digits"
        elif f.pattern == TEXT_PATTERN:
            help_ = f"{f.name} must be {TEXT_HELP}"
        else:
            help_ = f"{f.name} must match the pattern {f.pattern}"
        when(f"{present} AND NOT regexp_full_match({typed}, {lit(f.pattern)})", help_)
    if f.min_value is not None:
        op = "<" if f.min_inclusive else "<="
        sign = ">=" if f.min_inclusive else ">"
        unit = f" {f.unit}" if f.unit and f.unit != "days" else ""
        when(
            f"{present} AND {typed} {op} {_num(f.min_value)}",
            f"{f.name} must be {sign} {_fmt(f.min_value)}{unit}",
        )
    if f.max_value is not None:
        when(
            f"{present} AND {typed} > {_num(f.max_value)}",
            f"{f.name} must be <= {_fmt(f.max_value)} (check the unit)",
        )
    if f.dtype == "timestamp":
        when(
            f"{present} AND {typed} < TIMESTAMP '{MIN_DATE}'",
            f"{f.name} is before {MIN_DATE} (check the year)",
        )
    if f.dtype == "timestamp" and not f.future_ok:
        limit = (ingestion_date + timedelta(days=1)).isoformat()
        when(
            f"{present} AND {typed} >= TIMESTAMP '{limit}'",
            f"{f.name} is after the ingestion date",
        )
    return out


def validation_select(
    rt: RecordType,
    columns: dict[str, str],
    source: str,
    ingestion_date: date,
    plan: CheckPlan,
) -> str:
    """SELECT giving the typed contract columns and ``_code`` for each row of ``source``.

    The raw value of each field is kept as ``_raw_<field>`` only on rows that fail a check
    (``NULL`` elsewhere, which costs nothing to store), to be shown in ``rejected``.

    Parameters
    ----------
    rt : the record type.
    columns : the file's columns and their DuckDB types.
    source : a table expression yielding the raw rows, in file order.
    ingestion_date : timestamps on a later day are rejected (unless ``future_ok``).
    plan : receives the numbered checks.
    """
    inner_cols: list[str] = []
    branches: list[str] = []
    kept: list[str] = []
    for f in rt.fields:
        src_type = columns.get(f.name)
        raw = q(f.name) if src_type is not None else "NULL"
        typed = q(f.name)
        inner_cols.append(f"{typed_expr(f, raw, src_type)} AS {typed}")
        if src_type is not None:
            inner_cols.append(f"{raw} AS {q('_raw_' + f.name)}")
            kept.append(
                f"CASE WHEN _code IS NOT NULL THEN CAST({q('_raw_' + f.name)} AS VARCHAR) END "
                f"AS {q('_raw_' + f.name)}"
            )
        branches += field_branches(
            f,
            q("_raw_" + f.name) if src_type is not None else "NULL",
            src_type,
            typed,
            plan,
            ingestion_date,
        )
    for rule in rt.rules:
        branches.append(f"WHEN ({rule.sql}) THEN {plan.add(rule.field, rule.reason)}")
    case = "CASE " + "\n    ".join(branches) + " END"
    typed_cols = ", ".join(q(c) for c in rt.columns)
    raw_cols = ", ".join(q("_raw_" + f.name) for f in rt.fields if f.name in columns)
    return (
        f"SELECT {typed_cols}, _code{', ' if kept else ''}{', '.join(kept)}\n"
        f"FROM (SELECT {typed_cols}, {raw_cols}, {case} AS _code\n"
        f"  FROM (SELECT {', '.join(inner_cols)} FROM {source}))"
    )


def known_table(ref_table: str) -> str:
    """The table of IDs stored elsewhere that references may point at (records checked in
    memory for ``POST /v1/records``: the firms and declarations already in the shared store)."""
    return f"_known_{ref_table}"


def verdict_select(
    rt: RecordType, stage: str, line_offset: int, plan: CheckPlan, known_refs: bool = False
) -> str:
    """SELECT of the rows of ``stage`` that are rejected or already stored.

    ``stage`` holds the output of :func:`validation_select` in file order (its ``rowid``
    plus ``line_offset`` is the line number). To the field checks this adds code lists,
    references, duplicates within the file and the comparison with the store. With
    ``known_refs`` a reference may also point at an ID of :func:`known_table`. The result has
    ``_line``, ``_code`` (``NULL`` = valid) and ``_present`` (valid and already stored
    with identical content); valid new rows are absent from it, so it stays small.
    """
    idf = q(rt.id_field)
    joins: list[str] = []
    ref_branches: list[str] = []
    # Code lists are joined here rather than tested in validation_select: a join there
    # would reorder the rows, and their order is what numbers the lines.
    for i, f in enumerate(rt.fields):
        if f.vocabulary is None:
            continue
        alias = f"_voc{i}"
        joins.append(f"LEFT JOIN _vocab_{f.vocabulary} {alias} ON s.{q(f.name)} = {alias}.code")
        code = plan.add(f.name, f"{f.name} is not {VOCABULARY_HELP[f.vocabulary]}")
        ref_branches.append(f"WHEN s.{q(f.name)} IS NOT NULL AND {alias}.code IS NULL THEN {code}")
    for i, f in enumerate(rt.fields):
        if f.references is None:
            continue
        ref_table, ref_col = f.references
        alias = f"_ref{i}"
        keys = f"SELECT DISTINCT {q(ref_col)} AS k FROM {q(ref_table)}"
        if known_refs:
            keys += f" UNION SELECT k FROM {known_table(ref_table)}"
        joins.append(f"LEFT JOIN ({keys}) {alias} ON s.{q(f.name)} = {alias}.k")
        what = "known firm" if ref_table == "firms" else f"stored {ref_table} record"
        code = plan.add(
            f.name,
            f"{f.name} is not a {what} (ingest the {ref_table} file first, "
            f"or in the same directory)",
        )
        ref_branches.append(f"WHEN s.{q(f.name)} IS NOT NULL AND {alias}.k IS NULL THEN {code}")
    dup = plan.add(
        rt.id_field,
        f"duplicate {rt.id_field}: an earlier valid row of the same file or request has it "
        "(that row is kept)",
    )
    conflict = plan.add(
        rt.id_field,
        f"{rt.id_field} is already stored with different content "
        "(records are never overwritten; correct the file or use a new ID)",
    )
    ref_code = f"CASE {' '.join(ref_branches)} END" if ref_branches else "CAST(NULL AS INTEGER)"
    same = " AND ".join(f"s.{q(c)} IS NOT DISTINCT FROM t.{q(c)}" for c in rt.columns)
    joined = f"{stage} s {' '.join(joins)}"
    return f"""
WITH d AS (
  SELECT s.{idf} AS k, min(s.rowid) AS first_row FROM {joined}
  WHERE s._code IS NULL AND {ref_code} IS NULL
  GROUP BY s.{idf} HAVING count(*) > 1
),
w AS (
  SELECT s.rowid + {line_offset} AS _line,
    coalesce(s._code, {ref_code}, CASE
      WHEN d.k IS NOT NULL AND s.rowid <> d.first_row THEN {dup}
      WHEN t.{idf} IS NOT NULL AND NOT ({same}) THEN {conflict}
    END) AS _code,
    t.{idf} IS NOT NULL AS _stored
  FROM {joined} LEFT JOIN d ON s.{idf} = d.k
  LEFT JOIN {q(rt.name)} t ON s.{idf} = t.{idf}
)
SELECT _line, _code, _code IS NULL AND _stored AS _present FROM w
WHERE _code IS NOT NULL OR _stored
"""


def codes_values(plan: CheckPlan) -> str:
    """A ``VALUES`` list ``(code, field, reason)`` for joining codes to their texts."""
    rows = [f"({i}, {lit(c.field)}, {lit(c.reason)})" for i, c in enumerate(plan.checks) if i > 0]
    return "VALUES " + ", ".join(rows)


def safe_error(message: str) -> str:
    """First meaningful line of a DuckDB error, without its ``... Error:`` prefix."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), message)
    return re.sub(r"^[A-Za-z ]*Error:\s*", "", line)
