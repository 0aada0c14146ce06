"""The simulator's output keeps the data contract, is deterministic, and refuses bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from credit.cli import app
from credit.records import RECORD_TYPES, vocabulary
from credit.simulator import RECORD_FILES, World, simulate
from credit.simulator.calendar import Calendar, parse_month
from credit.simulator.writer import format_ids

DTYPE_CHECK = {
    "string": pd.api.types.is_string_dtype,
    "timestamp": lambda s: str(s.dtype) == "datetime64[ns]",
    "float": lambda s: str(s.dtype) == "float64",
    "int": lambda s: str(s.dtype) == "int64",
    "bool": lambda s: str(s.dtype) == "boolean",
}


@pytest.fixture(scope="module")
def world() -> World:
    # 2024-06 .. 2026-05 covers both shocks and ends before the test machine's today
    return simulate(firms=250, start="2024-01", months=18, seed=11)


def contract_violations(w: World) -> list[str]:
    """Every way the world's tables break ``credit.records`` (empty = none)."""
    problems: list[str] = []
    end = pd.Timestamp(w.end)
    frames = w.frames()
    for name, rt in RECORD_TYPES.items():
        df = frames[name]
        if list(df.columns) != rt.columns:
            problems.append(f"{name}: columns {list(df.columns)} != {rt.columns}")
            continue
        if df[rt.id_field].duplicated().any():
            problems.append(f"{name}: duplicate {rt.id_field}")
        for f in rt.fields:
            s = df[f.name]
            if not DTYPE_CHECK[f.dtype](s):
                problems.append(f"{name}.{f.name}: dtype {s.dtype} for {f.dtype}")
            if f.required and s.isna().any():
                problems.append(f"{name}.{f.name}: {int(s.isna().sum())} empty required values")
            v = s.dropna()
            if f.allowed is not None and not set(v.unique()) <= set(f.allowed):
                problems.append(f"{name}.{f.name}: {set(v.unique()) - set(f.allowed)} not allowed")
            if f.pattern is not None:
                bad = [x for x in v.unique() if not re.match(f.pattern, x)]
                if bad:
                    problems.append(f"{name}.{f.name}: {bad[:3]} break {f.pattern}")
            if f.vocabulary is not None and not set(v.unique()) <= vocabulary(f.vocabulary):
                problems.append(f"{name}.{f.name}: codes outside {f.vocabulary}")
            if f.min_value is not None and len(v):
                lo_bad = (v < f.min_value) if f.min_inclusive else (v <= f.min_value)
                if lo_bad.any():
                    problems.append(f"{name}.{f.name}: values below {f.min_value}")
            if f.max_value is not None and (v > f.max_value).any():
                problems.append(f"{name}.{f.name}: values above {f.max_value}")
            if f.dtype == "timestamp" and not f.future_ok and (v >= end).any():
                problems.append(f"{name}.{f.name}: dates on or after the end {end.date()}")
            if f.references is not None:
                ref_t, ref_f = f.references
                if not v.isin(frames[ref_t][ref_f]).all():
                    problems.append(f"{name}.{f.name}: unknown {ref_t}.{ref_f}")
        con = duckdb.connect()
        con.register("t", df)
        for rule in rt.rules:
            n = con.execute(f"SELECT count(*) FROM t WHERE {rule.sql}").fetchone()
            if n and n[0]:
                problems.append(f"{name}: {n[0]} rows break '{rule.reason}'")
        con.close()
    return problems


def test_tables_keep_the_contract(world: World) -> None:
    assert contract_violations(world) == []
    assert list(world.frames()) == list(RECORD_FILES)
    assert all(len(df) > 0 for df in world.frames().values())


def test_every_kind_status_and_regime_occurs(world: World) -> None:
    from credit.records import CUSTOMS_REGIMES, PAYMENT_KINDS, SHIPMENT_STATUSES

    assert set(world.payments["kind"]) == set(PAYMENT_KINDS)
    assert set(world.customs["regime"]) == set(CUSTOMS_REGIMES)
    assert set(world.shipments["status"]) == set(SHIPMENT_STATUSES)
    assert set(world.customs["tax_refund_status"]) == {"none", "pending", "paid", "denied"}
    assert set(world.customs["direction"]) == {"export", "import"}
    loans = world.loans
    assert loans["defaulted"].isna().any() and (loans["defaulted"] == False).any()  # noqa: E712
    assert loans["disbursed_at"].isna().any()  # some applications are declined


def test_observed_as_of_the_end(world: World) -> None:
    end = pd.Timestamp(world.end)
    p = world.payments
    # a schedule may run past the end: what is due later is unpaid (payers settle at
    # most three days early)
    later = p["due_at"] >= end + pd.Timedelta(days=4)
    assert later.any()
    assert p.loc[later, "paid_at"].isna().all()
    s = world.shipments
    assert ((s["status"] == "in_transit") == s["closed_at"].isna()).all()
    loans = world.loans.merge(world.truth[["loan_id", "matured"]], on="loan_id")
    window_open = loans["disbursed_at"] + pd.Timedelta(days=365) >= end
    # open window: known only if already defaulted; closed window: always known
    assert loans.loc[window_open & loans["defaulted"].notna(), "defaulted"].all()
    assert loans.loc[loans["matured"], "defaulted"].notna().all()
    assert (loans.loc[loans["defaulted"].fillna(False), "default_at"] < end).all()


