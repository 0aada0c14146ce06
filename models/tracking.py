"""The MLflow store: where runs and registered models live, and the layout of a run's evaluation
set.

Embedded by default (SQLite ``mlflow.db`` and ``mlartifacts/`` in the data directory); a tracking
server through ``MLFLOW_TRACKING_URI``. Models are promoted by alias (``champion``), never by
stage. Logging runs and promotion are in ``models/registry.py``; the report and monitoring read
runs back through this module, so none of them imports the registry.

MLflow is imported inside the functions: it takes seconds to import, and several commands that
import this module never reach the store.
"""

from __future__ import annotations

import os
from typing import Any

from credit.scoring import MODEL_NAME
from credit.settings import get_settings

EXPERIMENT = "tradecredit"
CHAMPION = "champion"
#: the evaluation set of a training run (decoded features plus :data:`TARGET_COLUMN`)
OOT_ARTIFACT = "evaluation/oot.parquet"
TARGET_COLUMN = "__target__"


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at the configured store (creating the embedded one) and the experiment."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = get_settings()
    uri = tracking_uri or settings.tracking_uri
    if uri.startswith("sqlite:"):
        settings.ensure_data_dir()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        location = None
        if uri.startswith("sqlite:"):
            settings.artifact_root.mkdir(parents=True, exist_ok=True)
            location = settings.artifact_root.as_uri()
        client.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return uri


def client(tracking_uri: str | None = None) -> Any:
    """An ``MlflowClient`` on the configured store."""
    import mlflow

    uri = configure(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion_version(tracking_uri: str | None = None) -> str | None:
    """The registered version the ``champion`` alias points at (``None`` without one)."""
    from mlflow.exceptions import MlflowException

    c = client(tracking_uri)
    try:
        return str(c.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None
