"""The embedded record store: one DuckDB file holding the five contract tables.

The tables are created from the data contract (:mod:`credit.records`), named like the
record types and with exactly their columns, so the feature pipeline can read them
directly. Each record ID is unique in its table: ingestion guarantees it (duplicates and
conflicting re-ingestions are rejected), so no key index is kept. Two bookkeeping tables
sit beside them:

``rejected``
    every row ingestion refused: source file, line, record type, record id, the field at
    fault, the offending value (truncated) and a reason a person can act on.
``ingestions``
    one row per ingested file: its SHA-256, the counts (``read = accepted + rejected``,
    ``accepted`` including ``already_present``), when it started and finished, and the
    provider (tenant) whose records it holds (``credit ingest --source``).
``record_ingestions``
    per stored record, the ingestion that added it (``file_<n>`` for a file, ``push_<hex>``
    for a record pushed over HTTP and copied here by the feature build), its provider and
    since when it is known (the bitemporal rule of :mod:`credit.lineage`). Records stored
    before this table existed have no row: they count as the operator's, known from the
    start.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from credit.records import RECORD_TYPES
from credit.settings import get_settings

#: Longest offending value kept in ``rejected.value``; longer values are cut and marked.
MAX_VALUE_CHARS = 200

REJECTED_SQL = """
CREATE TABLE IF NOT EXISTS rejected (
  ingestion_id BIGINT NOT NULL,
  source_file VARCHAR NOT NULL,
  line BIGINT,
  record_type VARCHAR NOT NULL,
  record_id VARCHAR,
  field VARCHAR,
  value VARCHAR,
  reason VARCHAR NOT NULL,
  ingested_at TIMESTAMP NOT NULL
)
"""

INGESTIONS_SQL = """
CREATE TABLE IF NOT EXISTS ingestions (
  ingestion_id BIGINT PRIMARY KEY,
  file VARCHAR NOT NULL,
  sha256 VARCHAR NOT NULL,
  record_type VARCHAR NOT NULL,
  read BIGINT NOT NULL,
  accepted BIGINT NOT NULL,
  already_present BIGINT NOT NULL,
  rejected BIGINT NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP NOT NULL,
  provider VARCHAR DEFAULT 'operator'
)
"""


RECORD_INGESTIONS_SQL = """
CREATE TABLE IF NOT EXISTS record_ingestions (
  record_type VARCHAR NOT NULL,
  record_id VARCHAR NOT NULL,
  ingestion VARCHAR NOT NULL,
  provider VARCHAR NOT NULL,
  known_at TIMESTAMP NOT NULL
)
"""

#: The provider of records ingested without ``--source``.
OPERATOR_SOURCE = "operator"


def open_store(path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the record store, creating it and its tables when needed.

    Parameters
    ----------
    path : the DuckDB file; default ``get_settings().store_path`` (the data directory is
        created when missing).
    read_only : open without write access. The store must already exist.

    Returns
    -------
    duckdb.DuckDBPyConnection
        A connection with ``TimeZone`` set to UTC; the caller closes it.

    Raises
    ------
    FileNotFoundError
        ``read_only`` was asked for a store that does not exist yet.
    """
    if path is None:
        settings = get_settings()
        if not read_only:
            settings.ensure_data_dir()
        path = settings.store_path
    path = Path(path)
    if read_only:
        if not path.exists():
            raise FileNotFoundError(
                f"record store {path} does not exist; run `credit ingest DIR` first"
            )
        con = duckdb.connect(str(path), read_only=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract tables and the bookkeeping tables if they do not exist."""
    for rt in RECORD_TYPES.values():
        # No PRIMARY KEY index: ingestion, the only writer, rejects repeated IDs itself,
        # and the index would double the time and memory of storing a large file.
        con.execute(rt.create_table_sql(primary_key=False))
    con.execute(REJECTED_SQL)
    con.execute(INGESTIONS_SQL)
    have = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ingestions'"
        ).fetchall()
    }
    if "provider" not in have:  # a store made before providers were kept
        con.execute(
            f"ALTER TABLE ingestions ADD COLUMN provider VARCHAR DEFAULT '{OPERATOR_SOURCE}'"
        )
    con.execute(RECORD_INGESTIONS_SQL)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Number of rows in each contract table and in ``rejected``."""
    names = [*RECORD_TYPES, "rejected"]
    # fetchall, not fetchone: a half-read result would block the connection's next query.
    row = con.execute(
        "SELECT " + ", ".join(f"(SELECT count(*) FROM {n})" for n in names)
    ).fetchall()[0]
    return dict(zip(names, (int(v) for v in row), strict=True))