def test_loan_flows_appear_in_payments(world: World) -> None:
    p, loans = world.payments, world.loans
    disbursed = loans[loans["disbursed_at"].notna()]
    disb = p[p["kind"] == "loan_disbursement"]
    assert len(disb) == len(disbursed)
    assert sorted(disb["amount_usd"].round(2)) == sorted(disbursed["amount_usd"].round(2))
    rep = p[p["kind"] == "loan_repayment"]
    assert rep["due_at"].notna().all()
    # a defaulted loan's firm has an instalment left unpaid 90 days before default_at
    d = loans[loans["defaulted"].fillna(False)]
    for _, row in d.iterrows():
        r = rep[(rep["firm_id"] == row["firm_id"]) & rep["paid_at"].isna()]
        assert (r["due_at"] == row["default_at"] - pd.Timedelta(days=90)).any()


def test_firms_take_several_loans(world: World) -> None:
    per_firm = world.loans.groupby("firm_id").size()
    assert per_firm.max() >= 3
    assert world.loans["product"].nunique() == 4


def test_truth_lines_up_with_loans(world: World) -> None:
    t = world.truth
    assert list(t["loan_id"]) == list(world.loans["loan_id"])
    assert t["true_pd"].between(0, 1).all()
    assert {"health", "health_trend", "leverage", "idiosyncratic"} <= set(t.columns)


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_same_bytes(tmp_path: Path, fmt: str) -> None:
    for run in ("a", "b"):
        simulate(firms=60, start="2023-01", months=8, seed=5).write(tmp_path / run, fmt)
    simulate(firms=60, start="2023-01", months=8, seed=6).write(tmp_path / "c", fmt)
    a, b, c = (_hashes(tmp_path / r) for r in "abc")
    assert len(a) == 6 and a == b
    assert a[f"payments.{fmt}"] != c[f"payments.{fmt}"]


def test_written_files_read_back_with_contract_columns(tmp_path: Path, world: World) -> None:
    paths = world.write(tmp_path, "parquet")
    assert set(paths) == {*RECORD_FILES, "truth"}
    for name in RECORD_FILES:
        back = pd.read_parquet(paths[name])
        assert list(back.columns) == RECORD_TYPES[name].columns
        assert len(back) == len(world.frames()[name])
    paths = world.write(tmp_path / "csv", "csv")
    firms = pd.read_csv(paths["firms"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", firms["registered_at"].iloc[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"firms": 0}, "--firms"),
        ({"months": 1}, "--months"),
        ({"start": "2023/13"}, "YYYY-MM"),
        ({"start": "2030-01"}, "after today"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    args = {"firms": 10, "start": "2023-01", "months": 6, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate(**args)


def test_end_date_limit_is_today() -> None:
    with pytest.raises(ValueError, match="after today"):
        simulate(10, "2024-01", 12, today=dt.date(2024, 12, 31))
    assert simulate(10, "2024-01", 12, today=dt.date(2025, 1, 1)).end == dt.date(2025, 1, 1)


def test_calendar_and_ids() -> None:
    cal = Calendar(parse_month("2024-11"), 4)
    assert list(cal.month_start) == [0, 30, 61, 92, 120]
    assert list(cal.month_of(np.array([0, 29, 30, 119, 120]))) == [0, 0, 1, 3, 4]
    # 2025 New Year on 29 Jan: the stop straddles January and February
    season = cal.seasonality()
    assert season[0] > season[1] > 0.8 > season[2] and season[3] < 0.8
    assert format_ids("D", np.array([1, 42]), 3).to_pylist() == ["D001", "D042"]
    with pytest.raises(ValueError, match="digits"):
        format_ids("D", np.array([1000]), 3)


def test_command_writes_files_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        app,
        ["simulate", "--firms", "40", "--start", "2023-01", "--months", "6", "--seed", "2",
         "--out", str(out), "--format", "csv"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {*(f"{n}.csv" for n in RECORD_FILES), "truth.parquet"}
    for figure in (
        "firms",
        "payments records",
        "default rate",
        "B2B share",
        "oracle AUC",
        "worst past DPD",
    ):
        assert figure in result.output
    bad = CliRunner().invoke(app, ["simulate", "--start", "2031-01", "--out", str(out)])
    assert bad.exit_code == 2 and "after today" in bad.output


def test_tiny_world_without_loans_still_keeps_the_contract(tmp_path: Path) -> None:
    # two months leave no firm the three months of history a loan application needs
    w = simulate(firms=3, start="2023-01", months=2, seed=0)
    assert len(w.loans) == 0 and len(w.truth) == 0
    assert contract_violations(w) == []
    w.write(tmp_path)
    assert (
        pd.read_parquet(tmp_path / "loans.parquet").columns.tolist()
        == RECORD_TYPES["loans"].columns
    )
