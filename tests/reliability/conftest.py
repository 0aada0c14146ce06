"""Shared pieces of the reliability tests: a service with one key per role and tenant, fresh
PostgreSQL databases, and captured logs.

Every test here is marked ``reliability`` (heavy ones also ``slow``); run them with
``pytest -m reliability``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from credit.keys import create_key
from credit.scoring import ScoringModel
from credit.settings import Settings
from tests.api_support import make_store, train_model

PG_URL = os.environ.get("TRADECREDIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

#: (name, tenant, role) of the keys every service fixture creates.
KEYS = [
    ("a_lender", "bank-a", "lender"),
    ("a_platform", "bank-a", "platform"),
    ("a_admin", "bank-a", "admin"),
    ("b_lender", "bank-b", "lender"),
    ("b_platform", "bank-b", "platform"),
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


def pg_admin() -> sa.Engine:
    """An AUTOCOMMIT engine on the server's ``test`` database, or skip when unreachable."""
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    return admin


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "tc_rel") -> Iterator[tuple[str, str, sa.Engine]]:
    """(url, name, admin engine) of a new PostgreSQL database, dropped afterwards."""
    admin = pg_admin()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url, name, admin
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
    """A started app (TestClient) with the in-memory online store and one key per entry of
    :data:`KEYS`."""
    kw: dict[str, Any] = {"api_rate_limit": 0, **settings_kw}
    settings = Settings(data_dir=data_dir, **kw)
    settings.ensure_data_dir()
    store = make_store()
    holder = {"model": model}
    app = create_app(settings=settings, model_loader=lambda s: holder["model"], online_store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        engine = app.state.service.engine
        keys = {name: create_key(engine, tenant, role)[1] for name, tenant, role in KEYS}
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
