"""Property-based: schemathesis generates requests from the API's own OpenAPI schema, valid and not, and
no answer may be a server error (5xx), on a real chain with an operations history (tests/api/_ops.py).

Left out: `/stream` (an endless response; tests/api/test_stream.py) and every state-changing operation
but the audit job: proposals need a governor's passphrase, notices and webhooks would add history the
shared chain's other readers count (tests/api/test_governance_api.py, test_notices.py and
test_webhooks.py try their bad input on purpose). `QEAIMS_FUZZ_EXAMPLES` raises the examples per
operation for a longer run (the closing note's figure used 200); the default keeps `make test` quick.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from tests.api._ops import OpsCity, ops_city

EXAMPLES = int(os.environ.get("QEAIMS_FUZZ_EXAMPLES", "10"))
READ_ONLY = ("GET",)
ALLOWED_WRITES = {("POST", "/api/v1/audit/verifications"), ("POST", "/api/v1/session")}


def _operations(city: OpsCity) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", city.client.app)
    chosen = []
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if operation.path == "/api/v1/stream":
            continue
        if key[0] in READ_ONLY or key in ALLOWED_WRITES:
            chosen.append(operation)
    return chosen


def test_no_request_the_schema_allows_is_a_server_error(request: pytest.FixtureRequest,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    city = ops_city(request, tmp_path_factory)
    headers = {"Authorization": f"Bearer {city.tokens.auditor}"}
    operations = _operations(city)
    assert len(operations) >= 25, [f"{o.method} {o.path}" for o in operations]  # the schema is the whole API
    failures: list[str] = []
    for operation in operations:

        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code} "
                                f"{response.text[:200]}")

        call()
    assert failures == []
