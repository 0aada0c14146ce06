"""Train and promote against a real `mlflow server` with a PostgreSQL backend store on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from credit.scoring import ScoringModel
from models import registry, tracking
from models.dataset import from_frame
from models.train import train_time_split
from tests.model.helpers import make_frame, tiny_cfg

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    db = f"tc_mlflow_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{db}"')
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [
        str(mlflow_bin) if mlflow_bin.exists() else shutil.which("mlflow") or "mlflow",
        "server",
        "--backend-store-uri",
        f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        "--artifacts-destination",
        (tmp_path / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    f"mlflow server did not start:\n{(tmp_path / 'server.log').read_text()}"
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def test_train_register_promote_and_load_through_the_server(mlflow_server, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    from credit.settings import get_settings

    get_settings.cache_clear()
    assert get_settings().tracking_uri == mlflow_server
    data = from_frame(make_frame(400, seed=1), "bad", time_column="applied_at", id_column="firm_id")
    cfg = tiny_cfg()
    cfg["split"]["outcome_window_months"] = 0
    report = train_time_split(data, cfg, monotone=[1, -1, 0, 0], with_scorecard=False)
    reg = registry.log_training(report)
    assert reg.version == "1"
    assert registry.promote(reg.version, cfg=cfg).promoted
    assert tracking.champion_version() == "1"

    model = ScoringModel.load("models:/tradecredit-pd@champion")
    assert model.identity() == {"name": "tradecredit-pd", "version": "1", "run_id": reg.run_id}
    np.testing.assert_allclose(model.predict(report.eval_x).pd, report.eval_pd, atol=1e-12)
    run = tracking.client().get_run(reg.run_id)
    assert run.data.metrics["oot_auc"] == pytest.approx(report.metrics["auc"])
    assert [r["aliases"] for r in registry.list_versions()] == ["champion"]
