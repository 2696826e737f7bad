"""A sector vault on a real chain: writes committed, reads recorded before release, seals only from the
controller, crashes recovered, and an auditor who holds no key finds what was done behind its back.

Each test takes a sector of its own: a vault is named after its sector and its events stay on the
session's chain, so two tests sharing one would see each other's commitments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chain.client import ChainClient
from chain.connect import contract_abis
from chain.deploy import dev_controller, dev_vault_recorder
from chain.indexer import Indexer
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder
from chain.rpc import RpcClient
from keys.ids import to_bytes32
from tests.support import oracle, recorder
from vaults.onchain import VAULT_SEAL, VAULT_WRITE, SealState, SealWatch, seal_payload, write_payload
from vaults.reader_keys import ReaderKey
from vaults.service import VaultDenied, VaultService, VaultUnavailable
from vaults.store import VaultCorrupt, VaultError, VaultStore
from vaults.verify import VaultReport, verify_vault

pytestmark = pytest.mark.chain


def _service(chain, root: Path, vault: str, client: ChainClient | None = None,  # type: ignore[no-untyped-def]
             seal_state: Callable[[], SealState] | None = None) -> VaultService:
    """A vault service recording with the vault's own recorder (shared by the vault tests on a chain)."""
    identity = dev_vault_recorder(chain.settings, vault)
    outbox = EventOutbox.for_oracle(chain.settings.outbox_dir, identity.address, chain.deployment.deployment_id)
    return VaultService(VaultStore(root, vault), EventRecorder(client or chain.client, identity, outbox),
                        seal_state or SealWatch(chain.client, vault).state)


def _people(service: VaultService) -> dict[str, ReaderKey]:
    vault = service.vault
    people = {role: ReaderKey.generate(vault, f"{role}-1", role) for role in ("custodian", "reader", "writer",
                                                                              "auditor")}
    service.create(people["custodian"])
    for role in ("reader", "writer", "auditor"):
        service.grant(people["custodian"], people[role])
    return people


def _verify(chain, service: VaultService, tmp_path: Path) -> VaultReport:  # type: ignore[no-untyped-def]
    index = Indexer(tmp_path / f"index-{service.vault}.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        return verify_vault(index.db, service.store, chain_id=chain.client.chain_id,
                            ledger=chain.deployment.event_ledger, registry=chain.deployment.registry,
                            council=chain.deployment.governance_council)
    finally:
        index.close()


