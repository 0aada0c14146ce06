"""Shared fixtures. Every test gets its own data directory so stores never mix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from credit.settings import Settings, get_settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point TRADECREDIT_DATA_DIR (and so every embedded store) at a fresh folder."""
    d = tmp_path / "var"
    monkeypatch.setenv("TRADECREDIT_DATA_DIR", str(d))
    monkeypatch.delenv("TRADECREDIT_DATABASE_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield d
    get_settings.cache_clear()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return get_settings()


@pytest.fixture
def shared_data() -> Path:
    """The real public data sets beside the checkout; skip when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA
