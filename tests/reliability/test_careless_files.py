"""Files a careless operator hands to `credit ingest`: the error says what to do (issue 17,
item 6f)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit.cli import app as cli
from credit.ingest import ingest_dir
from credit.records import RECORD_TYPES
from tests.unit.credit.ingest_rows import FIRM, PAYMENT


def _write(path: Path, rows: list[dict[str, str]], columns: list[str], delimiter: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_semicolon_separated_csv_says_so(tmp_path: Path, quoted: bool) -> None:
    folder = tmp_path / "in"
    _write(folder / "firms.csv", [FIRM], RECORD_TYPES["firms"].columns, ",")
    cols = RECORD_TYPES["payments"].columns
    _write(folder / "payments.csv", [PAYMENT], cols, ";")
    if quoted:  # as a spreadsheet may write it: every name quoted
        text = (folder / "payments.csv").read_text(encoding="utf-8").splitlines()
        text[0] = ";".join(f'"{c}"' for c in cols)
        (folder / "payments.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    report = ingest_dir(folder, tmp_path / "s.duckdb")
    assert not report.ok
    (error,) = report.errors
    assert error.startswith("payments.csv: missing required column(s): "), error
    assert "semicolon-separated" in error and "comma-separated (',')" in error, error
    # the command line prints it
    res = CliRunner().invoke(cli, ["ingest", str(folder), "--store", str(tmp_path / "t.duckdb")])
    assert res.exit_code == 1
    assert "semicolon-separated" in res.output, res.output


def test_a_comma_separated_csv_missing_a_column_gets_no_such_hint(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    cols = [c for c in RECORD_TYPES["firms"].columns if c != "home_region"]
    _write(folder / "firms.csv", [FIRM], cols, ",")
    report = ingest_dir(folder, tmp_path / "s.duckdb")
    (error,) = report.errors
    assert "missing required column(s): home_region" in error
    assert "semicolon" not in error


def test_a_semicolon_header_lacking_a_column_gets_no_such_hint(tmp_path: Path) -> None:
    """Splitting on ';' would not give the expected columns either: no misleading hint."""
    folder = tmp_path / "in"
    cols = [c for c in RECORD_TYPES["firms"].columns if c != "home_region"]
    _write(folder / "firms.csv", [FIRM], cols, ";")
    res = CliRunner().invoke(
        cli, ["ingest", str(folder), "--store", str(tmp_path / "s.duckdb"), "--json"]
    )
    assert res.exit_code == 1
    (error,) = json.loads(res.stdout)["errors"]
    assert "missing required column(s)" in error and "semicolon" not in error
