"""The scoring service: ``create_app()`` builds the FastAPI application.

Nothing happens at import: the lifespan applies the database migrations, opens the stores and
starts loading the champion model (``models:/tradecredit-pd@champion``, falling back to the
local copy) on a thread of its own. The service answers as soon as the load is done or after
:data:`STARTUP_MODEL_WAIT_SECONDS`, whichever comes first: a registry that does not answer
never keeps the port closed. Until a model is in, ``/healthz`` answers, ``/readyz`` is 503 with
what the load is waiting for, and scoring is 503 "no model loaded". Run it with ``credit
serve`` or ``uvicorn --factory api.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.deps import ModelHolder, ServiceState
from api.logging import configure_logging, request_id_var
from api.metrics import Metrics
from api.ratelimit import TokenBucket
from api.reloads import follow_reloads, latest_reload
from api.routes import (
    consents,
    decisions,
    health,
    model,
    offers,
    portfolio,
    records,
    recourse,
    reviews,
    score,
    seller_consents,
    sellers,
    webhooks,
)
from credit.audit import AuditLog
from credit.db import BackgroundCheckpoint, dispose_engines, make_engine, upgrade
from credit.portfolio import run_portfolio_schedule
from credit.scoring import CHAMPION_URI, ScoringModel, redact_uri
from credit.service import CreditService, SnapshotStore
from credit.settings import Settings, get_settings
from credit.webhooks import Dispatcher, run_in_service
from features.online import OnlineStore

log = logging.getLogger("tradecredit.api")

DESCRIPTION = """
Credit decisions for small cross-border e-commerce firms: calibrated probability of default,
score, grade and the reasons behind them (exact TreeSHAP), from customs, logistics and payment
histories.

**Authentication**: every `/v1` endpoint needs an API key (`credit keys create --tenant NAME
--role lender|platform|admin`), sent as `X-API-Key: <key>` or `Authorization: Bearer <key>`.

**Errors** are JSON `{"error", "detail", "request_id"}`: 401 no or bad key, 403 wrong role,
404 unknown firm or decision, 413 body too large, 422 invalid input (with field paths), 429 rate
limited (see `Retry-After`), 503 no model or audit log unavailable (no decision is returned
unless it was recorded).
"""

ModelLoader = Callable[[Settings], ScoringModel]

#: How long startup waits for the first model load before it serves anyway (the load goes on
#: in the background; ``/readyz`` is 503 until it is done).
STARTUP_MODEL_WAIT_SECONDS = 2.0


def default_model_loader(settings: Settings) -> ScoringModel:
    """The registry champion (or its cached copy when the registry is unreachable or does not
    answer within ``settings.registry_timeout_seconds``)."""
    return ScoringModel.load(
        CHAMPION_URI,
        tracking_uri=settings.tracking_uri,
        registry_timeout=settings.registry_timeout_seconds,
    )


class _BodyTooLargeError(Exception):
    pass


class RequestContextMiddleware:
    """Request IDs, body-size limit, access log and request metrics (pure ASGI, cheap)."""

    def __init__(self, app: ASGIApp, max_body: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _request_id(scope)
        token = request_id_var.set(rid)
        status = {"code": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body:
                await _send_error(send_wrapper, 413, f"request body over {self.max_body} bytes")
                return
            app_receive = receive
            if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
                # No Content-Length (chunked): read the body here, up to the limit, so an
                # oversized upload is refused before any route or parser sees it.
                chunks: list[bytes] = []
                size = 0
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise _BodyTooLargeError
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                body = b"".join(chunks)
                replayed = False

                async def buffered_receive() -> Message:
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                app_receive = buffered_receive
            await self.app(scope, app_receive, send_wrapper)
        except _BodyTooLargeError:
            if not status["started"]:
                await _send_error(send_wrapper, 413, f"request body over {self.max_body} bytes")
        except Exception as exc:  # a bug: JSON 500 without a trace, the trace in the log
            log.error("unhandled error", exc_info=exc)
            if not status["started"]:
                await _send_error(send_wrapper, 500, "internal error; quote the request_id")
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.observe_request(path, method, int(status["code"]), elapsed)
            principal = getattr(scope.get("state", {}).get("principal"), "key_id", None)
            tenant = getattr(scope.get("state", {}).get("principal"), "tenant", None)
            log.info(
                "request",
                extra={
                    "request_id": rid,
                    "method": method,
                    "route": path,
                    "status": status["code"],
                    "ms": round(elapsed * 1000, 3),
                    "tenant": tenant,
                    "key_id": principal,
                },
            )
            request_id_var.reset(token)


def _request_id(scope: Scope) -> str:
    for k, v in scope.get("headers", ()):
        if k == b"x-request-id":
            s = v.decode("latin-1")
            if 0 < len(s) <= 64 and all(c.isalnum() or c in "-_." for c in s):
                return s
            break
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps(errors.error_body(status, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _open_online_store(settings: Settings) -> tuple[SnapshotStore | None, str | None]:
    try:
        return OnlineStore(settings.service_database_url), None
    except Exception as exc:
        return None, f"online store unavailable: {type(exc).__name__}: {exc}"


def _start_first_load(holder: ModelHolder, metrics: Metrics) -> asyncio.Event:
    """Load the model on a daemon thread (a registry call cannot be interrupted, and must not
    keep the process alive past SIGTERM); the returned event is set when the load is over."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def run() -> None:
        try:
            _, m = holder.load()
            metrics.set_model(m.name, m.version)
            log.info("model loaded", extra={"model": m.identity(), "loaded_from": m.loaded_from})
        except Exception as exc:  # serve anyway: readyz says why, scoring answers 503
            holder.error = f"{type(exc).__name__}: {exc}"
            log.error("no model loaded", extra={"reason": holder.error})
        finally:
            holder.end_loading()
            with contextlib.suppress(RuntimeError):  # the loop is gone: shutting down
                loop.call_soon_threadsafe(done.set)
        # Startup leaves ~300,000 long-lived objects (MLflow, pandas, scikit-learn, the
        # model); a full garbage collection walks them all (~200 ms on this machine), which
        # shows up as the slowest requests. Freezing them takes them out of every collection.
        gc.collect()
        gc.freeze()

    threading.Thread(target=run, name="model-load", daemon=True).start()
    return done


