"""Webhooks and events: endpoints a tenant registers, the events it gets, their deliveries.

``POST /v1/webhooks`` registers an endpoint for some event types and answers with its signing
secret (once); ``GET /v1/webhooks`` lists them, ``DELETE /v1/webhooks/{id}`` removes one and
``POST /v1/webhooks/{id}/test`` sends it a ``webhook.test`` event. ``GET /v1/events`` lists
the tenant's events with every delivery attempt; ``POST /v1/events/{id}/redeliver`` queues an
event's deliveries again. Deliveries are signed per the Standard Webhooks specification; the
payload of each event type is in the OpenAPI document's ``webhooks`` section
(:func:`document`). See ``docs/webhooks.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServiceDep
from api.schemas import ErrorOut
from api.security import Principal, require
from credit.events import EVENT_TYPES
from credit.webhooks import SUBSCRIBABLE

router = APIRouter(prefix="/v1", tags=["webhooks"])

Caller = Annotated[Principal, Depends(require("lender", "platform", "admin"))]
WebhookId = Annotated[
    str, Path(pattern=r"^wh_[0-9a-f]{24}$", examples=["wh_0123456789abcdef01234567"])
]
EventId = Annotated[str, Path(pattern=r"^msg_[0-9a-f]{27}$")]
EventType = Literal[
    "decision.created",
    "offer.updated",
    "consent.granted",
    "consent.declined",
    "consent.revoked",
    "review.completed",
    "monitoring.alert",
]
assert set(EventType.__args__) == set(SUBSCRIBABLE)  # type: ignore[attr-defined]

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "The service database is unavailable."},
}
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such webhook or event for this tenant."}
}


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=2000,
        description="The endpoint: https only (http on loopback only where the service "
        "allows it, for development). Redirects are not followed.",
        examples=["https://lender.example/hooks/tradecredit"],
    )
    event_types: list[EventType] = Field(min_length=1, examples=[["decision.created"]])
    description: str | None = Field(None, max_length=200)


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    event_types: list[str]
    description: str | None
    created_at: str
    created_by: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, `whsec_...`): shown this once; "
        "verify each delivery's `webhook-signature` with it."
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class WebhookDeleted(WebhookOut):
    deleted_at: str


class AttemptOut(BaseModel):
    attempt: int
    dispatcher: str
    started_at: str | None
    outcome: Literal["sending", "delivered", "failed", "abandoned"]
    status_code: int | None
    latency_ms: float | None
    error: str | None


class DeliveryOut(BaseModel):
    delivery_id: str
    webhook_id: str
    status: Literal["pending", "delivering", "delivered", "failed"]
    attempts: int
    max_attempts: int
    next_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    delivered_at: str | None
    attempt_log: list[AttemptOut]


class EventOut(BaseModel):
    event_id: str = Field(description="The `webhook-id` of every delivery of this event.")
    type: str
    firm_id: str | None
    created_at: str
    data: dict[str, Any]
    deliveries: list[DeliveryOut]


class EventList(BaseModel):
    events: list[EventOut]
    next_after: str | None = Field(description="Pass as `after` for the next page.")


@router.post(
    "/webhooks",
    status_code=201,
    summary="Register a webhook endpoint",
    description="Events of the chosen types are POSTed to the URL, signed per the Standard "
    "Webhooks specification with the secret in this answer (shown once). Roles: lender, "
    "platform, admin.",
    response_model=WebhookCreated,
    responses={**_ERR, 422: {"model": ErrorOut, "description": "URL or event types refused."}},
)
def create_webhook(principal: Caller, service: ServiceDep, body: WebhookIn) -> dict[str, Any]:
    hook, secret = service.create_webhook(
        body.url, list(body.event_types), caller=principal, description=body.description
    )
    return {**hook, "secret": secret}


@router.get(
    "/webhooks",
    summary="The tenant's webhook endpoints",
    response_model=WebhookList,
    responses=_ERR,
)
def list_webhooks(principal: Caller, service: ServiceDep) -> dict[str, Any]:
    return {"webhooks": service.list_webhooks(caller=principal)}


@router.delete(
    "/webhooks/{webhook_id}",
    summary="Delete a webhook endpoint",
    description="Nothing more is sent to it; its deliveries not yet sent are failed.",
    response_model=WebhookDeleted,
    responses={**_ERR, **_404},
)
def delete_webhook(principal: Caller, service: ServiceDep, webhook_id: WebhookId) -> dict:
    return service.delete_webhook(webhook_id, caller=principal)


@router.post(
    "/webhooks/{webhook_id}/test",
    status_code=202,
    summary="Send a test event to one endpoint",
    description="Queues a `webhook.test` event for this endpoint only; follow its delivery "
    "with `GET /v1/events?type=webhook.test`.",
    response_model=EventOut,
    responses={**_ERR, **_404},
)
def test_webhook(principal: Caller, service: ServiceDep, webhook_id: WebhookId) -> dict:
    return service.test_webhook(webhook_id, caller=principal)


@router.get(
    "/events",
    summary="The tenant's events, with every delivery attempt",
    description="Oldest first. Page with `after` (the last `event_id` seen, or `next_after`).",
    response_model=EventList,
    responses={**_ERR, 422: {"model": ErrorOut, "description": "Unknown event type."}},
)
def list_events(
    principal: Caller,
    service: ServiceDep,
    type: Annotated[str | None, Query(description=", ".join(EVENT_TYPES))] = None,
    firm_id: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    found = service.events(caller=principal, type=type, firm_id=firm_id, after=after, limit=limit)
    return {
        "events": found,
        "next_after": found[-1]["event_id"] if len(found) == limit else None,
    }


@router.post(
    "/events/{event_id}/redeliver",
    status_code=202,
    summary="Deliver an event again",
    description="Queues the event's deliveries again with a fresh set of attempts (a failed "
    "one, or one delivered already: receivers drop a duplicate by its `webhook-id`).",
    response_model=EventOut,
    responses={
        **_ERR,
        **_404,
        409: {"model": ErrorOut, "description": "Nothing to redeliver (endpoints deleted)."},
    },
)
def redeliver(principal: Caller, service: ServiceDep, event_id: EventId) -> dict[str, Any]:
    return service.redeliver_event(event_id, caller=principal)


# ---- the payloads, for the OpenAPI document's `webhooks` section ----------------------------


class _Reason(BaseModel):
    code: str | None
    text: str | None


class DecisionCreatedData(BaseModel):
    decision_id: str
    firm_id: str
    as_of: str
    scored_at: str
    pd: float
    score: int
    grade: str
    outcome: Literal["approved", "declined", "referred"] | None
    recommendation: Literal["approved", "declined"] | None
    amount: float | None
    limit: float | None
    review_id: str | None
    source: str
    model: dict[str, str | None]
    reasons: list[_Reason]


class _Offer(BaseModel):
    product: str | None
    amount: float | None
    currency: str | None
    apr: float | None
    term_days: int | None


class OfferUpdatedData(BaseModel):
    firm_id: str
    decision_id: str
    previous_decision_id: str | None
    before: _Offer | None = Field(description="The best offer before (none: there was none).")
    after: _Offer | None = Field(description="The best offer now (none: no offer now).")
    offers: int
    grade: str
    pd: float


class ConsentData(BaseModel):
    consent_id: str
    firm_id: str
    purposes: list[str]
    sources: list[str]
    state: str | None
    expires_at: str | None
    revoked_by: str | None
    at: str


class ReviewCompletedData(BaseModel):
    review_id: str
    decision_id: str
    firm_id: str
    outcome: Literal["approved", "declined"]
    recommendation: str
    override: bool
    reason_codes: list[str]
    decided_by: str
    closed_at: str


class _Previous(BaseModel):
    pd: float
    grade: str
    scored_at: str | None


class MonitoringAlertData(BaseModel):
    alert_id: str
    run_id: str
    firm_id: str
    rule: str = Field(
        description="grade_down, pd_ratio, overdue_invoices, settlements_drop or "
        "shipment_problems (docs/portfolio.md)"
    )
    text: str = Field(description="What happened, in words.")
    before: Any = Field(description="The rule's measure at the previous run.")
    after: Any = Field(description="The rule's measure now.")
    reasons: list[dict[str, Any]] = Field(description="The reasons that moved most.")
    pd: float
    grade: str
    previous: _Previous | None
    exposure: float | None
    model: dict[str, str | None]
    consent_id: str | None


def _envelope(name: str, data: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "type": (str, Field(description=f"`{name}`")),
        "timestamp": (str, Field(description="When the event happened (ISO 8601, UTC).")),
        "data": (data, ...),
    }
    from pydantic import create_model

    model: type[BaseModel] = create_model(
        "".join(p.title() for p in name.replace(".", "_").split("_")) + "Event", **fields
    )
    return model


_SIGNED = (
    "Headers `webhook-id` (the event id: drop duplicates by it), `webhook-timestamp` and "
    "`webhook-signature` per the Standard Webhooks specification; answer 2xx within the "
    "timeout. Anything else is retried with exponential backoff, then marked failed."
)


def document(app: FastAPI) -> None:
    """Declare each event type's payload in the app's OpenAPI ``webhooks`` section."""
    payloads: dict[str, type[BaseModel]] = {
        "decision.created": DecisionCreatedData,
        "offer.updated": OfferUpdatedData,
        "consent.granted": ConsentData,
        "consent.declined": ConsentData,
        "consent.revoked": ConsentData,
        "review.completed": ReviewCompletedData,
        "monitoring.alert": MonitoringAlertData,
    }
    for name, data in payloads.items():
        body = _envelope(name, data)

        def receiver(event: Any) -> None:  # pragma: no cover - documentation only
            """Documented, never called."""

        receiver.__annotations__ = {"event": body, "return": None}
        app.webhooks.post(name, summary=EVENT_TYPES[name], description=_SIGNED)(receiver)
