"""Reloads reach every worker: ``POST /v1/admin/reload`` swaps the model in the worker that
received it and records a row in ``model_reloads``; every worker (of this process group or
of another replica on the same service database) polls that table and loads the champion
when a newer row appears. A worker started later begins at the newest row: it loaded the
champion at startup already."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceState

log = logging.getLogger("tradecredit.api")

_meta = sa.MetaData()
model_reloads = sa.Table(
    "model_reloads",
    _meta,
    sa.Column("reload_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_id", sa.String(32)),
    sa.Column("model_version", sa.String(64)),
)
_LATEST = sa.select(sa.func.coalesce(sa.func.max(model_reloads.c.reload_id), 0))


def latest_reload(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(_LATEST).scalar_one())


def record_reload(engine: Engine, key_id: str | None, version: str | None) -> int:
    """Record a reload; returns its id (the generation every worker should reach)."""
    with engine.begin() as conn:
        res = conn.execute(
            model_reloads.insert().values(
                requested_at=datetime.now(UTC), key_id=key_id, model_version=version
            )
        )
        key = res.inserted_primary_key
        return int(key[0]) if key and key[0] is not None else latest_reload(engine)


def follow_once(state: ServiceState) -> bool:
    """Load the champion if another worker recorded a reload since this one last looked.

    Returns whether a model was loaded. A failed load keeps the current model and is retried
    at the next look; a failed look (database down) is logged and retried."""
    holder = state.models
    try:
        newest = latest_reload(state.engine)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("reload check failed", extra={"reason": type(exc).__name__})
        return False
    if newest <= holder.reload_seen:
        return False
    try:
        old, new = holder.load()
    except Exception as exc:
        log.error("following a reload failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
        return False
    holder.reload_seen = newest
    state.metrics.set_model(new.name, new.version)
    log.info(
        "model reloaded (following another worker)",
        extra={"old": old.identity() if old else None, "new": new.identity()},
    )
    return True


async def follow_reloads(state: ServiceState, every: float) -> None:
    """Poll for reloads every ``every`` seconds until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(follow_once, state)
        except Exception as exc:  # never let the follower die: the next look may work
            log.error("reload follower error", extra={"reason": f"{type(exc).__name__}: {exc}"})
