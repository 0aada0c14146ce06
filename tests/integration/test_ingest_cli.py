"""`credit ingest` end to end through the command line: exit codes, --json, --store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from credit.cli import app
from credit.records import RECORD_TYPES
from tests.unit.credit.ingest_rows import FIRM, rows, write_csv

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "demo"
runner = CliRunner()


def test_demo_sample_is_accepted_in_full_and_json_is_the_only_stdout(
    tmp_path: Path, data_dir: Path
) -> None:
    result = runner.invoke(app, ["ingest", str(SAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["errors"] == []
    assert list(summary["record_types"]) == list(RECORD_TYPES)  # every record type present
    for name, s in summary["record_types"].items():
        assert s["read"] == s["accepted"] == s["added"] >= 3, name
        assert s["rejected"] == 0
    # default store: records.duckdb in the data directory from TRADECREDIT_DATA_DIR
    assert summary["store"] == str(data_dir / "records.duckdb")
    assert rows(data_dir / "records.duckdb", "SELECT count(*) FROM firms") == [(4,)]


def test_summary_table_and_store_option(tmp_path: Path) -> None:
    store = tmp_path / "elsewhere.duckdb"
    result = runner.invoke(app, ["ingest", str(SAMPLE), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "payments" in result.stdout and "rejected" in result.stdout
    again = runner.invoke(app, ["ingest", str(SAMPLE), "--store", str(store), "--json"])
    totals = json.loads(again.stdout)["record_types"]
    assert all(s["added"] == 0 and s["already_present"] == s["read"] for s in totals.values())


def test_rejected_rows_still_exit_zero_and_are_listed(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "firms", [FIRM, {**FIRM, "firm_id": "F2", "business_model": "x"}])
    result = runner.invoke(app, ["ingest", str(tmp_path / "in"), "--json"])
    assert result.exit_code == 0
    firms = json.loads(result.stdout)["record_types"]["firms"]
    assert (firms["read"], firms["accepted"], firms["rejected"]) == (2, 1, 1)
    assert firms["top_reasons"][0]["reason"].startswith("business_model must be one of")


def test_file_error_exits_one_with_a_one_line_message(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "firms.csv").write_bytes(b"firm_id,registered_at\nF\xe91,2020-01-01\n")
    result = runner.invoke(app, ["ingest", str(tmp_path / "in"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False
    assert result.stderr.strip().startswith("error: firms.csv: missing required column(s)")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_contract_describe_prints_the_doc(tmp_path: Path) -> None:
    result = runner.invoke(app, ["contract", "describe"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# The trade-record data contract")
    out = tmp_path / "contract.md"
    assert runner.invoke(app, ["contract", "describe", "--output", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == result.stdout
