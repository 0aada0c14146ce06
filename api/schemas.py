"""Request and response bodies of the scoring service.

Posted record models are generated from the data contract (:mod:`credit.records`), so the
API validates a customs declaration, shipment or payment exactly as ingestion does field by
field, with the contract's ranges, patterns and code lists; a wrong field comes back as a 422
naming its path (``body.records.payments.3.amount_usd``).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from credit.decisions import AS_OF_DAYS_AHEAD, checked_as_of
from credit.records import ID_PATTERN, MIN_DATE, RECORD_TYPES, FieldSpec, vocabulary

MAX_RECORDS_PER_TYPE = 5000
MAX_BATCH_ITEMS = 1000
POSTED_TYPES = ("customs", "shipments", "payments")

FirmId = Annotated[str, Field(pattern=ID_PATTERN, max_length=64, examples=["F000123"])]


def as_of_in_range(value: datetime | date | None) -> datetime | date | None:
    """The core's one range check of ``as_of`` (:func:`credit.decisions.checked_as_of`), for a
    body field or a query parameter: out of range is a 422 naming the field and the range.
    The value is returned as sent (the audit log hashes the request as it came)."""
    if value is not None:
        checked_as_of(value)
    return value


#: What the API says of ``as_of``'s range.
AS_OF_RANGE_DOC = (
    f"From {MIN_DATE} to the end of the day after today (UTC: at most {AS_OF_DAYS_AHEAD} day "
    "ahead, for callers whose date is ahead of UTC's), with a UTC offset within +/-14:00; "
    "outside that range the answer is a 422."
)


def _vocab_check(name: str) -> AfterValidator:
    def check(v: str) -> str:
        if v not in vocabulary(name):
            what = "an ISO 3166-1 alpha-2 country" if name == "iso3166" else "an ISO 4217 currency"
            raise ValueError(f"{v!r} is not {what} code")
        return v

    return AfterValidator(check)


def _field_type(spec: FieldSpec) -> Any:
    meta: dict[str, Any] = {"description": spec.description}
    if spec.dtype == "string":
        if spec.allowed:
            return Annotated[Literal[spec.allowed], Field(**meta)]
        t: Any = Annotated[str, Field(max_length=64, pattern=spec.pattern, **meta)]
        if spec.vocabulary:
            t = Annotated[t, _vocab_check(spec.vocabulary)]
        return t
    if spec.dtype == "timestamp":
        return Annotated[datetime, Field(**meta)]
    if spec.dtype == "bool":
        return Annotated[bool, Field(**meta)]
    bounds: dict[str, Any] = {}
    if spec.min_value is not None:
        bounds["ge" if spec.min_inclusive else "gt"] = spec.min_value
    if spec.max_value is not None:
        bounds["le"] = spec.max_value
    base = int if spec.dtype == "int" else float
    return Annotated[base, Field(allow_inf_nan=False, **bounds, **meta)]


@cache
def record_model(name: str) -> type[BaseModel]:
    """A pydantic model of one record type, generated from the contract."""
    rt = RECORD_TYPES[name]
    fields: dict[str, Any] = {}
    for spec in rt.fields:
        t = _field_type(spec)
        fields[spec.name] = (t, ...) if spec.required else (t | None, None)
    return create_model(
        f"{name.capitalize()}Record",
        __config__=ConfigDict(extra="forbid", str_strip_whitespace=True),
        __doc__=rt.description,
        **fields,
    )


CustomsRecord = record_model("customs")
ShipmentRecord = record_model("shipments")
PaymentRecord = record_model("payments")
FirmRecord = record_model("firms")


class PostedRecords(BaseModel):
    """One firm's histories, as the contract defines them (at most 5,000 of each type)."""

    model_config = ConfigDict(extra="forbid")

    customs: list[CustomsRecord] = Field(default_factory=list, max_length=MAX_RECORDS_PER_TYPE)  # type: ignore[valid-type]
    shipments: list[ShipmentRecord] = Field(default_factory=list, max_length=MAX_RECORDS_PER_TYPE)  # type: ignore[valid-type]
    payments: list[PaymentRecord] = Field(default_factory=list, max_length=MAX_RECORDS_PER_TYPE)  # type: ignore[valid-type]


