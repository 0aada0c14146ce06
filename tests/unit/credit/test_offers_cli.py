"""``credit offers``: offers for one firm, policy errors, and a seller link, from the command line.

The record store is a small simulated world in the test's data directory; the model and the
online store are the test fixtures of :mod:`tests.seller_support` (the champion model and the
materialized online store belong to other commands' tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from credit.cli import app
from credit.links import link_secret, verify_seller_link
from credit.policy import default_policy
from credit.settings import get_settings
from tests.api_support import MemoryOnlineStore
from tests.seller_support import (
    GOOD_FEATURES,
    pick_firms,
    simulated_records,
    train_model,
    write_store,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def frames() -> dict[str, Any]:
    return simulated_records()


@pytest.fixture(scope="module")
def model() -> Any:
    return train_model()


@pytest.fixture
def world(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, frames: dict[str, Any], model: Any
) -> dict[str, Any]:
    from datetime import UTC, datetime

    import credit.commands.common as common

    get_settings().ensure_data_dir()
    write_store(get_settings().store_path, frames)
    good, _ = pick_firms(frames)
    online = MemoryOnlineStore({good: [(datetime(2025, 7, 1, tzinfo=UTC), GOOD_FEATURES)]})
    monkeypatch.setattr(common, "load_champion", lambda: model)
    monkeypatch.setattr(common, "online_store", lambda: online)
    return {"good": good}


def test_offers_for_a_firm(world: dict[str, Any]) -> None:
    r = runner.invoke(app, ["offers", "--firm", world["good"], "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["decision"]["grade"] == "C"
    assert body["policy"] == {"name": "default", "version": "1"}
    assert len(body["offers"]) == 4
    table = runner.invoke(app, ["offers", "--firm", world["good"]])
    assert table.exit_code == 0
    assert "working_capital_advance" in table.output and "grade C" in table.output


def test_a_policy_file_applies_and_is_validated(world: dict[str, Any], tmp_path: Path) -> None:
    p = default_policy().model_dump(exclude_none=True)
    p["name"] = "only-wca"
    for name in ("receivables_financing", "tax_refund_advance", "warehouse_inventory_financing"):
        p["products"][name]["enabled"] = False
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(p), encoding="utf-8")
    r = runner.invoke(app, ["offers", "--firm", world["good"], "--policy", str(f), "--json"])
    assert r.exit_code == 0, r.output
    assert [o["product"] for o in json.loads(r.output)["offers"]] == ["working_capital_advance"]
    p["products"]["working_capital_advance"]["lgd"] = 2
    f.write_text(yaml.safe_dump(p), encoding="utf-8")
    r = runner.invoke(app, ["offers", "--firm", world["good"], "--policy", str(f)])
    assert r.exit_code == 2
    assert "products.working_capital_advance.lgd: Input should be less than or equal to 1" in (
        r.output
    )


def test_unknown_firm(world: dict[str, Any]) -> None:
    r = runner.invoke(app, ["offers", "--firm", "F999999"])
    assert r.exit_code == 1 and "no features in the online store" in r.output


def test_seller_link_from_the_command_line(world: dict[str, Any]) -> None:
    from credit.db import get_engine
    from credit.links import LinkStore

    good = world["good"]
    r = runner.invoke(app, ["offers", "--firm", good, "--seller-link", "--tenant", "shop"])
    assert r.exit_code == 0, r.output
    url = r.output.splitlines()[0].strip()
    assert url.startswith(f"http://127.0.0.1:8000/sellers/{good}?token=")
    link = verify_seller_link(url.split("token=")[1], good, link_secret(get_settings()))
    assert link.tenant == "shop"
    recorded = LinkStore(get_engine()).get(link.link_id)  # an operator's link: no key
    assert recorded is not None and recorded.key_id is None and recorded.tenant == "shop"
    assert f"credit links revoke {link.link_id}" in r.output
    r = runner.invoke(app, ["offers", "--firm", good, "--seller-link"])
    assert r.exit_code == 2 and "needs --tenant" in r.output
    r = runner.invoke(app, ["offers", "--firm", "F999999", "--seller-link", "--tenant", "shop"])
    assert r.exit_code == 1 and "no features" in r.output
