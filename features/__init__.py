"""Credit features: one declarative catalog, one point-in-time rule, batch and online paths.

``features.build(store, spine)`` and ``features.compute(records, as_of)`` are imported
lazily so that ``import features.catalog`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build", "compute", "compute_many"]


def __getattr__(name: str) -> Any:
    if name in ("build", "compute", "compute_many"):
        from features import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")
