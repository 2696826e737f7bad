"""Print the API's OpenAPI schema: `python -m api.openapi > tests/api/openapi.json` re-pins it.

The schema is the API's contract with its clients (the dashboard, an auditor's scripts): a test compares
the app's schema with the pinned file, so a change to it is a change someone made on purpose.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from api.app import create_app
from core.config import load_settings

__all__ = ["openapi_schema"]


def openapi_schema() -> dict[str, Any]:
    """The schema of an app over an empty home (the schema does not depend on the home)."""
    with tempfile.TemporaryDirectory() as home:
        schema: dict[str, Any] = create_app(load_settings(home=Path(home)), follow=False).openapi()
    return schema


if __name__ == "__main__":
    print(json.dumps(openapi_schema(), indent=1, sort_keys=True))
