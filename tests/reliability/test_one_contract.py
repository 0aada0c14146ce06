"""One data contract for both ways records come in: `credit ingest` of files and records posted
to ``POST /v1/score`` (issue 17, items 2, 6c and 6d).

The cases are generated from the contract itself (:mod:`credit.records`): for every field of
every record type that can be posted, one row per check the field has (required, type, allowed
values, pattern, range, before 1900, after today, a UTC offset beyond +/-14:00, code list,
reference, duplicate ID), and one row per rule across fields. Each case goes through both
entry points and must get the same outcome:

* rules the API's request schema already checks (types, vocabularies, patterns, ranges) are
  refused there first (a 422 naming the field's path, in pydantic's words), as before;
* every other rule reaches the contract's own checks, and the API's 422 lists the record with
  exactly the field and the reason ingestion writes to the ``rejected`` table.

Valid rows (with edge values: offsets of +/-14:00, a due date in the future, a region name in
Chinese) are accepted by both. A rejected request records nothing in the audit log.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from credit.ingest import ingest_dir
from credit.records import (
    ID_PATTERN,
    MIN_DATE,
    RECORD_TYPES,
    TEXT_HELP,
    TEXT_PATTERN,
    FieldSpec,
)
from tests.api_support import train_catalog_model
from tests.reliability.conftest import h, running_service
from tests.unit.credit.ingest_rows import CUSTOMS, FIRM, PAYMENT, SHIPMENT

#: The record types a request can carry: the firm (``firm``) and its histories (``records``).
POSTED = ("firms", "customs", "shipments", "payments")
BASE = {"firms": FIRM, "customs": CUSTOMS, "shipments": SHIPMENT, "payments": PAYMENT}
LATER = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()

#: Values that break a pattern, per pattern of the contract.
BAD_BY_PATTERN = {
    ID_PATTERN: ["bad id!"],
    r"^[0-9]{6}$": ["61091"],
    TEXT_PATTERN: ["CN\x00GD", "<script>alert(1)</script>", "CN\nGD", "\x1b[2JCN"],
}
PATTERN_REASON = {
    ID_PATTERN: "is not a valid identifier",
    r"^[0-9]{6}$": "must be exactly 6 digits",
    TEXT_PATTERN: f"must be {TEXT_HELP}",
}
#: Values that are not of the field's type.
BAD_BY_TYPE = {"timestamp": "2024-02-30", "float": "12,5", "int": "1.5", "bool": "maybe"}
BAD_BY_VOCABULARY = {"iso3166": "XX", "iso4217": "XYZ"}

#: One row breaking each rule across fields, by (record type, reason). The test of coverage
#: below fails when the contract gains a rule that has no row here.
RULE_ROWS: dict[tuple[str, str], dict[str, str]] = {
    ("customs", "tax_refund_settled_at is required when tax_refund_status is paid or denied"): {
        "tax_refund_settled_at": ""
    },
    (
        "customs",
        "tax_refund_settled_at must be empty while tax_refund_status is none or pending",
    ): {"tax_refund_status": "pending"},
    ("customs", "tax_refund_settled_at is before declared_at"): {
        "tax_refund_settled_at": "2024-02-01"
    },
    ("customs", "tax_refund_usd must be > 0 when a refund is pending, paid or denied"): {
        "tax_refund_usd": "0"
    },
    (
        "shipments",
        "closed_at is required once a shipment is delivered, returned, lost or damaged",
    ): {"closed_at": ""},
    ("shipments", "closed_at must be empty while the shipment is in_transit"): {
        "status": "in_transit"
    },
    ("shipments", "closed_at is before shipped_at"): {"closed_at": "2024-03-01"},
    ("payments", RECORD_TYPES["payments"].rules[0].reason): {"direction": "out"},
    ("payments", "due_at is before occurred_at"): {"due_at": "2024-03-01"},
    ("payments", "paid_at is before occurred_at"): {"paid_at": "2024-03-31"},
}

#: Valid rows with edge values: both entry points accept them.
VALID_ROWS: list[tuple[str, dict[str, str]]] = [
    ("firms", {}),
    ("firms", {"home_region": "浙江省 Hangzhou"}),
    ("firms", {"home_region": "R" * 64}),
    ("firms", {"registered_at": "2020-05-01T08:00:00+14:00"}),
    ("firms", {"registered_at": "2020-05-01T08:00:00-14:00"}),
    ("customs", {}),
    ("customs", {"declared_at": "2024-03-01T10:00:00-14:00"}),
    ("shipments", {}),
    ("payments", {}),
    ("payments", {"due_at": LATER}),
    (
        "payments",
        {"occurred_at": "2024-04-01T10:00:00.123456+05:45", "paid_at": "2024-04-01T10:00:01+05:45"},
    ),
]


@dataclass(frozen=True)
class Case:
    """A row of ``record_type`` (the valid row with ``changes``) and what both must answer."""

    record_type: str
    changes: dict[str, str]
    field: str
    reason: str  # the reason ingestion gives (a prefix of it)
    schema: bool  # True: the API's request schema refuses it first (pydantic)
    duplicate: bool = False  # the row comes twice: the second is rejected
    kind: str = ""  # the check broken: required, type, ...


def _timestamp_value(f: FieldSpec, base: dict[str, str]) -> str:
    day = (base.get(f.name) or "2024-04-01")[:10]
    return f"{day}T10:00:00"


def _field_cases(rt_name: str, f: FieldSpec) -> list[Case]:
    rt = RECORD_TYPES[rt_name]
    base = BASE[rt_name]
    out: list[Case] = []

    def add(value: str, reason: str, schema: bool, kind: str) -> None:
        out.append(Case(rt_name, {f.name: value}, f.name, reason, schema, kind=kind))

    if f.required:
        add("", f"{f.name} is required and is empty", True, "required")
    add_type = BAD_BY_TYPE.get(f.dtype)
    if add_type is not None:
        add(add_type, f"{f.name} is not a", True, "type")
    if f.allowed is not None:
        add("zzz", f"{f.name} must be one of: {', '.join(f.allowed)}", True, "allowed")
    for i, value in enumerate(BAD_BY_PATTERN.get(f.pattern or "", [])):
        add(value, f"{f.name} {PATTERN_REASON[f.pattern or '']}", True, f"pattern-{i}")
    if f.min_value is not None:
        low = f.min_value if not f.min_inclusive else f.min_value - 1
        add(f"{low:g}", f"{f.name} must be {'>=' if f.min_inclusive else '>'} ", True, "min")
    if f.max_value is not None:
        add(f"{f.max_value * 10:g}", f"{f.name} must be <= ", True, "max")
    if f.dtype == "timestamp":
        add("1899-12-31", f"{f.name} is before {MIN_DATE} (check the year)", False, "before1900")
        if not f.future_ok:
            add(LATER, f"{f.name} is after the ingestion date", False, "after_today")
        stamp = _timestamp_value(f, base)
        beyond = f"{f.name} has a UTC offset beyond +/-14:00"
        add(stamp + "+20:00", beyond, False, "offset+20")  # the API's parser takes it
        add(stamp + "-14:30", beyond, False, "offset-14:30")
        add(stamp + "+25:00", beyond, True, "offset+25")  # the API's parser refuses it
    if f.vocabulary is not None:
        add(BAD_BY_VOCABULARY[f.vocabulary], f"{f.name} is not an ISO", True, "vocabulary")
    if f.references is not None:
        # A firm other than the one posted: the API's schema refuses a record of another firm.
        schema = f.references[0] == "firms"
        add("F9" if schema else "D404", f"{f.name} is not a ", schema, "reference")
    if f.name == rt.id_field and rt_name != "firms":  # a request carries one firm
        out.append(
            Case(
                rt_name,
                {},
                f.name,
                f"duplicate {f.name}: an earlier valid row",
                False,
                duplicate=True,
                kind="duplicate",
            )
        )
    return out


def contract_cases() -> list[Case]:
    """Every check of every field and every rule of the posted record types."""
    cases: list[Case] = []
    for rt_name in POSTED:
        rt = RECORD_TYPES[rt_name]
        for f in rt.fields:
            cases += _field_cases(rt_name, f)
        for rule in rt.rules:
            changes = RULE_ROWS[(rt_name, rule.reason)]
            cases.append(Case(rt_name, changes, rule.field, rule.reason, False, kind="rule"))
    return cases


CASES = contract_cases()


def _case_id(n: int, c: Case) -> str:
    return f"{c.record_type}.{c.field}.{c.kind}.{n}"


def _row(rt_name: str, n: int, changes: dict[str, str]) -> dict[str, str]:
    rt = RECORD_TYPES[rt_name]
    return {**BASE[rt_name], rt.id_field: f"C{n:03d}", **changes}


def _case_rows(c: Case, n: int) -> list[dict[str, str]]:
    row = _row(c.record_type, n, c.changes)
    return [row, dict(row)] if c.duplicate else [row]


def _write_csv(folder: Path, name: str, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=RECORD_TYPES[name].columns)
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], list[Any]]:
    """Every case's rows (and every valid row) in one directory, ingested once: the rejected
    rows by (record type, line)."""
    folder = tmp_path_factory.mktemp("one_contract")
    files: dict[str, list[dict[str, str]]] = {name: [BASE[name]] for name in POSTED}
    for n, c in enumerate(CASES):
        files[c.record_type] += _case_rows(c, n)
    for n, (name, changes) in enumerate(VALID_ROWS, start=len(CASES)):
        files[name].append(_row(name, n, changes))
    for name, rows in files.items():
        _write_csv(folder / "in", name, rows)
    store = folder / "records.duckdb"
    report = ingest_dir(folder / "in", store)
    assert report.ok, report.errors
    con = duckdb.connect(str(store), read_only=True)
    try:
        got = con.execute("SELECT record_type, line, record_id, field, reason FROM rejected")
        rejected = {(r[0], int(r[1])): list(r[2:]) for r in got.fetchall()}
        stored = {
            name: {
                str(r[0])
                for r in con.execute(f"SELECT {RECORD_TYPES[name].id_field} FROM {name}").fetchall()
            }
            for name in POSTED
        }
    finally:
        con.close()
    # line of each case's last row: header 1, the valid base row 2, then the cases in order
    out: dict[tuple[str, int], list[Any]] = {}
    lines = dict.fromkeys(POSTED, 2)
    for n, c in enumerate(CASES):
        lines[c.record_type] += len(_case_rows(c, n))
        out[(c.record_type, n)] = rejected.get((c.record_type, lines[c.record_type]), [])
    for n, (name, _changes) in enumerate(VALID_ROWS, start=len(CASES)):
        lines[name] += 1
        got_row = rejected.get((name, lines[name]))
        out[(name, n)] = [] if got_row is None and f"C{n:03d}" in stored[name] else ["missing"]
    return out


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_service(tmp_path_factory.mktemp("one_contract_api"), train_catalog_model()) as s:
        yield s


def _json(row: dict[str, str]) -> dict[str, str]:
    """A row as a JSON record: an empty value is left out (``null``)."""
    return {k: v for k, v in row.items() if v != ""}


def _body(rt_name: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    """A request carrying ``rows`` and what they need, as the ingested directory has it."""
    if rt_name == "firms":
        return {"firm": _json(rows[0]), "records": {}}
    records: dict[str, list[dict[str, str]]] = {}
    if rt_name == "shipments":  # the declaration a shipment references
        records["customs"] = [_json(CUSTOMS)]
    records[rt_name] = [_json(r) for r in rows]
    return {"firm": _json(FIRM), "records": records}


def _loc(rt_name: str, index: int, field_name: str) -> str:
    if rt_name == "firms":
        return f"body.firm.{field_name}"
    return f"body.records.{rt_name}.{index}.{field_name}"


def _decisions(svc: dict[str, Any]) -> int:
    with svc["engine"].connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one())


def test_every_rule_of_the_contract_has_a_case() -> None:
    for rt_name in POSTED:
        rt = RECORD_TYPES[rt_name]
        for rule in rt.rules:
            assert (rt_name, rule.reason) in RULE_ROWS, f"no row breaks {rt_name}: {rule.reason}"
        for f in rt.fields:
            assert any(c.record_type == rt_name and c.field == f.name for c in CASES), f.name
    kinds = {c.kind for c in CASES}
    assert {"required", "type", "allowed", "pattern-0", "min", "max", "before1900"} <= kinds
    assert {"after_today", "offset+20", "vocabulary", "reference", "duplicate", "rule"} <= kinds


@pytest.mark.parametrize("n", range(len(CASES)), ids=[_case_id(n, c) for n, c in enumerate(CASES)])
def test_a_broken_row_is_rejected_alike_by_ingestion_and_the_api(
    n: int, ingested: dict[tuple[str, int], list[Any]], svc: dict[str, Any]
) -> None:
    c = CASES[n]
    # ingestion: the row is rejected, with this field and reason
    got = ingested[(c.record_type, n)]
    assert got, f"ingestion accepted {c}"
    _record_id, got_field, got_reason = got
    assert (got_field, got_reason.startswith(c.reason)) == (c.field, True), (got, c)
    # the API: a 422 about the same field (and, past the schema, the same reason)
    rows = _case_rows(c, n)
    before = _decisions(svc)
    r = svc["client"].post(
        "/v1/score", json=_body(c.record_type, rows), headers=h(svc["keys"]["a_lender"])
    )
    assert r.status_code == 422, (r.status_code, r.text[:400])
    detail = r.json()["detail"]
    assert isinstance(detail, list), detail
    index = len(rows) - 1
    loc = _loc(c.record_type, index, c.field)
    if c.schema:
        assert any(
            d["loc"].startswith(loc) or (d["loc"] == "body" and c.field in d["msg"]) for d in detail
        ), (loc, detail)
    else:
        assert detail == [
            {
                "loc": loc,
                "msg": got_reason,
                "type": "data_contract",
                "record_type": c.record_type,
                "index": index,
                "record_id": rows[-1][RECORD_TYPES[c.record_type].id_field] or None,
                "field": got_field,
                "reason": got_reason,
            }
        ], detail
    assert _decisions(svc) == before  # nothing recorded


@pytest.mark.parametrize(
    "n",
    range(len(CASES), len(CASES) + len(VALID_ROWS)),
    ids=[f"{name}-{'-'.join(ch) or 'base'}" for name, ch in VALID_ROWS],
)
def test_a_valid_row_is_accepted_by_ingestion_and_the_api(
    n: int, ingested: dict[tuple[str, int], list[Any]], svc: dict[str, Any]
) -> None:
    name, changes = VALID_ROWS[n - len(CASES)]
    assert ingested[(name, n)] == [], ingested[(name, n)]
    before = _decisions(svc)
    body = _body(name, [_row(name, n, changes)])
    if name == "firms":
        body["records"] = {"payments": [{**_json(PAYMENT), "firm_id": f"C{n:03d}"}]}
    r = svc["client"].post("/v1/score", json=body, headers=h(svc["keys"]["a_lender"]))
    assert r.status_code == 200, (r.status_code, r.text[:400])
    assert _decisions(svc) == before + 1


def test_every_rejected_record_of_a_request_is_listed(svc: dict[str, Any]) -> None:
    """The issue's examples in one request: each broken record listed with its field and
    reason (as an ingestion report lists them), nothing scored. (A firm registered in 2099 is
    a case above: its records then reference no known firm, in ingestion as in the API.)"""
    pay = _json(PAYMENT)
    body = {
        "firm": _json(FIRM),
        "records": {
            "payments": [
                {**pay, "payment_id": "P1", "occurred_at": LATER, "paid_at": LATER},
                {**pay, "payment_id": "P2", "occurred_at": "1899-12-31"},
                {**pay, "payment_id": "P3", "paid_at": "2024-03-01"},
                {**pay, "payment_id": "P4", "direction": "out"},
                {**pay, "payment_id": "P5"},
                {**pay, "payment_id": "P5"},
            ]
        },
    }
    before = _decisions(svc)
    r = svc["client"].post("/v1/score", json=body, headers=h(svc["keys"]["a_lender"]))
    assert r.status_code == 422, r.text[:400]
    got = [(d["loc"], d["record_id"], d["reason"]) for d in r.json()["detail"]]
    assert got == [
        ("body.records.payments.0.occurred_at", "P1", "occurred_at is after the ingestion date"),
        ("body.records.payments.1.occurred_at", "P2", f"occurred_at is before {MIN_DATE} (check the year)"),  # noqa: E501
        ("body.records.payments.2.paid_at", "P3", "paid_at is before occurred_at"),
        ("body.records.payments.3.direction", "P4", RECORD_TYPES["payments"].rules[0].reason),
        (
            "body.records.payments.5.payment_id",
            "P5",
            "duplicate payment_id: an earlier valid row of the same file or request has it "
            "(that row is kept)",
        ),
    ]  # fmt: skip
    assert _decisions(svc) == before


def test_a_batch_item_with_broken_records_fails_alone(svc: dict[str, Any]) -> None:
    pay = _json(PAYMENT)
    bad = {"firm": _json(FIRM), "records": {"payments": [{**pay, "paid_at": "2024-03-01"}]}}
    good = {"firm": _json(FIRM), "records": {"payments": [pay]}}
    before = _decisions(svc)
    r = svc["client"].post(
        "/v1/score/batch", json={"items": [good, bad]}, headers=h(svc["keys"]["a_lender"])
    )
    assert r.status_code == 200, r.text[:400]
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 422]
    (item,) = results[1]["error"]["detail"]
    assert (item["loc"], item["reason"]) == (
        "items.1.records.payments.0.paid_at",
        "paid_at is before occurred_at",
    )
    assert _decisions(svc) == before + 1  # the audit log reconciles: one row per 200
