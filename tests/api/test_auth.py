"""Tokens: a missing or wrong credential is a 401 with one plain sentence, a role without the right a
403; the cookie is honoured on GET only; the tokens file keeps digests, never a token."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.auth import COOKIE, TokenStore
from core.errors import ConfigError
from tests.api.conftest import Tokens


def test_missing_and_wrong_tokens_are_401_with_one_sentence(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _ = offline_app
    missing = client.get("/api/v1/whoami")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"error": "this needs a token: send 'Authorization: Bearer <token>'"}
    wrong = client.get("/api/v1/whoami", headers={"Authorization": "Bearer qe_not-a-token"})
    assert wrong.status_code == 401 and "not known" in wrong.json()["error"]
    basic = client.get("/api/v1/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401 and "Bearer" in basic.json()["error"]
    for response in (missing, wrong, basic):
        assert "Traceback" not in response.text


def test_each_token_says_its_role(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    me = client.get("/api/v1/whoami", headers=tokens.header(tokens.operator_water)).json()
    assert me == {"role": "operator", "label": "ops-water", "sector": "water", "governor": None}
    gov = client.get("/api/v1/whoami", headers=tokens.header(tokens.governor)).json()
    assert gov["role"] == "governor" and gov["governor"] == "alice"


def test_the_session_cookie_reads_but_never_writes(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    opened = client.post("/api/v1/session", headers=tokens.header(tokens.auditor))
    assert opened.status_code == 200
    cookie = opened.cookies.get(COOKIE)
    assert cookie == tokens.auditor
    assert "httponly" in opened.headers["set-cookie"].lower()
    assert "samesite=strict" in opened.headers["set-cookie"].lower()
    client.cookies.set(COOKIE, cookie)
    assert client.get("/api/v1/whoami").json()["role"] == "auditor"
    assert client.post("/api/v1/session").status_code == 401  # a POST must carry the header itself


def test_the_tokens_file_keeps_digests_only(tmp_path: pytest.TempPathFactory) -> None:
    store = TokenStore(tmp_path)  # type: ignore[arg-type]
    token = store.add("auditor", "a")
    text = store.path.read_text()
    assert token not in text
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert store.lookup(token) is not None and store.lookup(token + "x") is None
    assert store.remove("a") and store.lookup(token) is None


@pytest.mark.parametrize(("role", "kwargs", "message"), [
    ("operator", {}, "names its sector"),
    ("operator", {"sector": "gas"}, "is not a sector"),
    ("auditor", {"sector": "water"}, "has no sector"),
    ("governor", {}, "names the governor"),
])
def test_a_badly_scoped_token_is_refused(tmp_path: pytest.TempPathFactory, role: str, kwargs: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenStore(tmp_path).add(role, "x", **kwargs)  # type: ignore[arg-type]


def test_a_damaged_tokens_file_is_one_error(tmp_path: pytest.TempPathFactory) -> None:
    store = TokenStore(tmp_path)  # type: ignore[arg-type]
    store.path.write_text(json.dumps({"tokens": [{"sha256": "zz", "role": "auditor"}]}))
    with pytest.raises(ConfigError, match="damaged"):
        store.entries()
