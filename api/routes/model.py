"""``GET /v1/model`` (the champion's card) and ``POST /v1/admin/reload`` (swap in the champion)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy.exc import SQLAlchemyError

from api.deps import Admin, AnyRole, ModelDep, StateDep
from api.reloads import record_reload
from api.schemas import ErrorOut, ReloadOut

log = logging.getLogger("tradecredit.api")
router = APIRouter(prefix="/v1", tags=["model"])

_CARD_EXAMPLE = {
    "name": "tradecredit-pd",
    "version": "3",
    "run_id": "4f1c2d6e8a9b",
    "catalog_version": "1",
    "features": ["firm_age_months", "late_payment_share_180d", "settlement_volume_90d"],
    "categorical_features": [],
    "scale": {
        "base_score": 600.0,
        "base_odds": 50.0,
        "pdo": 20.0,
        "min_score": 300.0,
        "max_score": 850.0,
        "bands": [["A", 0.01], ["B", 0.02], ["C", 0.05], ["D", 0.1], ["E", 0.2], ["F", 1.0]],
    },
    "calibration": "isotonic",
    "trained_at": "2025-07-01T08:00:00Z",
    "metrics": {"oot": {"auc": 0.78, "brier": 0.041}},
}


@router.get(
    "/model",
    summary="The model in service",
    description="The champion's card: version, run, training time, out-of-time metrics, "
    "features and the score scale. Roles: any.",
    responses={
        200: {"content": {"application/json": {"example": _CARD_EXAMPLE}}},
        401: {"model": ErrorOut},
        429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
        503: {"model": ErrorOut, "description": "No model loaded."},
    },
)
def model_card(principal: AnyRole, model: ModelDep) -> dict[str, Any]:
    card: dict[str, Any] = model.card()
    return card


@router.post(
    "/admin/reload",
    summary="Load the current champion and swap it in",
    description="Loads `models:/tradecredit-pd@champion` and swaps it in atomically: requests "
    "in flight finish with the model they started with, later ones use the new one. If the new "
    "model cannot be loaded the old one stays and the answer is 503. Role: admin.",
    response_model=ReloadOut,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "previous": {"name": "tradecredit-pd", "version": "3", "run_id": "4f1c"},
                        "current": {"name": "tradecredit-pd", "version": "4", "run_id": "9e2a"},
                    }
                }
            }
        },
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
        503: {"model": ErrorOut, "description": "The new model could not be loaded."},
    },
)
def reload_model(principal: Admin, state: StateDep) -> dict[str, Any]:
    try:
        old, new = state.models.load()
    except Exception as exc:
        log.error("reload failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
        raise HTTPException(
            503, f"could not load the champion ({type(exc).__name__}: {exc}); old model kept"
        ) from exc
    state.metrics.set_model(new.name, new.version)
    log.info(
        "model reloaded", extra={"old": old.identity() if old else None, "new": new.identity()}
    )
    try:  # the other workers and replicas follow this record (api.reloads)
        state.models.reload_seen = record_reload(state.engine, principal.key_id, new.version)
        propagated = True
    except SQLAlchemyError as exc:
        log.error("reload not recorded for other workers", extra={"reason": type(exc).__name__})
        propagated = False
    return {
        "previous": old.identity() if old else None,
        "current": new.identity(),
        "propagated": propagated,
    }
