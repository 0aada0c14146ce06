"""Shared pieces of the reliability tests: a service with one key per role and tenant, fresh
PostgreSQL databases, and captured logs.

Every test here is marked ``reliability`` (heavy ones also ``slow``); run them with
``pytest -m reliability``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.scoring import ScoringModel
from credit.settings import Settings
from tests.api_support import make_store, train_model
from tests.consent_support import grant_all

#: (name, tenant, role) of the keys every service fixture creates.
KEYS = [
    ("a_lender", "bank-a", "lender"),
    ("a_platform", "bank-a", "platform"),
    ("a_admin", "bank-a", "admin"),
    ("b_lender", "bank-b", "lender"),
    ("b_platform", "bank-b", "platform"),
]
#: The firms of the online store every service fixture starts with (``make_store()``).
FIRMS = [f"F{i:04d}" for i in range(20)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def tiny_model() -> ScoringModel:
    return train_model(version="1")


@pytest.fixture(scope="session")
def tiny_model_v2() -> ScoringModel:
    return train_model(seed=7, n_trees=20, version="2")


@contextlib.contextmanager
def running_service(
    data_dir: Path, model: ScoringModel, **settings_kw: Any
) -> Iterator[dict[str, Any]]:
    """A started app (TestClient) with the in-memory online store, one key per entry of
    :data:`KEYS`, and a consent of each of their tenants for each firm of :data:`FIRMS`."""
    kw: dict[str, Any] = {"api_rate_limit": 0, **settings_kw}
    settings = Settings(data_dir=data_dir, **kw)
    settings.ensure_data_dir()
    store = make_store()
    holder = {"model": model}
    app = create_app(settings=settings, model_loader=lambda s: holder["model"], online_store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.service.models.wait(60)  # the model loads in the background
        engine = app.state.service.engine
        keys = {name: create_key(engine, tenant, role)[1] for name, tenant, role in KEYS}
        grant_all(engine, FIRMS, sorted({tenant for _, tenant, _ in KEYS}))
        yield {
            "client": client,
            "app": app,
            "keys": keys,
            "engine": engine,
            "store": store,
            "settings": settings,
            "holder": holder,
        }
    engine.dispose()


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}
