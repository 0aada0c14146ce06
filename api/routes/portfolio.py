"""Portfolio monitoring: the firms a lender watches, its runs, its alerts and its report.

``POST /v1/portfolio/firms`` registers firms (listed, or every firm with a loan record the
tenant provided), each under the seller's active consent with purpose ``monitoring``; the
others are rejected with the reason. ``POST /v1/portfolio/runs`` re-scores every watched
firm now and raises the alerts of the tenant's policy (``monitoring`` section); each alert is
also a ``monitoring.alert`` event. ``GET /v1/portfolio`` (JSON) and ``GET
/v1/portfolio/report`` (HTML) show exposure and expected loss by grade, main market, customs
regime and product, the grade migration since the run before and the open alerts. See
``docs/portfolio.md``. Roles: lender, admin.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServiceDep
from api.schemas import ErrorOut
from api.security import Principal, require
from credit.portfolio import MAX_REGISTER, Portfolio, render_report
from credit.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["portfolio"])

Lender = Annotated[Principal, Depends(require("lender", "admin"))]
FirmId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, examples=["F00042"])]

_ERR: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's role may not call this endpoint."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "The service database or the model is unavailable."},
}


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    firm_ids: list[Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]] = Field(
        default_factory=list,
        max_length=MAX_REGISTER,
        description="The firms to watch (each needs the seller's monitoring consent).",
        examples=[["F00042", "F00043"]],
    )
    exposures: dict[str, Annotated[float, Field(ge=0, le=1e12)]] = Field(
        default_factory=dict,
        description="Optional exposure per firm, in USD (default: from the tenant's loans).",
        examples=[{"F00042": 60000}],
    )
    from_loans: bool = Field(
        False, description="Also watch every firm with a loan record the tenant provided."
    )


class Rejected(BaseModel):
    firm_id: str
    reason: str


class RegisterOut(BaseModel):
    sent: int = Field(description="Distinct firms named (and found in the loans): registered "
                      "+ rejected.")  # fmt: skip
    registered: int
    already_watched: int
    rejected: list[Rejected]
    firm_ids: list[str]


class RunOut(BaseModel):
    run_id: str | None
    tenant: str
    watched: int
    scored: int
    skipped: list[Rejected]
    alerts: int
    alerts_by_rule: dict[str, int]
    model_version: str | None
    started_at: str | None
    finished_at: str | None
    seconds: float


class AlertOut(BaseModel):
    alert_id: str
    firm_id: str
    run_id: str
    rule: str
    text: str
    before: Any
    after: Any
    reasons: list[dict[str, Any]] = Field(
        description="The reason codes whose SHAP contributions moved most between the runs."
    )
    status: Literal["open", "closed"]
    created_at: str | None
    event_id: str | None
    closed_at: str | None = None
    closed_by: str | None = Field(None, description="The key that closed it.")
    close_note: str | None = None


class AlertCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(
        min_length=1, max_length=2000, examples=["Called the seller: invoices paid on Friday."]
    )


class AlertList(BaseModel):
    alerts: list[AlertOut]


@router.post(
    "/portfolio/firms",
    summary="Watch firms",
    description="Register firms to monitor, listed and/or every firm with a loan record the "
    "tenant provided (`from_loans`). Each needs the seller's active consent with purpose "
    "`monitoring`; the others are rejected with the reason (`sent = registered + rejected`). "
    "Registering a watched firm again updates its exposure. Roles: lender, admin.",
    response_model=RegisterOut,
    responses={**_ERR, 422: {"model": ErrorOut, "description": "Invalid body."}},
)
def register_firms(principal: Lender, service: ServiceDep, body: RegisterIn) -> dict[str, Any]:
    return Portfolio.of(service).register(
        principal, body.firm_ids, body.exposures, from_loans=body.from_loans
    )


@router.get(
    "/portfolio/firms",
    summary="The watched firms",
    description="The tenant's watched firms with their PD, grade and signals at the last "
    "run. Roles: lender, admin.",
    responses=_ERR,
)
def list_firms(
    principal: Lender,
    service: ServiceDep,
    limit: int = Query(1000, ge=1, le=20000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    return Portfolio.of(service).firms(principal, limit=limit, offset=offset)


@router.delete(
    "/portfolio/firms/{firm_id}",
    summary="Stop watching a firm",
    description="Its alerts are kept. Roles: lender, admin.",
    responses={**_ERR, 404: {"model": ErrorOut, "description": "Not in your portfolio."}},
)
def remove_firm(principal: Lender, service: ServiceDep, firm_id: FirmId) -> dict[str, Any]:
    return Portfolio.of(service).remove(principal, firm_id)


@router.post(
    "/portfolio/runs",
    summary="Run the portfolio now",
    description="Re-score every watched firm as of now (with reasons), compare with its last "
    "run and raise the alerts of the tenant's policy; each alert is also a "
    "`monitoring.alert` event. Roles: lender, admin.",
    response_model=RunOut,
    responses=_ERR,
)
def run_now(principal: Lender, service: ServiceDep) -> dict[str, Any]:
    return Portfolio.of(service).run(principal.tenant, trigger="api").to_dict()


@router.get(
    "/portfolio/alerts",
    summary="Alerts",
    description="The tenant's alerts, newest first (`status=open` by default, `all` for "
    "every one). Roles: lender, admin.",
    response_model=AlertList,
    responses=_ERR,
)
def list_alerts(
    principal: Lender,
    service: ServiceDep,
    status: Literal["open", "all"] = Query("open"),
    limit: int = Query(100, ge=1, le=5000),
) -> dict[str, Any]:
    found = Portfolio.of(service).alerts(
        principal, None if status == "all" else status, limit=limit
    )
    return {"alerts": found}


@router.post(
    "/portfolio/alerts/{alert_id}/close",
    summary="Close an alert",
    description="Mark one of your open alerts handled, with a note; it leaves the open "
    "alerts of the portfolio and its report. Roles: lender, admin.",
    response_model=AlertOut,
    responses={
        **_ERR,
        404: {"model": ErrorOut, "description": "No such alert for this tenant."},
        409: {"model": ErrorOut, "description": "The alert is closed already."},
    },
)
def close_alert(
    principal: Lender,
    service: ServiceDep,
    alert_id: Annotated[str, Path(pattern=r"^alr_[0-9a-f]{32}$")],
    body: AlertCloseIn,
) -> dict[str, Any]:
    return Portfolio.of(service).close_alert(principal, alert_id, body.note)


@router.get(
    "/portfolio",
    summary="The portfolio",
    description="At the last run: exposure and expected loss (exposure x PD x LGD, LGD from "
    "the policy's monitoring section) by grade, main market, customs regime and product; the "
    "grade migration since the run before; the open alerts. Roles: lender, admin.",
    responses=_ERR,
)
def portfolio(
    principal: Lender, service: ServiceDep, alerts: int = Query(100, ge=0, le=5000)
) -> dict[str, Any]:
    return Portfolio.of(service).summary(principal, alert_limit=alerts)


@router.get(
    "/portfolio/report",
    summary="The portfolio report (HTML)",
    description="`GET /v1/portfolio` as one self-contained HTML page with its figures. "
    "Roles: lender, admin.",
    response_class=HTMLResponse,
    responses={  # the page is HTML; its errors are the API's JSON errors
        code: {
            "description": r["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
        for code, r in _ERR.items()
    },
)
def report(principal: Lender, service: ServiceDep) -> HTMLResponse:
    return HTMLResponse(render_report(Portfolio.of(service).summary(principal)))
