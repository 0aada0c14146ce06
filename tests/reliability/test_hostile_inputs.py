"""Hostile values get a clear 4xx (or a clear error from the command line), never a crash:
SQL fragments in IDs, path tricks, enormous numbers, NaN and infinity, year 9999, deeply
nested JSON and oversized bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from credit.cli import app as cli
from credit.scoring import ScoringModel
from tests.api_support import posted_body
from tests.reliability.conftest import h, running_service


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, tiny_model: ScoringModel) -> Any:
    with running_service(tmp_path_factory.mktemp("hostile"), tiny_model) as s:
        yield s


def _clear_4xx(r: Any, *allowed: int) -> None:
    assert r.status_code in allowed, (r.status_code, r.text[:300])
    if r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert body["error"] and body["detail"], body
        assert "Traceback" not in r.text


def _decisions(svc: dict[str, Any]) -> int:
    with svc["engine"].connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one())


SQL = [
    "F1' OR '1'='1",
    "F1'; DROP TABLE decisions; --",
    'F1" OR 1=1 --',
    "F1) UNION SELECT key_hash FROM api_keys --",
    "%27%20OR%201%3D1",
]


@pytest.mark.parametrize("fragment", SQL)
def test_sql_fragments_in_ids_are_refused(svc: dict[str, Any], fragment: str) -> None:
    c, key = svc["client"], svc["keys"]["a_lender"]
    before = _decisions(svc)
    _clear_4xx(c.post("/v1/score", json={"firm_id": fragment}, headers=h(key)), 422)
    batch = c.post("/v1/score/batch", json={"items": [{"firm_id": fragment}]}, headers=h(key))
    assert batch.status_code == 200 and batch.json()["results"][0]["status"] == 422
    _clear_4xx(c.get(f"/v1/decisions/dec_{fragment}", headers=h(key)), 404, 422)
    _clear_4xx(c.get(f"/v1/firms/{fragment}/offers", headers=h(key)), 404, 422)
    _clear_4xx(c.post("/v1/score", json={"firm_id": "F0001"}, headers=h(fragment)), 401)
    page = c.get(f"/sellers/{fragment}", params={"token": fragment})
    assert page.status_code in (403, 404) and "Traceback" not in page.text
    # nothing was injected: the tables are intact and nothing was recorded
    assert _decisions(svc) == before
    with svc["engine"].connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one() >= 5


@pytest.mark.parametrize(
    "path",
    [
        "/sellers/..%2F..%2Fetc%2Fpasswd",
        "/sellers/%2e%2e/%2e%2e/etc/passwd",
        "/v1/decisions/..%2F..%2Fapi_keys",
        "/v1/firms/..%2F..%2Fetc%2Fpasswd/offers",
        "/static/../../pyproject.toml",
    ],
)
def test_path_tricks_in_urls(svc: dict[str, Any], path: str) -> None:
    r = svc["client"].get(path, headers=h(svc["keys"]["a_admin"]))
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    assert "root:" not in r.text and "[project]" not in r.text


def test_path_tricks_in_file_arguments(tmp_path: Path) -> None:
    runner = CliRunner()
    for target in ["/etc/passwd", str(tmp_path / ".." / ".." / "no-such-dir"), "../../../../etc"]:
        res = runner.invoke(cli, ["ingest", target, "--store", str(tmp_path / "s.duckdb")])
        assert res.exit_code != 0, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)  # no crash
    # a record file that is a link to a system file is read as a record file and refused
    d = tmp_path / "in"
    d.mkdir()
    (d / "payments.csv").symlink_to("/etc/passwd")
    res = runner.invoke(cli, ["ingest", str(d), "--store", str(tmp_path / "s.duckdb"), "--json"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert not report["ok"] and "payments.csv" in report["errors"][0]
    assert "root:" not in res.output
    # a store argument that is a directory or a device: a clear error, nothing written there
    (d / "payments.csv").unlink()
    (d / "firms.csv").write_text("firm_id\nF1\n")
    for store in [str(tmp_path), "/dev/null"]:
        res = runner.invoke(cli, ["ingest", str(d), "--store", store, "--json"])
        assert res.exit_code == 1, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        assert "cannot open the record store" in json.loads(res.stdout)["errors"][0]


@pytest.mark.parametrize(
    "raw_amount",
    ["1e308", "1e309", "-1e309", "NaN", "Infinity", "-Infinity", "9" * 400, "1" + "0" * 5000],
)
def test_enormous_numbers_nan_and_infinity_are_422(svc: dict[str, Any], raw_amount: str) -> None:
    body = json.dumps(posted_body(amount_usd=0.5)).replace(
        '"amount_usd": 0.5', f'"amount_usd": {raw_amount}'
    )
    assert raw_amount in body
    r = svc["client"].post(
        "/v1/score",
        content=body,
        headers={**h(svc["keys"]["a_lender"]), "content-type": "application/json"},
    )
    _clear_4xx(r, 422)


@pytest.mark.parametrize(
    "payload",
    [
        {"firm_id": "F0001", "as_of": "9999-12-31T23:59:59Z"},
        {"firm_id": "F0001", "as_of": "9999-12-31"},
        {"firm_id": "F0001", "as_of": "10000-01-01"},
        {"firm_id": "F0001", "as_of": "0001-01-01"},
        {"firm_id": "F0001", "as_of": "2025-02-30"},
    ],
)
def test_extreme_dates(svc: dict[str, Any], payload: dict[str, Any]) -> None:
    r = svc["client"].post("/v1/score", json=payload, headers=h(svc["keys"]["a_lender"]))
    # all outside the range an as_of may take (1900-01-01 to tomorrow, UTC), or impossible
    _clear_4xx(r, 422)
    off = svc["client"].get(
        "/v1/firms/F0001/offers",
        params={"as_of": payload["as_of"]},
        headers=h(svc["keys"]["a_lender"]),
    )
    _clear_4xx(off, 422)


def test_year_9999_in_posted_records_is_refused(svc: dict[str, Any]) -> None:
    r = svc["client"].post(
        "/v1/score",
        json=posted_body(occurred_at="9999-12-31", paid_at="9999-12-31"),
        headers=h(svc["keys"]["a_lender"]),
    )
    _clear_4xx(r, 422)


@pytest.mark.parametrize("depth", [50, 5_000, 200_000])
def test_deeply_nested_json(svc: dict[str, Any], depth: int) -> None:
    key = h(svc["keys"]["a_lender"])
    nested = "[" * depth + "]" * depth
    for url, body in [
        ("/v1/score", nested),
        ("/v1/score", '{"firm_id": "F0001", "as_of": ' + nested + "}"),
        ("/v1/score/batch", '{"items": [{"firm_id": ' + nested + "}]}"),
    ]:
        r = svc["client"].post(
            url, content=body, headers={**key, "content-type": "application/json"}
        )
        if r.status_code == 200:  # the batch answers per item
            assert r.json()["results"][0]["status"] == 422
        else:
            _clear_4xx(r, 413, 422)


def test_oversized_bodies(svc: dict[str, Any]) -> None:
    c, key = svc["client"], h(svc["keys"]["a_lender"])
    limit = svc["settings"].api_max_body_bytes
    big = json.dumps({"firm_id": "F0001", "pad": "x" * (limit + 10)})
    _clear_4xx(
        c.post("/v1/score", content=big, headers={**key, "content-type": "application/json"}), 413
    )

    def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    _clear_4xx(
        c.post("/v1/score", content=chunks(), headers={**key, "content-type": "application/json"}),
        413,
    )
    # huge fields inside the limit: a clear 422, not a crash
    huge_id = {"firm_id": "F" * 100_000}
    _clear_4xx(c.post("/v1/score", json=huge_id, headers=key), 422)
    items = {"items": [{"firm_id": "F0001"}] * 1001}
    _clear_4xx(c.post("/v1/score/batch", json=items, headers=key), 422)
    records = posted_body()
    records["records"]["payments"] = records["records"]["payments"] * 5001
    _clear_4xx(c.post("/v1/score", json=records, headers=key), 413, 422)
    _clear_4xx(
        c.post("/v1/score", json={"firm_id": "F0001"}, headers={"X-API-Key": "k" * 10_000}), 401
    )
