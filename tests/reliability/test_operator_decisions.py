"""Issue 17, item 6: what the command line and the README promise.

- ``credit score --firm`` printed a ``decision_id`` that was never written to the audit log.
  A decision the command prints is now recorded like one the API returns.
- The README said a platform key may call ``POST /v1/score``; the service answered 403. The
  README's endpoint table and the service's role checks are now compared route by route.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from credit.audit import AuditLog
from credit.cli import app as cli
from credit.db import get_engine
from credit.settings import get_settings
from tests.api_support import MemoryOnlineStore, firm_features, train_model
from tests.reliability.conftest import h, running_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import credit.commands.common as common

    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    model = train_model()
    online = MemoryOnlineStore({"F0001": [(datetime(2025, 6, 30, tzinfo=UTC), firm_features(1))]})
    monkeypatch.setattr(common, "load_champion", lambda: model)
    monkeypatch.setattr(common, "online_store", lambda: online)
    yield {"model": model}
    get_settings.cache_clear()


def test_a_decision_the_cli_prints_is_in_the_audit_log(cli_world: dict[str, Any]) -> None:
    r = CliRunner().invoke(cli, ["score", "--firm", "F0001"])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.output)
    recorded = AuditLog(get_engine()).get("operator", printed["decision_id"])
    assert recorded is not None, "the printed decision id is not in the audit log"
    assert recorded["pd"] == printed["pd"] and recorded["grade"] == printed["grade"]
    assert recorded["key_id"] is None  # no API key: an operator's decision


def _readme_roles() -> dict[tuple[str, str], set[str]]:
    """(method, path) -> roles, for the README rows whose role column lists roles."""
    rows: dict[tuple[str, str], set[str]] = {}
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for m in re.finditer(r"^\| `(GET|POST|DELETE) (/v1/[^`]+)` \| ([a-z, ]+) \|", text, re.M):
        roles = {r.strip() for r in m.group(3).split(",")}
        if roles <= {"lender", "platform", "admin"}:
            rows[(m.group(1), m.group(2))] = roles
    return rows


def test_the_readme_s_roles_are_the_service_s(tmp_path: Path, tiny_model: Any) -> None:
    rows = _readme_roles()
    assert ("POST", "/v1/score") in rows and ("GET", "/v1/firms/{id}/offers") in rows
    bodies = {
        "/v1/score": {"firm_id": "F0001"},
        "/v1/score/batch": {"items": [{"firm_id": "F0001"}]},
    }
    with running_service(tmp_path, tiny_model) as svc:
        c, keys = svc["client"], svc["keys"]
        for (method, path), roles in rows.items():
            url = path.replace("{id}", "F0001")
            for role in ("lender", "platform", "admin"):
                key = keys[f"a_{role}"]
                r = c.request(method, url, headers=h(key), json=bodies.get(path))
                allowed = r.status_code != 403
                assert allowed == (role in roles), (method, path, role, r.status_code, r.text)
