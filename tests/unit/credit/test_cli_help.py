"""`credit --help` and every subcommand's `--help` work."""

from __future__ import annotations

import click
import pytest
import typer
from typer.testing import CliRunner

from credit.cli import app

runner = CliRunner()


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: click.Command, prefix: list[str]) -> None:
        paths.append(prefix)
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*prefix, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "credit")
def test_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_config_honours_data_dir(tmp_path, monkeypatch) -> None:  # noqa: D103
    from credit.settings import get_settings

    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(tmp_path / "d1"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["config"])
        assert result.exit_code == 0, result.output
        assert str(tmp_path / "d1") in result.output
        assert (tmp_path / "d1" / "mlflow.db").as_posix() in result.output
    finally:
        get_settings.cache_clear()
