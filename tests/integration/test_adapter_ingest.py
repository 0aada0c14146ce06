"""Exports through their adapters, by the command line and over HTTP: every source row is
accounted for, the counts reconcile, re-ingesting adds nothing and an overlapping export adds
only what is new; a header that names no format, or several, is a clear error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from credit.adapters import FormatError, detect
from credit.adapters.ingest import ingest_export
from credit.cli import app as cli
from credit.ingest import ingest_dir
from credit.keys import create_key
from credit.settings import Settings
from tests.api_support import train_catalog_model
from tests.consent_support import h

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "adapters"
STRIPE = SAMPLES / "stripe-balance" / "balance_history.csv"
FX = SAMPLES / "fx.csv"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "records.duckdb"
    assert ingest_dir(ROOT / "samples" / "demo", path).ok
    return path


def test_an_export_is_ingested_reconciled_and_idempotent(store: Path, tmp_path: Path) -> None:
    first = ingest_export(STRIPE, firm_id="F001", provider="acme", fx=FX, store_path=store)
    assert first.ok and first.reconciles and first.format == "stripe-balance"
    assert first.rows == {"read": 13, "mapped": 7, "rejected": 2, "skipped": 4}
    assert first.records == {"made": 12, "accepted": 12, "added": 12, "already_present": 0,
                             "rejected": 0}  # fmt: skip
    reasons = {r["reason"] for r in first.rejected_reasons}
    assert any("no EUR reference rate for 2024-03-16" in r for r in reasons)
    again = ingest_export(STRIPE, firm_id="F001", provider="acme", fx=FX, store_path=store)
    assert again.records["added"] == 0 and again.records["already_present"] == 12
    # an overlapping re-download: its last three rows and one new charge
    lines = STRIPE.read_text().splitlines()
    new = "txn_3OxA1nLkdIwHu7ix0ac9,charge,charge,ch_x9,55.00,1.90,53.10,usd,2024-04-02 10:00,"
    overlap = tmp_path / "balance_next.csv"
    overlap.write_text("\n".join([lines[0], *lines[-3:], new + "2024-04-04 00:00,available,x"]))
    later = ingest_export(overlap, firm_id="F001", provider="acme", fx=FX, store_path=store)
    assert later.reconciles and later.records["added"] == 2  # the charge and its fee
    con = duckdb.connect(str(store), read_only=True)
    try:
        kept = con.execute(
            "SELECT outcome, currency, amount, usd_rate FROM source_rows "
            "WHERE ingestion_id = ? AND line = 4",
            [first.ingestion_id],
        ).fetchone()
        n = con.execute("SELECT count(*) FROM payments WHERE firm_id = 'F001' "
                        "AND counterparty_id = 'stripe'").fetchone()  # fmt: skip
    finally:
        con.close()
    assert kept is not None and kept[:3] == ("mapped", "EUR", 89.9) and 1.0 < kept[3] < 1.2
    assert n == (14,)


def test_records_the_contract_rejects_turn_their_rows_into_rejected_rows(store: Path) -> None:
    report = ingest_export(STRIPE, firm_id="NOBODY", fx=FX, store_path=store)
    assert report.reconciles and report.rows["mapped"] == 0
    assert report.rows["rejected"] == 9 and report.records["rejected"] == 12
    assert any("known firm" in r["reason"] for r in report.rejected_reasons)


def test_an_unknown_or_ambiguous_header_is_a_clear_error() -> None:
    with pytest.raises(FormatError, match="matches no known export format"):
        detect("firm_id,registered_at\nF1,2024-01-01\n", "firms.csv")


def test_the_command_line_prints_a_reconciling_report(store: Path, tmp_path: Path) -> None:
    env = {"TRADECREDIT_DATA_DIR": str(tmp_path / "var")}
    args = ["ingest", str(STRIPE), "--firm", "F001", "--fx", str(FX), "--store", str(store)]
    r = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["reconciles"] and out["source_rows"]["read"] == 13
    assert out["format"] == "stripe-balance"  # told from the header
    r = CliRunner().invoke(cli, args, env=env)
    assert r.exit_code == 0 and "reconciles: read 13 = mapped 7 + rejected 2 + skipped 4" in (
        r.stdout.replace("\n", " ")
    )
    r = CliRunner().invoke(cli, ["ingest", str(STRIPE), "--store", str(store)], env=env)
    assert r.exit_code == 2 and "--firm" in r.output
    r = CliRunner().invoke(cli, ["ingest", str(ROOT / "samples" / "demo" / "firms.csv"),
                                 "--firm", "F001", "--store", str(store)], env=env)  # fmt: skip
    assert r.exit_code == 1 and "matches no known export format" in r.output


@pytest.fixture
def api(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings(data_dir=tmp_path / "var", api_rate_limit=0)
    assert ingest_dir(ROOT / "samples" / "demo", settings.store_path).ok
    model = train_catalog_model(version="7")
    app = create_app(settings=settings, model_loader=lambda s: model)
    with TestClient(app) as client:
        engine = app.state.service.engine
        yield {"client": client, "key": create_key(engine, "acme", "platform")[1]}
    engine.dispose()


def test_an_export_pushed_over_http_is_accounted_for(api: dict[str, Any]) -> None:
    c, key = api["client"], api["key"]
    body = {"format": "stripe-balance", "firm_id": "F001", "content": STRIPE.read_text(),
            "fx": FX.read_text()}  # fmt: skip
    r = c.post("/v1/records", json=body, headers=h(key))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["reconciles"] and out["source_rows"] == {
        "read": 13, "mapped": 7, "rejected": 2, "skipped": 4}  # fmt: skip
    assert out["counts"]["payments"]["added"] == 12
    assert {row["line"] for row in out["rows"]} == set(range(2, 15))
    eur = next(row for row in out["rows"] if row["line"] == 4)
    assert eur["currency"] == "EUR" and eur["amount"] == 89.9 and eur["usd_rate"] > 1
    kept = c.get(f"/v1/ingestions/{out['ingestion_id']}", headers=h(key)).json()["source_rows"]
    assert [row["line"] for row in kept] == list(range(2, 15))
    assert next(row for row in kept if row["line"] == 4)["currency"] == "EUR"
    again = c.post("/v1/records", json=body, headers=h(key)).json()
    assert again["counts"]["payments"]["already_present"] == 12
    told = c.post("/v1/records", json={k: v for k, v in body.items() if k != "format"},
                  headers=h(key))  # fmt: skip
    assert told.status_code == 200 and told.json()["format"] == "stripe-balance", told.text
    assert told.json()["counts"]["payments"]["already_present"] == 12
    bad = c.post("/v1/records", json={**body, "format": None, "content": "a,b\n1,2\n"},
                 headers=h(key))  # fmt: skip
    assert bad.status_code == 422 and "matches no known export format" in bad.text
    bad = c.post("/v1/records", json={**body, "format": "nope"}, headers=h(key))
    assert bad.status_code == 422 and "unknown format" in bad.text
