"""The service database: API keys, the decision audit log and the online feature store.

Embedded SQLite by default (``service.db`` in the data directory); PostgreSQL through
``TRADECREDIT_DATABASE_URL``. The schema is managed by Alembic; the migration scripts ship
inside the package (:mod:`credit.migrations`) and :func:`upgrade` applies them without an
``alembic.ini``. Nothing connects at import time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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


_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while the audit log is written; NORMAL sync is durable in WAL mode
    # against process crashes, and busy_timeout makes concurrent writers wait, not fail.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


#: The size a WAL file is cut back to when SQLite resets it, and past which
#: :class:`BackgroundCheckpoint` tries a ``TRUNCATE`` checkpoint.
WAL_LIMIT_BYTES = 64 * 1024 * 1024


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA wal_autocheckpoint=0")
    # When a writer restarts the log from its start, the file left on disk is cut to this size
    # (without it, the WAL keeps the largest size it ever reached).
    cur.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
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

    A ``PASSIVE`` checkpoint never shrinks the file, and under steady traffic a reader is
    nearly always inside the log, so it cannot restart from its start either: the WAL grew
    to 381 MB over 29,000 decisions. So the thread also runs a ``TRUNCATE`` checkpoint
    (it waits for the readers to leave the log, then cuts the file to 0 bytes) when the file
    is over ``wal_limit`` bytes or ``truncate_interval`` seconds after the last one. Writers
    wait while it runs, so it gives up after ``truncate_wait`` seconds (and tries again no
    sooner than ``interval`` x 10 later); :meth:`stop` runs a last one, waiting as long as it
    takes, so the log ends empty at shutdown.
    """

    def __init__(
        self,
        engine: Engine,
        interval: float = 1.0,
        truncate_interval: float = 300.0,
        wal_limit: int = WAL_LIMIT_BYTES,
        truncate_wait: float = 0.2,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.truncate_interval = truncate_interval
        self.wal_limit = wal_limit
        self.truncate_wait = truncate_wait
        self.checkpoints = 0
        #: ``TRUNCATE`` checkpoints that emptied the log
        self.truncations = 0
        db = engine.url.database
        self.wal_path = Path(f"{db}-wal") if db and db != ":memory:" else None
        self._last_truncate = time.monotonic()
        self._next_try = 0.0
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

    def wal_bytes(self) -> int:
        """The WAL file's size (0 when there is none)."""
        try:
            return self.wal_path.stat().st_size if self.wal_path else 0
        except FileNotFoundError:
            return 0

    def truncate(self, wait: float | None = None) -> bool:
        """A ``TRUNCATE`` checkpoint, waiting at most ``wait`` seconds for readers and writers
        (``None``: the connection's busy timeout); whether it emptied the log."""
        try:
            with self.engine.connect() as conn:
                if wait is not None:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait * 1000)}")
                try:
                    busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
                finally:
                    if wait is not None:
                        conn.exec_driver_sql(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        except Exception as exc:
            log.warning("WAL truncate failed: %s: %s", type(exc).__name__, exc)
            return False
        if busy:  # readers stayed in the log: the next round tries again
            return False
        self.truncations += 1
        self._last_truncate = time.monotonic()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            due = now - self._last_truncate >= self.truncate_interval
            if (due or self.wal_bytes() > self.wal_limit) and now >= self._next_try:
                if not self.truncate(self.truncate_wait):
                    self._next_try = time.monotonic() + 10 * self.interval
            else:
                self._checkpoint()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint, which empties the log."""
        self._stop.set()
        self._thread.join(timeout=10)
        if not self.truncate():
            self._checkpoint()


def _private_file(db: Path) -> None:
    """Create the SQLite file ``db`` readable by its owner only (0600): it holds API key
    hashes, link grants and every decision with its feature vector. SQLite gives the ``-wal``
    and ``-shm`` files it creates the database file's mode. A file found readable by others
    is narrowed to 0600 (and said so)."""
    try:
        fd = os.open(db, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        for f in (db, *(Path(f"{db}{x}") for x in ("-wal", "-shm", "-journal"))):
            try:
                mode = f.stat().st_mode & 0o777
                if mode & 0o077:
                    f.chmod(0o600)
                    log.warning("%s was mode %s; now 0600 (owner only)", f, oct(mode))
            except FileNotFoundError:
                continue
            except PermissionError as exc:  # another user's file: say so, open it anyway
                log.warning("cannot make %s owner-only: %s", f, exc)
    else:
        os.close(fd)  # an empty file is an empty SQLite database


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
        if u.database and u.database != ":memory:" and not u.query.get("uri"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            _private_file(Path(u.database))
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


def dispose_engines(url: str | None = None) -> None:
    """Close every cached engine (tests, forked workers), or only ``url``'s (service shutdown:
    SQLite removes the WAL when the last connection to the file closes)."""
    with _engines_lock:
        for key in [k for k in _engines if url is None or k == url]:
            _engines.pop(key).dispose()


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


def head_revision() -> str:
    """The newest revision the packaged migrations define (what :func:`upgrade` reaches)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return str(head)


def current_revision(engine: Engine | None = None) -> str | None:
    """The schema revision the database is at (``None`` before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = engine or get_engine()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def has_table(engine: Engine, name: str) -> bool:
    """Whether ``name`` exists in the database."""
    return inspect(engine).has_table(name)
