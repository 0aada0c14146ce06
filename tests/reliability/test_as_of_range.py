"""An ``as_of`` outside the range the data contract accepts is the caller's mistake: a 422 (or
one line from the command line) naming the field and the range, never a 500, a 503 or a
traceback, and in a batch only that item fails (issue 17, item 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from credit.cli import app as cli
from tests.api_support import catalog_frame, posted_body, train_catalog_model
from tests.reliability.conftest import h, running_service

#: Out of range: year 1 with a positive offset (before 0001-01-01 in UTC), before 1900, far
#: in the future, and an offset no place on Earth uses.
_TOMORROW_PLUS_2 = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+00:01",
    "0001-01-01",
    "1899-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31",
    _TOMORROW_PLUS_2,
    "2025-06-30T00:00:00+20:00",
]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A service whose model and online store both speak the feature catalog, so firms by id
    and posted records are both scored."""
    model = train_catalog_model()
    frame = catalog_frame(3, "2025-06-30")
    with running_service(tmp_path_factory.mktemp("as_of"), model) as s:
        names = [c for c in frame.columns if c not in ("firm_id", "as_of")]
        s["store"].rows = {
            f"F{i:04d}": [(datetime(2025, 6, 30, tzinfo=UTC), frame.iloc[i][names].to_dict())]
            for i in range(3)
        }
        yield s


def _decisions(svc: dict[str, Any]) -> int:
    with svc["engine"].connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one())


def _names_as_of_and_range(detail: Any, loc: str) -> None:
    assert isinstance(detail, list), detail
    hit = [d for d in detail if d["loc"] == loc]
    assert hit, detail
    assert "1900-01-01" in hit[0]["msg"], hit[0]


@pytest.mark.parametrize("as_of", OUT_OF_RANGE)
def test_score_by_firm_id_with_as_of_out_of_range_is_422(svc: dict[str, Any], as_of: str) -> None:
    before = _decisions(svc)
    r = svc["client"].post(
        "/v1/score", json={"firm_id": "F0001", "as_of": as_of}, headers=h(svc["keys"]["a_lender"])
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])
    _names_as_of_and_range(r.json()["detail"], "body.as_of")
    assert _decisions(svc) == before


@pytest.mark.parametrize("as_of", OUT_OF_RANGE)
def test_score_posted_records_with_as_of_out_of_range_is_422(
    svc: dict[str, Any], as_of: str
) -> None:
    before = _decisions(svc)
    r = svc["client"].post("/v1/score", json=posted_body(as_of), headers=h(svc["keys"]["a_lender"]))
    assert r.status_code == 422, (r.status_code, r.text[:300])
    _names_as_of_and_range(r.json()["detail"], "body.as_of")
    assert _decisions(svc) == before


@pytest.mark.parametrize("as_of", OUT_OF_RANGE)
def test_batch_item_with_as_of_out_of_range_fails_alone(svc: dict[str, Any], as_of: str) -> None:
    before = _decisions(svc)
    items = [
        {"firm_id": "F0001", "as_of": as_of},
        {"firm_id": "F0002"},
        posted_body(as_of),
        posted_body("2025-06-30"),
    ]
    r = svc["client"].post(
        "/v1/score/batch", json={"items": items}, headers=h(svc["keys"]["a_lender"])
    )
    assert r.status_code == 200, (r.status_code, r.text[:300])
    body = r.json()
    assert [x["status"] for x in body["results"]] == [422, 200, 422, 200]
    assert (body["scored"], body["failed"]) == (2, 2)
    _names_as_of_and_range(body["results"][0]["error"]["detail"], "items.0.as_of")
    _names_as_of_and_range(body["results"][2]["error"]["detail"], "items.2.as_of")
    # the audit log reconciles: one row per decision returned
    assert _decisions(svc) == before + 2


@pytest.mark.parametrize("as_of", OUT_OF_RANGE)
def test_offers_with_as_of_out_of_range_is_422(svc: dict[str, Any], as_of: str) -> None:
    before = _decisions(svc)
    r = svc["client"].get(
        "/v1/firms/F0001/offers", params={"as_of": as_of}, headers=h(svc["keys"]["a_lender"])
    )
    assert r.status_code == 422, (r.status_code, r.text[:300])
    _names_as_of_and_range(r.json()["detail"], "query.as_of")
    assert _decisions(svc) == before


def test_as_of_within_the_range_is_scored(svc: dict[str, Any]) -> None:
    """The bounds themselves, and tomorrow (a caller ahead of UTC), are accepted."""
    key = h(svc["keys"]["a_lender"])
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    for as_of in ["1900-01-01T00:00:00Z", "1900-01-01T05:00:00+05:00", tomorrow, "2025-06-30"]:
        r = svc["client"].post("/v1/score", json={"firm_id": "F0001", "as_of": as_of}, headers=key)
        # before 2025-06-30 the store has no features for the firm: a 404, not a range error
        assert r.status_code == (200 if as_of[:4] > "2024" else 404), (as_of, r.text[:300])
        r = svc["client"].post("/v1/score", json=posted_body(as_of), headers=key)
        assert r.status_code == 200, (as_of, r.status_code, r.text[:300])


@pytest.mark.parametrize("command", ["score", "offers"])
@pytest.mark.parametrize("as_of", OUT_OF_RANGE)
def test_cli_as_of_out_of_range_is_one_line_and_exit_2(command: str, as_of: str) -> None:
    res = CliRunner().invoke(cli, [command, "--firm", "F0001", "--as-of", as_of])
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: --as-of must lie between 1900-01-01"), lines[0]
