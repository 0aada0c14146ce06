"""Files and pushes together, through the command line: ``credit ingest --source``, the feature
build reading pushed records, replay of a decision made on a stored snapshot, and the
operator's ``credit consents`` and ``credit decisions replay``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from credit.cli import app as cli
from credit.consent import ConsentStore
from credit.keys import create_key
from credit.settings import get_settings
from tests.api_support import register_champion, train_catalog_model
from tests.consent_support import as_json, h

runner = CliRunner()
CUSTOMS, MARKET = "customs-data", "acme-market"


def credit(*args: str) -> Any:
    out = runner.invoke(cli, list(args))
    assert out.exit_code == 0, out.output
    return out


@pytest.fixture
def files_and_pushes(data_dir: Path, tmp_path: Path) -> Any:
    """A simulated world: firms, customs and shipments ingested from files as the customs
    data service's; one firm's payments pushed over HTTP by the marketplace."""
    world = tmp_path / "world"
    credit("simulate", "--firms", "30", "--start", "2024-01", "--months", "18", "--seed", "3",
           "--out", str(world))  # fmt: skip
    payments = pd.read_parquet(next(world.glob("payments*")))
    for f in world.glob("payments*"):
        f.unlink()
    for f in world.glob("loans*"):
        f.unlink()
    ingested = credit("ingest", str(world), "--source", CUSTOMS, "--json")
    report = json.loads(ingested.output[ingested.output.index("{") :])
    assert report["source"] == CUSTOMS
    model = train_catalog_model()
    settings = get_settings()
    register_champion(model, settings.tracking_uri, tmp_path)
    firm = str(payments["firm_id"].value_counts().index[0])
    mine = payments[payments["firm_id"] == firm]
    app = create_app(settings=settings)
    with TestClient(app) as c:
        engine = app.state.service.engine
        market = create_key(engine, MARKET, "platform")[1]
        lender = create_key(engine, "bank-a", "lender")[1]
        r = c.post("/v1/records", json={"records": {"payments": as_json(mine, "payments")}},
                   headers=h(market))  # fmt: skip
        assert r.status_code == 200 and r.json()["counts"]["payments"]["rejected"] == 0, r.text
        store = ConsentStore(engine)
        req = store.request(firm, "bank-a", ["credit_assessment"], 12, requested_by="bank-a",
                            key_id=None)  # fmt: skip
        granted = store.decide(
            req.consent_id, True, firm_providers=app.state.service.credit.firm_sources(firm),
            evidence={"kind": "seller_confirmation", "link_id": None},
        )  # fmt: skip
        yield {"client": c, "app": app, "engine": engine, "firm": firm, "model": model,
               "keys": {"market": market, "lender": lender}, "consent": granted,
               "push": r.json(), "payments": mine}  # fmt: skip


def test_files_are_their_source_s_and_registered(files_and_pushes: dict[str, Any]) -> None:
    engine, firm = files_and_pushes["engine"], files_and_pushes["firm"]
    assert files_and_pushes["consent"].sources == (MARKET, CUSTOMS) or set(
        files_and_pushes["consent"].sources
    ) == {MARKET, CUSTOMS}  # the default sources: every provider of the firm then
    with engine.connect() as conn:
        batches = conn.execute(
            sa.text("SELECT ingestion_id, provider, channel FROM record_batches")
        ).all()
        firms = (
            conn.execute(
                sa.text("SELECT provider FROM firm_sources WHERE firm_id = :f"), {"f": firm}
            )
            .scalars()
            .all()
        )
    files = [b for b in batches if b.channel == "file"]
    assert files and all(
        b.provider == CUSTOMS and b.ingestion_id.startswith("file_") for b in files
    )
    assert sorted(firms) == sorted([CUSTOMS, MARKET])


def test_the_feature_build_reads_pushed_records_and_a_snapshot_decision_replays(
    files_and_pushes: dict[str, Any],
) -> None:
    c, firm, keys = files_and_pushes["client"], files_and_pushes["firm"], files_and_pushes["keys"]
    # the pushed payments are copied into the record store and the snapshot counts them
    out = credit("features", "materialize", "--as-of", "2025-07-01")
    assert "copied" in out.output and "pushed record" in out.output
    d = c.post("/v1/score", json={"firm_id": firm}, headers=h(keys["lender"])).json()
    assert d["as_of"].startswith("2025-07-01") and d["sources"] == sorted([CUSTOMS, MARKET])
    with files_and_pushes["engine"].connect() as conn:
        source = conn.execute(
            sa.text("SELECT source FROM decisions WHERE decision_id = :d"), {"d": d["decision_id"]}
        ).scalar_one()
    assert source == "online_store"  # the materialized snapshot, written after every record
    rec = c.get(f"/v1/decisions/{d['decision_id']}", headers=h(keys["lender"])).json()
    ids = {i["ingestion_id"] for i in rec["lineage"]["ingestions"]}
    assert files_and_pushes["push"]["ingestion_id"] in ids
    assert any(i.startswith("file_") for i in ids)
    # inflows count the pushed settlements: with the payments unshared they would be missing
    assert rec["features"]["inflow_90d"] not in (None, 0.0)
    # a late, back-dated settlement: the next score recomputes, the replay does not move
    late = as_json(files_and_pushes["payments"].tail(1), "payments")[0]
    late.update(payment_id="acme-late-9", kind="settlement", direction="in",
                amount_usd=900_000.0, occurred_at="2025-06-28T09:00:00",
                paid_at="2025-06-28T09:00:00", due_at=None)  # fmt: skip
    r = c.post("/v1/records", json={"records": {"payments": [late]}}, headers=h(keys["market"]))
    assert r.json()["counts"]["payments"]["added"] == 1
    d2 = c.post(
        "/v1/score", json={"firm_id": firm, "as_of": "2025-07-01"}, headers=h(keys["lender"])
    ).json()
    f2 = c.get(f"/v1/decisions/{d2['decision_id']}", headers=h(keys["lender"])).json()
    assert f2["features"]["inflow_90d"] > rec["features"]["inflow_90d"]
    # the operator's replay: the registered version that made it, on the batch engine
    replay = credit("decisions", "replay", d["decision_id"])
    body = json.loads(replay.output[: replay.output.rindex("}") + 1])
    assert body["pd_difference"] <= 1e-12 and body["feature_differences"] == []
    assert r.json()["ingestion_id"] not in body["ingestions"]
    again = credit("decisions", "replay", d2["decision_id"])
    assert r.json()["ingestion_id"] in again.output


def test_operators_list_and_revoke_consents(files_and_pushes: dict[str, Any]) -> None:
    c, firm, keys = files_and_pushes["client"], files_and_pushes["firm"], files_and_pushes["keys"]
    cid = files_and_pushes["consent"].consent_id
    listed = json.loads(credit("consents", "list", "--firm", firm, "--json").output)
    assert [x["consent_id"] for x in listed] == [cid] and listed[0]["state"] == "active"
    assert c.post("/v1/score", json={"firm_id": firm, "as_of": "2025-07-01"},
                  headers=h(keys["lender"])).status_code == 200  # fmt: skip
    assert "revoked" in credit("consents", "revoke", cid).output
    r = c.post(
        "/v1/score", json={"firm_id": firm, "as_of": "2025-07-01"}, headers=h(keys["lender"])
    )
    assert r.status_code == 404
    assert json.loads(credit("consents", "list", "--json").output)[0]["state"] == "revoked"
    bad = runner.invoke(cli, ["consents", "revoke", "cns_0000000000000000"])
    assert bad.exit_code == 1 and "no consent" in bad.output
