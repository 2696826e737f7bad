"""The OpenAPI schema is pinned: the app's schema equals tests/api/openapi.json. A difference means the
API's contract changed; if on purpose, re-pin with `python -m api.openapi > tests/api/openapi.json`."""

from __future__ import annotations

import json
from pathlib import Path

from api.openapi import openapi_schema

PINNED = Path(__file__).with_name("openapi.json")


def test_the_schema_is_the_pinned_one() -> None:
    pinned = json.loads(PINNED.read_text())
    current = json.loads(json.dumps(openapi_schema(), sort_keys=True))
    changed = sorted(set(pinned["paths"]) ^ set(current["paths"]))
    assert not changed, f"paths added or removed: {changed}; re-pin with python -m api.openapi > {PINNED}"
    assert current == pinned, f"the schema changed; re-pin with python -m api.openapi > {PINNED}"


def test_every_operation_says_what_it_does_and_how_it_fails() -> None:
    for path, operations in openapi_schema()["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            codes = set(operation["responses"])
            if not path.startswith("/api/v1/public/"):
                assert codes & {"401", "403"}, f"{method.upper()} {path} does not document its 401/403"
