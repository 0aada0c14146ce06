"""``POST /v1/score`` and ``POST /v1/score/batch``: decisions, recorded before they are returned.

Where the time goes decides where the work runs. A decision by ``firm_id`` is about a
millisecond of CPU (online-store read, TreeSHAP, audit insert): ``POST /v1/score`` does it in
place on the event loop, since a threadpool hop would cost a good part of that again and the
GIL lets only one thread run Python at a time anyway. Features computed from posted records
take ~10 ms and go to the threadpool so that they never hold up the short requests; so does
a batch (``def`` route).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from credit.audit import AuditUnavailableError
from api.deps import SCORE_ROLES, Lender, ModelDep, ServiceState, StateDep, current_model
from api.errors import error_body, format_validation_errors
from api.responses import FastJSONResponse
from api.schemas import (
    BatchRequest,
    BatchResponse,
    DecisionOut,
    ErrorOut,
    ScoreRequest,
)
from api.security import (
    SECURITY_REQUIREMENT,
    Principal,
    check_role,
    identify,
    key_from_headers,
)
from credit.decisions import Decision, decide, request_hash, to_utc
from credit.scoring import ScoringInputError

router = APIRouter(prefix="/v1", tags=["score"])

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not score (lender or admin)."},
    413: {"model": ErrorOut, "description": "Body too large."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "No model loaded, or the audit log is unavailable."},
}

DECISION_EXAMPLE = {
    "decision_id": "dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5",
    "firm_id": "F000123",
    "as_of": "2025-06-30T00:00:00Z",
    "pd": 0.0312,
    "score": 634,
    "grade": "C",
    "reasons": [
        {
            "code": "R07",
            "feature": "late_payment_share_180d",
            "value": 0.31,
            "contribution": 0.42,
            "text": "Many invoices paid late in the last 180 days",
        }
    ],
    "model": {"name": "tradecredit-pd", "version": "3", "run_id": "4f1c2d6e8a9b"},
    "data": {"thin_file": False, "history_months": 27.0},
    "scored_at": "2025-07-01T09:14:03.512Z",
}

_SCORE_EXAMPLES = {
    "by_firm_id": {
        "summary": "A firm from the online store, latest features",
        "value": {"firm_id": "F000123"},
    },
    "as_of_full": {
        "summary": "As of a date, with every SHAP contribution",
        "value": {"firm_id": "F000123", "as_of": "2025-06-30", "explain": "full"},
    },
    "posted_records": {
        "summary": "Posted histories (features computed on the fly)",
        "value": {
            "as_of": "2025-06-30",
            "firm": {
                "firm_id": "F000123",
                "registered_at": "2021-04-12",
                "business_model": "b2c",
                "main_category": "home_furnishings",
                "home_region": "CN-ZJ",
            },
            "records": {
                "customs": [
                    {
                        "declaration_id": "D1",
                        "firm_id": "F000123",
                        "declared_at": "2025-05-02",
                        "direction": "export",
                        "regime": "9610",
                        "hs_code": "940360",
                        "origin_country": "CN",
                        "destination_country": "US",
                        "value_usd": 1840.5,
                        "quantity": 12,
                        "status": "cleared",
                        "tax_refund_usd": 0,
                        "tax_refund_status": "none",
                    }
                ],
                "shipments": [
                    {
                        "shipment_id": "S1",
                        "firm_id": "F000123",
                        "declaration_id": "D1",
                        "shipped_at": "2025-05-03",
                        "closed_at": "2025-05-15",
                        "mode": "express",
                        "origin_country": "CN",
                        "destination_country": "US",
                        "destination_type": "consumer",
                        "weight_kg": 14.2,
                        "declared_value_usd": 1840.5,
                        "status": "delivered",
                    }
                ],
                "payments": [
                    {
                        "payment_id": "P1",
                        "firm_id": "F000123",
                        "kind": "settlement",
                        "direction": "in",
                        "amount_usd": 1712.0,
                        "currency": "USD",
                        "counterparty_id": "amazon",
                        "occurred_at": "2025-05-20",
                        "paid_at": "2025-05-20",
                    }
                ],
            },
        },
    },
}


async def _score_caller(request: Request) -> Principal:
    """The hottest route's caller check: the key, then the role, with the functions behind
    :data:`api.deps.Lender`, as one dependency instead of a chain of four (FastAPI spends
    ~0.2 ms a request solving those). Still a dependency, so a request without a valid key
    gets its 401 before its body is looked at."""
    return check_role(identify(request, key_from_headers(request)), SCORE_ROLES)


ScoreCaller = Annotated[Principal, Depends(_score_caller)]


class _ItemError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail


def _features_from_records(req: ScoreRequest, as_of: datetime) -> dict[str, Any]:
    try:
        import features as feature_pipeline
    except ImportError as exc:  # pragma: no cover - the package is part of the project
        raise _ItemError(503, f"online feature path unavailable: {exc}") from exc
    compute = getattr(feature_pipeline, "compute", None)
    if compute is None:
        raise _ItemError(503, "the online feature path (features.compute) is not available")
    records = req.records.model_dump() if req.records is not None else {}
    firm = req.firm.model_dump() if req.firm is not None else None
    try:
        out = compute(records, as_of, firm=firm)
    except ValueError as exc:  # the records break a rule the schema cannot see
        raise _ItemError(422, f"records cannot be turned into features: {exc}") from exc
    if hasattr(out, "to_dict") and not isinstance(out, dict):  # a one-row frame or a series
        out = out.to_dict(orient="records")[0] if hasattr(out, "columns") else out.to_dict()
    return dict(out)


def _prepare(state: ServiceState, req: ScoreRequest) -> tuple[str, datetime, dict[str, Any], str]:
    """(firm_id, as_of, features, source) for one request, or an :class:`_ItemError`."""
    if req.records is not None:
        as_of = to_utc(req.as_of) if req.as_of is not None else datetime.now(UTC)
        return req.target_firm, as_of, _features_from_records(req, as_of), "posted"
    return _from_online_store(state, req)


def _from_online_store(
    state: ServiceState, req: ScoreRequest
) -> tuple[str, datetime, dict[str, Any], str]:
    if state.online is None:
        raise _ItemError(503, state.online_error or "online store unavailable")
    firm_id = req.target_firm
    try:
        found = state.online.get(firm_id, as_of=to_utc(req.as_of) if req.as_of else None)
    except Exception as exc:  # the store is down, not the client's fault
        raise _ItemError(503, f"online store unavailable: {type(exc).__name__}") from exc
    if found is None:
        when = f" at or before {req.as_of}" if req.as_of else ""
        raise _ItemError(
            404,
            f"firm {firm_id} has no features in the online store{when}; "
            "run `credit features materialize` or post its records",
        )
    as_of, feats = found
    return firm_id, to_utc(as_of), dict(feats), "online_store"


def _record(
    state: ServiceState, decisions: Sequence[Decision], principal: Any, hashes: Sequence[str]
) -> None:
    try:
        state.audit.record(decisions, principal.tenant, principal.key_id, hashes)
    except AuditUnavailableError as exc:
        state.metrics.audit_failures.inc(len(decisions))
        raise HTTPException(
            503, "the audit log is unavailable, so no decision was made; retry later"
        ) from exc
    state.metrics.observe_decisions(
        (d.score, d.grade, d.model["version"] or "unregistered") for d in decisions
    )


@router.post(
    "/score",
    summary="Score one firm",
    description="PD, score, grade and reason codes for one firm, from the online store "
    "(`firm_id`) or from posted records. The decision is recorded in the audit log before it "
    "is returned; `model` names the version that produced it. Roles: lender, admin.",
    response_model=DecisionOut,
    openapi_extra={"security": SECURITY_REQUIREMENT},
    responses={
        200: {"content": {"application/json": {"example": DECISION_EXAMPLE}}},
        404: {"model": ErrorOut, "description": "The firm has no features in the online store."},
        422: {"model": ErrorOut, "description": "Invalid request; `detail` lists field paths."},
        **_ERR,
    },
)
async def score(
    principal: ScoreCaller,
    request: Request,
    body: ScoreRequest = Body(openapi_examples=_SCORE_EXAMPLES),  # type: ignore[arg-type]
) -> Response:
    model = current_model(request)
    state: ServiceState = request.app.state.service
    try:
        if body.records is not None:  # ~10 ms of feature computation: off the event loop
            firm_id, as_of, feats, source = await run_in_threadpool(_prepare, state, body)
        else:
            firm_id, as_of, feats, source = _from_online_store(state, body)
    except _ItemError as exc:
        raise HTTPException(exc.status, exc.detail) from exc
    try:
        decision = decide(model, [(firm_id, as_of, feats)], explain=body.explain, source=source)[0]
    except ScoringInputError as exc:
        raise HTTPException(422, f"the features do not fit the model: {exc}") from exc
    _record(state, [decision], principal, [request_hash(body.model_dump(mode="json"))])
    return FastJSONResponse(decision.to_response())


@router.post(
    "/score/batch",
    summary="Score up to 1,000 firms",
    description="Each item has the shape of a `POST /v1/score` body and is validated and scored "
    "on its own: an invalid item gets its own `status` and `error`, the others are scored (one "
    "model version for the whole batch) and recorded in one transaction. Roles: lender, admin.",
    response_model=BatchResponse,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "scored": 1,
                        "failed": 1,
                        "model": DECISION_EXAMPLE["model"],
                        "results": [
                            {"index": 0, "status": 200, "decision": DECISION_EXAMPLE},
                            {
                                "index": 1,
                                "status": 404,
                                "error": {
                                    "error": "not_found",
                                    "detail": "firm F999 has no features in the online store",
                                },
                            },
                        ],
                    }
                }
            }
        },
        422: {"model": ErrorOut, "description": "Not a list of 1 to 1,000 items."},
        **_ERR,
    },
)
def score_batch(
    principal: Lender, model: ModelDep, state: StateDep, body: BatchRequest
) -> JSONResponse:
    results: list[dict[str, Any] | None] = [None] * len(body.items)
    ok_idx: list[int] = []
    prepared: list[tuple[str, datetime, dict[str, Any], str]] = []
    modes: list[Any] = []
    hashes: list[str] = []
    for i, raw in enumerate(body.items):
        try:
            req = ScoreRequest.model_validate(raw)
            prepared.append(_prepare(state, req))
            modes.append(req.explain)
            hashes.append(request_hash(req.model_dump(mode="json")))
            ok_idx.append(i)
        except ValidationError as exc:
            results[i] = _failed(i, 422, format_validation_errors(exc.errors(), ("items", i)))
        except _ItemError as exc:
            results[i] = _failed(i, exc.status, exc.detail)
    decisions: list[Decision] = []
    if prepared:
        # Score online-store and posted items separately only to label their source; keep order.
        by_pos: dict[int, Decision] = {}
        for source in ("online_store", "posted"):
            pos = [k for k, it in enumerate(prepared) if it[3] == source]
            if not pos:
                continue
            try:
                ds = decide(
                    model,
                    [prepared[k][:3] for k in pos],
                    explain=[modes[k] for k in pos],
                    source=source,
                )
            except ScoringInputError:
                # Find the offending items one by one; the rest still get scored.
                ds = []
                kept = []
                for k in pos:
                    try:
                        ds.extend(decide(model, [prepared[k][:3]], [modes[k]], source))
                        kept.append(k)
                    except ScoringInputError as exc:
                        results[ok_idx[k]] = _failed(
                            ok_idx[k], 422, f"the features do not fit the model: {exc}"
                        )
                pos = kept
            by_pos.update(zip(pos, ds, strict=True))
        order = sorted(by_pos)
        decisions = [by_pos[k] for k in order]
        _record(state, decisions, principal, [hashes[k] for k in order])
        for k, d in zip(order, decisions, strict=True):
            results[ok_idx[k]] = {"index": ok_idx[k], "status": 200, "decision": d.to_response()}
    failed = sum(1 for r in results if r is not None and r["status"] != 200)
    return JSONResponse(
        {
            "scored": len(decisions),
            "failed": failed,
            "model": model.identity(),
            "results": results,
        }
    )


def _failed(index: int, status: int, detail: Any) -> dict[str, Any]:
    return {"index": index, "status": status, "error": error_body(status, detail)}
