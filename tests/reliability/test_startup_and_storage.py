"""A real ``credit serve`` with the model registry unreachable (MLflow's default retries, which
alone take about 4 minutes), and what the service leaves on disk (issue 17, items 5 and 6e).

- the port is bound and ``/healthz`` answers within seconds; ``/readyz`` is 503 and says what
  the load waits for until the cached champion is in, within the registry timeout;
- SIGTERM ends the process within seconds, also while the load is still waiting;
- after decisions and a clean shutdown the WAL is gone (or empty) and ``service.db`` is 0600;
- the WAL is emptied while the service runs (past its size limit, and periodically), not only
  at shutdown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from credit.db import BackgroundCheckpoint, dispose_engines, make_engine, upgrade
from credit.keys import create_key
from credit.scoring import CHAMPION_URI, ScoringModel
from credit.settings import get_settings
from features.online import OnlineStore
from tests.api_support import catalog_frame, register_champion, train_catalog_model
from tests.consent_support import grant

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: process start (imports) to the first /healthz answer, on a busy 2-core machine
START_BUDGET_S = 15.0
#: the default registry timeout (TRADECREDIT_REGISTRY_TIMEOUT_SECONDS) is not set by the test
REGISTRY_TIMEOUT_S = 15.0
SIGTERM_BUDGET_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, path: str, key: str = "", body: Any = None) -> tuple[int | None, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:  # not listening (yet)
        return None, None


def _cached_champion_service_dir() -> str:
    """A data directory as a service that once reached the registry leaves it: the champion in
    the model cache, features in the online store, and a lender key (returned) whose tenant
    has a consent for every firm there."""
    s = get_settings()
    s.ensure_data_dir()
    register_champion(train_catalog_model(version="1"), s.tracking_uri, s.data_dir)
    assert ScoringModel.load(CHAMPION_URI).loaded_from == "registry"  # fills the cache
    engine = make_engine(s.service_database_url)
    upgrade(engine)
    _, key = create_key(engine, "bank-a", "lender")
    grant(engine, [f"F{i:05d}" for i in range(20)], "bank-a")
    engine.dispose()
    OnlineStore(s.service_database_url).write(catalog_frame(20, "2025-06-30"))
    dispose_engines()
    return key


@contextlib.contextmanager
def _serve(registry_port: int, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLFLOW_HTTP_REQUEST") and k != "TRADECREDIT_REGISTRY_TIMEOUT_SECONDS"
    }
    env.update(
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{registry_port}",  # nothing listens there
        PYTHONPATH=str(ROOT),
        TRADECREDIT_API_RELOAD_POLL_SECONDS="0",
        TRADECREDIT_API_RATE_LIMIT="0",
    )
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "credit.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            yield proc, port
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


def _until(pred: Any, seconds: float, what: str, log: Path | None = None) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log else ""
    raise AssertionError(f"{what}: not within {seconds:g} s\n{tail}")


def _terminate(proc: subprocess.Popen[bytes]) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(SIGTERM_BUDGET_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {SIGTERM_BUDGET_S:g} s after SIGTERM")
    return time.monotonic() - t0


def test_unreachable_registry_binds_at_once_then_serves_the_cached_champion(
    data_dir: Path, tmp_path: Path
) -> None:
    key = _cached_champion_service_dir()
    registry = _free_port()
    log = tmp_path / "serve.log"
    with _serve(registry, log) as (proc, port):
        _until(lambda: _call(port, "/healthz")[0] == 200, START_BUDGET_S, "/healthz", log)
        status, ready = _call(port, "/readyz")
        assert status == 503 and ready["ready"] is False, ready
        reason = ready["checks"]["model"]["reason"]
        assert f"http://127.0.0.1:{registry}" in reason and "loading" in reason, reason
        r = _call(port, "/v1/score", key, {"firm_id": "F00001"})
        assert r[0] == 503 and "no model loaded" in r[1]["detail"], r
        _until(
            lambda: _call(port, "/readyz")[0] == 200,
            REGISTRY_TIMEOUT_S + 10,
            "/readyz 200 (the cached champion)",
            log,
        )
        model = _call(port, "/readyz")[1]["checks"]["model"]
        assert model["loaded_from"] == "cache" and model["version"] == "1", model
        n = 200
        for i in range(n):
            status, body = _call(port, "/v1/score", key, {"firm_id": f"F{i % 20:05d}"})
            assert status == 200 and body["model"]["version"] == "1", body
        assert _terminate(proc) < SIGTERM_BUDGET_S
    text = log.read_text()
    assert f"waiting up to 15 s for the model registry at http://127.0.0.1:{registry}" in text
    assert "using cached" in text
    # storage: every decision in the database file, the WAL gone or empty, owner-only files
    db = data_dir / "service.db"
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, wal.stat().st_size
    for f in (db, wal, Path(f"{db}-shm")):
        if f.exists():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one() == n
    engine.dispose()


def test_sigterm_while_the_registry_is_still_awaited(data_dir: Path, tmp_path: Path) -> None:
    _cached_champion_service_dir()
    log = tmp_path / "serve.log"
    with _serve(_free_port(), log) as (proc, port):
        _until(lambda: _call(port, "/healthz")[0] == 200, START_BUDGET_S, "/healthz", log)
        assert _call(port, "/readyz")[0] == 503  # still waiting for the registry
        assert _terminate(proc) < SIGTERM_BUDGET_S


def test_a_new_sqlite_database_is_owner_only_and_an_open_one_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "new" / "service.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with engine.begin() as conn:  # a write: the -wal and -shm files exist now
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
    engine.dispose()
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    make_engine(f"sqlite:///{old}").dispose()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def _wal_bytes(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _write_blobs(engine: sa.Engine, n: int) -> None:
    for _ in range(n):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (randomblob(20000))"))


def test_a_wal_past_its_limit_is_truncated_once_readers_leave(tmp_path: Path) -> None:
    """Under steady traffic a reader pins the log, so it grows past the limit; the thread
    empties it as soon as the readers let it, without waiting for the periodic round."""
    db = tmp_path / "service.db"
    engine = make_engine(f"sqlite:///{db}")
    checkpoint = BackgroundCheckpoint(engine, interval=0.05, truncate_interval=3600.0)
    checkpoint.wal_limit = 256 * 1024
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x BLOB)"))
        with engine.connect() as reader:
            reader.exec_driver_sql("BEGIN")  # a read transaction open on a snapshot of the log
            reader.exec_driver_sql("SELECT count(*) FROM t").scalar_one()
            _write_blobs(engine, 50)  # about 1 MB that no checkpoint can move past the reader
            assert _wal_bytes(db) > checkpoint.wal_limit
            time.sleep(0.5)  # rounds come and go: the reader still holds the log
            assert _wal_bytes(db) > checkpoint.wal_limit
            reader.exec_driver_sql("COMMIT")
        _until(lambda: _wal_bytes(db) == 0, 10, "the WAL over its limit emptied")
        assert checkpoint.truncations >= 1
    finally:
        checkpoint.stop()
        engine.dispose()


def test_the_wal_is_truncated_periodically_and_at_shutdown(tmp_path: Path) -> None:
    """A log under the limit is emptied every ``truncate_interval`` seconds while the engine
    is open, not only at shutdown; and :meth:`stop` leaves it empty."""
    db = tmp_path / "service.db"
    engine = make_engine(f"sqlite:///{db}")
    checkpoint = BackgroundCheckpoint(engine, interval=0.05, truncate_interval=0.5)
    stop = threading.Event()

    def reader() -> None:  # readers in and out of the log, as under steady traffic
        while not stop.is_set():
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one()

    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x BLOB)"))
        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        _write_blobs(engine, 5)  # about 100 KB, far under the 64 MB limit
        stop.set()
        for t in threads:
            t.join()
        _until(lambda: _wal_bytes(db) == 0, 10, "the WAL emptied while the engine is open")
        assert checkpoint.truncations >= 1  # by the periodic round: the log never neared 64 MB
        _write_blobs(engine, 1)
        assert _wal_bytes(db) > 0
    finally:
        stop.set()
        checkpoint.truncate_interval = 3600.0  # only the last checkpoint at stop is left
        checkpoint.stop()
    assert _wal_bytes(db) == 0  # the last checkpoint at stop empties it
    engine.dispose()


def test_a_slow_model_load_does_not_hold_startup(tmp_path: Path) -> None:
    """In process: the lifespan serves after a short wait; /readyz is 503 "loading" and
    scoring 503 "no model loaded" until the load is done, then both work."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from credit.settings import Settings
    from tests.api_support import make_store, train_model

    model = train_model()
    release = threading.Event()

    def slow_loader(_: Settings) -> ScoringModel:
        release.wait(60)
        return model

    settings = Settings(data_dir=tmp_path / "var", api_rate_limit=0)
    app = create_app(settings=settings, model_loader=slow_loader, online_store=make_store())
    t0 = time.monotonic()
    with TestClient(app) as c:
        assert time.monotonic() - t0 < 10  # startup waits 2 s for the model, not for ever
        _, key = create_key(app.state.service.engine, "bank-a", "lender")
        grant(app.state.service.engine, ["F0001"], "bank-a")
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"] == {"ok": False, "reason": "loading the model"}
        r = c.post("/v1/score", json={"firm_id": "F0001"}, headers={"X-API-Key": key})
        assert r.status_code == 503 and "no model loaded" in r.json()["detail"]
        release.set()
        assert app.state.service.models.wait(30)
        assert c.get("/readyz").status_code == 200
        r = c.post("/v1/score", json={"firm_id": "F0001"}, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text


def test_readyz_reads_the_online_store_itself(tmp_path: Path, tiny_model: ScoringModel) -> None:
    """``/readyz`` said the online store was fine while it was down: it pinged the audit log."""
    from tests.reliability.conftest import running_service

    with running_service(tmp_path, tiny_model) as svc:
        c, store = svc["client"], svc["store"]
        assert c.get("/readyz").json()["checks"]["online_store"] == {"ok": True}
        store.fail = True
        try:
            r = c.get("/readyz")
        finally:
            store.fail = False
        assert r.status_code == 503
        assert r.json()["checks"]["online_store"] == {
            "ok": False,
            "reason": "online store unreadable: ConnectionError",
        }
