"""Fixtures for the API's tests: an app over a temporary home, and tokens for each role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenStore
from core.config import load_settings


@dataclass(frozen=True)
class Tokens:
    auditor: str
    operator_water: str
    operator_electricity: str
    governor: str

    def header(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_tokens(api_dir: Path) -> Tokens:
    store = TokenStore(api_dir)
    return Tokens(
        auditor=store.add("auditor", "audit-1"),
        operator_water=store.add("operator", "ops-water", sector="water"),
        operator_electricity=store.add("operator", "ops-electricity", sector="electricity"),
        governor=store.add("governor", "gov-alice", governor="alice"),
    )


@pytest.fixture
def offline_app(tmp_path: Path) -> tuple[TestClient, Tokens]:
    """The app over an empty home with no chain: what answers without one (auth, errors, public)."""
    settings = load_settings(home=tmp_path / "home", rpc_port=1)
    app = create_app(settings, follow=False)
    tokens = make_tokens(settings.home / "api")
    return TestClient(app, raise_server_exceptions=False), tokens
