"""`qeaims oracles`: a sector's oracles in one host process, each still its own voter.

Two banking oracles share a host: each anchors every reading into its own store under its own key;
one that fails is restarted in the host while its peer keeps running; a mistake no restart mends
(an oracle with no keystore) ends the host with that one error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bus.mqtt import EmbeddedBroker
from core.errors import IdentityError
from core.messages import Sector
from oracles import process
from oracles.node import NodeOptions
from oracles.process import OracleProcessOptions, run_oracle_host
from oracles.training import save_model, train_sector
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from tests.conftest import free_port
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle, wait_until


def _anchored(chain, address: str) -> int:  # type: ignore[no-untyped-def]
    return sum(int(p["count"]) for o, _, p in ledger_events(chain, "telemetry-root") if o.lower() == address.lower())


def test_a_host_runs_independent_oracles_and_restarts_one_that_fails(fresh_chain, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    chain = fresh_chain
    model_file = save_model(train_sector(Sector.BANKING, rows=240), tmp_path / "banking.joblib")
    port = free_port()
    options = OracleProcessOptions(mqtt_port=port, model=model_file, node=NodeOptions(batch_size=64, max_age_s=0.5))
    real, failures = process.run_oracle, []

    def flaky(settings: Any, sector: Sector, index: int, opts: Any, **kw: Any) -> None:
        if index == 2 and not failures:  # the second oracle's first run dies at once
            failures.append(index)
            raise RuntimeError("simulated crash")
        real(settings, sector, index, opts, **kw)

    monkeypatch.setattr(process, "run_oracle", flaky)
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def host() -> None:
        try:
            run_oracle_host(chain.settings, Sector.BANKING, [1, 2], options, stop=stop, on_ready=ready.set)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    addresses = [oracle(chain.settings, "banking", i).address for i in (1, 2)]
    with EmbeddedBroker(port=port), open_twin(Sector.BANKING, seed=5) as twin, \
            TwinPublisher(twin, port=port, client_id="gateway-banking") as gateway:
        thread = threading.Thread(target=host)
        thread.start()
        try:
            wait_until(ready.is_set, 90, what="both oracles subscribed (the failed one restarted)")
            assert failures == [2]
            for _ in range(20):
                gateway.publish(twin.advance())
            # each oracle anchors every reading itself, under its own key
            wait_until(lambda: all(_anchored(chain, a) == gateway.published for a in addresses), 90,
                       what="both oracles to anchor every reading", interval_s=0.2)
        finally:
            stop.set()
            thread.join(60)
    assert not thread.is_alive() and errors == []


def test_a_mistake_no_restart_mends_ends_the_host_with_that_error(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model_file = save_model(train_sector(Sector.BANKING, rows=240), tmp_path / "banking.joblib")
    options = OracleProcessOptions(mqtt_port=free_port(), model=model_file)
    with pytest.raises(IdentityError, match="no oracle keystore"):
        run_oracle_host(fresh_chain.settings, Sector.BANKING, [9], options, stop=threading.Event())


def test_one_oracle_that_cannot_run_ends_alone_and_its_peers_keep_the_quorum(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Index 9 has no keystore: it ends, oracle 1 keeps running, and the host is ready with it (review
    of issue 16, finding 2: one oracle's mistake had stopped the whole sector, restart after restart)."""
    model_file = save_model(train_sector(Sector.BANKING, rows=240), tmp_path / "banking.joblib")
    port = free_port()
    options = OracleProcessOptions(mqtt_port=port, model=model_file)
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def host() -> None:
        try:
            run_oracle_host(fresh_chain.settings, Sector.BANKING, [1, 9], options, stop=stop, on_ready=ready.set)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    with EmbeddedBroker(port=port):
        thread = threading.Thread(target=host)
        thread.start()
        try:
            wait_until(ready.is_set, 90, what="the host ready with its one runnable oracle")
            assert thread.is_alive() and errors == []  # oracle 9 ended; the host runs on with oracle 1
        finally:
            stop.set()
            thread.join(60)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], IdentityError)  # said when the host stops
