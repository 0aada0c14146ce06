"""LightGBM on one row (and on a few): the scorer's predictor for a single decision.

Why: ``Booster.predict`` spends ~30 µs per call in Python (a predictor object, a deep copy
of the parameters, a parameter string, array checks) before the C++ side starts; for one row
that is a sixth of a TreeSHAP call, and a decision makes two calls (raw score and
contributions). LightGBM's C API has a single-row fast path
(``LGBM_BoosterPredictForMatSingleRowFast``) that does this setup once per prediction type
(a ``FastConfigHandle``) and then scores a row with a single call.

Measured against: the floor of ``benchmarks/bench_api.py`` (section 1), the booster's own
``predict(raw_score=True)`` + ``predict(pred_contrib=True)`` on one row and one thread, next
to ``ScoringModel.explain`` on the same row.

Same booster, same trees, same code in LightGBM: the outputs equal ``Booster.predict``'s bit
for bit (``tests/unit/credit/test_fastpath_lightgbm_row.py``). Anything unexpected at setup
(another LightGBM build) makes :func:`single_row_predictor` return ``None``, and the caller
keeps ``Booster.predict``.
"""

from __future__ import annotations

import ctypes
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover
    import lightgbm as lgb

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Below this many rows LightGBM predicts on one thread: starting OpenMP threads for a single
#: row costs more than the trees (measured: 4x slower per row on a loaded 2-core machine).
SINGLE_THREAD_ROWS = 64

# LightGBM C API constants (c_api.h): prediction types and the float64 data type.
_PREDICT_RAW_SCORE, _PREDICT_CONTRIB, _DTYPE_FLOAT64 = 1, 3, 1


def predict_threads(n_rows: int) -> dict[str, Any]:
    """Keyword arguments for ``Booster.predict`` on ``n_rows`` rows: one thread for a few
    rows (see :data:`SINGLE_THREAD_ROWS`), LightGBM's default otherwise."""
    return {"num_threads": 1} if n_rows < SINGLE_THREAD_ROWS else {}


class SingleRowPredictor:
    """Raw score and TreeSHAP contributions of one row of a binary ``booster`` through
    LightGBM's C single-row fast path, on one thread, at the booster's best iteration (as
    ``Booster.predict`` would). Holds C handles: not picklable; build one per process."""

    def __init__(self, booster: lgb.Booster, n_features: int) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib, self._call = _LIB, _safe_call
        self._booster = booster  # the handles point into it: keep it alive
        self.n_features = n_features
        params = b"num_threads=1"
        num_iteration = booster.best_iteration if booster.best_iteration > 0 else -1
        self._handles: dict[int, Any] = {}
        for kind in (_PREDICT_RAW_SCORE, _PREDICT_CONTRIB):
            h = ctypes.c_void_p()
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    booster._handle,
                    ctypes.c_int(kind),
                    ctypes.c_int(0),  # start iteration
                    ctypes.c_int(num_iteration),
                    ctypes.c_int(_DTYPE_FLOAT64),
                    ctypes.c_int32(n_features),
                    ctypes.c_char_p(params),
                    ctypes.byref(h),
                )
            )
            self._handles[kind] = h

    def _run(self, kind: int, row: FloatArray, width: int) -> FloatArray:
        data = np.ascontiguousarray(row, dtype=np.float64)
        if data.shape != (self.n_features,):  # C reads n_features doubles: never fewer
            raise ValueError(f"expected one row of {self.n_features} values, got {data.shape}")
        out = np.empty(width, dtype=np.float64)
        out_len = ctypes.c_int64(0)
        self._call(
            self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._handles[kind],
                data.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(out_len),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        if out_len.value != width:
            raise RuntimeError(f"LightGBM returned {out_len.value} values, expected {width}")
        return out

    def raw(self, row: FloatArray) -> FloatArray:
        """Raw log-odds of one row, as a 1-element array."""
        return self._run(_PREDICT_RAW_SCORE, row, 1)

    def contrib(self, row: FloatArray) -> FloatArray:
        """TreeSHAP contributions of one row, base value last, as a ``(1, n + 1)`` array."""
        return self._run(_PREDICT_CONTRIB, row, self.n_features + 1).reshape(1, -1)

    def __del__(self) -> None:
        free = getattr(getattr(self, "_lib", None), "LGBM_FastConfigFree", None)
        for h in getattr(self, "_handles", {}).values():
            if free is not None and h:
                free(h)


def single_row_predictor(booster: lgb.Booster, n_features: int) -> SingleRowPredictor | None:
    """A :class:`SingleRowPredictor` for ``booster``, or ``None`` when this LightGBM build
    does not offer the fast path (``Booster.predict`` then does the work)."""
    try:
        return SingleRowPredictor(booster, n_features)
    except Exception as exc:  # not this LightGBM build: Booster.predict does the work
        log.info("LightGBM single-row fast path unavailable (%s); using Booster.predict", exc)
        return None
