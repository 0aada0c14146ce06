"""SQLAlchemy's SQL run straight on the DBAPI connection: the per-request statements.

Why: SQLAlchemy's execution layer (execution context, parameter processing, result object)
costs ~50 µs a statement, more than SQLite takes to answer a primary-key read; a request
makes two such reads (its API key, its firm's features) and, per decision, one audit insert
(~0.1 ms a decision saved there). Here SQLAlchemy still renders the SQL for the engine's
dialect and supplies each value's conversion (timestamps, JSON, booleans), once per
statement; only the execution layer is skipped. The pool, transactions and error types stay
SQLAlchemy's.

Measured against: the same statement through ``Connection.execute`` (the plain path these
classes replace), and in ``benchmarks/bench_api.py`` the decision by firm_id (section 1) and
``POST /v1/score`` with its audit row (section 2).

Results equal SQLAlchemy's: :class:`FastQuery` returns the values ``Connection.execute``
returns, :class:`FastInsert` stores the rows ``Table.insert()`` stores, on SQLite and on
PostgreSQL (``tests/unit/credit/test_fastpath_dbapi.py``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

_T = TypeVar("_T")


class DirectStatement:
    """A statement SQLAlchemy rendered for the engine's dialect, run on a pooled DBAPI
    connection past SQLAlchemy's execution layer (the base of :class:`FastQuery` and
    :class:`FastInsert`). Driver errors come out as SQLAlchemy's ``OperationalError``, so
    callers handle failures as they do for any statement; a failed statement is rolled back
    and a connection that cannot even roll back is dropped from the pool."""

    def __init__(self, engine: Engine, compiled: Any) -> None:
        self.engine = engine
        self.sql = str(compiled)
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def _execute(self, work: Callable[[Any], _T], params: Any, commit: bool) -> _T:
        shared = _shared.get()
        if shared is not None and self.engine in shared:
            return self._on(shared[self.engine], work, params, commit)
        try:
            conn = self.engine.raw_connection()
        except self._dbapi_error as exc:  # the database is down or refuses connections
            raise OperationalError(self.sql, params, exc) from exc
        try:
            return self._on(conn, work, params, commit)
        finally:
            conn.close()

    def _on(self, conn: Any, work: Callable[[Any], _T], params: Any, commit: bool) -> _T:
        """Run on ``conn`` (its own, or the one :func:`one_connection` holds); the caller
        returns it to the pool."""
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


#: engine -> the pooled DBAPI connection the statements of the current block run on
_shared: ContextVar[dict[Engine, Any] | None] = ContextVar("fastpath_connection", default=None)


@contextmanager
def one_connection(engine: Engine | None) -> Iterator[None]:
    """Run the direct statements on ``engine`` inside the block on one pooled connection.

    A decision reads its consent and writes its audit row on the service database: each
    statement taking a connection from the pool and giving it back (the pool then rolls it
    back) costs ~45 µs, more than the read itself. Reads and writes see what they would have
    seen each on its own connection (a write still commits at once). A failure to get the
    connection is raised as the first statement would raise it. ``None``: no effect.
    """
    current = _shared.get()
    if engine is None or (current is not None and engine in current):
        yield
        return
    try:
        conn = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:
        raise OperationalError("connect", None, exc) from exc
    token = _shared.set({**(current or {}), engine: conn})
    try:
        yield
    finally:
        _shared.reset(token)
        conn.close()  # back to the pool, which rolls back what a read left open


class FastQuery(DirectStatement):
    """The rows of a ``select``: the few lookups every request makes.

    Parameters go in as SQLAlchemy would bind them and values come out as its result would
    give them (each type's own bind and result processors for the dialect: SQLite's text
    timestamps come back as ``datetime``, its 0/1 as ``bool``).
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        super().__init__(engine, compiled)
        self._names: list[str] | None = list(compiled.positiontup or []) or None
        # values fixed in the statement (a LIMIT, a literal): bound like the others
        self._fixed = {k: v for k, v in compiled.params.items() if v is not None}
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        self._bind_procs: dict[str, Callable[[Any], Any]] = {}
        for name, bind in binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self._bind_procs[name] = proc
        self._types = [col.type.dialect_impl(dialect) for col in statement.selected_columns]
        # set at the first read: a processor may depend on the driver's type code for the column
        self._result_procs: list[tuple[int, Callable[[Any], Any]]] | None = None

    def _processors(self, description: Any) -> list[tuple[int, Callable[[Any], Any]]]:
        dialect = self.engine.dialect
        procs = []
        for i, (impl, desc) in enumerate(zip(self._types, description, strict=True)):
            proc = impl.result_processor(dialect, desc[1])
            if proc is not None:
                procs.append((i, proc))
        return procs

    def _rows(self, params: dict[str, Any], one: bool) -> list[tuple[Any, ...]]:
        params = {**self._fixed, **params}
        for name, proc in self._bind_procs.items():
            if name in params:
                params[name] = proc(params[name])
        args: Any = tuple(params[n] for n in self._names) if self._names else params

        def fetch(cur: Any) -> list[Any]:
            cur.execute(self.sql, args)
            if self._result_procs is None:
                self._result_procs = self._processors(cur.description)
            if one:
                row = cur.fetchone()
                return [] if row is None else [row]
            return list(cur.fetchall())

        out = []
        for row in self._execute(fetch, params, commit=False):
            values = list(row)
            for i, proc in self._result_procs or ():
                values[i] = proc(values[i])
            out.append(tuple(values))
        return out

    def first(self, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row for ``params`` (by bind-parameter name), or ``None``."""
        rows = self._rows(params, one=True)
        return rows[0] if rows else None

    def all(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Every row for ``params`` (a short result: a firm's consents, its providers)."""
        return self._rows(params, one=False)


class FastInsert(DirectStatement):
    """Rows of ``table`` inserted in one transaction: the audit log's insert, made once per
    decision. The SQL and each column's conversion (JSON, timestamps, booleans) are
    SQLAlchemy's own for the engine's dialect, prepared once. Nothing is committed unless
    every row went in.
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

    def params(self, row: dict[str, Any]) -> Any:
        """``row`` as the driver takes it for :attr:`sql` (values converted, in order)."""
        return self._params(row)

    def _params(self, row: dict[str, Any]) -> Any:
        values = [
            (conv(row.get(name)) if conv is not None else row.get(name))
            for name, conv in self._convert
        ]
        return tuple(values) if self._positional else dict(zip(self.columns, values, strict=True))

    def insert(
        self,
        rows: list[dict[str, Any]],
        also: Sequence[tuple[FastInsert, list[dict[str, Any]]]] = (),
    ) -> None:
        """Insert ``rows`` (column name -> value; absent columns are NULL) and commit; the
        rows of ``also`` (other tables' inserts, same engine) go in the same transaction."""
        batches = [(self.sql, [self._params(r) for r in rows])]
        batches += [(ins.sql, [ins._params(r) for r in more]) for ins, more in also if more]

        def work(cur: Any) -> None:
            # psycopg 3 sends the statements of a pipeline without waiting for each answer:
            # the decision, its review and its event rows cost one round trip, not three
            pipeline = getattr(getattr(cur, "connection", None), "pipeline", None)
            with pipeline() if pipeline is not None and len(batches) > 1 else nullcontext():
                for sql, params in batches:
                    cur.executemany(sql, params)

        self._execute(work, None, commit=True)


_fast_queries: weakref.WeakKeyDictionary[Engine, dict[str, FastQuery]] = weakref.WeakKeyDictionary()


def fast_query(engine: Engine, name: str, statement: Any) -> FastQuery:
    """The :class:`FastQuery` of ``statement`` on ``engine``, rendered once and kept under
    ``name`` (one name, one statement)."""
    per_engine = _fast_queries.setdefault(engine, {})
    q = per_engine.get(name)
    if q is None:
        q = per_engine[name] = FastQuery(engine, statement)
    return q
