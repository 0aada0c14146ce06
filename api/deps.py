"""Shared dependencies: settings, the service state, the model in service, callers by role."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from api.metrics import Metrics
from api.ratelimit import TokenBucket
from api.security import Principal, require
from credit.audit import AuditLog
from credit.keys import Role
from credit.scoring import ScoringModel
from credit.service import CreditService, SnapshotStore
from credit.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


class ModelHolder:
    """The model in service. Swapping is one reference assignment, so a request that took the
    model keeps scoring with it while a reload installs the next one."""

    def __init__(self, loader: Callable[[], ScoringModel]) -> None:
        self._loader = loader
        self._model: ScoringModel | None = None
        self._lock = threading.Lock()
        self.loaded_at: float | None = None
        self.error: str | None = None
        #: what the first load is waiting for, while it runs (``/readyz`` shows it)
        self.loading: str | None = None
        self._settled = threading.Event()
        self._settled.set()
        #: the latest ``model_reloads`` row this worker has followed (see api.reloads)
        self.reload_seen: int = 0

    @property
    def current(self) -> ScoringModel | None:
        return self._model

    @property
    def status(self) -> str:
        """Why there is no model: loading (and what for), the last error, or not loaded."""
        return self.loading or self.error or "not loaded"

    def begin_loading(self, what: str) -> None:
        """A load in the background has started; ``what`` says what it waits for."""
        self.loading = what
        self._settled.clear()

    def end_loading(self) -> None:
        """The background load is over (a model is in, or :attr:`error` says why not)."""
        self.loading = None
        self._settled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no background load is running; False when ``timeout`` ran out first."""
        return self._settled.wait(timeout)

    def load(self) -> tuple[ScoringModel | None, ScoringModel]:
        """Load a model with the loader, check it scores, swap it in; return (old, new).

        Any failure leaves the current model in place and propagates.
        """
        with self._lock:
            model = self._loader()
            # Score one all-missing row so a broken artifact fails here, not on a request.
            import numpy as np

            model.explain(np.full((1, model.n_features), np.nan), top_k=1)
            old, self._model = self._model, model
            self.loaded_at = time.time()
            self.error = None
            return old, model


@dataclass
class ServiceState:
    """Everything the routes share, built in the lifespan."""

    settings: Settings
    engine: Engine
    audit: AuditLog
    models: ModelHolder
    metrics: Metrics
    key_limiter: TokenBucket
    auth_failures: TokenBucket
    #: the use cases every route calls (:mod:`credit.service`)
    credit: CreditService
    online: SnapshotStore | None = None
    online_error: str | None = None
    started_at: float = field(default_factory=time.time)


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


# The cheap dependencies are `async def`: they never block, and a sync dependency would cost a
# threadpool hop per request.
StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_service(request: Request) -> CreditService:
    service: CreditService = request.app.state.service.credit
    return service


ServiceDep = Annotated[CreditService, Depends(get_service)]


def current_model(request: Request) -> ScoringModel:
    """The model in service, or 503 when none is loaded."""
    model: ScoringModel | None = request.app.state.service.models.current
    if model is None:
        raise HTTPException(
            503, "no model loaded: train and promote one, then POST /v1/admin/reload"
        )
    return model


async def get_model(request: Request) -> ScoringModel:
    """:func:`current_model` as a dependency."""
    return current_model(request)


ModelDep = Annotated[ScoringModel, Depends(get_model)]
SCORE_ROLES: tuple[Role, ...] = ("lender", "admin")
Lender = Annotated[Principal, Depends(require(*SCORE_ROLES))]
AnyRole = Annotated[Principal, Depends(require("lender", "platform", "admin"))]
Admin = Annotated[Principal, Depends(require("admin"))]
