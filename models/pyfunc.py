"""The registered MLflow model: a ``PythonModel`` around the scoring core's bundle.

``mlflow.pyfunc.load_model("models:/tradecredit-pd@champion").predict(frame)`` returns one row
per input row with ``pd``, ``score`` and ``grade``, computed by :class:`credit.scoring.ScoringModel`
(the same code the API and the command line use).

It is logged as code (``models/pyfunc_model.py``, MLflow's "models from code"), not as a pickled
object: the registered model holds this code's file and the bundle's text files, nothing that
runs when it is unpickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from credit.scoring import ScoringModel


class TradeCreditPD(PythonModel):
    """PD, score and grade from a feature table (columns named as the model's features)."""

    def __init__(self) -> None:
        self._model: ScoringModel | None = None

    def load_context(self, context: Any) -> None:
        self._model = ScoringModel.from_bundle(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        # Only model_input is annotated: MLflow reads these hints (an ``Any`` draws a warning),
        # and pd.DataFrame is one it infers no schema from, so the logged signature stays the
        # schema. A numpy matrix in feature order is accepted too when called directly.
        if self._model is None:
            self.load_context(context)
        model = self._model
        if model is None:  # pragma: no cover - load_context sets it
            raise RuntimeError("model bundle not loaded")
        if isinstance(model_input, pd.DataFrame):
            X = model.encode(model_input)
        else:
            X = np.asarray(model_input, dtype=np.float64)
        s = model.predict(X)
        return pd.DataFrame({"pd": s.pd, "score": s.score, "grade": s.grade.astype(object)})
