"""The controller publishes an indicator once a sector's quorum named it in wire-intrusion verdicts, once,
across restarts; fewer verdicts, or another sector's, publish nothing."""

from __future__ import annotations

from pathlib import Path

from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.indicators import active_indicators
from core.indicator_values import indicator_id
from tests.chain.test_indicators import _verdicts
from tests.chain.test_ledger_and_audit import audit
from tests.controller.test_cyber import _controller
from tests.oracles.test_oracle_node import ledger_events


def test_a_quorum_of_wire_verdicts_publishes_an_indicator_once(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    _verdicts(chain, "water", (1, 2), "client-id", "eng-ws-3")
    _verdicts(chain, "electricity", (1, 2), "source-address", "10.9.9.9")
    _verdicts(chain, "water", (1,), "source-address", "10.9.9.9")  # three voices, but two sectors: no quorum
    _vault_recorder_verdicts(chain)  # a vault's recorder alone in its sector: no quorum, and no crash
    ctl = _controller(chain)
    ctl.run_once()
    assert ledger_events(chain, "indicator") == []
    _verdicts(chain, "water", (4,), "client-id", "eng-ws-3")
    ctl.run_once()
    [(_, _, published)] = ledger_events(chain, "indicator")
    assert (published["kind"], published["value"], published["source_sector"]) == ("client-id", "eng-ws-3", "water")
    assert published["required"] == 3 and len(published["evidence"]) == 3 and published["confidence"] == 75
    ctl.run_once()
    ctl.close()
    again = _controller(chain)
    again.run_once()  # a restart publishes nothing twice
    _verdicts(chain, "water", (3,), "client-id", "eng-ws-3")  # one more voice of the same story
    again.run_once()
    again.close()
    assert len(ledger_events(chain, "indicator")) == 1
    assert audit(chain).ok
    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        assert set(active_indicators(index.db)) == {indicator_id("client-id", "eng-ws-3")}
    finally:
        index.close()


def _vault_recorder_verdicts(chain) -> None:  # type: ignore[no-untyped-def]
    from chain.consortium import vault_sector
    from chain.deploy import dev_vault_recorder
    from chain.recorder import canonical_payload
    from core.kinds import kind_by_name
    from keys.ids import to_bytes32
    from tests.support import recorder

    sector = vault_sector("banking")
    recorder(chain.client, chain.settings, dev_vault_recorder(chain.settings, "banking")).record(
        kind_by_name("intrusion"), to_bytes32("atm-gw"), canonical_payload({
            "sector": sector, "subject": "atm-gw", "asset": "atm-gw", "verdict": "intrusion",
            "sensors": [["atm-gw/latency", 0.9]], "indicators": [{"kind": "client-id", "value": "atm-1"}]}))


def test_a_command_attack_quarantines_its_device_once(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    from chain.recorder import canonical_payload
    from core.kinds import kind_by_name
    from keys.ids import to_bytes32
    from tests.support import oracle, recorder

    chain = fresh_chain
    for i in (1, 2, 3):
        recorder(chain.client, chain.settings, oracle(chain.settings, "water", i)).record(
            kind_by_name("intrusion"), to_bytes32("pump-station-1"), canonical_payload({
                "sector": "water", "subject": "pump-station-1", "verdict": "intrusion",
                "wire": {"class": "unprofiled-function"},
                "indicators": [{"kind": "source-address", "value": "10.11.0.9"}]}))
    ctl = _controller(chain)
    ctl.run_once()
    ctl.run_once()
    ctl.close()
    again = _controller(chain)
    again.run_once()
    again.close()
    measures = [p for _, _, p in ledger_events(chain, "countermeasure")]
    assert [(m["type"], m["device"], m["state"]) for m in measures] == [("quarantine-device", "pump-station-1", "applied")]
    assert audit(chain).ok
