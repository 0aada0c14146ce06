"""The feature catalog: every credit feature declared once, as data.

Each :class:`Feature` names its source scan, window, aggregation and filter; from these
declarations :mod:`features.sql` generates the SQL that computes them (DuckDB, and other
dialects through SQLGlot), and the rest of the project derives the model's column order
(:func:`feature_names`), LightGBM's monotone constraints (:func:`monotone_constraints`),
reason-code texts and the data dictionary (``credit features describe``).

Sources (the scans features read; see :mod:`features.sql` for their columns)
------------------------------------------------------------------------------
``customs``        declarations with their as-of state (``refund_state``, ``settle_days``),
                   plus ``hs2`` (HS chapter) and ``region`` (destination region).
``shipments``      shipments with ``state`` and ``transit_days`` as of T, plus ``region``.
``payments``       payments with ``is_paid`` and ``dpd`` (days past due) as of T.
``loan_payments``  the firm's ``loan_repayment`` instalments over its whole history.
``loans``          the firm's loan applications with ``is_disbursed``/``is_defaulted`` as of T.
``firms``          the firm's own row (``registered_at``).
``history``        first known record of any type (tenure).
``derived``        an expression over other features of the same row.

Every scan has ``age``: days from the record's event time to T (always > 0).

Windows
-------
``window_days = w`` keeps records with ``0 < age <= w`` (the ``w`` days before T);
``prior_offset_days = o`` gives the comparison window ``o < age <= o + w``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from features.pit import DEFAULT_LAGS, days
from features.regions import CONSUMER_HS_CHAPTERS, EU

Aggregation = Literal[
    "sum",
    "count",
    "mean",
    "max",
    "median",
    "ratio",
    "growth",
    "ratio_trend",
    "mean_trend",
    "distinct",
    "hhi",
    "monthly_cv",
    "monthly_max_drop",
    "monthly_active",
    "monthly_peak_share",
    "monthly_last_vs_mean",
    "days_since_last",
    "mean_gap_days",
    "expr",
]

SOURCES = (
    "customs",
    "shipments",
    "payments",
    "loan_payments",
    "loans",
    "firms",
    "history",
    "derived",
)

FAMILIES = (
    "scale_growth",
    "volatility",
    "diversification",
    "customs_compliance",
    "logistics",
    "cash_flow",
    "payment_discipline",
    "tenure",
    "exposure",
)


@dataclass(frozen=True)
class Feature:
    """One feature, declared once.

    Parameters
    ----------
    name : column name (snake_case, unique).
    family : one of :data:`FAMILIES`.
    source : the scan it reads (one of :data:`SOURCES`).
    aggregation : how records become one number (see :data:`Aggregation`).
    description : what the number is, for people.
    risk_direction : +1 a higher value means riskier, -1 safer, 0 unknown / not monotone.
        LightGBM's monotone constraints are exactly these values.
    reason : reason-code text shown when the feature raises the risk.
    hint : what the seller can do to improve it.
    missing : what 0 / NaN / a flag value mean for this feature.
    window_days : look-back window in days (``None``: the whole known history).
    filter : SQL predicate on the scan's columns selecting the records that count.
    value : SQL expression summed / averaged (``1`` counts records).
    denominator_filter : for ``ratio`` (and the ratio part of ``ratio_trend``): the records
        of the denominator (default: all records of the window).
    denominator_value : the denominator's value (default: ``value``).
    key : the grouping column of ``distinct`` and ``hhi``.
    prior_offset_days : start of the comparison window of ``growth``/``*_trend``
        (default: ``window_days``, i.e. the window just before).
    expr : SQL of an ``expr`` feature: over the scan's columns for ``firms``/``history``,
        over other feature names for ``derived``.
    dtype : ``float`` (NaN allowed), ``count`` (whole number, never NaN) or ``flag`` (0/1).
    unit : unit of measure.
    """

    name: str
    family: str
    source: str
    aggregation: Aggregation
    description: str
    risk_direction: int
    reason: str
    hint: str
    missing: str
    window_days: int | None = None
    filter: str | None = None
    value: str = "1"
    denominator_filter: str | None = None
    denominator_value: str | None = None
    key: str | None = None
    prior_offset_days: int | None = None
    expr: str | None = None
    dtype: Literal["float", "count", "flag"] = "float"
    unit: str = ""
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"feature {self.name}: unknown family {self.family!r}")
        if self.source not in SOURCES:
            raise ValueError(f"feature {self.name}: unknown source {self.source!r}")
        if self.risk_direction not in (-1, 0, 1):
            raise ValueError(f"feature {self.name}: risk_direction must be -1, 0 or +1")
        if self.aggregation in ("distinct", "hhi") and not self.key:
            raise ValueError(f"feature {self.name}: {self.aggregation} needs a key")
        if self.aggregation == "expr" and not self.expr:
            raise ValueError(f"feature {self.name}: expr aggregation needs expr")
        if self.source == "derived" and self.aggregation != "expr":
            raise ValueError(f"feature {self.name}: derived features use aggregation 'expr'")


# --- shorthands for the declarations below -------------------------------------------------

EXPORT = "direction = 'export'"
INFLOW = "kind IN ('settlement', 'b2b_receipt') AND is_paid"
SETTLEMENT = "kind = 'settlement' AND is_paid"
OUTFLOW = "direction = 'out' AND kind <> 'loan_repayment' AND is_paid"
#: A loan disbursed before T, not defaulted and still within its term.
OUTSTANDING = f"is_disbursed AND NOT is_defaulted AND {days('disbursed_at', 'as_of')} < term_days"
SUPPLIER_DUE = "kind = 'supplier_payment' AND dpd IS NOT NULL"
CLOSED = "state <> 'in_transit'"
#: Expected door-to-door days per transport mode; delivered within it = on time.
TRANSIT_SLA_DAYS = {"postal": 20, "express": 7, "air": 10, "sea": 45, "rail": 30}
ON_TIME = (
    "state = 'delivered' AND transit_days <= CASE mode "
    + " ".join(f"WHEN '{m}' THEN {d}" for m, d in TRANSIT_SLA_DAYS.items())
    + " END"
)
#: US de minimis: parcels up to this value entered duty-free (the exposure to its removal).
LOW_VALUE_USD = 800
EU_LIST = ", ".join(f"'{c}'" for c in EU)
CONSUMER_LIST = ", ".join(f"'{c}'" for c in CONSUMER_HS_CHAPTERS)

NAN_NO_EXPORTS = "NaN when the firm has no exports in the window."
ZERO_NONE = "0 when there are no such records in the window."


def _f(**kw: object) -> Feature:
    return Feature(**kw)  # type: ignore[arg-type]


CATALOG: tuple[Feature, ...] = (
    # --- scale and growth -----------------------------------------------------------------
    _f(
        name="export_value_30d",
        family="scale_growth",
        source="customs",
        aggregation="sum",
        window_days=30,
        filter=EXPORT,
        value="value_usd",
        unit="USD",
        risk_direction=-1,
        description="Declared export value over the last 30 days.",
        reason="Little export activity in the last month",
        hint="Declare all exports under your own customs registration.",
        missing=ZERO_NONE,
    ),
    _f(
        name="export_value_90d",
        family="scale_growth",
        source="customs",
        aggregation="sum",
        window_days=90,
        filter=EXPORT,
        value="value_usd",
        unit="USD",
        risk_direction=-1,
        description="Declared export value over the last 90 days.",
        reason="Low export value in the last 3 months",
        hint="Steady, declared export sales raise your limit.",
        missing=ZERO_NONE,
    ),
    _f(
        name="export_value_365d",
        family="scale_growth",
        source="customs",
        aggregation="sum",
        window_days=365,
        filter=EXPORT,
        value="value_usd",
        unit="USD",
        risk_direction=-1,
        description="Declared export value over the last 365 days.",
        reason="Low annual export value",
        hint="Consolidate export declarations under this firm.",
        missing=ZERO_NONE,
    ),
    _f(
        name="export_count_90d",
        family="scale_growth",
        source="customs",
        aggregation="count",
        window_days=90,
        filter=EXPORT,
        dtype="count",
        unit="declarations",
        risk_direction=-1,
        description="Number of export declarations over the last 90 days.",
        reason="Few export declarations recently",
        hint="Regular shipments build a reliable record.",
        missing=ZERO_NONE,
    ),
    _f(
        name="export_growth_90d",
        family="scale_growth",
        source="customs",
        aggregation="growth",
        window_days=90,
        filter=EXPORT,
        value="value_usd",
        unit="ratio",
        risk_direction=-1,
        description="Export value of the last 90 days vs the 90 days before: (cur - prev) / prev.",
        reason="Exports fell compared with the previous quarter",
        hint="Stabilise sales volumes quarter to quarter.",
        missing="NaN when the prior 90 days had no exports; -1 when exports stopped.",
    ),
    _f(
        name="export_yoy_90d",
        family="scale_growth",
        source="customs",
        aggregation="growth",
        window_days=90,
        prior_offset_days=365,
        filter=EXPORT,
        value="value_usd",
        unit="ratio",
        risk_direction=-1,
        description="Export value of the last 90 days vs the same 90 days a year earlier.",
        reason="Exports are below last year's level",
        hint="Keep year-on-year sales growing.",
        missing="NaN when there were no exports in the same quarter a year ago.",
    ),
    _f(
        name="export_active_months_12m",
        family="scale_growth",
        source="customs",
        aggregation="monthly_active",
        window_days=360,
        filter=EXPORT,
        value="value_usd",
        dtype="count",
        unit="months",
        risk_direction=-1,
        description="Number of the last twelve 30-day periods with any export.",
        reason="Exports in few months of the last year",
        hint="Export every month rather than in bursts.",
        missing="0 when no exports.",
    ),
    _f(
        name="mean_export_declaration_usd_365d",
        family="scale_growth",
        source="customs",
        aggregation="mean",
        window_days=365,
        filter=EXPORT,
        value="value_usd",
        unit="USD",
        risk_direction=0,
        description="Mean value of an export declaration over 365 days.",
        reason="Unusual declaration sizes",
        hint="Declare consistently.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="import_value_365d",
        family="scale_growth",
        source="customs",
        aggregation="sum",
        window_days=365,
        filter="direction = 'import'",
        value="value_usd",
        unit="USD",
        risk_direction=0,
        description="Declared import value over 365 days.",
        reason="Import pattern",
        hint="None needed.",
        missing=ZERO_NONE,
    ),
    _f(
        name="shipment_count_90d",
        family="scale_growth",
        source="shipments",
        aggregation="count",
        window_days=90,
        dtype="count",
        unit="shipments",
        risk_direction=-1,
        description="Shipments sent over the last 90 days.",
        reason="Few shipments recently",
        hint="Ship regularly through tracked carriers.",
        missing=ZERO_NONE,
    ),
    _f(
        name="shipment_growth_90d",
        family="scale_growth",
        source="shipments",
        aggregation="growth",
        window_days=90,
        unit="ratio",
        risk_direction=-1,
        description="Shipments of the last 90 days vs the 90 days before: (cur - prev) / prev.",
        reason="Shipment volume fell",
        hint="Keep shipping volumes steady.",
        missing="NaN when the prior 90 days had no shipments.",
    ),
    # --- volatility and seasonality ---------------------------------------------------------
    _f(
        name="export_monthly_cv_12m",
        family="volatility",
        source="customs",
        aggregation="monthly_cv",
        window_days=360,
        filter=EXPORT,
        value="value_usd",
        unit="ratio",
        risk_direction=1,
        description="Coefficient of variation (population std / mean) of export value over "
        "the last twelve 30-day periods, empty periods counting as 0.",
        reason="Export sales are volatile month to month",
        hint="Smooth sales through the year.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="export_max_monthly_drop_12m",
        family="volatility",
        source="customs",
        aggregation="monthly_max_drop",
        window_days=360,
        filter=EXPORT,
        value="value_usd",
        unit="ratio",
        risk_direction=1,
        description="Largest fall of export value from one 30-day period to the next "
        "over the last year, as a share of the earlier period (0 = never fell, 1 = stopped).",
        reason="A sharp monthly drop in exports",
        hint="Avoid depending on a single season or channel.",
        missing="NaN when no period before the last had exports.",
    ),
    _f(
        name="export_peak_month_share_12m",
        family="volatility",
        source="customs",
        aggregation="monthly_peak_share",
        window_days=360,
        filter=EXPORT,
        value="value_usd",
        unit="share",
        risk_direction=1,
        description="Share of the last year's export value made in its largest 30-day period.",
        reason="Exports concentrated in one season",
        hint="Spread sales across the year.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="export_last_month_vs_mean_12m",
        family="volatility",
        source="customs",
        aggregation="monthly_last_vs_mean",
        window_days=360,
        filter=EXPORT,
        value="value_usd",
        unit="ratio",
        risk_direction=-1,
        description="Export value of the last 30 days over the mean 30-day value of the year.",
        reason="The last month was weaker than usual",
        hint="Keep the latest month in line with your average.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="inflow_monthly_cv_12m",
        family="volatility",
        source="payments",
        aggregation="monthly_cv",
        window_days=360,
        filter=INFLOW,
        value="amount_usd",
        unit="ratio",
        risk_direction=1,
        description="Coefficient of variation of monthly received inflows (settlements and "
        "B2B receipts) over the last twelve 30-day periods.",
        reason="Volatile incoming cash",
        hint="Diversify sales channels.",
        missing="NaN when no inflows in the year.",
    ),
    # --- diversification --------------------------------------------------------------------
    _f(
        name="destination_hhi_365d",
        family="diversification",
        source="customs",
        aggregation="hhi",
        key="destination_country",
        window_days=365,
        filter=EXPORT,
        value="value_usd",
        unit="index 0-1",
        risk_direction=1,
        description="Herfindahl index of export value across destination countries.",
        reason="Exports depend on few destination countries",
        hint="Sell into more markets.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="hs_chapter_hhi_365d",
        family="diversification",
        source="customs",
        aggregation="hhi",
        key="hs2",
        window_days=365,
        filter=EXPORT,
        value="value_usd",
        unit="index 0-1",
        risk_direction=1,
        description="Herfindahl index of export value across HS chapters (2-digit).",
        reason="Exports depend on one product line",
        hint="Broaden the product range.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="buyer_hhi_365d",
        family="diversification",
        source="payments",
        aggregation="hhi",
        key="counterparty_id",
        window_days=365,
        filter=INFLOW,
        value="amount_usd",
        unit="index 0-1",
        risk_direction=1,
        description="Herfindahl index of received inflows across counterparties "
        "(platforms and buyers).",
        reason="Income depends on few platforms or buyers",
        hint="Sell through more platforms or buyers.",
        missing="NaN when no inflows.",
    ),
    _f(
        name="n_destination_countries_365d",
        family="diversification",
        source="customs",
        aggregation="distinct",
        key="destination_country",
        window_days=365,
        filter=EXPORT,
        dtype="count",
        unit="countries",
        risk_direction=-1,
        description="Number of distinct export destination countries.",
        reason="Exports to few countries",
        hint="Open new markets.",
        missing=ZERO_NONE,
    ),
    _f(
        name="n_regions_365d",
        family="diversification",
        source="customs",
        aggregation="distinct",
        key="region",
        window_days=365,
        filter=EXPORT,
        dtype="count",
        unit="regions",
        risk_direction=-1,
        description="Number of distinct destination regions (US, EU, JP, SEA, LATAM, ME, OTHER).",
        reason="Exports to few regions",
        hint="Open markets in other regions.",
        missing=ZERO_NONE,
    ),
    _f(
        name="n_hs_chapters_365d",
        family="diversification",
        source="customs",
        aggregation="distinct",
        key="hs2",
        window_days=365,
        filter=EXPORT,
        dtype="count",
        unit="chapters",
        risk_direction=-1,
        description="Number of distinct HS chapters exported.",
        reason="Narrow product range",
        hint="Broaden the product range.",
        missing=ZERO_NONE,
    ),
    _f(
        name="n_buyers_365d",
        family="diversification",
        source="payments",
        aggregation="distinct",
        key="counterparty_id",
        window_days=365,
        filter=INFLOW,
        dtype="count",
        unit="counterparties",
        risk_direction=-1,
        description="Number of distinct counterparties paying the firm.",
        reason="Few paying counterparties",
        hint="Add platforms or buyers.",
        missing=ZERO_NONE,
    ),
    _f(
        name="us_export_share_365d",
        family="diversification",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter=f"{EXPORT} AND region = 'US'",
        denominator_filter=EXPORT,
        value="value_usd",
        unit="share",
        risk_direction=0,
        description="Share of export value going to the United States.",
        reason="Concentrated in the US market",
        hint="Balance markets.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="eu_export_share_365d",
        family="diversification",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter=f"{EXPORT} AND region = 'EU'",
        denominator_filter=EXPORT,
        value="value_usd",
        unit="share",
        risk_direction=0,
        description="Share of export value going to the European Union.",
        reason="Concentrated in the EU market",
        hint="Balance markets.",
        missing=NAN_NO_EXPORTS,
    ),
    # --- customs compliance ---------------------------------------------------------------
    _f(
        name="customs_inspected_rate_365d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter="status = 'inspected'",
        unit="share",
        risk_direction=1,
        description="Share of declarations that were inspected.",
        reason="Customs inspects many of your declarations",
        hint="Keep declarations accurate and complete.",
        missing="NaN when no declarations.",
    ),
    _f(
        name="customs_held_rate_365d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter="status = 'held'",
        unit="share",
        risk_direction=1,
        description="Share of declarations held by customs.",
        reason="Goods held at customs",
        hint="Check documents and classifications.",
        missing="NaN when no declarations.",
    ),
    _f(
        name="customs_rejected_rate_365d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter="status = 'rejected'",
        unit="share",
        risk_direction=1,
        description="Share of declarations rejected by customs.",
        reason="Customs rejects declarations",
        hint="Fix recurring declaration errors.",
        missing="NaN when no declarations.",
    ),
    _f(
        name="customs_issue_rate_trend_90d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio_trend",
        window_days=90,
        filter="status IN ('inspected', 'held', 'rejected')",
        unit="share points",
        risk_direction=1,
        description="Share of declarations inspected, held or rejected in the last 90 days "
        "minus the same share in the 90 days before.",
        reason="Customs problems are increasing",
        hint="Review recent declarations.",
        missing="NaN when either window has no declarations.",
    ),
    _f(
        name="tax_refund_denial_rate_365d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter="refund_state = 'denied'",
        denominator_filter="refund_state IN ('paid', 'denied')",
        value="tax_refund_usd",
        unit="share",
        risk_direction=1,
        description="Share of settled export-tax-refund value that was denied (as settled by T).",
        reason="Export tax refunds are denied",
        hint="Keep VAT invoices and export proofs.",
        missing="NaN when no refund was settled in the window.",
    ),
    _f(
        name="pending_tax_refund_usd",
        family="customs_compliance",
        source="customs",
        aggregation="sum",
        window_days=455,
        filter="refund_state = 'pending'",
        value="tax_refund_usd",
        unit="USD",
        risk_direction=0,
        description="Export tax refunds claimed (last 455 days) and not yet paid or denied by T.",
        reason="Large refunds pending",
        hint="Follow up pending refund claims.",
        missing=ZERO_NONE,
    ),
    _f(
        name="median_refund_settle_days_365d",
        family="customs_compliance",
        source="customs",
        aggregation="median",
        window_days=365,
        filter="settle_days IS NOT NULL",
        value="settle_days",
        unit="days",
        risk_direction=1,
        description="Median days from declaration to tax-refund settlement (settled by T).",
        reason="Tax refunds settle slowly",
        hint="Submit refund paperwork promptly.",
        missing="NaN when no refund settled in the window.",
    ),
    _f(
        name="b2c_direct_mail_share_365d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter=f"{EXPORT} AND regime = '9610'",
        denominator_filter=EXPORT,
        value="value_usd",
        unit="share",
        risk_direction=0,
        description="Share of export value under regime 9610 (cross-border B2C direct mail).",
        reason="Mostly direct-mail parcels",
        hint="None needed.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="overseas_warehouse_regime_share_365d",
        family="customs_compliance",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter=f"{EXPORT} AND regime = '9810'",
        denominator_filter=EXPORT,
        value="value_usd",
        unit="share",
        risk_direction=0,
        description="Share of export value under regime 9810 (export to overseas warehouse).",
        reason="Stock held in overseas warehouses",
        hint="None needed.",
        missing=NAN_NO_EXPORTS,
    ),
    # --- logistics quality ------------------------------------------------------------------
    _f(
        name="on_time_delivery_rate_180d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=180,
        filter=ON_TIME,
        denominator_filter=CLOSED,
        unit="share",
        risk_direction=-1,
        description="Share of shipments closed by T that were delivered within the mode's "
        "expected transit time (postal 20, express 7, air 10, sea 45, rail 30 days).",
        reason="Deliveries are often late",
        hint="Use faster or more reliable carriers.",
        missing="NaN when no shipment of the window was closed by T.",
    ),
    _f(
        name="returned_rate_180d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=180,
        filter="state = 'returned'",
        denominator_filter=CLOSED,
        unit="share",
        risk_direction=1,
        description="Share of closed shipments that were returned.",
        reason="Many shipments are returned",
        hint="Improve product descriptions and quality.",
        missing="NaN when no shipment of the window was closed by T.",
    ),
    _f(
        name="lost_rate_180d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=180,
        filter="state = 'lost'",
        denominator_filter=CLOSED,
        unit="share",
        risk_direction=1,
        description="Share of closed shipments that were lost.",
        reason="Shipments get lost",
        hint="Use tracked services.",
        missing="NaN when no shipment of the window was closed by T.",
    ),
    _f(
        name="damaged_rate_180d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=180,
        filter="state = 'damaged'",
        denominator_filter=CLOSED,
        unit="share",
        risk_direction=1,
        description="Share of closed shipments that arrived damaged.",
        reason="Shipments arrive damaged",
        hint="Improve packaging.",
        missing="NaN when no shipment of the window was closed by T.",
    ),
    _f(
        name="return_rate_trend_90d",
        family="logistics",
        source="shipments",
        aggregation="ratio_trend",
        window_days=90,
        filter="state = 'returned'",
        denominator_filter=CLOSED,
        unit="share points",
        risk_direction=1,
        description="Returned share of closed shipments in the last 90 days minus the same "
        "share in the 90 days before.",
        reason="Returns are rising",
        hint="Look into recent product or delivery issues.",
        missing="NaN when either window has no closed shipments.",
    ),
    _f(
        name="median_transit_days_180d",
        family="logistics",
        source="shipments",
        aggregation="median",
        window_days=180,
        filter="state = 'delivered'",
        value="transit_days",
        unit="days",
        risk_direction=1,
        description="Median days from shipping to delivery (delivered by T).",
        reason="Slow deliveries",
        hint="Use faster transport or overseas warehouses.",
        missing="NaN when nothing of the window was delivered by T.",
    ),
    _f(
        name="in_transit_share_90d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=90,
        filter="state = 'in_transit'",
        unit="share",
        risk_direction=0,
        description="Share of the last 90 days' shipments still in transit at T.",
        reason="Many goods still in transit",
        hint="None needed.",
        missing="NaN when no shipments in the window.",
    ),
    _f(
        name="overseas_warehouse_share_365d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=365,
        filter="destination_type = 'overseas_warehouse'",
        value="declared_value_usd",
        unit="share",
        risk_direction=0,
        description="Share of shipped value sent to overseas warehouses.",
        reason="Stock in overseas warehouses",
        hint="None needed.",
        missing="NaN when no shipments in the window.",
    ),
    _f(
        name="express_share_365d",
        family="logistics",
        source="shipments",
        aggregation="ratio",
        window_days=365,
        filter="mode IN ('express', 'air')",
        unit="share",
        risk_direction=0,
        description="Share of shipments sent by express or air.",
        reason="Transport mix",
        hint="None needed.",
        missing="NaN when no shipments in the window.",
    ),
    _f(
        name="mean_shipment_value_usd_365d",
        family="logistics",
        source="shipments",
        aggregation="mean",
        window_days=365,
        value="declared_value_usd",
        unit="USD",
        risk_direction=0,
        description="Mean declared value per shipment.",
        reason="Shipment size",
        hint="None needed.",
        missing="NaN when no shipments in the window.",
    ),
    # --- cash flow --------------------------------------------------------------------------
    _f(
        name="inflow_30d",
        family="cash_flow",
        source="payments",
        aggregation="sum",
        window_days=30,
        filter=INFLOW,
        value="amount_usd",
        unit="USD",
        risk_direction=-1,
        description="Settlements and B2B receipts received (paid by T), last 30 days.",
        reason="Little cash came in last month",
        hint="Collect receivables promptly.",
        missing=ZERO_NONE,
    ),
    _f(
        name="inflow_90d",
        family="cash_flow",
        source="payments",
        aggregation="sum",
        window_days=90,
        filter=INFLOW,
        value="amount_usd",
        unit="USD",
        risk_direction=-1,
        description="Settlements and B2B receipts received (paid by T), last 90 days.",
        reason="Low incoming cash over 3 months",
        hint="Grow and collect sales.",
        missing=ZERO_NONE,
    ),
    _f(
        name="inflow_365d",
        family="cash_flow",
        source="payments",
        aggregation="sum",
        window_days=365,
        filter=INFLOW,
        value="amount_usd",
        unit="USD",
        risk_direction=-1,
        description="Settlements and B2B receipts received (paid by T), last 365 days.",
        reason="Low annual incoming cash",
        hint="Route sales proceeds to this firm's accounts.",
        missing=ZERO_NONE,
    ),
    _f(
        name="inflow_growth_90d",
        family="cash_flow",
        source="payments",
        aggregation="growth",
        window_days=90,
        filter=INFLOW,
        value="amount_usd",
        unit="ratio",
        risk_direction=-1,
        description="Inflows of the last 90 days vs the 90 days before: (cur - prev) / prev.",
        reason="Incoming cash is falling",
        hint="Stabilise sales.",
        missing="NaN when the prior 90 days had no inflows.",
    ),
    _f(
        name="outflow_90d",
        family="cash_flow",
        source="payments",
        aggregation="sum",
        window_days=90,
        filter=OUTFLOW,
        value="amount_usd",
        unit="USD",
        risk_direction=0,
        description="Money paid out (suppliers, refunds, chargebacks, fees; not loan "
        "repayments), last 90 days.",
        reason="High outgoings",
        hint="Control costs.",
        missing=ZERO_NONE,
    ),
    _f(
        name="inflow_outflow_ratio_90d",
        family="cash_flow",
        source="payments",
        aggregation="ratio",
        window_days=90,
        filter=INFLOW,
        denominator_filter=OUTFLOW,
        value="amount_usd",
        unit="ratio",
        risk_direction=-1,
        description="Inflows over outflows (excluding loan flows), last 90 days.",
        reason="Outgoings exceed incoming cash",
        hint="Keep inflows above outflows.",
        missing="NaN when nothing was paid out in the window.",
    ),
    _f(
        name="inflow_outflow_ratio_trend_90d",
        family="cash_flow",
        source="payments",
        aggregation="ratio_trend",
        window_days=90,
        filter=INFLOW,
        denominator_filter=OUTFLOW,
        value="amount_usd",
        unit="ratio points",
        risk_direction=-1,
        description="Inflow-to-outflow ratio of the last 90 days minus that of the 90 before.",
        reason="Cash coverage is worsening",
        hint="Keep inflows above outflows.",
        missing="NaN when either window has no outflows.",
    ),
    _f(
        name="refund_ratio_90d",
        family="cash_flow",
        source="payments",
        aggregation="ratio",
        window_days=90,
        filter="kind = 'refund'",
        denominator_filter=SETTLEMENT,
        value="amount_usd",
        unit="ratio",
        risk_direction=1,
        description="Refunds paid over platform settlements received, last 90 days.",
        reason="High refunds relative to sales",
        hint="Reduce returns and disputes.",
        missing="NaN when no settlements in the window.",
    ),
    _f(
        name="refund_ratio_trend_90d",
        family="cash_flow",
        source="payments",
        aggregation="ratio_trend",
        window_days=90,
        filter="kind = 'refund'",
        denominator_filter=SETTLEMENT,
        value="amount_usd",
        unit="ratio points",
        risk_direction=1,
        description="Refund ratio of the last 90 days minus that of the 90 days before.",
        reason="Refunds are rising",
        hint="Investigate recent returns.",
        missing="NaN when either window has no settlements.",
    ),
    _f(
        name="chargeback_ratio_90d",
        family="cash_flow",
        source="payments",
        aggregation="ratio",
        window_days=90,
        filter="kind = 'chargeback'",
        denominator_filter=SETTLEMENT,
        value="amount_usd",
        unit="ratio",
        risk_direction=1,
        description="Chargebacks over platform settlements, last 90 days.",
        reason="Chargebacks are high",
        hint="Reduce disputes and fraud.",
        missing="NaN when no settlements in the window.",
    ),
    _f(
        name="fee_ratio_90d",
        family="cash_flow",
        source="payments",
        aggregation="ratio",
        window_days=90,
        filter="kind = 'fee'",
        denominator_filter=INFLOW,
        value="amount_usd",
        unit="ratio",
        risk_direction=0,
        description="Fees over inflows, last 90 days.",
        reason="High fees",
        hint="Review platform and payment fees.",
        missing="NaN when no inflows.",
    ),
    _f(
        name="mean_days_between_payouts_90d",
        family="cash_flow",
        source="payments",
        aggregation="mean_gap_days",
        window_days=90,
        filter=SETTLEMENT,
        unit="days",
        risk_direction=1,
        description="Mean days between platform settlements in the last 90 days.",
        reason="Payouts are infrequent",
        hint="Choose more frequent payout schedules.",
        missing="NaN with fewer than two settlements in the window.",
    ),
    _f(
        name="days_since_last_inflow",
        family="cash_flow",
        source="payments",
        aggregation="days_since_last",
        window_days=365,
        filter=INFLOW,
        unit="days",
        risk_direction=1,
        description="Days from the last inflow to T (fractional).",
        reason="No money came in recently",
        hint="Collect outstanding receivables.",
        missing="NaN when no inflow in the last 365 days.",
    ),
    _f(
        name="receivables_overdue_share_365d",
        family="cash_flow",
        source="payments",
        aggregation="ratio",
        window_days=365,
        filter="kind = 'b2b_receipt' AND NOT is_paid AND dpd > 0",
        denominator_filter="kind = 'b2b_receipt'",
        value="amount_usd",
        unit="share",
        risk_direction=1,
        description="Share of B2B invoice value (issued in 365 days) unpaid and past due at T.",
        reason="Buyers pay late",
        hint="Chase overdue invoices; vet buyers.",
        missing="NaN when no B2B invoices in the window.",
    ),
    _f(
        name="buyer_dpd_mean_365d",
        family="cash_flow",
        source="payments",
        aggregation="mean",
        window_days=365,
        filter="kind = 'b2b_receipt' AND dpd IS NOT NULL",
        value="dpd",
        unit="days",
        risk_direction=1,
        description="Mean days past due of B2B invoices due by T (how late buyers pay).",
        reason="Buyers pay late",
        hint="Tighten payment terms.",
        missing="NaN when no B2B invoice was due by T.",
    ),
    # --- payment discipline -------------------------------------------------------------------
    _f(
        name="supplier_dpd_mean_365d",
        family="payment_discipline",
        source="payments",
        aggregation="mean",
        window_days=365,
        filter=SUPPLIER_DUE,
        value="dpd",
        unit="days",
        risk_direction=1,
        description="Mean days past due of supplier invoices due by T (paid: final lateness; "
        "unpaid: days since due).",
        reason="Suppliers are paid late",
        hint="Pay suppliers by the due date.",
        missing="NaN when no supplier invoice was due by T.",
    ),
    _f(
        name="supplier_dpd_max_365d",
        family="payment_discipline",
        source="payments",
        aggregation="max",
        window_days=365,
        filter=SUPPLIER_DUE,
        value="dpd",
        unit="days",
        risk_direction=1,
        description="Worst days past due among supplier invoices due by T.",
        reason="A supplier invoice was paid very late",
        hint="Avoid long supplier arrears.",
        missing="NaN when no supplier invoice was due by T.",
    ),
    _f(
        name="supplier_dpd30_count_365d",
        family="payment_discipline",
        source="payments",
        aggregation="count",
        window_days=365,
        filter=f"{SUPPLIER_DUE} AND dpd >= 30",
        dtype="count",
        unit="invoices",
        risk_direction=1,
        description="Supplier invoices 30 or more days past due.",
        reason="Supplier invoices 30+ days late",
        hint="Clear supplier arrears.",
        missing=ZERO_NONE,
    ),
    _f(
        name="supplier_on_time_share_365d",
        family="payment_discipline",
        source="payments",
        aggregation="ratio",
        window_days=365,
        filter=f"{SUPPLIER_DUE} AND dpd = 0",
        denominator_filter=SUPPLIER_DUE,
        unit="share",
        risk_direction=-1,
        description="Share of supplier invoices due by T that were paid by their due date.",
        reason="Suppliers often paid late",
        hint="Pay on time.",
        missing="NaN when no supplier invoice was due by T.",
    ),
    _f(
        name="supplier_payment_coverage_90d",
        family="payment_discipline",
        source="payments",
        aggregation="ratio",
        window_days=90,
        filter="kind = 'supplier_payment' AND is_paid",
        denominator_filter=SUPPLIER_DUE,
        value="amount_usd",
        unit="ratio",
        risk_direction=-1,
        description="Supplier payments made (paid by T, payments on account included) over "
        "the value of supplier invoices due by T, last 90 days; below 1, arrears build up.",
        reason="Paying suppliers less than falls due",
        hint="Pay what falls due each month; agree a plan for any arrears.",
        missing="NaN when no supplier invoice was due by T in the window.",
    ),
    _f(
        name="supplier_overdue_unpaid_usd",
        family="payment_discipline",
        source="payments",
        aggregation="sum",
        window_days=365,
        filter="kind = 'supplier_payment' AND NOT is_paid AND dpd > 0",
        value="amount_usd",
        unit="USD",
        risk_direction=1,
        description="Value of supplier invoices (issued in 365 days) unpaid and past due at T.",
        reason="Unpaid overdue supplier invoices",
        hint="Settle overdue supplier invoices.",
        missing=ZERO_NONE,
    ),
    _f(
        name="supplier_dpd_trend_90d",
        family="payment_discipline",
        source="payments",
        aggregation="mean_trend",
        window_days=90,
        filter=SUPPLIER_DUE,
        value="dpd",
        unit="days",
        risk_direction=1,
        description="Mean supplier DPD of invoices issued in the last 90 days minus that of "
        "invoices issued in the 90 days before.",
        reason="Supplier payments are getting later",
        hint="Pay suppliers on time.",
        missing="NaN when either window has no invoice due by T.",
    ),
    _f(
        name="worst_loan_dpd_ever",
        family="payment_discipline",
        source="loan_payments",
        aggregation="max",
        filter="dpd IS NOT NULL",
        value="dpd",
        unit="days",
        risk_direction=1,
        description="Worst days past due on any past loan instalment due by T.",
        reason="Past loan instalments were late",
        hint="Repay instalments on time.",
        missing="NaN when no loan instalment was ever due (see has_loan_history).",
    ),
    _f(
        name="loan_dpd_max_90d",
        family="payment_discipline",
        source="loan_payments",
        aggregation="max",
        window_days=90,
        filter="dpd IS NOT NULL",
        value="dpd",
        unit="days",
        risk_direction=1,
        description="Worst days past due on loan instalments issued in the last 90 days.",
        reason="Recent loan instalments late",
        hint="Repay instalments on time.",
        missing="NaN when no instalment of the window was due by T.",
    ),
    _f(
        name="loan_instalments_late_share",
        family="payment_discipline",
        source="loan_payments",
        aggregation="ratio",
        filter="dpd > 0",
        denominator_filter="dpd IS NOT NULL",
        unit="share",
        risk_direction=1,
        description="Share of loan instalments due by T that were (or are) late.",
        reason="Loan instalments often late",
        hint="Repay on time.",
        missing="NaN when no instalment was ever due.",
    ),
    _f(
        name="past_default_count",
        family="payment_discipline",
        source="loans",
        aggregation="count",
        filter="is_defaulted",
        dtype="count",
        unit="loans",
        risk_direction=1,
        description="Past loans that defaulted (90+ DPD) before T.",
        reason="A previous loan defaulted",
        hint="Resolve past defaults.",
        missing=ZERO_NONE,
    ),
    _f(
        name="loans_outstanding_count",
        family="payment_discipline",
        source="loans",
        aggregation="count",
        filter=OUTSTANDING,
        dtype="count",
        unit="loans",
        risk_direction=1,
        description="Loans disbursed before T and still within their term.",
        reason="Several loans outstanding",
        hint="Repay existing loans first.",
        missing=ZERO_NONE,
    ),
    _f(
        name="loans_outstanding_usd",
        family="payment_discipline",
        source="loans",
        aggregation="sum",
        filter=OUTSTANDING,
        value="amount_usd",
        unit="USD",
        risk_direction=1,
        description="Principal of loans disbursed before T and still within their term.",
        reason="High outstanding debt",
        hint="Repay existing loans first.",
        missing=ZERO_NONE,
    ),
    _f(
        name="loan_applications_365d",
        family="payment_discipline",
        source="loans",
        aggregation="count",
        window_days=365,
        dtype="count",
        unit="applications",
        risk_direction=1,
        description="Loan applications made in the last 365 days (before T).",
        reason="Many recent credit applications",
        hint="Apply only when needed.",
        missing=ZERO_NONE,
    ),
    _f(
        name="loan_due_next_30d_usd",
        family="payment_discipline",
        source="loan_payments",
        aggregation="sum",
        filter=f"NOT is_paid AND due_at >= as_of AND {days('as_of', 'due_at')} < 30",
        value="amount_usd",
        unit="USD",
        risk_direction=1,
        description="Loan instalments falling due in the 30 days from T, unpaid at T.",
        reason="Large repayments due soon",
        hint="Plan cash for upcoming repayments.",
        missing=ZERO_NONE,
    ),
    # --- tenure and depth -------------------------------------------------------------------
    _f(
        name="firm_age_days",
        family="tenure",
        source="firms",
        aggregation="expr",
        expr=f"CASE WHEN is_registered THEN {days('registered_at', 'as_of')} END",
        unit="days",
        risk_direction=-1,
        description="Days since the firm was registered.",
        reason="Young firm",
        hint="Time in business builds your record.",
        missing="NaN when the firm is unknown or registered on or after T.",
    ),
    _f(
        name="months_of_history",
        family="tenure",
        source="history",
        aggregation="expr",
        expr=f"COALESCE({days('first_known_at', 'as_of')} / 30.4375, 0)",
        unit="months",
        risk_direction=-1,
        description="Months from the firm's first known record (customs, shipment or payment) "
        "to T.",
        reason="Short trading history",
        hint="Share more of your trading history.",
        missing="0 when no record is known at T.",
    ),
    _f(
        name="records_365d",
        family="tenure",
        source="derived",
        aggregation="expr",
        expr="n_customs_365d + shipment_count_365d + n_payments_365d",
        dtype="count",
        unit="records",
        risk_direction=-1,
        description="Customs, shipment and payment records in the last 365 days.",
        reason="Little recorded activity",
        hint="Connect all your sales channels.",
        missing="0 when none.",
    ),
    _f(
        name="n_customs_365d",
        family="tenure",
        source="customs",
        aggregation="count",
        window_days=365,
        dtype="count",
        unit="declarations",
        risk_direction=-1,
        description="Customs declarations (export and import) in the last 365 days.",
        reason="Few customs declarations",
        hint="Declare exports under this firm.",
        missing=ZERO_NONE,
    ),
    _f(
        name="shipment_count_365d",
        family="tenure",
        source="shipments",
        aggregation="count",
        window_days=365,
        dtype="count",
        unit="shipments",
        risk_direction=-1,
        description="Shipments in the last 365 days.",
        reason="Few shipments",
        hint="Ship with tracked carriers.",
        missing=ZERO_NONE,
    ),
    _f(
        name="n_payments_365d",
        family="tenure",
        source="payments",
        aggregation="count",
        window_days=365,
        dtype="count",
        unit="payments",
        risk_direction=-1,
        description="Payment records in the last 365 days.",
        reason="Few payment records",
        hint="Connect your payment accounts.",
        missing=ZERO_NONE,
    ),
    _f(
        name="thin_file_flag",
        family="tenure",
        source="derived",
        aggregation="expr",
        expr="CASE WHEN months_of_history < 6 OR n_customs_365d < 10 THEN 1 ELSE 0 END",
        dtype="flag",
        risk_direction=1,
        description="1 when the firm has under 6 months of history or under 10 customs "
        "declarations in the last year (too little data for a reliable score).",
        reason="Too little history for a reliable assessment",
        hint="Share more history; the score improves with data.",
        missing="Never NaN.",
    ),
    _f(
        name="has_loan_history",
        family="tenure",
        source="derived",
        aggregation="expr",
        expr="CASE WHEN loan_instalments_due_ever > 0 THEN 1 ELSE 0 END",
        dtype="flag",
        risk_direction=0,
        description="1 when at least one loan instalment was due before T.",
        reason="No credit history",
        hint="None needed.",
        missing="Never NaN.",
    ),
    _f(
        name="loan_instalments_due_ever",
        family="tenure",
        source="loan_payments",
        aggregation="count",
        filter="dpd IS NOT NULL",
        dtype="count",
        unit="instalments",
        risk_direction=0,
        description="Loan instalments due before T over the whole history.",
        reason="Credit history depth",
        hint="None needed.",
        missing=ZERO_NONE,
    ),
    # --- exposure ---------------------------------------------------------------------------
    _f(
        name="us_low_value_b2c_share_365d",
        family="exposure",
        source="shipments",
        aggregation="ratio",
        window_days=365,
        filter=f"region = 'US' AND destination_type = 'consumer' "
        f"AND declared_value_usd <= {LOW_VALUE_USD}",
        unit="share",
        risk_direction=1,
        description=f"Share of shipments that are consumer parcels to the US worth at most "
        f"{LOW_VALUE_USD} USD (exposed to the end of the US de minimis exemption).",
        reason="Exposed to US low-value parcel rules",
        hint="Diversify markets or ship in bulk.",
        missing="NaN when no shipments in the window.",
    ),
    _f(
        name="eu_consumer_goods_share_365d",
        family="exposure",
        source="customs",
        aggregation="ratio",
        window_days=365,
        filter=f"{EXPORT} AND destination_country IN ({EU_LIST}) AND hs2 IN ({CONSUMER_LIST})",
        denominator_filter=EXPORT,
        value="value_usd",
        unit="share",
        risk_direction=1,
        description="Share of export value that is consumer goods (HS chapters "
        f"{', '.join(CONSUMER_HS_CHAPTERS)}) sent to the EU (product-safety and low-value "
        "import rule changes).",
        reason="Exposed to EU consumer-goods rules",
        hint="Check EU product compliance.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="net_cash_flow_90d",
        family="cash_flow",
        source="derived",
        aggregation="expr",
        expr="inflow_90d - outflow_90d",
        unit="USD",
        risk_direction=-1,
        description="Inflows minus outflows (excluding loan flows), last 90 days.",
        reason="Net cash outflow",
        hint="Keep inflows above outflows.",
        missing="0 when none.",
    ),
    _f(
        name="pending_refund_to_exports",
        family="customs_compliance",
        source="derived",
        aggregation="expr",
        expr="pending_tax_refund_usd / NULLIF(export_value_365d, 0)",
        unit="ratio",
        risk_direction=1,
        description="Pending export tax refunds over the last year's export value.",
        reason="Much cash tied up in pending refunds",
        hint="Follow up refund claims.",
        missing=NAN_NO_EXPORTS,
    ),
    _f(
        name="loan_due_to_inflow_30d",
        family="payment_discipline",
        source="derived",
        aggregation="expr",
        expr="CASE WHEN loan_due_next_30d_usd = 0 THEN 0 "
        "ELSE loan_due_next_30d_usd / NULLIF(inflow_30d, 0) END",
        unit="ratio",
        risk_direction=1,
        description="Loan instalments due in the next 30 days over the last 30 days' inflows.",
        reason="Repayments due are large compared with income",
        hint="Match repayment schedules to cash inflows.",
        missing="0 when nothing is due; NaN when something is due and there were no inflows.",
    ),
    _f(
        name="inflow_to_exports_365d",
        family="cash_flow",
        source="derived",
        aggregation="expr",
        expr="inflow_365d / NULLIF(export_value_365d, 0)",
        unit="ratio",
        risk_direction=-1,
        description="Received inflows over declared exports, last 365 days "
        "(how much of what is shipped turns into cash).",
        reason="Little of what is exported is paid",
        hint="Collect sales proceeds.",
        missing=NAN_NO_EXPORTS,
    ),
)


#: The two features a decision reports as its data sufficiency (``data.thin_file`` and
#: ``data.history_months``) and the offer engine's history rule reads.
THIN_FILE = "thin_file_flag"
HISTORY_MONTHS = "months_of_history"


@dataclass(frozen=True)
class Condition:
    """A named condition on one catalog feature, for policies' decision rules
    (``decision.decline[].when`` in a policy file): ``feature op value``. A missing value
    (NaN) never meets a condition: a rule fires on what the records show.

    Parameters
    ----------
    name : the name a policy uses.
    feature : the catalog feature it reads.
    op : one of ``>``, ``>=``, ``<``, ``<=``.
    value : the threshold.
    text : what it means, in plain words (shown with the rule that fired).
    """

    name: str
    feature: str
    op: Literal[">", ">=", "<", "<="]
    value: float
    text: str

    def holds(self, x: object) -> bool:
        """Whether value ``x`` of the feature meets the condition (``None``/NaN: no)."""
        if x is None:
            return False
        try:
            v = float(x)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        if v != v:
            return False
        if self.op == ">":
            return v > self.value
        if self.op == ">=":
            return v >= self.value
        if self.op == "<":
            return v < self.value
        return v <= self.value


#: The conditions a policy may name, each over one catalog feature.
CONDITIONS: tuple[Condition, ...] = (
    Condition("thin_file", THIN_FILE, ">=", 1, "too little history for a reliable assessment"),
    Condition(
        "overdue_supplier_invoices",
        "supplier_overdue_unpaid_usd",
        ">",
        0,
        "supplier invoices unpaid past their due date",
    ),
    Condition("past_default", "past_default_count", ">", 0, "a loan defaulted in the past"),
    Condition(
        "loan_arrears", "loan_dpd_max_90d", ">", 30, "a loan more than 30 days late recently"
    ),
    Condition("young_firm", "firm_age_days", "<", 365, "registered less than a year ago"),
    Condition(
        "no_recent_inflow", "days_since_last_inflow", ">", 60, "no money received in 60 days"
    ),
    Condition(
        "customs_rejections",
        "customs_rejected_rate_365d",
        ">",
        0.1,
        "over 10% of customs declarations rejected in the last year",
    ),
)


def condition(name: str) -> Condition:
    """The condition called ``name``; ``KeyError`` listing the known ones otherwise."""
    for c in CONDITIONS:
        if c.name == name:
            return c
    known = ", ".join(c.name for c in CONDITIONS)
    raise KeyError(f"no condition called {name!r} in the catalog; known: {known}")


def _check(catalog: tuple[Feature, ...]) -> None:
    names = [f.name for f in catalog]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate feature names in the catalog: {dupes}")
    absent = {THIN_FILE, HISTORY_MONTHS} - set(names)
    if absent:
        raise ValueError(f"the catalog must define {sorted(absent)} (data sufficiency)")
    stray = sorted(c.name for c in CONDITIONS if c.feature not in names)
    if stray:
        raise ValueError(f"conditions {stray} read features that are not in the catalog")


def feature_names() -> list[str]:
    """The model's column order: every catalog feature, in catalog order."""
    _check(CATALOG)
    return [f.name for f in CATALOG]


def monotone_constraints() -> list[int]:
    """LightGBM ``monotone_constraints`` in :func:`feature_names` order."""
    return [f.risk_direction for f in CATALOG]


def get(name: str) -> Feature:
    """The feature called ``name``; ``KeyError`` naming close matches otherwise."""
    for f in CATALOG:
        if f.name == name:
            return f
    import difflib

    close = difflib.get_close_matches(name, [f.name for f in CATALOG], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no feature called {name!r} in the catalog{hint}")


def reason_texts() -> dict[str, str]:
    """Feature name -> reason-code text (for when the feature raises the risk)."""
    return {f.name: f.reason for f in CATALOG}


def _version() -> str:
    payload = json.dumps(
        {"features": [asdict(f) for f in CATALOG], "lags": DEFAULT_LAGS}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


#: A hash of every definition (and the default availability lags): changes when any does.
CATALOG_VERSION: str = _version()
