"""The file MLflow logs and runs to rebuild the registered model (MLflow's "models from code").

``mlflow.pyfunc.log_model(python_model=<this file>, artifacts={"bundle": ...})`` stores this file
beside the bundle; loading the model executes it, and :func:`mlflow.models.set_model` names the
model object. Nothing is pickled.
"""

from mlflow.models import set_model

from models.pyfunc import TradeCreditPD

set_model(TradeCreditPD())
