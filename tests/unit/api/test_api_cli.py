"""`credit keys` and the argument checks of `credit score` (no model needed)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from credit.cli import app
from credit.db import get_engine
from credit.keys import verify_key

runner = CliRunner()


def test_keys_create_list_revoke() -> None:
    res = runner.invoke(app, ["keys", "create", "--tenant", "bank-a", "--role", "platform"])
    assert res.exit_code == 0, res.output
    key = res.stdout.strip().splitlines()[-1]
    found = verify_key(get_engine(), key)
    assert found is not None and (found.tenant, found.role) == ("bank-a", "platform")

    listed = runner.invoke(app, ["keys", "list", "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["key_id"], r["tenant"], r["role"], r["revoked_at"]) for r in rows] == [
        (found.key_id, "bank-a", "platform", None)
    ]
    assert key not in listed.output  # only the id is shown, never the key

    res = runner.invoke(app, ["keys", "revoke", found.key_id])
    assert res.exit_code == 0 and "revoked" in res.output
    assert verify_key(get_engine(), key) is None
    assert runner.invoke(app, ["keys", "revoke", "000000000000"]).exit_code == 1


def test_keys_create_refuses_bad_input() -> None:
    res = runner.invoke(app, ["keys", "create", "--tenant", "bank a", "--role", "lender"])
    assert res.exit_code == 2 and "invalid tenant" in res.output
    res = runner.invoke(app, ["keys", "create", "--tenant", "bank-a", "--role", "root"])
    assert res.exit_code == 2 and "invalid role" in res.output


def test_score_needs_exactly_one_target() -> None:
    assert runner.invoke(app, ["score"]).exit_code == 2
    assert runner.invoke(app, ["score", "--firm", "F1", "--batch", "x.csv"]).exit_code == 2
    res = runner.invoke(app, ["score", "--firm", "F1", "--explain", "loud"])
    assert res.exit_code == 2 and "--explain" in res.output
