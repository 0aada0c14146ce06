"""Policy files: the default loads, and every invalid file is refused naming field and problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from credit.policy import (
    PolicyError,
    ReceivablesPolicy,
    WorkingCapitalPolicy,
    default_policy,
    load_policy,
    policy_for_tenant,
    policy_from_dict,
)


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(default_policy().model_dump(exclude_none=True))


def _write(tmp_path: Path, data: Any, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_default_policy_has_the_four_products() -> None:
    p = default_policy()
    assert list(p.enabled_products()) == [
        "working_capital_advance",
        "receivables_financing",
        "tax_refund_advance",
        "warehouse_inventory_financing",
    ]
    wca = p.products.working_capital_advance
    assert isinstance(wca, WorkingCapitalPolicy)
    assert wca.advance_rate == 0.5  # "a cap of 50% of six months' payouts"
    terms = wca.term_days
    assert isinstance(terms, dict) and min(terms.values()) >= 90 and max(terms.values()) <= 180
    assert isinstance(p.products.receivables_financing, ReceivablesPolicy)


def test_round_trip_through_yaml(tmp_path: Path, raw: dict[str, Any]) -> None:
    assert load_policy(_write(tmp_path, raw)) == default_policy()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ["products", "working_capital_advance", "lgd"],
            1.5,
            "products.working_capital_advance.lgd: Input should be less than or equal to 1 "
            "(got 1.5)",
        ),
        (["cost_of_funds"], -0.01, "cost_of_funds: Input should be greater than or equal to 0"),
        (["currency"], "XYZ", "currency: 'XYZ' is not an ISO 4217 currency code"),
        (
            ["products", "tax_refund_advance", "pd_cutoff"],
            "high",
            "products.tax_refund_advance.pd_cutoff: Input should be a valid number",
        ),
        (
            ["products", "receivables_financing", "grade_factors", "B"],
            1.2,
            "products.receivables_financing.grade_factors: factor for grade B must be between "
            "0 and 1, got 1.2",
        ),
        (
            ["products", "working_capital_advance", "term_days"],
            {"A": 180},
            "products.working_capital_advance: term_days has no term for eligible grade(s) "
            "B, C, D, E",
        ),
        (
            ["products", "warehouse_inventory_financing", "min_amount"],
            1e9,
            "products.warehouse_inventory_financing: min_amount (1e+09) is above max_amount",
        ),
        (
            ["products", "working_capital_advance", "term_days", "A"],
            0,
            "a term must be between 1 and 3650 days, got 0",
        ),
        (["products", "loans_for_cats"], {}, "products.loans_for_cats: Extra inputs are not"),
        (["margn"], 0.03, "margn: Extra inputs are not permitted"),
    ],
)
def test_invalid_fields_are_named(
    tmp_path: Path, raw: dict[str, Any], path: list[str], value: Any, expected: str
) -> None:
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    f = _write(tmp_path, raw)
    with pytest.raises(PolicyError) as exc:
        load_policy(f)
    msg = str(exc.value)
    assert expected in msg
    assert msg.startswith(f"invalid policy {f}: 1 problem(s)")


def test_every_problem_is_listed(raw: dict[str, Any]) -> None:
    del raw["cost_of_funds"]
    raw["products"]["working_capital_advance"]["advance_rate"] = 0
    with pytest.raises(PolicyError) as exc:
        policy_from_dict(raw, source="x.yaml")
    msg = str(exc.value)
    assert "2 problem(s)" in msg
    assert "  cost_of_funds: Field required\n" in msg + "\n"
    assert "products.working_capital_advance.advance_rate: Input should be greater than 0" in msg


def test_a_policy_must_offer_something(raw: dict[str, Any]) -> None:
    for p in raw["products"].values():
        p["enabled"] = False
    with pytest.raises(PolicyError, match="enables no product"):
        policy_from_dict(raw)


def test_files_that_are_not_policies(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"not valid YAML at line 2"):
        load_policy(bad)
    with pytest.raises(
        PolicyError, match="expected a mapping of fields at the top level, got list"
    ):
        load_policy(_write(tmp_path, [1, 2]))
    with pytest.raises(PolicyError, match="got NoneType"):
        load_policy(_write(tmp_path, None))


def test_policy_per_tenant(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["name"] = "acme-platform"
    _write(tmp_path, raw, "acme.yaml")
    assert policy_for_tenant("acme", tmp_path).name == "acme-platform"
    assert policy_for_tenant("other", tmp_path).name == "default"
    assert policy_for_tenant("acme", None).name == "default"
    assert policy_for_tenant("../acme", tmp_path).name == "default"  # no path tricks
    raw["cost_of_funds"] = 3
    _write(tmp_path, raw, "broken.yaml")
    with pytest.raises(PolicyError, match="cost_of_funds"):  # never a silent fallback
        policy_for_tenant("broken", tmp_path)
