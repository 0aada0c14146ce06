"""Lending policy: what a lender or platform offers, to whom, and at what price.

A policy is a YAML file per lender or platform, validated when it is loaded; a default
policy ships with the package (``credit/policies/default.yaml``). Every number the offer
engine (:mod:`credit.offers`) uses comes from here: advance rates, grade factors, terms,
PD cutoffs, loss given default, cost of funds, operating cost and margin.

Rates are annual fractions (``0.06`` means 6% a year); amounts are in the policy's
currency (records are in US dollars and are converted at ``usd_rate``).

Examples
--------
>>> p = default_policy()
>>> p.name, p.currency
('default', 'USD')
>>> sorted(p.enabled_products())[:2]
['receivables_financing', 'tax_refund_advance']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ProductName = Literal[
    "working_capital_advance",
    "receivables_financing",
    "tax_refund_advance",
    "warehouse_inventory_financing",
]

#: The products, in the order they are shown.
PRODUCTS: tuple[ProductName, ...] = (
    "working_capital_advance",
    "receivables_financing",
    "tax_refund_advance",
    "warehouse_inventory_financing",
)

_GRADE = re.compile(r"^[A-Z][A-Z0-9+-]{0,3}$")

Fraction = Field(ge=0.0, le=1.0)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names each field and its problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductPolicy(_Strict):
    """Terms of one financing product, common to every product.

    Parameters
    ----------
    enabled : offer the product at all.
    title : the name a seller reads.
    advance_rate : share of the base amount that can be lent (before the grade factor).
    grade_factors : grade -> multiplier of the advance rate; a grade missing here is not
        eligible for the product.
    term_days : the term, one number or one per grade (every eligible grade needs one).
    pd_cutoff : a PD at or above this declines the product.
    lgd : loss given default, as a share of the exposure.
    operating_cost : annual cost of servicing, as a share of the amount.
    margin : annual margin.
    min_amount, max_amount : bounds of an offer, in the policy currency; below the
        minimum the product is declined (volume too small).
    min_history_months : fewer months of trading history than this declines the
        product as a thin file.
    """

    enabled: bool = True
    title: str = Field(min_length=1, max_length=80)
    advance_rate: float = Field(gt=0.0, le=1.0)
    grade_factors: dict[str, float] = Field(min_length=1)
    term_days: int | dict[str, int]
    pd_cutoff: float = Field(gt=0.0, le=1.0)
    lgd: float = Fraction
    operating_cost: float = Fraction
    margin: float = Fraction
    min_amount: float = Field(default=0.0, ge=0.0)
    max_amount: float = Field(gt=0.0)
    min_history_months: int = Field(default=6, ge=0, le=120)

    @field_validator("grade_factors")
    @classmethod
    def _factors(cls, v: dict[str, float]) -> dict[str, float]:
        for grade, factor in v.items():
            if not _GRADE.match(grade):
                raise ValueError(f"grade {grade!r} is not a grade letter such as 'A' or 'B'")
            if not 0.0 <= factor <= 1.0:
                raise ValueError(f"factor for grade {grade} must be between 0 and 1, got {factor}")
        return v

    @field_validator("term_days")
    @classmethod
    def _terms(cls, v: int | dict[str, int]) -> int | dict[str, int]:
        values = v.values() if isinstance(v, dict) else [v]
        for days in values:
            if not 1 <= days <= 3650:
                raise ValueError(f"a term must be between 1 and 3650 days, got {days}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ProductPolicy:
        if self.min_amount > self.max_amount:
            raise ValueError(
                f"min_amount ({self.min_amount:g}) is above max_amount ({self.max_amount:g})"
            )
        if isinstance(self.term_days, dict):
            missing = sorted(set(self.grade_factors) - set(self.term_days))
            if missing:
                raise ValueError(
                    f"term_days has no term for eligible grade(s) {', '.join(missing)}; "
                    "give one per grade in grade_factors or a single number"
                )
        return self

    def term_for(self, grade: str) -> int:
        """The term for a grade (the grade must be eligible)."""
        if isinstance(self.term_days, dict):
            return self.term_days[grade]
        return self.term_days


class WorkingCapitalPolicy(ProductPolicy):
    """Working-capital advance, repaid by holding back a share of each platform settlement.

    Parameters
    ----------
    max_holdback : the largest share of expected settlements over the term that may go to
        repayment; the amount is cut so that repayment fits.
    """

    max_holdback: float = Field(default=0.5, gt=0.0, le=1.0)


class ReceivablesPolicy(ProductPolicy):
    """B2B receivables financing, repaid when the buyers pay the invoices.

    The term follows the invoices: their amount-weighted days until due plus
    ``grace_days``, at least ``min_term_days`` and at most the grade's ``term_days``.
    """

    grace_days: int = Field(default=15, ge=0, le=365)
    min_term_days: int = Field(default=30, ge=1, le=3650)


class Products(_Strict):
    """The products a policy may offer; a product left out is not offered."""

    working_capital_advance: WorkingCapitalPolicy | None = None
    receivables_financing: ReceivablesPolicy | None = None
    tax_refund_advance: ProductPolicy | None = None
    warehouse_inventory_financing: ProductPolicy | None = None


Outcome = Literal["approved", "declined", "referred"]
#: The outcomes a decision can have; a reviewer decides ``approved`` or ``declined``.
OUTCOMES: tuple[Outcome, ...] = ("approved", "declined", "referred")
_RULE_NAME = r"^[a-z][a-z0-9_]{0,47}$"


class LenderInfo(_Strict):
    """Who the lender is, as an adverse-action notice names it."""

    name: str = Field(min_length=1, max_length=120)
    address: str = Field(default="", max_length=300)
    email: str = Field(default="", max_length=120)
    phone: str = Field(default="", max_length=40)
    #: the regulator or agency an applicant may complain to (printed on the notice)
    regulator: str = Field(default="", max_length=300)


def _known_conditions(names: list[str]) -> list[str]:
    from features.catalog import CONDITIONS

    known = {c.name for c in CONDITIONS}
    for n in names:
        if n not in known:
            raise ValueError(
                f"unknown condition {n!r}; the catalog's conditions are {', '.join(sorted(known))}"
            )
    return names


def _known_reasons(codes: list[str]) -> list[str]:
    from credit.adverse import ADVERSE_REASONS

    for c in codes:
        if c not in ADVERSE_REASONS:
            raise ValueError(
                f"unknown adverse reason {c!r}; the documented list is "
                f"{', '.join(ADVERSE_REASONS)} (docs/decisioning.md)"
            )
    return codes


class DeclineRule(_Strict):
    """A hard decline: fires when every condition it gives holds.

    Parameters
    ----------
    name : identifies the rule in answers, reviews and reports.
    text : what it means, in plain words.
    pd_at_least : fires at or above this probability of default.
    grade_worse_than : fires when the grade is worse than this one (the model's scale order).
    when : named catalog conditions (``features.catalog.CONDITIONS``), all of which must hold.
    reasons : adverse reasons the rule stands for on a notice (default: none of its own; the
        notice then gives the SHAP reasons behind the score).
    """

    name: str = Field(pattern=_RULE_NAME)
    text: str = Field(min_length=1, max_length=200)
    pd_at_least: float | None = Field(default=None, gt=0.0, le=1.0)
    grade_worse_than: str | None = None
    when: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list, max_length=4)

    @field_validator("when")
    @classmethod
    def _conditions(cls, v: list[str]) -> list[str]:
        return _known_conditions(v)

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, v: list[str]) -> list[str]:
        return _known_reasons(v)

    @field_validator("grade_worse_than")
    @classmethod
    def _grade(cls, v: str | None) -> str | None:
        if v is not None and not _GRADE.match(v):
            raise ValueError(f"grade {v!r} is not a grade letter such as 'A' or 'B'")
        return v

    @model_validator(mode="after")
    def _some_condition(self) -> DeclineRule:
        if self.pd_at_least is None and self.grade_worse_than is None and not self.when:
            raise ValueError(
                f"rule {self.name} has no condition: give pd_at_least, grade_worse_than or when"
            )
        return self


class ReferRule(_Strict):
    """A condition that sends an application to a person even when it would be approved."""

    name: str = Field(pattern=_RULE_NAME)
    text: str = Field(min_length=1, max_length=200)
    when: list[str] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _conditions(cls, v: list[str]) -> list[str]:
        return _known_conditions(v)


class ApproveRule(_Strict):
    """Automatic approval: grade at or better than ``grade_at_least`` and the amount applied
    for at most ``max_amount`` (an application without an amount is approved up to it)."""

    grade_at_least: str
    max_amount: float = Field(gt=0.0)

    @field_validator("grade_at_least")
    @classmethod
    def _grade(cls, v: str) -> str:
        if not _GRADE.match(v):
            raise ValueError(f"grade {v!r} is not a grade letter such as 'A' or 'B'")
        return v


def _both_outcomes() -> list[Literal["approved", "declined"]]:
    return ["approved", "declined"]


class ReviewPolicy(_Strict):
    """How referred applications are reviewed.

    Parameters
    ----------
    outcomes : what a reviewer may decide.
    four_eyes_above : an override of the model's recommendation for more than this amount
        needs a second reviewer (another holder) to agree before it stands.
    """

    outcomes: list[Literal["approved", "declined"]] = Field(
        default_factory=_both_outcomes, min_length=1
    )
    four_eyes_above: float = Field(default=50_000.0, ge=0.0)


class DecisionPolicy(_Strict):
    """Approve, decline or refer: hard declines first, then automatic approval, and
    everything else is referred to a reviewer."""

    decline: list[DeclineRule] = Field(default_factory=list)
    refer: list[ReferRule] = Field(default_factory=list)
    approve: ApproveRule
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)

    @model_validator(mode="after")
    def _unique(self) -> DecisionPolicy:
        names = [r.name for r in self.decline] + [r.name for r in self.refer]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(dupes)}")
        return self


class MonitoringPolicy(_Strict):
    """Portfolio monitoring: when a watched firm's re-score raises an alert
    (:mod:`credit.portfolio`, docs/portfolio.md).

    Parameters
    ----------
    grade_down_notches : the grade fell by at least this many notches since the last run.
    pd_ratio : the PD is at least this multiple of the last run's.
    overdue_invoices : alert when more supplier invoices are unpaid past their due date than
        at the last run.
    settlements_drop : platform settlements of the last 90 days fell by at least this share
        against the 90 days before.
    shipment_problem_share : the share of shipments closed in the last
        ``shipment_window_days`` that were returned or lost is above this.
    shipment_window_days : the window of that share.
    lgd : loss given default of the portfolio's expected loss (exposure x PD x LGD).
    top_reasons : how many reason codes (the largest moves between runs) an alert names.
    """

    grade_down_notches: int = Field(default=2, ge=1, le=20)
    pd_ratio: float = Field(default=2.0, gt=1.0, le=1000.0)
    overdue_invoices: bool = True
    settlements_drop: float = Field(default=0.5, gt=0.0, le=1.0)
    shipment_problem_share: float = Field(default=0.1, ge=0.0, le=1.0)
    shipment_window_days: int = Field(default=180, ge=7, le=730)
    lgd: float = Field(default=0.45, ge=0.0, le=1.0)
    top_reasons: int = Field(default=3, ge=1, le=10)


class Policy(_Strict):
    """A lender's or platform's lending policy.

    Parameters
    ----------
    name, version, description : identify the policy in offers and in the audit log.
    currency : ISO 4217 currency of every amount in the policy and in the offers.
    usd_rate : units of ``currency`` per US dollar (records are in US dollars).
    cost_of_funds : annual cost of the money lent.
    pd_horizon_days : horizon of the model's PD (the training label: default within 365
        days); the PD is scaled to each offer's term with a constant hazard.
    days_per_year : day count for annual rates.
    round_to : offers are rounded down to a multiple of this amount.
    products : the products and their terms.
    lender : the lender's name and contact, for adverse-action notices.
    decision : the rules that approve, decline or refer each application.
    monitoring : the alert rules of portfolio monitoring (defaults when left out).
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
    version: str = Field(default="1", min_length=1, max_length=32)
    description: str = ""
    currency: str = "USD"
    usd_rate: float = Field(default=1.0, gt=0.0)
    cost_of_funds: float = Fraction
    pd_horizon_days: int = Field(default=365, ge=1, le=3650)
    days_per_year: int = Field(default=365, ge=360, le=366)
    round_to: float = Field(default=100.0, gt=0.0)
    products: Products
    #: who the lender is (adverse-action notices name it); ``None``: the policy's name
    lender: LenderInfo | None = None
    decision: DecisionPolicy
    monitoring: MonitoringPolicy = Field(default_factory=MonitoringPolicy)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        from credit.records import vocabulary

        code = v.upper()
        if code not in vocabulary("iso4217"):
            raise ValueError(f"{v!r} is not an ISO 4217 currency code (such as USD, EUR, CNY)")
        return code

    @model_validator(mode="after")
    def _some_product(self) -> Policy:
        if not self.enabled_products():
            raise ValueError("the policy enables no product; enable at least one under products")
        return self

    def product(self, name: str) -> ProductPolicy | None:
        """The terms of product ``name`` (``None`` when the policy leaves it out)."""
        p: ProductPolicy | None = getattr(self.products, name, None)
        return p

    def enabled_products(self) -> dict[str, ProductPolicy]:
        """The enabled products, in display order."""
        out: dict[str, ProductPolicy] = {}
        for name in PRODUCTS:
            p = self.product(name)
            if p is not None and p.enabled:
                out[name] = p
        return out


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid policy {source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or e["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  {loc}: {msg}{shown}")
    return "\n".join(lines)


def policy_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Policy:
    """Validate a policy given as a mapping.

    Raises
    ------
    PolicyError
        Listing every problem as ``field.path: what is wrong (got value)``.
    """
    if not isinstance(data, Mapping):
        raise PolicyError(
            f"invalid policy {source}: expected a mapping of fields at the top level, "
            f"got {type(data).__name__}"
        )
    data = dict(data)
    if "decision" not in data:  # a policy without rules of its own takes the shipped ones
        data["decision"] = _default_data()["decision"]
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise PolicyError(_format_errors(err, source)) from None


@cache
def _default_data() -> dict[str, Any]:
    text = (resources.files("credit") / "policies" / "default.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy YAML file.

    Raises
    ------
    PolicyError
        The file is missing, is not YAML, or breaks a rule (each field and problem named).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {p} not found") from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError(f"policy file {p} is not valid YAML{where}") from None
    return policy_from_dict(data, source=str(p))


@cache
def default_policy() -> Policy:
    """The policy shipped with the package (``credit/policies/default.yaml``)."""
    return policy_from_dict(_default_data(), source="credit/policies/default.yaml")


@lru_cache(maxsize=256)
def _load_cached(path: str, mtime_ns: int, size: int) -> Policy:
    return load_policy(path)


def policy_for_tenant(tenant: str | None, policy_dir: Path | None) -> Policy:
    """The policy of a lender or platform: ``<policy_dir>/<tenant>.yaml``, else the default.

    Parameters
    ----------
    tenant : the tenant's name (as given to ``credit keys create --tenant``).
    policy_dir : folder of per-tenant policy files; ``None`` means the default policy.

    Raises
    ------
    PolicyError
        The tenant's file exists but is invalid (an invalid policy never falls back
        silently to the default).
    """
    if tenant and policy_dir is not None:
        safe = re.sub(r"[^A-Za-z0-9_.:\-]", "_", tenant)
        candidate = policy_dir / f"{safe}.yaml"
        try:
            st = candidate.stat()
        except OSError:
            return default_policy()
        # read once per version of the file: a score reads its tenant's policy every time
        return _load_cached(str(candidate), st.st_mtime_ns, st.st_size)
    return default_policy()
