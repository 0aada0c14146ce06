"""What each training parameter may be: one table that checks a parameter file (and every
``--param`` override) and bounds the tuner's search space.

A value outside its range is a one-line error naming the parameter, the value and the range,
before any data is read: a typo in a parameter file must not become a silently odd model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: a value the trainer resolves from the data (models/autoparams.py)
AUTO = "auto"


@dataclass(frozen=True)
class Spec:
    """A parameter's type and closed range (``low``/``high`` ``None`` = unbounded).

    ``open_low``: the lower bound itself is not allowed (a learning rate of 0).
    ``auto``: the value may be ``auto`` (resolved from the data). ``minus_one``: -1 is also
    allowed (LightGBM's "no limit", for ``max_depth``)."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    auto: bool = False
    minus_one: bool = False
    nullable: bool = False

    def describe(self) -> str:
        what = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[
            self.kind
        ]
        if self.kind in (int, float):
            lo = "" if self.low is None else f"{'above' if self.open_low else 'from'} {self.low:g}"
            hi = "" if self.high is None else f"{'to' if lo else 'at most'} {self.high:g}"
            rng = " ".join(x for x in (lo, hi) if x)
            what = f"{what} {rng}".strip()
        extras = [x for x, on in (("-1", self.minus_one), (AUTO, self.auto)) if on]
        if self.nullable:
            extras.append("null")
        return what + (f", or {' or '.join(extras)}" if extras else "")

    def check(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.auto and value == AUTO:
            return True
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.minus_one and value == -1:
            return True
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return not (self.high is not None and value > self.high)


_FRACTION = Spec(float, 0.0, 1.0, open_low=True)

#: LightGBM parameters the project sets, tunes or resolves; others pass through unchecked
LIGHTGBM: dict[str, Spec] = {
    "learning_rate": Spec(float, 0.0, 1.0, open_low=True, auto=True),
    "num_leaves": Spec(int, 2, 131072, auto=True),
    "max_depth": Spec(int, 1, 64, minus_one=True),
    "min_child_samples": Spec(int, 1, None, auto=True),
    "feature_fraction": Spec(float, 0.0, 1.0, open_low=True, auto=True),
    "bagging_fraction": _FRACTION,
    "bagging_freq": Spec(int, 0, None),
    "lambda_l1": Spec(float, 0.0, None),
    "lambda_l2": Spec(float, 0.0, None, auto=True),
    "min_gain_to_split": Spec(float, 0.0, None),
    "extra_trees": Spec(bool),
    "cat_smooth": Spec(float, 0.0, None),
    "cat_l2": Spec(float, 0.0, None),
    "max_cat_to_onehot": Spec(int, 1, None),
    "min_data_per_group": Spec(int, 1, None),
    "seed": Spec(int),
}

SECTIONS: dict[str, dict[str, Spec]] = {
    "training": {
        "num_boost_round": Spec(int, 1, None),
        "early_stopping_rounds": Spec(int, 1, None),
        "parsimony_auc_tolerance": Spec(float, 0.0, 1.0),
        "refit_on_validation": Spec(bool),
        # p99 of one decision's TreeSHAP explanation, milliseconds (null: no cap)
        "explain_p99_ms": Spec(float, 0.0, None, open_low=True, nullable=True),
    },
    "split": {
        "validation_fraction": Spec(float, 0.0, 1.0, open_low=True),
        "oot_fraction": Spec(float, 0.0, 1.0, open_low=True),
        "outcome_window_months": Spec(int, 0, None),
    },
    "cv": {
        "folds": Spec(int, 2, None),
        "inner_validation_fraction": Spec(float, 0.0, 1.0, open_low=True),
        "kfold_below_rows": Spec(int, 0, None),
        "inner_folds": Spec(int, 2, None),
        "seed": Spec(int),
    },
    "scorecard": {
        "max_n_bins": Spec(int, 2, 50),
        "min_bin_size": Spec(float, 0.0, 0.5, open_low=True),
    },
    "tuning": {
        "budget_minutes": Spec(float, 0.0, None, open_low=True),
        "scorecard_share": Spec(float, 0.0, 1.0),
        "seed": Spec(int),
    },
}


def _check(where: str, key: str, value: Any, spec: Spec, origin: str) -> None:
    if not spec.check(value):
        raise ValueError(
            f"{origin}: {where}.{key} = {value!r} is outside its range ({spec.describe()})"
        )


def _check_lightgbm(where: str, params: Mapping[str, Any], origin: str) -> None:
    for key, value in params.items():
        spec = LIGHTGBM.get(key)
        if spec is not None:
            _check(where, key, value, spec, origin)


def validate(cfg: Mapping[str, Any], origin: str = "parameters") -> None:
    """Raise ``ValueError`` (one line) at the first parameter outside its range.

    ``origin`` names the file (or ``--param``) in the message."""
    if not isinstance(cfg.get("lightgbm"), Mapping):
        raise ValueError(f"{origin}: no `lightgbm` section")
    _check_lightgbm("lightgbm", cfg["lightgbm"], origin)
    for section, specs in SECTIONS.items():
        node = cfg.get(section)
        if node is None:
            continue
        if not isinstance(node, Mapping):
            raise ValueError(f"{origin}: `{section}` must be a mapping, got {node!r}")
        for key, spec in specs.items():
            if key in node:
                _check(section, key, node[key], spec, origin)
    candidates = (cfg.get("training") or {}).get("candidates") or []
    if not isinstance(candidates, list):
        raise ValueError(f"{origin}: training.candidates must be a list of parameter sets")
    for i, cand in enumerate(candidates):
        if not isinstance(cand, Mapping):
            raise ValueError(f"{origin}: training.candidates[{i}] must be a mapping, got {cand!r}")
        _check_lightgbm(f"training.candidates[{i}]", cand, origin)
