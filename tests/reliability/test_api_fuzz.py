"""Property-based fuzzing of every endpoint from the service's own OpenAPI schema.

schemathesis generates requests (valid and invalid by the schema) for each operation, sent
through ASGI with a valid key of each role. No response may be a server error, and every
response must match what the schema documents (status code, content type, body schema).

The number of generated requests per (operation, role, mode) comes from
``TRADECREDIT_FUZZ_EXAMPLES`` (default 10 in CI: about 500 requests; 40 gives over 2,000).
The test prints the count that ran.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from credit.scoring import ScoringModel
from tests.reliability.conftest import running_service

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("TRADECREDIT_FUZZ_EXAMPLES", "10"))
#: Keys to send: one per role, and none at all (401s, then the per-client limit on failed
#: authentications answers 429).
ROLES = {"lender": "a_lender", "platform": "a_platform", "admin": "a_admin", "anonymous": None}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_generated_requests_never_crash_and_match_the_schema(
    tmp_path: Path, tiny_model: ScoringModel
) -> None:
    from schemathesis import GenerationMode

    with running_service(tmp_path / "svc", tiny_model) as svc:
        app, keys = svc["app"], svc["keys"]
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 8, [op.label for op in operations]
        statuses: Counter[tuple[str, int]] = Counter()
        failures: list[str] = []
        # Roles outermost, anonymous last: its failed authentications lock the client out.
        for role, key_name in ROLES.items():
            for op in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    headers = {"X-API-Key": keys[key_name]} if key_name else None
                    strategy = op.as_strategy(generation_mode=mode, headers=headers)
                    _fuzz(op, strategy, statuses, failures, f"{role}/{mode.value}")
        total = sum(statuses.values())
        summary: Counter[int] = Counter()
        for (_, code), n in statuses.items():
            summary[code] += n
        print(
            f"\nschemathesis: {total} requests over {len(operations)} operations "
            f"(TRADECREDIT_FUZZ_EXAMPLES={EXAMPLES}); statuses {dict(sorted(summary.items()))}"
        )
        assert not failures, "\n".join(failures[:20])
        assert not any(code >= 500 for (_, code) in statuses)
        # the fuzz reached the scoring core, not just the validators
        assert statuses[("POST /v1/score", 200)] + statuses[("POST /v1/score/batch", 200)] > 0
        assert total >= 30 * EXAMPLES


def _fuzz(
    op: Any,
    strategy: Any,
    statuses: Counter[tuple[str, int]],
    failures: list[str],
    label: str,
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call()
        statuses[(op.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # collect; fuzz the other operations
            if len(failures) < 50:
                failures.append(f"{op.label} [{label}] {response.status_code}: {exc}"[:1500])

    from hypothesis.errors import Unsatisfiable

    try:
        run()
    except Unsatisfiable:  # nothing to negate (an operation without parameters): no request
        pass
    except (Exception, BaseExceptionGroup) as exc:  # a transport error: the app raised
        failures.append(f"{op.label} [{label}]: {type(exc).__name__}: {exc}"[:1500])