def create_app(
    settings: Settings | None = None,
    model_loader: ModelLoader | None = None,
    migrate: bool = True,
    online_store: SnapshotStore | None = None,
) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings : configuration (default: ``get_settings()``, or its override in
        ``app.dependency_overrides`` when the app starts).
    model_loader : how to get the model (default: the registry champion with local fallback);
        called at startup and by ``POST /v1/admin/reload``.
    migrate : apply the database migrations at startup.
    online_store : an object with ``get(firm_id, as_of=None) -> (as_of, features) | None``
        (default: ``features.online.OnlineStore`` on the service database).
    """
    metrics = Metrics()
    loader = model_loader or default_model_loader

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or app.dependency_overrides.get(get_settings, get_settings)()
        configure_logging(s.api_log_level)
        engine = make_engine(s.service_database_url)
        checkpoint = BackgroundCheckpoint(engine) if engine.dialect.name == "sqlite" else None
        if migrate:
            upgrade(engine)
        holder = ModelHolder(lambda: loader(s))
        holder.begin_loading(
            f"loading {CHAMPION_URI} from the model registry at {redact_uri(s.tracking_uri)} "
            f"(up to {s.registry_timeout_seconds:g} s, then the cached copy)"
            if loader is default_model_loader
            else "loading the model"
        )
        audit = AuditLog(engine)
        online: SnapshotStore | None = online_store
        online_error: str | None = None
        if online is None:
            online, online_error = _open_online_store(s)
        state: ServiceState
        state = ServiceState(
            settings=s,
            engine=engine,
            audit=audit,
            models=holder,
            metrics=metrics,
            key_limiter=TokenBucket(s.api_rate_limit, s.api_rate_burst),
            auth_failures=TokenBucket(1.0, 20),
            credit=CreditService.from_settings(
                lambda: state.settings,
                model=lambda: holder.current,
                online=online,
                online_error=online_error,
                audit=audit,
                observer=metrics,
            ),
            online=online,
            online_error=online_error,
        )
        app.state.service = state
        first_load = _start_first_load(holder, metrics)
        follower = None
        try:  # reloads recorded before this worker started are already in its model
            holder.reload_seen = latest_reload(engine)
        except SQLAlchemyError as exc:
            log.warning("reload log unreadable", extra={"reason": type(exc).__name__})
        if s.api_reload_poll_seconds > 0:
            follower = asyncio.create_task(follow_reloads(state, s.api_reload_poll_seconds))
        # the outbox's dispatcher (or a `credit events dispatch` process of its own)
        stop_background = asyncio.Event()
        background: list[asyncio.Task[None]] = []
        if s.webhooks_dispatch:
            dispatcher = Dispatcher(engine, lambda: state.settings)
            app.state.dispatcher = dispatcher
            background.append(asyncio.create_task(run_in_service(dispatcher, stop_background)))
        scheduled: list[asyncio.Task[None]] = []
        if s.portfolio_interval_minutes > 0:  # re-score the watched firms on a schedule
            scheduled.append(
                asyncio.create_task(
                    run_portfolio_schedule(
                        lambda: state.credit, lambda: state.settings.portfolio_interval_minutes
                    )
                )
            )
        # Wait a little for the model (a local load takes well under a second, and a service
        # that starts ready is simpler to run); past that, serve and let the load finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_load.wait(), STARTUP_MODEL_WAIT_SECONDS)
        if holder.loading is not None:
            log.warning("serving before a model is loaded", extra={"waiting_for": holder.loading})
        try:
            yield
        finally:
            stop_background.set()
            for task in scheduled:
                task.cancel()
            if background:
                _, late = await asyncio.wait(background, timeout=s.webhooks_timeout_seconds + 2)
                for task in late:
                    task.cancel()
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            if checkpoint is not None:
                checkpoint.stop()  # a last TRUNCATE checkpoint: the WAL ends at 0 bytes
            engine.dispose()
            # The online store's engine on the same file too: SQLite deletes the WAL when the
            # last connection to the database closes.
            dispose_engines(s.service_database_url)

    app = FastAPI(
        title="tradecredit scoring service",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body=(settings or get_settings()).api_max_body_bytes,
        metrics=metrics,
    )
    app.include_router(health.router)
    app.include_router(score.router)
    app.include_router(decisions.router)
    app.include_router(model.router)
    app.include_router(offers.router)
    app.include_router(recourse.router)
    app.include_router(sellers.router)
    app.include_router(records.router)
    app.include_router(consents.router)
    app.include_router(seller_consents.router)
    app.include_router(reviews.router)
    app.include_router(webhooks.router)
    app.include_router(portfolio.router)
    webhooks.document(app)
    return app
