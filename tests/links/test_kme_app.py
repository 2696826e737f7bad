"""The KME's FastAPI app in process (no TLS): the caller comes from the ASGI scope, as the server puts it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from links.kme.app import KmeState, create_app
from links.kme.store import KeyStore
from links.kme.supply import KeySupply
from links.plan import LinkPlan, LinkSpec


class _As:
    """Puts `sae_id` where the server's TLS protocol puts the certificate's common name."""

    def __init__(self, app: ASGIApp, sae_id: str | None) -> None:
        self.app, self.sae_id = app, sae_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.sae_id is not None:
            scope["state"] = {**scope.get("state", {}), "sae_id": self.sae_id}
        await self.app(scope, receive, send)


def _call(app: ASGIApp, sae_id: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_As(app, sae_id), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://kme") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def _state() -> KmeState:
    plan = LinkPlan(links=(LinkSpec(master="alpha", slave="beta", distance_km=10.0),))
    store = KeyStore(["alpha~beta"])
    store.add("alpha~beta", b"k" * 256, b"k" * 256)
    return KmeState(plan, store, KeySupply(plan, store, seed=1))


def test_without_a_certificate_name_every_call_is_401() -> None:
    answer = _call(create_app(_state()), None, "GET", "/api/v1/keys/beta/status")
    assert answer.status_code == 401 and "certificate" in answer.json()["message"]


def test_keys_in_process() -> None:
    state = _state()
    app = create_app(state)
    keys = _call(app, "alpha", "GET", "/api/v1/keys/beta/enc_keys", params={"number": 2}).json()["keys"]
    got = _call(app, "beta", "POST", "/api/v1/keys/alpha/dec_keys",
                json={"key_IDs": [{"key_ID": k["key_ID"]} for k in keys]})
    assert got.json()["keys"] == keys
    assert state.store.reserved_count("alpha~beta") == 0


def test_a_failure_inside_is_a_500_in_the_standards_format(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state()

    def broken(*_args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(state.store, "take_for_master", broken)
    answer = _call(create_app(state), "alpha", "GET", "/api/v1/keys/beta/enc_keys")
    assert answer.status_code == 500
    assert answer.json() == {"message": "the KME failed to answer this request (its log says why)"}
