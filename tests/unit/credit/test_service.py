"""The use-case layer (credit.service): each use case's steps, errors and recording, without
HTTP or a terminal; and each entry point's one mapping of its errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from credit.audit import AuditLog
from credit.consent import ConsentStore
from credit.db import make_engine, upgrade
from credit.decisions import Decision
from credit.errors import (
    AuditUnavailableError,
    InvalidInputError,
    NotFoundError,
    RejectedRecordsError,
    UnavailableError,
    UseCaseError,
)
from credit.policy import PolicyError, default_policy
from credit.service import (
    CreditService,
    OnlineFeatures,
    Party,
    RecordFeatures,
    RecordStore,
    ScoreItem,
)
from tests.api_support import firm_features, make_store, train_model
from tests.consent_support import grant
from tests.seller_support import GOOD_FEATURES, simulated_records, write_store
from tests.seller_support import train_model as train_offers_model

CALLER = Party(tenant="bank", key_id="k1")
#: The firms CALLER's tenant has a consent for: those of ``make_store()``, and two with no
#: usable features (none at all, and features that do not fit the model).
SHARED = [f"F{i:04d}" for i in range(20)] + ["NOPE", "BAD"]


class Observer:
    def __init__(self) -> None:
        self.recorded: list[str] = []
        self.failed = 0

    def decisions_recorded(self, decisions: Sequence[Decision]) -> None:
        self.recorded.extend(d.decision_id for d in decisions)

    def audit_failed(self, n: int) -> None:
        self.failed += n


class NoRecords:
    def load(self, firm_id: str, as_of: datetime) -> dict[str, Any]:
        return {}


@pytest.fixture(scope="module")
def model() -> Any:
    return train_model()


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    upgrade(engine)
    grant(engine, SHARED, CALLER.tenant)
    return AuditLog(engine)


def _service(model: Any, audit: AuditLog | None, **kw: Any) -> CreditService:
    args: dict[str, Any] = {
        "model": lambda: model,
        "features": OnlineFeatures(make_store()),
        "records": NoRecords(),
        "policies": lambda tenant: default_policy(),
        "audit": audit,
        "consents": ConsentStore(audit.engine) if audit is not None else None,
    }
    args.update(kw)
    return CreditService(**args)


def test_decide_firm_scores_the_latest_features_and_records_the_decision(
    model: Any, audit: AuditLog
) -> None:
    obs = Observer()
    svc = _service(model, audit, observer=obs)
    d = svc.decide_firm("F0003", caller=CALLER, request={"firm_id": "F0003"})
    assert d.as_of == datetime(2025, 6, 30, tzinfo=UTC)  # the latest of the two snapshots
    assert d.features["late_share_180d"] == firm_features(5003)["late_share_180d"]
    assert d.source == "online_store" and len(d.reasons) == 4
    row = audit.get("bank", d.decision_id)
    assert row is not None and row["pd"] == d.pd and row["key_id"] == "k1"
    assert obs.recorded == [d.decision_id]
    earlier = svc.decide_firm("F0003", datetime(2025, 4, 1, tzinfo=UTC), caller=CALLER)
    assert earlier.as_of == datetime(2025, 3, 31, tzinfo=UTC)
    assert audit.count("bank") == 2


def test_each_failure_is_its_own_typed_error(model: Any, audit: AuditLog) -> None:
    svc = _service(model, audit)
    with pytest.raises(NotFoundError, match="no features in the online store"):
        svc.decide_firm("NOPE", caller=CALLER)
    with pytest.raises(NotFoundError, match="F0001 not found or not shared with you"):
        svc.decide_firm("F0001", caller=Party(tenant="another-bank"))  # no consent
    with pytest.raises(NotFoundError, match="at or before 2025-01-01"):
        svc.decide_firm("F0001", datetime(2025, 1, 1, tzinfo=UTC), caller=CALLER)
    down = make_store()
    down.fail = True
    with pytest.raises(UnavailableError, match="online store unavailable: ConnectionError"):
        _service(model, audit, features=OnlineFeatures(down)).decide_firm("F0001", caller=CALLER)
    with pytest.raises(UnavailableError, match="cannot open it"):
        _service(model, audit, features=OnlineFeatures(None, "cannot open it")).decide_firm(
            "F0001", caller=CALLER
        )
    with pytest.raises(UnavailableError, match="no model loaded"):
        _service(None, audit).decide_firm("F0001", caller=CALLER)
    assert audit.count() == 0  # nothing failed was recorded


def test_an_audit_failure_returns_nothing_and_is_counted(model: Any, audit: AuditLog) -> None:
    obs = Observer()
    svc = _service(model, audit, observer=obs)
    with audit.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE decisions"))
    with pytest.raises(AuditUnavailableError, match="no decision was made"):
        svc.decide_firm("F0001", caller=CALLER)
    result = None
    with pytest.raises(AuditUnavailableError):
        result = svc.decide_batch([ScoreItem("F0001"), ScoreItem("F0002")], caller=CALLER)
    assert result is None and obs.failed == 3 and obs.recorded == []


def test_a_batch_scores_what_it_can_in_one_version_and_types_the_rest(
    model: Any, audit: AuditLog
) -> None:
    bad = {**firm_features(1), "settlements_90d": "lots"}  # not a number: does not fit
    store = make_store()
    store.rows["BAD"] = [(datetime(2025, 6, 30, tzinfo=UTC), bad)]
    svc = _service(model, audit, features=OnlineFeatures(store))
    items = [ScoreItem("F0001"), ScoreItem("NOPE"), ScoreItem("BAD"), ScoreItem("F0002")]
    batch = svc.decide_batch(items, caller=CALLER)
    assert batch.model == model.identity()
    kinds = [type(r).__name__ for r in batch.results]
    assert kinds == ["Decision", "NotFoundError", "InvalidInputError", "Decision"]
    assert "settlements_90d" in str(batch.results[2])
    assert audit.count("bank") == 2


def test_offers_are_made_from_a_decision_and_recorded_with_it(
    tmp_path: Path, audit: AuditLog
) -> None:
    frames = simulated_records()
    write_store(tmp_path / "records.duckdb", frames)
    firm = str(frames["firms"]["firm_id"].iloc[0])
    grant(audit.engine, [firm], CALLER.tenant)
    as_of = datetime(2025, 7, 1, tzinfo=UTC)
    store = make_store(0)
    store.rows[firm] = [(as_of, GOOD_FEATURES)]
    svc = _service(
        train_offers_model(),
        audit,
        features=OnlineFeatures(store),
        records=RecordStore(tmp_path / "records.duckdb"),
    )
    fo = svc.firm_offers(firm, caller=CALLER, channel="test")
    assert fo.offers.decision_id == fo.decision.decision_id and fo.offers.grade == "C"
    assert set(fo.records) == {"customs", "shipments", "payments"}
    with audit.engine.connect() as conn:
        (offers,) = conn.execute(sa.text("SELECT offers FROM decisions")).one()
    assert offers is not None and "working_capital_advance" in str(offers)

    def broken(tenant: str) -> Any:
        raise PolicyError("products.x: unknown product")

    with pytest.raises(UnavailableError, match="lending policy of bank is invalid"):
        _service(train_offers_model(), audit, features=OnlineFeatures(store), policies=broken)\
            .firm_offers(firm, caller=CALLER, channel="test")  # fmt: skip
    missing = RecordStore(tmp_path / "absent.duckdb")
    with pytest.raises(UnavailableError, match="record store"):
        _service(train_offers_model(), audit, features=OnlineFeatures(store), records=missing)\
            .firm_offers(firm, caller=CALLER, channel="test")  # fmt: skip


def test_record_store_features_equal_the_batch_pipeline(tmp_path: Path) -> None:
    """The record-store feature source runs the online path over the store's records; it
    gives the batch pipeline's values for the same firm and moment."""
    from features.pipeline import build

    frames = simulated_records()
    path = tmp_path / "records.duckdb"
    write_store(path, frames)
    firm = str(frames["firms"]["firm_id"].iloc[3])
    as_of = datetime(2025, 3, 1, tzinfo=UTC)
    got = RecordFeatures(RecordStore(path, columns="all"), "record_store").features(firm, as_of)
    spine = pd.DataFrame({"firm_id": [firm], "as_of": [pd.Timestamp("2025-03-01")]})
    want = build(path, spine).iloc[0]
    assert got.source == "record_store" and got.as_of == as_of
    for name, value in got.values.items():
        assert value == pytest.approx(want[name], nan_ok=True, rel=1e-9), name
    with pytest.raises(NotFoundError, match="not in the record store"):
        RecordFeatures(RecordStore(path, columns="all"), "record_store").features("NOPE", as_of)


