"""The service as ``bench_api.py`` serves it: the product's app plus one same-work route.

``POST /bench/same-work`` does what ``POST /v1/score`` does around the decision itself: the
same key and role check (as one dependency), the same JSON body validated into a
``ScoreRequest``, the same audit write (one row of the same size: a decision with a full
feature vector and four reasons, in its own transaction) and an orjson answer of the same
shape. It reads no features and runs no model. The score route's rate as a ratio of this
route's is what the decision itself costs (online-store read, TreeSHAP, shaping), with the
HTTP and bookkeeping that every request pays taken out.

Served with ``python -m uvicorn --factory benchmarks.bench_app:create_app`` from the
repository root. Only the benchmark uses it; it is not part of the product.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from api.deps import SCORE_ROLES
from api.main import create_app as create_service
from api.responses import FastJSONResponse
from api.schemas import ScoreRequest
from api.security import Principal, check_role, identify, key_from_headers
from credit.decisions import Decision, new_decision_id, request_hash
from features.catalog import feature_names

SAME_WORK_PATH = "/bench/same-work"


async def _caller(request: Request) -> Principal:
    return check_role(identify(request, key_from_headers(request)), SCORE_ROLES)


def _decision(firm_id: str) -> Decision:
    """A decision of the usual size, made without a model."""
    names = feature_names()
    now = datetime.now(UTC)
    reasons = [
        {"code": f"R{i:02d}", "feature": names[i], "value": 0.5, "contribution": 0.1,
         "text": "a reason of the usual length for a decision", "hint": "a hint of its length"}
        for i in range(4)
    ]  # fmt: skip
    return Decision(
        decision_id=new_decision_id(),
        firm_id=firm_id,
        as_of=now,
        pd=0.05,
        score=600,
        grade="C",
        reasons=reasons,
        model={"name": "tradecredit-pd", "version": "1", "run_id": "bench"},
        data={"thin_file": False, "history_months": 24.0},
        scored_at=now,
        features={name: 0.5 for name in names},
    )


def create_app() -> FastAPI:
    app = create_service()

    @app.post(SAME_WORK_PATH, include_in_schema=False)
    async def same_work(
        principal: Annotated[Principal, Depends(_caller)], request: Request, body: ScoreRequest
    ) -> Response:
        decision = _decision(body.target_firm)
        audit = request.app.state.service.audit
        audit.record(
            [decision],
            principal.tenant,
            principal.key_id,
            [request_hash(body.model_dump(mode="json"))],
        )
        return FastJSONResponse(decision.to_response())

    return app
