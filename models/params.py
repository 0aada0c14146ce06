"""The versioned training parameters (``models/params.yaml``) with command-line overrides.

Its own module, below training: monitoring and promotion read the parameters without importing
LightGBM and the training code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PARAMS_PATH = Path(__file__).with_name("params.yaml")


def load_params(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The versioned parameters (``models/params.yaml``), with ``overrides`` applied.

    ``overrides`` keys are LightGBM parameter names (``learning_rate``) or dotted paths into the
    file (``split.oot_fraction``); values are parsed as YAML scalars when given as strings.
    """
    from models.paramspec import validate

    p = Path(path) if path else PARAMS_PATH
    try:
        cfg: dict[str, Any] = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"{p}: not a YAML parameter file ({first})") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{p}: not a parameter file (expected a mapping of sections)")
    validate(cfg, origin=str(p))
    for key, raw in (overrides or {}).items():
        value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        parts = key.split(".")
        if len(parts) == 1:
            parts = ["lightgbm", key]
        node = cfg
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"unknown parameter section {part!r} in {key!r}")
            node = node[part]
        node[parts[-1]] = value
    if overrides:
        validate(cfg, origin="--param")
    return cfg