def test_posted_records_that_break_a_rule_are_invalid_input(model: Any) -> None:
    """Posted records pass the data contract as ingested files do; every rejected record is
    listed (record type, index, ID, field, reason)."""
    svc = _service(model, None)
    with pytest.raises(RejectedRecordsError, match="break the data contract") as err:
        svc.decide_records("F1", {"customs": [{"declared_at": "not a date"}]}, None, caller=CALLER)
    assert isinstance(err.value, InvalidInputError)
    assert err.value.details == [
        {
            "record_type": "customs",
            "index": 0,
            "record_id": None,
            "field": "declaration_id",
            "reason": "declaration_id is required and is empty",
        }
    ]


def test_the_api_lists_the_rejected_records() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api import errors

    app = FastAPI()
    errors.install(app)
    rejected = {"record_type": "payments", "index": 3, "record_id": "P9", "field": "paid_at",
                "reason": "paid_at is before occurred_at"}  # fmt: skip

    @app.get("/boom")
    def boom() -> None:
        raise RejectedRecordsError([rejected, {**rejected, "record_type": "firms", "index": 0}])

    r = TestClient(app).get("/boom")
    assert r.status_code == 422
    assert [(d["loc"], d["msg"], d["type"]) for d in r.json()["detail"]] == [
        ("body.records.payments.3.paid_at", "paid_at is before occurred_at", "data_contract"),
        ("body.firm.paid_at", "paid_at is before occurred_at", "data_contract"),
    ]
    assert r.json()["detail"][0]["record_id"] == "P9"


@pytest.mark.parametrize(
    ("error", "status"),
    [(NotFoundError, 404), (InvalidInputError, 422), (UnavailableError, 503),
     (AuditUnavailableError, 503)],
)  # fmt: skip
def test_the_api_maps_each_error_once(error: type[UseCaseError], status: int) -> None:
    """One handler (api.errors) turns a use case's error into its status and message."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise error("what went wrong, and what to do")

    r = TestClient(app).get("/boom")
    assert r.status_code == status
    assert r.json()["detail"] == "what went wrong, and what to do"


def test_the_command_line_maps_each_error_once(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from credit.commands.common import exit_for

    for error in (NotFoundError, InvalidInputError, UnavailableError):
        exc = exit_for(error("no such firm"))
        assert isinstance(exc, typer.Exit) and exc.exit_code == 1
        assert capsys.readouterr().err == "error: no such firm\n"
