"""The service database: API keys, the decision audit log and the online feature store.

Embedded SQLite by default (``service.db`` in the data directory); PostgreSQL through
``TRADECREDIT_DATABASE_URL``. The schema is managed by Alembic; the migration scripts ship
inside the package (:mod:`credit.migrations`) and :func:`upgrade` applies them without an
``alembic.ini``. Nothing connects at import time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while the audit log is written; NORMAL sync is durable in WAL mode
    # against process crashes, and busy_timeout makes concurrent writers wait, not fail.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A new SQLAlchemy engine for ``url`` (SQLite files get their folder created).

    Parameters
    ----------
    url : SQLAlchemy URL, e.g. ``sqlite:////abs/service.db`` or
        ``postgresql+psycopg://postgres@127.0.0.1:5432/tradecredit``.
    **kwargs : passed to :func:`sqlalchemy.create_engine`.
    """
    u = make_url(url)
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
