"""The regulator's API over a real Anvil: real events recorded by dev oracles, a real telemetry store.

The app gets its own data directory (a copy of the deployment manifest, its own index and tokens), so
that modules sharing the session chain never share tokens or an index; the events are recorded by the
dev oracles as `tests/cli` and `tests/oracles` record theirs, about nodes whose names carry a random
suffix, so a filter on them sees exactly these events whatever else ran on the session chain.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.context import ApiContext
from chain.deploy import dev_controller
from chain.recorder import canonical_payload
from core.config import Settings
from core.kinds import kind_by_name
from core.messages import Reading, Sector
from keys.ids import to_bytes32
from oracles.telemetry import TelemetryStore, telemetry_path
from tests.api.conftest import Tokens, make_tokens
from tests.conftest import Chain
from tests.support import oracle, recorder

API = "/api/v1"


@dataclass
class RegApi:
    chain: Chain
    client: TestClient
    tokens: Tokens
    settings: Settings
    ctx: ApiContext
    water: str  # the water oracle's address (lower case)
    electricity: str
    pump: str  # a water node: anomaly, fault (one batch), then repaired on `valve`
    valve: str
    feeder: str  # an electricity node: fault, anomaly
    line: str  # an electricity node the controller acted on (its payload names the sector)
    controller: str  # the controller's address (registered in the `control` sector)

    def get(self, path: str, token: str | None = None, **params: str | int) -> httpx.Response:
        headers = self.tokens.header(token) if token is not None else {}
        response: httpx.Response = self.client.get(API + path, params=params, headers=headers)
        return response

    def record(self, sector: str, events: list[tuple[str, str, dict[str, object]]]) -> None:
        """`events` as (kind, node, body), sent in one batch by the sector's fourth dev oracle (`control`:
        by the self-healing controller)."""
        ident = dev_controller(self.chain.settings) if sector == "control" else oracle(self.chain.settings, sector, 4)
        rec = recorder(self.chain.client, self.chain.settings, ident)
        rec.sync()
        for kind, node, body in events:
            rec.outbox.append(kind_by_name(kind), to_bytes32(node), canonical_payload(body))
        rec.flush()
        self.ctx.sync()


def api_home(chain: Chain, root: Path) -> Settings:
    """Settings for a data directory of the API's own, on the chain of `chain`."""
    home = root / "home"
    home.mkdir(parents=True)
    shutil.copy(chain.settings.manifest_path, home / "deployment.json")
    return chain.settings.model_copy(update={"home": home})


def build(chain: Chain, root: Path) -> RegApi:
    settings = api_home(chain, root)
    app = create_app(settings, follow=False)
    tokens = make_tokens(settings.home / "api")
    tag = secrets.token_hex(3)
    api = RegApi(chain=chain, client=TestClient(app, raise_server_exceptions=False), tokens=tokens, settings=settings,
                 ctx=app.state.ctx, water=oracle(chain.settings, "water", 4).address.lower(),
                 electricity=oracle(chain.settings, "electricity", 4).address.lower(),
                 pump=f"ra{tag}-pump-1", valve=f"ra{tag}-valve-2", feeder=f"ra{tag}-feeder-1",
                 line=f"ra{tag}-line-3", controller=dev_controller(chain.settings).address.lower())
    api.record("water", [("anomaly", api.pump, {"pressure_bar": 0.4}), ("fault", api.pump, {"pressure_bar": 0.1}),
                         ("repaired", api.valve, {})])
    api.record("electricity", [("fault", api.feeder, {"kv": 0}), ("anomaly", api.feeder, {"kv": 3})])
    api.record("control", [("isolation-applied", api.valve, {"sector": "water", "asset": "valve-2"}),
                           ("reroute-plan", api.line, {"sector": "electricity", "plan": [1, 2]})])
    return api


T0 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


def readings(n: int, start: int = 0) -> list[Reading]:
    return [Reading(sector=Sector.WATER, asset_id="tank-7", sensor_id=f"level-{i % 3}", quantity="level_m", unit="m",
                    value=round(1.5 + (i % 17) / 10, 2), timestamp=T0 + timedelta(seconds=i))
            for i in range(start, start + n)]


def telemetry(api: RegApi) -> Path:
    """The water oracle's store under the API's home: batches 1-3 (8, 8, 4 readings) anchored on-chain,
    batch 4 sealed but never handed to the ledger."""
    ident = oracle(api.chain.settings, "water", 4)
    path = telemetry_path(api.settings.home, ident.address)
    store = TelemetryStore(path, ident.address, batch_size=8)
    try:
        store.add_many(readings(20))
        store.anchor(recorder(api.chain.client, api.chain.settings, ident), force=True)
        store.add_many(readings(2, start=20))
        store.seal(force=True)
    finally:
        store.close()
    api.ctx.sync()
    return path
