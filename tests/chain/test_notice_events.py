"""The `notice` kind in the whole audit: a crisis notice recorded by the control room is a valid event
like any other; the same kind recorded by any other Active oracle is a finding (it vouches for nothing)."""

from __future__ import annotations

from pathlib import Path

from chain.audit import verify_everything
from chain.connect import contract_abis
from chain.control_room import record_as_control_room
from chain.indexer import Indexer
from chain.notices import NOTICE, canonical_notice, notice_payload, notice_records
from chain.recorder import canonical_payload
from keys.ids import to_bytes32
from tests.support import oracle, recorder


def _payload(ident: str) -> dict[str, str]:
    canonical = canonical_notice(id=ident, audience="public", sector="water", district="north",
                                 text="Boil water.", created="2026-12-06T16:00:00Z", author="ops-water")
    return notice_payload(id=ident, canonical=canonical, audience="public", sector="water")


def test_a_control_room_notice_passes_the_audit_and_an_oracles_notice_is_a_finding(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    recorded = record_as_control_room(chain.settings, "notice", "water", _payload("1" * 32))
    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        report = verify_everything(index.db, chain.client, chain.deployment, head=index.last_block)
        assert report.ok, report.lines()
        [record] = notice_records(index.db)
        assert record.counts and (record.oracle, record.seq, record.id) == (recorded.oracle, recorded.seq, "1" * 32)

        intruder = oracle(chain.settings, "water", 2)
        recorder(chain.client, chain.settings, intruder).record(NOTICE, to_bytes32("water"),
                                                                 canonical_payload(_payload("2" * 32)))
        index.sync()
        report = verify_everything(index.db, chain.client, chain.deployment, head=index.last_block)
        assert [(i["oracle"], i["reason"]) for i in report.invalid] == [
            (intruder.address, (f"notice {'2' * 32}: recorded by {intruder.address.lower()}, which does not hold "
                               f"REPAIR_ROLE at block {report.invalid[0]['block']} (not the control room)"))]
    finally:
        index.close()