def test_reads_are_recorded_before_release_and_the_audit_finds_a_tampered_record_and_an_unrecorded_read(
        chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = _service(chain, tmp_path / "vaults", "healthcare")
    people = _people(service)
    written = service.write(people["writer"], "adm-1", b"admitted: ward 3, suspected sepsis")
    assert written.status == "committed" and written.version == 1
    service.write(people["writer"], "adm-2", b"admitted: ward 5")

    result = service.read(people["reader"], "adm-1", "treating physician, shift handover")
    assert result.content == b"admitted: ward 3, suspected sepsis"
    assert result.event.startswith(service.recorder.identity.address)

    log_before, seq_before = service.store.access_log(), service.recorder.outbox.last_seq()
    for no_reason in ("", "   "):
        with pytest.raises(VaultError, match="needs a reason"):
            service.read(people["reader"], "adm-1", no_reason)
    assert service.store.access_log() == log_before and service.recorder.outbox.last_seq() == seq_before

    with pytest.raises(VaultDenied, match="the role auditor may not read.*recorded on-chain") as refused:
        service.read(people["auditor"], "adm-1", "curious")
    assert refused.value.event
    stranger = ReaderKey.generate("healthcare", "stranger", "reader")
    with pytest.raises(VaultDenied, match="not an identity of vault healthcare"):
        service.read(stranger, "adm-2", "looking around")
    impostor = ReaderKey("healthcare", "reader-1", "reader", ReaderKey.generate("healthcare", "x", "reader").private_key)
    with pytest.raises(VaultDenied, match="not the one registered"):
        service.read(impostor, "adm-2", "pretending")
    entries = service.store.access_log()
    assert [(e.reader, e.granted) for e in entries] == [
        ("reader-1", True), ("auditor-1", False), ("stranger", False), ("reader-1", False)]

    clean = _verify(chain, service, tmp_path)
    assert clean.ok, clean.lines()
    assert (clean.records, clean.commitments, clean.reads_logged, clean.reads_on_chain) == (2, 2, 4, 4)
    on_chain_reasons = {json.loads(bytes(row[0]))["reason"] for row in _payloads(chain, tmp_path, 18)}
    assert service.reason_hash("treating physician, shift handover") in on_chain_reasons
    assert not any("physician" in reason for reason in on_chain_reasons)

    # an insider edits a record on disk, and logs a read without the service (so without the chain)
    path = service.store.path / "records" / "adm-2" / "v1.json"
    body = json.loads(path.read_text())
    body["ciphertext"] = ("00" if body["ciphertext"][:2] != "00" else "11") + body["ciphertext"][2:]
    path.write_text(json.dumps(body))
    service.store.log_access(reader="reader-1", role="reader", record_id="adm-1", version=1, reason_hash="00" * 32,
                             at="2026-12-06T00:00:00Z", granted=True, event="")
    found = _verify(chain, service, tmp_path)
    assert not found.ok
    assert [(t["record"], t["version"]) for t in found.tampered] == [("adm-2", 1)]
    assert [r["log_seq"] for r in found.unrecorded_reads] == [5]
    assert not found.missing and not found.rolled_back_reads and not found.uncommitted
    with pytest.raises(VaultCorrupt, match="tampered"):
        service.read(people["reader"], "adm-2", "ward round")


def _payloads(chain, tmp_path: Path, kind: int) -> list[tuple[bytes]]:  # type: ignore[no-untyped-def]
    index = Indexer(tmp_path / f"kind-{kind}.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        return list(index.db.execute("SELECT payload FROM events WHERE kind = ?", (kind,)).fetchall())
    finally:
        index.close()


def test_a_sealed_vault_refuses_reads_queues_writes_and_only_the_controller_seals_or_unseals(
        chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = _service(chain, tmp_path / "vaults", "banking")
    people = _people(service)
    service.write(people["writer"], "tx-1", b"EUR 1,200 to DE89...")
    node = to_bytes32("banking")

    # the vault's own recorder and a banking oracle try to seal and unseal: their word counts for nothing
    for who in (dev_vault_recorder(chain.settings, "banking"), oracle(chain.settings, "banking", 1)):
        recorder(chain.client, chain.settings, who).record(VAULT_SEAL, node, seal_payload("banking", True, "mine"))
    assert service.seal_state() == SealState(False)
    assert service.read(people["reader"], "tx-1", "fraud check").content.startswith(b"EUR")

    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    controller.record(VAULT_SEAL, node, seal_payload("banking", True, "intrusion quorum on banking's gateway"))
    assert service.seal_state().sealed
    with pytest.raises(VaultDenied, match="sealed.*intrusion quorum.*recorded on-chain"):
        service.read(people["reader"], "tx-1", "fraud check")
    queued = service.write(people["writer"], "tx-2", b"EUR 80 to FR76...")
    assert queued.status == "queued" and not queued.event
    assert service.store.versions("tx-2") == []
    with pytest.raises(VaultError, match="sealed"):
        service.apply_pending()
    recorder(chain.client, chain.settings, oracle(chain.settings, "banking", 2)).record(
        VAULT_SEAL, node, seal_payload("banking", False, "let me in"))
    assert service.seal_state().sealed

    controller.record(VAULT_SEAL, node, seal_payload("banking", False, "gateway re-imaged, credentials re-issued"))
    assert service.apply_pending() == 1
    assert service.read(people["reader"], "tx-2", "fraud check").content == b"EUR 80 to FR76..."
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert (report.records, report.reads_logged, report.reads_on_chain) == (2, 3, 3)


def test_a_crash_between_the_store_and_the_chain_is_recovered_once(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey

    from vaults.envelope import commitment, new_key, seal_record, wrap_record_key_for_sector
    from vaults.intents import Intent

    service = _service(chain, tmp_path / "vaults", "water")
    people = _people(service)
    service.write(people["writer"], "op-1", b"operator badge 4411")
    # a crash after the service wrote its intent and the store took the record, before the commitment
    # reached the outbox (what `write_many` does, cut short)
    epoch, _ = service.store.readers()
    public = MLKEM768PublicKey.from_public_bytes(service.store.sector_public_key())
    record_key = new_key()
    sealed = seal_record("water", "op-2", 1, b"badge 5512", record_key)
    service.intents.add(Intent("write", {"record": "op-2", "version": 1, "commitment": commitment(sealed).hex()}))
    service.store.put(sealed, wrap_record_key_for_sector("water", "op-2", record_key, public, epoch, version=1), epoch)
    # and a crash after a read was logged but before its event reached the outbox
    entry = service.store.log_access(reader="reader-1", role="reader", record_id="op-1", version=1,
                                     reason_hash="ab" * 32, at="2026-12-06T00:00:00Z", granted=True,
                                     event=f"{service.recorder.identity.address}:{service.recorder.outbox.last_seq() + 1}")
    service.intents.add(Intent("read", {"log_seq": entry.seq, "log_digest": entry.digest(), "refusal": ""}))
    # a write the crash cut before the store: its intent alone records nothing
    service.intents.add(Intent("write", {"record": "op-3", "version": 1, "commitment": "00" * 32}))
    assert not _verify(chain, service, tmp_path).ok
    assert service.recover() == 2
    assert service.recover() == 0
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert (report.records, report.commitments, report.reads_on_chain) == (2, 2, 1)


def test_no_chain_no_read_and_the_logged_attempt_lands_later(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = _service(chain, tmp_path / "vaults", "electricity")
    people = _people(service)
    service.write(people["writer"], "crew-7", b"crew 7 roster")
    dead = ChainClient(RpcClient("http://127.0.0.1:9", retries=0, timeout_s=1.0), chain_id=chain.client.chain_id,
                       contracts=chain.client.contracts)
    offline = _service(chain, tmp_path / "vaults", "electricity", client=dead)
    offline.seal_state = lambda: SealState(False)  # the seal is read; the chain is what is missing
    with pytest.raises(VaultUnavailable, match="nothing was released"):
        offline.read(people["reader"], "crew-7", "storm staffing")
    assert offline.store.access_log() == []  # no chain at all: not even logged
    # a chain that answers but takes no transaction from this recorder (signed for another chain id)
    # (Anvil takes such a transaction into its pool and never mines it: the receipt wait is what ends it, so
    # a short one keeps the test quick; Besu and Hardhat refuse it at once)
    refused = ChainClient(chain.client.rpc, chain_id=chain.client.chain_id + 1, contracts=chain.client.contracts,
                          receipt_timeout_s=3.0)
    wrong = _service(chain, tmp_path / "vaults", "electricity", client=refused)
    with pytest.raises(VaultUnavailable, match="nothing was released"):
        wrong.read(people["reader"], "crew-7", "storm staffing")
    assert len(wrong.store.access_log()) == 1
    assert not _verify(chain, service, tmp_path).ok  # logged, not yet on-chain
    service.recorder.flush()
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert report.reads_on_chain == 1


def test_vault_events_from_anyone_but_the_vaults_recorder_count_for_nothing(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = _service(chain, tmp_path / "vaults", "sewage")
    people = _people(service)
    service.write(people["writer"], "permit-1", b"discharge permit 17")
    forged = write_payload("sewage", "permit-9", 1, b"\x01" * 32)
    for who in (oracle(chain.settings, "sewage", 1), dev_vault_recorder(chain.settings, "water"),
                dev_controller(chain.settings)):
        recorder(chain.client, chain.settings, who).record(VAULT_WRITE, to_bytes32("sewage"), forged)
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert report.commitments == 1 and len(report.ignored) == 3
    assert all("not recorded by vault sewage's recorder" in i["why"] for i in report.ignored)