_EXAMPLE_FIRM = {
    "firm_id": "F000123",
    "registered_at": "2021-04-12",
    "business_model": "mixed",
    "main_category": "home_furnishings",
    "home_region": "CN-ZJ",
}


class ScoreRequest(BaseModel):
    """Score one firm: by ``firm_id`` (online store) or from posted ``records``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"firm_id": "F000123"},
                {"firm_id": "F000123", "as_of": "2025-06-30", "explain": "full"},
            ]
        },
    )

    firm_id: FirmId | None = Field(
        None, description="Firm to score from the online store (omit when posting records)."
    )
    as_of: Annotated[datetime | date | None, AfterValidator(as_of_in_range)] = Field(
        None,
        description=" ".join(
            (
                "Point in time of the features. By firm_id: the latest materialized features",
                "at or before it (default: latest). With records: default now.",
                AS_OF_RANGE_DOC,
            )
        ),
    )
    records: PostedRecords | None = Field(
        None, description="The firm's histories; features are computed by the online path."
    )
    firm: FirmRecord | None = Field(  # type: ignore[valid-type]
        None, description="The firm's static attributes (with records)."
    )
    explain: Literal["top", "full", "none"] = Field(
        "top",
        description="top: up to 4 reason codes; full: also every SHAP contribution; "
        "none: no reasons (fastest). A decision that is not approved always carries its "
        "reasons.",
    )
    amount: float | None = Field(
        None,
        gt=0,
        le=1e10,
        description="The amount applied for, in the lender's policy currency. The policy's "
        "automatic approval covers amounts up to its limit; without an amount, an approval "
        "is for up to that limit.",
        examples=[25000],
    )

    @model_validator(mode="after")
    def _one_path(self) -> ScoreRequest:
        if self.records is None:
            if self.firm_id is None:
                raise ValueError("give firm_id (online store) or records (with firm)")
            if self.firm is not None:
                raise ValueError("firm is only used with records")
            return self
        if self.firm is None:
            raise ValueError("records need the firm they belong to: add 'firm'")
        fid = self.firm.firm_id
        if self.firm_id is not None and self.firm_id != fid:
            raise ValueError(f"firm_id {self.firm_id!r} differs from firm.firm_id {fid!r}")
        for kind in POSTED_TYPES:
            for i, rec in enumerate(getattr(self.records, kind)):
                if rec.firm_id != fid:
                    raise ValueError(
                        f"records.{kind}[{i}].firm_id is {rec.firm_id!r}, expected {fid!r}"
                    )
        return self

    @property
    def target_firm(self) -> str:
        if self.firm_id is not None:
            return self.firm_id
        if self.firm is None:  # excluded by the validator
            raise ValueError("no firm_id")
        return str(self.firm.firm_id)


class Reason(BaseModel):
    code: str = Field(examples=["R07"])
    feature: str = Field(examples=["late_payment_share_180d"])
    value: float | str | None = Field(examples=[0.31])
    contribution: float = Field(description="SHAP contribution in log-odds (raises the risk).")
    text: str = Field(examples=["Share of invoices paid late in the last 180 days is high"])
    hint: str | None = Field(
        None, description="What the firm can do about it (from the feature catalog)."
    )
    not_shared: bool | None = Field(
        None,
        description="True when the feature is missing because the records it needs belong "
        "to a provider the consent does not cover (not shared, rather than no history).",
        # absent unless true, as POST /v1/score writes it, so a recorded decision reads back
        # with the reasons it was returned with
        exclude_if=lambda v: v is None,
    )


class ModelRef(BaseModel):
    name: str = Field(examples=["tradecredit-pd"])
    version: str | None = Field(examples=["3"])
    run_id: str | None = Field(examples=["4f1c2d..."])


class DataSufficiency(BaseModel):
    thin_file: bool | None = Field(description="Too little history for a confident score.")
    history_months: float | None = Field(description="Months of history behind the features.")
    sources: list[str] | None = Field(
        None, description="The providers whose records the decision used."
    )
    not_shared: list[str] | None = Field(
        None,
        description="Providers holding records of the firm that the consent does not cover: "
        "their records were left out.",
    )


class ExplanationOut(BaseModel):
    base_value: float
    raw_log_odds: float = Field(description="base_value + sum(contributions).")
    contributions: dict[str, float]


class RuleOut(BaseModel):
    rule: str = Field(examples=["pd_ceiling"])
    kind: Literal["decline", "refer", "approve"]
    text: str
    detail: str | None = None
    conditions: list[str] | None = None
    reasons: list[str] | None = Field(
        None, description="Adverse reasons the rule stands for (docs/decisioning.md)."
    )


class ReviewRef(BaseModel):
    review_id: str
    status: Literal["open", "awaiting_second", "closed"]
    outcome: Literal["approved", "declined"] | None = Field(
        None, description="The reviewer's outcome once the review is closed."
    )


class DecisionOut(BaseModel):
    decision_id: str = Field(examples=["dec_5b0e6c9d2f8a4e7fa1c3d5e7f9a1b3c5"])
    firm_id: str
    as_of: datetime
    pd: float = Field(ge=0, le=1, description="Calibrated probability of default (12 months).")
    score: int = Field(examples=[642])
    grade: str = Field(examples=["B"])
    reasons: list[Reason]
    model: ModelRef
    data: DataSufficiency
    scored_at: datetime
    explanation: ExplanationOut | None = None
    consent_id: str | None = Field(
        None, description="The consent the decision was made under (GET /v1/consents)."
    )
    sources: list[str] | None = Field(
        None, description="The providers whose records the decision used."
    )
    outcome: Literal["approved", "declined", "referred"] | None = Field(
        None,
        description="The outcome under the lender's policy: hard declines first, then "
        "automatic approval, everything else referred to a reviewer (docs/decisioning.md).",
    )
    recommendation: Literal["approved", "declined"] | None = Field(
        None,
        description="What the model's score alone says under the policy; a reviewer deciding "
        "otherwise overrides the model.",
    )
    rules: list[RuleOut] | None = Field(None, description="The policy rules that fired.")
    policy: dict[str, str] | None = Field(None, description="The policy's name and version.")
    amount: float | None = Field(None, description="The amount applied for, if given.")
    limit: float | None = Field(None, description="The automatic-approval limit.")
    review: ReviewRef | None = Field(
        None, description="The review a referred decision opened (GET /v1/reviews/{id})."
    )
    notice: str | None = Field(
        None, description="Where the adverse-action notice of a declined decision is."
    )


class BatchRequest(BaseModel):
    """Up to 1,000 score requests; each item is validated and scored on its own."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"items": [{"firm_id": "F000123"}, {"firm_id": "F000456"}]}]
        },
    )

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Score requests (same shape as POST /v1/score).",
    )


class ErrorOut(BaseModel):
    error: str = Field(examples=["not_found"])
    detail: Any = Field(examples=["firm F999 has no features in the online store"])
    request_id: str | None = None


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="HTTP status this item would have had on its own.")
    decision: DecisionOut | None = None
    error: ErrorOut | None = None


class BatchResponse(BaseModel):
    scored: int
    failed: int
    model: ModelRef | None
    results: list[BatchItem]


class ReloadOut(BaseModel):
    previous: ModelRef | None
    current: ModelRef
    propagated: bool = Field(
        True,
        description="Recorded for the other workers and replicas, which load the champion "
        "within `api_reload_poll_seconds`; false if the record could not be written.",
    )


class Ready(BaseModel):
    ready: bool
    checks: dict[str, Any]
