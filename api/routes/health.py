"""Liveness, readiness and metrics (no API key: for orchestrators and Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.schemas import Ready
from credit.service import SnapshotStore

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    # async: it never blocks, so it costs no threadpool hop (the framework's true ceiling)
    return {"status": "ok"}


def _online_ok(store: SnapshotStore) -> dict[str, Any]:
    """One real read of the online store (a firm id no one has)."""
    try:
        store.get("__readyz__")
    except Exception as exc:  # down, locked, missing table: not ready, and why
        return {"ok": False, "reason": f"online store unreadable: {type(exc).__name__}"}
    return {"ok": True}


@router.get(
    "/readyz",
    summary="Readiness: model loaded, audit log and online store reachable",
    response_model=Ready,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "ready": True,
                        "checks": {
                            "model": {
                                "ok": True,
                                "name": "tradecredit-pd",
                                "version": "3",
                                "run_id": "4f1c2d6e8a9b",
                                "loaded_from": "registry",
                            },
                            "audit_log": {"ok": True},
                            "online_store": {"ok": True},
                        },
                    }
                }
            }
        },
        503: {"description": "Not ready; `checks` says what is missing.", "model": Ready},
    },
)
def readyz(request: Request) -> JSONResponse:
    state = request.app.state.service
    model = state.models.current
    checks: dict[str, Any] = {
        "model": (
            {"ok": True, **model.identity(), "loaded_from": model.loaded_from}
            if model is not None
            else {"ok": False, "reason": state.models.status}
        ),
        "audit_log": {"ok": state.audit.ping()},
        "online_store": (
            _online_ok(state.online)
            if state.online is not None
            else {"ok": False, "reason": state.online_error}
        ),
    }
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {
                    "example": 'tradecredit_http_requests_total{method="POST",'
                    'route="/v1/score",status="200"} 42.0\n'
                }
            }
        }
    },
)
def metrics(request: Request) -> Response:
    m = request.app.state.service.metrics
    return Response(m.render(), media_type=m.content_type)
