"""The service database: API keys, the decision audit log and the online feature store.

Embedded SQLite by default (``service.db`` in the data directory); PostgreSQL through
``TRADECREDIT_DATABASE_URL``. The schema is managed by Alembic; the migration scripts ship
inside the package (:mod:`credit.migrations`) and :func:`upgrade` applies them without an
``alembic.ini``. Nothing connects at import time.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def json_bytes(value: Any) -> bytes:
    """JSON as orjson writes it (numpy values included, NaN and infinities as null): a
    decision's feature vector serializes in a fifth of the standard library's time."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def json_dumps(value: Any) -> str:
    """:func:`json_bytes` as text: the engine's serializer for JSON columns (audit rows,
    offers)."""
    return json_bytes(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while the audit log is written; NORMAL sync is durable in WAL mode
    # against process crashes, and busy_timeout makes concurrent writers wait, not fail.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


class BackgroundCheckpoint:
    """SQLite WAL checkpoints on a thread of their own, not inside a request's commit.

    By default the connection whose commit takes the write-ahead log past 1,000 pages copies
    the log back into the database file then and there: every few hundred audit rows one
    decision waited several milliseconds, and every request queued behind it on the event
    loop with it. With this, the engine's connections never checkpoint; a daemon thread runs
    a ``PASSIVE`` checkpoint (it never blocks readers or writers) every ``interval`` seconds,
    and SQLite releases the GIL while it copies. Other processes writing the same file keep
    their automatic checkpoints. Start it before the engine opens its first connection.
    """

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        event.listen(engine, "connect", _no_autocheckpoint)
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _checkpoint(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except Exception as exc:  # the next round tries again; the log only grows
            log.warning("WAL checkpoint failed: %s: %s", type(exc).__name__, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._checkpoint()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._checkpoint()


class _Direct:
    """A statement SQLAlchemy rendered for the engine's dialect, run on a pooled DBAPI
    connection past SQLAlchemy's execution layer (shared by :class:`FastQuery` and
    :class:`FastInsert`). Driver errors come out as SQLAlchemy's ``OperationalError``, so
    callers handle failures as they do for any statement; a failed statement is rolled back
    and a connection that cannot even roll back is dropped from the pool."""

    def __init__(self, engine: Engine, compiled: Any) -> None:
        self.engine = engine
        self.sql = str(compiled)
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def _execute(self, work: Callable[[Any], _T], params: Any, commit: bool) -> _T:
        try:
            conn = self.engine.raw_connection()
        except self._dbapi_error as exc:  # the database is down or refuses connections
            raise OperationalError(self.sql, params, exc) from exc
        try:
            cur = conn.cursor()
            try:
                out = work(cur)
            finally:
                cur.close()
            if commit:
                conn.commit()
            return out
        except self._dbapi_error as exc:
            try:
                conn.rollback()
            except self._dbapi_error:
                conn.invalidate(exc)  # a broken connection must not go back to the pool
            raise OperationalError(self.sql, params, exc) from exc
        finally:
            conn.close()


class FastQuery(_Direct):
    """A read for the few lookups every request makes (its API key, its firm's features).

    SQLAlchemy spends ~50 µs a statement on execution contexts and result objects, more than
    SQLite takes to answer; this runs SQLAlchemy's own SQL for ``statement`` directly (see
    :class:`_Direct`). Values come back as the driver gives them: select plain columns
    (strings, numbers) or convert (SQLite returns timestamps as text).
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        super().__init__(engine, compiled)
        self._names: list[str] | None = list(compiled.positiontup or []) or None
        # values fixed in the statement (a LIMIT, a literal): bound like the others
        self._fixed = {k: v for k, v in compiled.params.items() if v is not None}

    def first(self, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row for ``params`` (by bind-parameter name), or ``None``."""
        params = {**self._fixed, **params}
        args: Any = tuple(params[n] for n in self._names) if self._names else params

        def fetch(cur: Any) -> tuple[Any, ...] | None:
            cur.execute(self.sql, args)
            row = cur.fetchone()
            return tuple(row) if row is not None else None

        return self._execute(fetch, params, commit=False)


class FastInsert(_Direct):
    """Rows inserted in one transaction (see :class:`_Direct`): the audit log's insert, made
    once per decision. The SQL and each column's conversion (JSON, timestamps, booleans) are
    SQLAlchemy's own for the engine's dialect, prepared once; only the execution layer is
    skipped (~0.1 ms a decision). Nothing is committed unless every row went in.
    """

    def __init__(self, engine: Engine, table: Any) -> None:
        dialect = engine.dialect
        compiled = table.insert().compile(dialect=dialect)
        super().__init__(engine, compiled)
        self.columns: list[str] = [c.name for c in table.columns]
        self._positional = compiled.positiontup is not None
        if self._positional and list(compiled.positiontup) != self.columns:
            raise ValueError(f"unexpected parameter order for {table.name}")
        self._convert = [
            (c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.columns
        ]

    def _params(self, row: dict[str, Any]) -> Any:
        values = [
            (conv(row.get(name)) if conv is not None else row.get(name))
            for name, conv in self._convert
        ]
        return tuple(values) if self._positional else dict(zip(self.columns, values, strict=True))

    def insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (column name -> value; absent columns are NULL) and commit."""
        params = [self._params(r) for r in rows]
        self._execute(lambda cur: cur.executemany(self.sql, params), None, commit=True)


_fast_queries: weakref.WeakKeyDictionary[Engine, dict[str, FastQuery]] = weakref.WeakKeyDictionary()


def fast_query(engine: Engine, name: str, statement: Any) -> FastQuery:
    """The :class:`FastQuery` of ``statement`` on ``engine``, rendered once and kept."""
    per_engine = _fast_queries.setdefault(engine, {})
    q = per_engine.get(name)
    if q is None:
        q = per_engine[name] = FastQuery(engine, statement)
    return q


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A new SQLAlchemy engine for ``url`` (SQLite files get their folder created).

    Parameters
    ----------
    url : SQLAlchemy URL, e.g. ``sqlite:////abs/service.db`` or
        ``postgresql+psycopg://postgres@127.0.0.1:5432/tradecredit``.
    **kwargs : passed to :func:`sqlalchemy.create_engine`.
    """
    u = make_url(url)
    kwargs.setdefault("json_serializer", json_dumps)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 10})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the settings' service database)."""
    if url is None:
        from credit.settings import get_settings

        url = get_settings().service_database_url
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, forked workers)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def alembic_config(engine: Engine) -> Any:
    """An Alembic ``Config`` pointing at the packaged migrations and at ``engine``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent; safe to call at every start)."""
    from alembic import command

    engine = engine or get_engine()
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine | None = None) -> str | None:
    """The schema revision the database is at (``None`` before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = engine or get_engine()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def has_table(engine: Engine, name: str) -> bool:
    """Whether ``name`` exists in the database."""
    return inspect(engine).has_table(name)
