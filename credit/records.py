"""The trade-record data contract: five record types, their fields and their rules.

This module is the single definition of what a valid record is. Ingestion validates
against it, the record store's tables are created from it, the simulator writes files
that satisfy it and ``docs/data-contract.md`` is generated from it.

Conventions
-----------
* Dates are calendar dates (``2025-03-01``) or ISO 8601 timestamps
  (``2025-03-01T14:05:00``, ``2025-03-01T14:05:00+08:00``); both are stored as UTC
  timestamps. A bare date means midnight at the start of that day.
* Amounts are in US dollars; the original currency of a payment is kept in ``currency``.
* Every status that changes after a record is created carries the date it changed
  (``closed_at``, ``paid_at``, ``tax_refund_settled_at``, ``default_at``), so any past
  state can be reconstructed as of any date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Literal

DType = Literal["string", "timestamp", "float", "int", "bool"]

#: SQL type used for each contract dtype in the record store (DuckDB / PostgreSQL).
SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
}

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
ID_HELP = "1-64 characters: letters, digits, '_', '.', ':', '-'; starting with a letter or digit"
#: Free text (a region name): printable characters only, so no control character (NUL, line
#: breaks, escape sequences) and no markup ('<', '>') reaches a store, a page or a log.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f<>]{1,64}$"
TEXT_HELP = "1-64 characters of printable text (no control characters, no '<' or '>')"

#: The earliest date a timestamp may hold: earlier ones are taken for typing errors (a year
#: 0023 or 1023). The same bound applies to the moment a decision is asked for (``as_of``).
MIN_DATE = "1900-01-01"
#: The largest UTC offset a timestamp may carry, either way (UTC-12:00 to UTC+14:00 are in use):
#: a larger one is a typing error, and would move the value to another day.
MAX_UTC_OFFSET_HOURS = 14


@dataclass(frozen=True)
class FieldSpec:
    """One column of a record type.

    Parameters
    ----------
    name : column name, exactly as it appears in the file header.
    dtype : contract type (see ``SQL_TYPES``).
    description : what the field means, for people.
    required : a row with an empty value is rejected.
    unit : unit of measure (``USD``, ``kg``, ``days``), empty when not applicable.
    allowed : closed set of allowed values, for categorical fields.
    pattern : regular expression the value must match (strings only).
    min_value, min_inclusive, max_value : numeric range.
    references : ``(record_type, field)`` the value must exist in.
    future_ok : a timestamp that may lie after the ingestion date (e.g. a due date).
    vocabulary : name of an external code list the value must belong to
        (``iso3166`` country codes, ``iso4217`` currency codes).
    """

    name: str
    dtype: DType
    description: str
    required: bool = True
    unit: str = ""
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    min_value: float | None = None
    min_inclusive: bool = True
    max_value: float | None = None
    references: tuple[str, str] | None = None
    future_ok: bool = False
    vocabulary: Literal["iso3166", "iso4217"] | None = None

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.dtype]


@dataclass(frozen=True)
class RowRule:
    """A rule across several fields of one row.

    ``sql`` is a boolean SQL expression over the row's typed columns that is TRUE when
    the row breaks the rule (NULL counts as not broken). ``field`` names the field the
    rejection is reported against and ``reason`` is the message a person can act on.
    """

    field: str
    sql: str
    reason: str


@dataclass(frozen=True)
class RecordType:
    """A record type of the contract: its fields, its key and its event time."""

    name: str
    description: str
    id_field: str
    event_time: str
    fields: tuple[FieldSpec, ...]
    rules: tuple[RowRule, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def required_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def create_table_sql(self, table: str | None = None, primary_key: bool = True) -> str:
        """``CREATE TABLE IF NOT EXISTS`` statement for the record store.

        ``primary_key=False`` leaves out the key constraint, for a store whose only writer
        (ingestion) already guarantees unique IDs and should not pay for an index.
        """
        cols = ",\n  ".join(
            f"{f.name} {f.sql_type}{' NOT NULL' if f.required else ''}" for f in self.fields
        )
        key = f",\n  PRIMARY KEY ({self.id_field})" if primary_key else ""
        return f"CREATE TABLE IF NOT EXISTS {table or self.name} (\n  {cols}{key}\n)"


def _id(name: str, what: str) -> FieldSpec:
    return FieldSpec(name, "string", f"Unique identifier of the {what}.", pattern=ID_PATTERN)


def _firm_ref() -> FieldSpec:
    return FieldSpec(
        "firm_id",
        "string",
        "The firm the record belongs to; must be a known firm.",
        pattern=ID_PATTERN,
        references=("firms", "firm_id"),
    )


def _country(name: str, what: str) -> FieldSpec:
    return FieldSpec(name, "string", f"{what} (ISO 3166-1 alpha-2).", vocabulary="iso3166")


BUSINESS_MODELS = ("b2b", "b2c", "mixed")
CATEGORIES = (
    "textiles_apparel",
    "home_furnishings",
    "cosmetics",
    "food",
    "electronics_digital",
    "machinery_electrical",
    "agricultural",
)
CUSTOMS_REGIMES = ("9610", "9710", "9810", "1210", "0110")
CUSTOMS_STATUSES = ("cleared", "inspected", "held", "rejected")
TAX_REFUND_STATUSES = ("none", "pending", "paid", "denied")
SHIPMENT_MODES = ("postal", "express", "air", "sea", "rail")
DESTINATION_TYPES = ("consumer", "business", "overseas_warehouse")
SHIPMENT_STATUSES = ("in_transit", "delivered", "returned", "lost", "damaged")
PAYMENT_KINDS = (
    "settlement",
    "b2b_receipt",
    "supplier_payment",
    "refund",
    "chargeback",
    "fee",
    "loan_disbursement",
    "loan_repayment",
)
#: The direction each payment kind must have (money into the firm or out of it).
PAYMENT_DIRECTION: dict[str, str] = {
    "settlement": "in",
    "b2b_receipt": "in",
    "supplier_payment": "out",
    "refund": "out",
    "chargeback": "out",
    "fee": "out",
    "loan_disbursement": "in",
    "loan_repayment": "out",
}
LOAN_PRODUCTS = (
    "working_capital_advance",
    "receivables_financing",
    "tax_refund_advance",
    "warehouse_inventory_financing",
)

FIRMS = RecordType(
    name="firms",
    description="One row per firm: who it is, what it sells, where it is registered.",
    id_field="firm_id",
    event_time="registered_at",
    fields=(
        _id("firm_id", "firm"),
        FieldSpec("registered_at", "timestamp", "Date the firm was registered."),
        FieldSpec(
            "business_model",
            "string",
            "Who the firm sells to: businesses, consumers, or both.",
            allowed=BUSINESS_MODELS,
        ),
        FieldSpec("main_category", "string", "Main product category.", allowed=CATEGORIES),
        FieldSpec(
            "home_region",
            "string",
            "Region of registration (ISO 3166-2 subdivision code such as CN-GD, or a "
            "free-text region name of at most 64 characters).",
            pattern=TEXT_PATTERN,
        ),
    ),
)

CUSTOMS = RecordType(
    name="customs",
    description=(
        "Export and import declarations. The declaration's status is known from its "
        "declaration date; the export tax refund settles later, on tax_refund_settled_at."
    ),
    id_field="declaration_id",
    event_time="declared_at",
    fields=(
        _id("declaration_id", "customs declaration"),
        _firm_ref(),
        FieldSpec("declared_at", "timestamp", "Date the declaration was lodged."),
        FieldSpec("direction", "string", "Export or import.", allowed=("export", "import")),
        FieldSpec(
            "regime",
            "string",
            "Customs supervision code: 9610 cross-border B2C direct mail, 9710 B2B direct "
            "export, 9810 export to overseas warehouse, 1210 bonded e-commerce, 0110 general "
            "trade.",
            allowed=CUSTOMS_REGIMES,
        ),
        FieldSpec("hs_code", "string", "Harmonized System code, 6 digits.", pattern=r"^[0-9]{6}$"),
        _country("origin_country", "Country of origin of the goods"),
        _country("destination_country", "Country of destination"),
        FieldSpec(
            "value_usd",
            "float",
            "Declared customs value.",
            unit="USD",
            min_value=0,
            min_inclusive=False,
            max_value=1e10,
        ),
        FieldSpec(
            "quantity",
            "float",
            "Quantity declared, in the declaration's statistical unit.",
            min_value=0,
            min_inclusive=False,
            max_value=1e10,
        ),
        FieldSpec("status", "string", "Clearance outcome.", allowed=CUSTOMS_STATUSES),
        FieldSpec(
            "tax_refund_usd",
            "float",
            "Export VAT refund claimed (0 when none).",
            unit="USD",
            min_value=0,
            max_value=1e10,
        ),
        FieldSpec(
            "tax_refund_status",
            "string",
            "State of the export tax refund.",
            allowed=TAX_REFUND_STATUSES,
        ),
        FieldSpec(
            "tax_refund_settled_at",
            "timestamp",
            "When the refund was paid or denied; empty while none or pending.",
            required=False,
        ),
    ),
    rules=(
        RowRule(
            "tax_refund_settled_at",
            "tax_refund_status IN ('paid', 'denied') AND tax_refund_settled_at IS NULL",
            "tax_refund_settled_at is required when tax_refund_status is paid or denied",
        ),
        RowRule(
            "tax_refund_settled_at",
            "tax_refund_status IN ('none', 'pending') AND tax_refund_settled_at IS NOT NULL",
            "tax_refund_settled_at must be empty while tax_refund_status is none or pending",
        ),
        RowRule(
            "tax_refund_settled_at",
            "tax_refund_settled_at < declared_at",
            "tax_refund_settled_at is before declared_at",
        ),
        RowRule(
            "tax_refund_usd",
            "tax_refund_status <> 'none' AND tax_refund_usd <= 0",
            "tax_refund_usd must be > 0 when a refund is pending, paid or denied",
        ),
    ),
)

SHIPMENTS = RecordType(
    name="shipments",
    description=(
        "Parcels and freight. A shipment is in transit until closed_at, the date it "
        "reached its final status."
    ),
    id_field="shipment_id",
    event_time="shipped_at",
    fields=(
        _id("shipment_id", "shipment"),
        _firm_ref(),
        FieldSpec(
            "declaration_id",
            "string",
            "Customs declaration covering the shipment, if any.",
            required=False,
            pattern=ID_PATTERN,
            references=("customs", "declaration_id"),
        ),
        FieldSpec("shipped_at", "timestamp", "Date the goods left."),
        FieldSpec(
            "closed_at",
            "timestamp",
            "Date the shipment reached its final status; empty while in transit.",
            required=False,
        ),
        FieldSpec("mode", "string", "Transport mode.", allowed=SHIPMENT_MODES),
        _country("origin_country", "Country the shipment left from"),
        _country("destination_country", "Country the shipment goes to"),
        FieldSpec(
            "destination_type",
            "string",
            "Who receives the goods.",
            allowed=DESTINATION_TYPES,
        ),
        FieldSpec(
            "weight_kg",
            "float",
            "Gross weight.",
            unit="kg",
            min_value=0,
            min_inclusive=False,
            max_value=1e8,
        ),
        FieldSpec(
            "declared_value_usd",
            "float",
            "Value declared on the shipment.",
            unit="USD",
            min_value=0,
            min_inclusive=False,
            max_value=1e10,
        ),
        FieldSpec("status", "string", "Final or current status.", allowed=SHIPMENT_STATUSES),
    ),
    rules=(
        RowRule(
            "closed_at",
            "status <> 'in_transit' AND closed_at IS NULL",
            "closed_at is required once a shipment is delivered, returned, lost or damaged",
        ),
        RowRule(
            "closed_at",
            "status = 'in_transit' AND closed_at IS NOT NULL",
            "closed_at must be empty while the shipment is in_transit",
        ),
        RowRule("closed_at", "closed_at < shipped_at", "closed_at is before shipped_at"),
    ),
)

_direction_sql = " OR ".join(
    f"(kind = '{k}' AND direction <> '{d}')" for k, d in PAYMENT_DIRECTION.items()
)

PAYMENTS = RecordType(
    name="payments",
    description=(
        "Money in and out: platform settlements, B2B receipts, supplier payments, refunds, "
        "chargebacks, fees and loan flows. An invoice is issued at occurred_at, due at due_at "
        "and paid at paid_at (empty while unpaid); a transfer that moves at once has "
        "paid_at = occurred_at."
    ),
    id_field="payment_id",
    event_time="occurred_at",
    fields=(
        _id("payment_id", "payment"),
        _firm_ref(),
        FieldSpec("kind", "string", "What the money is for.", allowed=PAYMENT_KINDS),
        FieldSpec(
            "direction",
            "string",
            "in = money to the firm, out = money from the firm.",
            allowed=("in", "out"),
        ),
        FieldSpec(
            "amount_usd",
            "float",
            "Amount in US dollars.",
            unit="USD",
            min_value=0,
            min_inclusive=False,
            max_value=1e10,
        ),
        FieldSpec(
            "currency",
            "string",
            "Original currency of the payment (ISO 4217).",
            vocabulary="iso4217",
        ),
        FieldSpec(
            "counterparty_id",
            "string",
            "Platform, buyer, supplier or lender on the other side.",
            pattern=ID_PATTERN,
        ),
        FieldSpec("occurred_at", "timestamp", "Date issued (invoices) or moved (transfers)."),
        FieldSpec(
            "due_at",
            "timestamp",
            "Date payment is due, for invoices and instalments.",
            required=False,
            future_ok=True,
        ),
        FieldSpec(
            "paid_at",
            "timestamp",
            "Date the money actually moved; empty = unpaid.",
            required=False,
        ),
    ),
    rules=(
        RowRule(
            "direction",
            _direction_sql,
            "direction does not match kind (settlement, b2b_receipt and loan_disbursement are "
            "'in'; the other kinds are 'out')",
        ),
        RowRule("due_at", "due_at < occurred_at", "due_at is before occurred_at"),
        RowRule("paid_at", "paid_at < occurred_at", "paid_at is before occurred_at"),
    ),
)

LOANS = RecordType(
    name="loans",
    description=(
        "Loan applications and their outcomes, used for training. defaulted means 90+ days "
        "past due within 365 days of disbursement; empty while the outcome is not yet known."
    ),
    id_field="loan_id",
    event_time="applied_at",
    fields=(
        _id("loan_id", "loan"),
        _firm_ref(),
        FieldSpec("product", "string", "Financing product.", allowed=LOAN_PRODUCTS),
        FieldSpec("applied_at", "timestamp", "Date the firm applied."),
        FieldSpec(
            "disbursed_at",
            "timestamp",
            "Date the money was paid out; empty if never disbursed.",
            required=False,
        ),
        FieldSpec(
            "amount_usd",
            "float",
            "Principal.",
            unit="USD",
            min_value=0,
            min_inclusive=False,
            max_value=1e10,
        ),
        FieldSpec(
            "term_days",
            "int",
            "Contractual term.",
            unit="days",
            min_value=1,
            max_value=3650,
        ),
        FieldSpec(
            "defaulted",
            "bool",
            "90+ days past due within 365 days of disbursement; empty = not yet known.",
            required=False,
        ),
        FieldSpec(
            "default_at",
            "timestamp",
            "Date the loan became 90 days past due; empty unless defaulted.",
            required=False,
        ),
    ),
    rules=(
        RowRule("disbursed_at", "disbursed_at < applied_at", "disbursed_at is before applied_at"),
        RowRule(
            "default_at",
            "defaulted AND default_at IS NULL",
            "default_at is required when defaulted is true",
        ),
        RowRule(
            "default_at",
            "(defaulted IS NULL OR NOT defaulted) AND default_at IS NOT NULL",
            "default_at must be empty unless defaulted is true",
        ),
        RowRule(
            "default_at",
            "default_at < disbursed_at",
            "default_at is before disbursed_at",
        ),
        RowRule(
            "defaulted",
            "defaulted IS NOT NULL AND disbursed_at IS NULL",
            "a loan that was never disbursed cannot have an outcome",
        ),
    ),
)

#: The contract, in dependency order (a record type may reference only earlier ones).
RECORD_TYPES: dict[str, RecordType] = {
    rt.name: rt for rt in (FIRMS, CUSTOMS, SHIPMENTS, PAYMENTS, LOANS)
}


def record_type(name: str) -> RecordType:
    """Return the record type called ``name`` or raise a ``KeyError`` listing the valid ones."""
    try:
        return RECORD_TYPES[name]
    except KeyError:
        raise KeyError(
            f"unknown record type {name!r}; expected one of {', '.join(RECORD_TYPES)}"
        ) from None


@cache
def vocabulary(name: str) -> frozenset[str]:
    """The codes of an external code list (``iso3166`` or ``iso4217``)."""
    import pycountry

    if name == "iso3166":
        return frozenset(c.alpha_2 for c in pycountry.countries)
    if name == "iso4217":
        return frozenset(c.alpha_3 for c in pycountry.currencies)
    raise KeyError(f"unknown vocabulary {name!r}")
