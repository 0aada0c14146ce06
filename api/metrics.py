"""Prometheus metrics of one app: requests by route and status, latency, scores and grades.

Each app owns its registry, so several apps (tests) never collide. With several uvicorn
workers each worker counts its own requests; scrape them behind
``PROMETHEUS_MULTIPROC_DIR`` for a merged view.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from credit.decisions import Decision

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_SCORE_BUCKETS = tuple(float(b) for b in range(300, 900, 50))


def _latest_score_psi() -> float:
    """Read at scrape time from the file `credit monitor` leaves (models/monitor.py)."""
    from models.monitor import read_latest_score_psi

    return read_latest_score_psi()


class Metrics:
    """The service's metrics on a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tradecredit_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tradecredit_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "tradecredit_decision_score",
            "Scores of the decisions returned.",
            buckets=_SCORE_BUCKETS,
            registry=self.registry,
        )
        self.grades = Counter(
            "tradecredit_decisions",
            "Decisions returned, by grade and model version.",
            ["grade", "model_version"],
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "tradecredit_audit_write_failures",
            "Decisions withheld because the audit log could not be written.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "tradecredit_model_loaded",
            "1 for the model version in service.",
            ["name", "version"],
            registry=self.registry,
        )
        self.score_psi = Gauge(
            "tradecredit_monitor_score_psi",
            "Score PSI of the latest `credit monitor` run against the training baseline "
            "(NaN before the first run).",
            registry=self.registry,
        )
        self.score_psi.set_function(_latest_score_psi)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        s = str(status)
        self.requests.labels(route, method, s).inc()
        self.latency.labels(route, method, s).observe(seconds)

    def decisions_recorded(self, decisions: Sequence[Decision]) -> None:
        """Count the score and grade of decisions recorded and returned (the use-case
        layer's observer, :class:`credit.service.DecisionObserver`)."""
        for d in decisions:
            self.scores.observe(d.score)
            self.grades.labels(d.grade, d.model["version"] or "unregistered").inc()

    def audit_failed(self, n: int) -> None:
        """Count decisions withheld because the audit log could not be written."""
        self.audit_failures.inc(n)

    def set_model(self, name: str, version: str | None) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version or "unregistered").set(1)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg)
        return generate_latest(self.registry)
