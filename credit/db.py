"""The service database: API keys, the decision audit log and the online feature store.

Embedded SQLite by default (``service.db`` in the data directory); PostgreSQL through
``TRADECREDIT_DATABASE_URL``. The schema is managed by Alembic; the migration scripts ship
inside the package (:mod:`credit.migrations`) and :func:`upgrade` applies them without an
``alembic.ini``. Nothing connects at import time.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

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
