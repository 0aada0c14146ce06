"""The documented reason lists: why an application was declined, why a reviewer decided.

Two lists, each code stable once published (``docs/decisioning.md`` prints both):

* :data:`ADVERSE_REASONS` (``AA01`` ...): the principal reasons an adverse-action notice may
  give, in plain words. A feature maps to one of them through its catalog family
  (:data:`FAMILY_REASONS`; a few loan features have their own, :data:`FEATURE_REASONS`), so
  the catalog's declaration of a feature decides which reason its SHAP contribution supports.
  A policy's decline rule names the reasons it stands for (or takes those of its catalog
  conditions). Reviewers declining an application give codes from this list too.
* :data:`APPROVAL_REASONS` (``RA01`` ...): why a reviewer approved a referred application.

Examples
--------
>>> feature_reason("supplier_dpd_mean_365d")
'AA03'
>>> feature_reason("past_default_count")
'AA04'
>>> ADVERSE_REASONS["AA01"]
'Limited time in business or trading history'
"""

from __future__ import annotations

from functools import cache

from features import catalog

#: Principal reasons for an adverse action, in plain words.
ADVERSE_REASONS: dict[str, str] = {
    "AA01": "Limited time in business or trading history",
    "AA02": "Insufficient trade volume",
    "AA03": "Late or missed payments to suppliers",
    "AA04": "Delinquent past or present credit obligations",
    "AA05": "Unstable or declining sales",
    "AA06": "Dependence on few buyers, markets or products",
    "AA07": "Customs compliance problems",
    "AA08": "Shipping problems: late, returned, lost or damaged goods",
    "AA09": "Insufficient or irregular cash flow",
    "AA10": "Amount of existing debt or repayments due",
    "AA11": "Insufficient data to assess the application",
    "AA12": "Credit requested is more than the business's trade supports",
    "AA13": "Information given could not be verified",
}

#: Why a reviewer approved an application the policy referred.
APPROVAL_REASONS: dict[str, str] = {
    "RA01": "Additional documents verified the business's trade",
    "RA02": "Collateral, a guarantee or credit insurance was provided",
    "RA03": "Established repayment record with this lender",
    "RA04": "The adverse signals were explained and do not recur",
    "RA05": "Records from a source not yet connected confirm the business's trade",
    "RA06": "Amount reduced to what the business's trade supports",
}

#: Catalog family -> the adverse reason its features support.
FAMILY_REASONS: dict[str, str] = {
    "tenure": "AA01",
    "scale_growth": "AA02",
    "payment_discipline": "AA03",
    "volatility": "AA05",
    "diversification": "AA06",
    "customs_compliance": "AA07",
    "logistics": "AA08",
    "cash_flow": "AA09",
    "exposure": "AA10",
}

#: Features whose reason is not their family's: the loan features of ``payment_discipline``
#: are credit obligations, not supplier payments; thin-file and record-count features are
#: a lack of data.
FEATURE_REASONS: dict[str, str] = {
    "worst_loan_dpd_ever": "AA04",
    "loan_dpd_max_90d": "AA04",
    "loan_instalments_late_share": "AA04",
    "past_default_count": "AA04",
    "loans_outstanding_count": "AA10",
    "loans_outstanding_usd": "AA10",
    "loan_applications_365d": "AA10",
    "loan_due_next_30d_usd": "AA10",
    "loan_due_to_inflow_30d": "AA10",
    "thin_file_flag": "AA11",
}


def _check() -> None:
    known = set(catalog.FAMILIES)
    if set(FAMILY_REASONS) != known:
        raise ValueError(f"FAMILY_REASONS must cover every catalog family: {sorted(known)}")
    names = set(catalog.feature_names())
    stray = sorted(set(FEATURE_REASONS) - names)
    if stray:
        raise ValueError(f"FEATURE_REASONS names features not in the catalog: {stray}")
    for code in [*FAMILY_REASONS.values(), *FEATURE_REASONS.values()]:
        if code not in ADVERSE_REASONS:
            raise ValueError(f"reason {code} is not in ADVERSE_REASONS")


_check()


@cache
def feature_reason(feature: str) -> str | None:
    """The adverse reason a feature's contribution supports (``None``: not a catalog
    feature, as in a bring-your-own model)."""
    if feature in FEATURE_REASONS:
        return FEATURE_REASONS[feature]
    try:
        return FAMILY_REASONS[catalog.get(feature).family]
    except KeyError:
        return None


def reason_words(code: str) -> str:
    """The plain words of an adverse or approval reason code (``KeyError`` if unknown)."""
    if code in ADVERSE_REASONS:
        return ADVERSE_REASONS[code]
    return APPROVAL_REASONS[code]
