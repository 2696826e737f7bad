"""The vault service and its audit under attack (review of a147bfb): each test demonstrates one finding
(V1-V20 in docs/cyber.md), and passes since its fix.

Every test takes a chain of its own (`fresh_chain`, ~1.5 s): the audit reads every event a vault name
ever had on the chain, so two tests (or this file and tests/vaults/test_service_chain.py) sharing the
session chain and a sector would see each other's commitments."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from chain.connect import contract_abis
from chain.consortium import sectors
from chain.deploy import dev_controller, dev_vault_recorder
from chain.governance import Council
from chain.indexer import Indexer
from chain.registry_history import REPAIR_ROLE
from core.errors import QeaimsError
from keys.ids import to_bytes32
from tests.conftest import Chain, run_cli
from tests.support import governor, mine_blocks, oracle, recorder
from tests.vaults.test_service_chain import _people, _service
from vaults.envelope import VaultCryptoError, open_record, unwrap_for_reader, unwrap_record_key
from vaults.onchain import VAULT_READ, VAULT_SEAL, VAULT_SHRED, SealWatch, seal_payload
from vaults.reader_keys import ReaderKey
from vaults.service import VaultService
from vaults.store import VaultError, VaultStore
from vaults.verify import VaultReport, verify_vault

pytestmark = pytest.mark.chain


def _index(chain: Chain, tmp_path: Path, name: str) -> Indexer:
    index = Indexer(tmp_path / f"index-{name}.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    return index


def _verify(chain: Chain, service: VaultService, tmp_path: Path, name: str = "") -> VaultReport:
    index = _index(chain, tmp_path, f"{service.vault}-{name}")
    try:
        return verify_vault(index.db, service.store, chain_id=chain.client.chain_id,
                            ledger=chain.deployment.event_ledger, registry=chain.deployment.registry)
    finally:
        index.close()


def _on_chain(chain: Chain, tmp_path: Path, oracle_address: str, kind: int, name: str) -> list[dict[str, Any]]:
    index = _index(chain, tmp_path, name)
    try:
        rows = index.db.execute("SELECT seq, payload FROM events WHERE oracle = ? AND kind = ? ORDER BY seq",
                                (oracle_address.lower(), kind)).fetchall()
        return [{**json.loads(bytes(p)), "_seq": int(s)} for s, p in rows]
    finally:
        index.close()


# V1 -------------------------------------------------------------------------------------------------
def test_a_read_is_never_released_without_its_own_event_on_chain_even_with_the_outbox_rolled_back(
        fresh_chain: Chain, tmp_path: Path) -> None:
    chain = fresh_chain
    root = tmp_path / "vaults"
    service = _service(chain, root, "healthcare")
    people = _people(service)
    service.write(people["writer"], "adm-1", b"admitted: ward 3, suspected sepsis")
    outbox_file = service.recorder.outbox.path
    service.recorder.outbox.close()
    backup = outbox_file.read_bytes()  # the insider's copy of the recorder's outbox (WAL checkpointed on close)

    second = _service(chain, root, "healthcare")
    second.read(people["reader"], "adm-1", "treating physician")  # an honest read: log entry 1, on-chain
    second.recorder.outbox.close()
    log_file = service.store.path / "access.jsonl"
    honest_log = log_file.read_bytes()

    # the insider: the access log moved aside, the outbox rolled back to the backup
    log_file.unlink()
    for extra in (outbox_file.with_name(outbox_file.name + "-wal"), outbox_file.with_name(outbox_file.name + "-shm")):
        extra.unlink(missing_ok=True)
    outbox_file.write_bytes(backup)
    third = _service(chain, root, "healthcare")
    assert third.recover() == 0  # nothing looks lost: no log, and adm-1's commitment is in the backup
    chain_seq_before = third.recorder.chain_last_seq()
    try:
        result = third.read(people["reader"], "adm-1", "curious")
    except VaultError:
        return  # refused: nothing was released, which is what must happen
    # released: then the chain must hold this read's own event
    row = third.recorder.outbox.get(int(result.event.split(":")[1]))
    assert row is not None
    reads = _on_chain(chain, tmp_path, third.recorder.identity.address, VAULT_READ, "v1")
    assert third.recorder.chain_last_seq() > chain_seq_before, "the read was released but nothing was sent"
    assert any(json.loads(row.payload)["log_digest"] == r["log_digest"] for r in reads)
    log_file.write_bytes(honest_log)  # and the insider puts the log back: the audit must still see it
    assert not _verify(chain, third, tmp_path).ok


# V2 -------------------------------------------------------------------------------------------------
def test_the_audit_finds_a_record_whose_keys_were_deleted_without_a_shredding_on_chain(
        fresh_chain: Chain, tmp_path: Path) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "banking")
    people = _people(service)
    service.write(people["writer"], "tx-1", b"EUR 1,200 to DE89...")
    assert _verify(fresh_chain, service, tmp_path, "clean").ok
    (service.store.path / "keys" / "tx-1" / "v1.json").unlink()  # the insider destroys the record's key
    with pytest.raises(VaultError):
        service.read(people["reader"], "tx-1", "fraud check")  # gone for ever
    report = _verify(fresh_chain, service, tmp_path, "after")
    assert not report.ok, "a record destroyed behind the custodian's back passes the audit"


def test_recover_does_not_turn_a_planted_tombstone_into_an_on_chain_shredding(
        fresh_chain: Chain, tmp_path: Path) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "water")
    people = _people(service)
    service.write(people["writer"], "op-1", b"operator badge 4411")
    keys = service.store.path / "keys" / "op-1"
    (keys / "v1.json").unlink()
    (keys / "SHREDDED").write_bytes(b"shredded\n")
    with contextlib.suppress(QeaimsError):
        service.recover()  # what `open_vault` runs before every vault command
    shreds = _on_chain(fresh_chain, tmp_path, service.recorder.identity.address, VAULT_SHRED, "v3")
    assert shreds == [], "a shredding no custodian asked for is on-chain"
    assert not _verify(fresh_chain, service, tmp_path).ok


# V4 -------------------------------------------------------------------------------------------------
def test_a_planted_access_log_entry_is_not_recorded_as_a_genuine_granted_read(
        fresh_chain: Chain, tmp_path: Path) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "electricity")
    people = _people(service)
    service.write(people["writer"], "crew-7", b"crew 7 roster")
    # the insider frames reader-1: one more line, its hash chain recomputed (the log has no secret)
    service.store.log_access(reader="reader-1", role="reader", record_id="crew-7", version=1,
                             reason_hash="00" * 32, at="2026-12-06T03:00:00Z", granted=True, event="")
    service.recover()
    reads = _on_chain(fresh_chain, tmp_path, service.recorder.identity.address, VAULT_READ, "v4")
    assert reads == [], f"a planted line was signed into the chain as a read: {reads}"
    report = _verify(fresh_chain, service, tmp_path)
    assert [r["reader"] for r in report.unrecorded_reads] == ["reader-1"]  # the audit reports it instead


def test_a_planted_record_file_is_not_committed_by_recover(fresh_chain: Chain, tmp_path: Path) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "sewage")
    people = _people(service)
    service.write(people["writer"], "permit-1", b"discharge permit 17")
    # the insider (no key) plants v2: a copy of v1 with its version bumped and random ciphertext
    body = json.loads((service.store.path / "records" / "permit-1" / "v1.json").read_text())
    body["version"], body["ciphertext"] = 2, "ab" * (len(body["ciphertext"]) // 2)
    (service.store.path / "records" / "permit-1" / "v2.json").write_text(json.dumps(body, sort_keys=True))
    shutil.copy(service.store.path / "keys" / "permit-1" / "v1.json", service.store.path / "keys" / "permit-1" / "v2.json")
    assert [u["version"] for u in _verify(fresh_chain, service, tmp_path, "before").uncommitted] == [2]
    service.recover()  # `open_vault` runs it before every command
    report = _verify(fresh_chain, service, tmp_path, "after")
    assert not report.ok, "a version no writer wrote is committed on-chain and the audit is clean"


_REPAIR = bytes.fromhex(REPAIR_ROLE[2:])


# V6 -------------------------------------------------------------------------------------------------
def test_a_seal_stays_when_the_controller_that_made_it_loses_repair_role(fresh_chain: Chain, tmp_path: Path) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "transportation")
    controller = dev_controller(chain.settings)
    recorder(chain.client, chain.settings, controller).record(
        VAULT_SEAL, to_bytes32("transportation"), seal_payload("transportation", True, "quorum: sensor quarantine"))
    assert service.seal_state().sealed
    # the controller's key is retired (rotated, or suspected): the council revokes its REPAIR_ROLE
    Council(chain.client, [governor(chain.settings, s) for s in sectors()]).pass_proposal(
        [("IsolationQuorum", "revokeRole", [_REPAIR, controller.address])], "retire the controller's key")
    assert not chain.client.call1("IsolationQuorum", "hasRole", _REPAIR, controller.address)
    assert service.seal_state().sealed, "nobody unsealed the vault, yet it reads as unsealed"


# V7 -------------------------------------------------------------------------------------------------
def test_vault_seal_events_from_non_holders_do_not_make_every_read_cost_more(fresh_chain: Chain) -> None:
    chain = fresh_chain
    node = to_bytes32("banking")
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        VAULT_SEAL, node, seal_payload("banking", False, "opened"))
    spammer = recorder(chain.client, chain.settings, oracle(chain.settings, "banking", 1))
    spammer.sync()
    for _ in range(300):
        spammer.outbox.append(VAULT_SEAL, node, seal_payload("banking", True, "x"))
    spammer.flush()
    watch = SealWatch(chain.client, "banking")
    calls = 0
    real = chain.client.call1

    def counting(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kw)

    chain.client.call1 = counting  # type: ignore[method-assign]  # counts the real calls, answers nothing itself
    try:
        assert not watch.state().sealed
        calls = 0
        assert not watch.state().sealed  # a second read: what every vault read and write pays
    finally:
        del chain.client.call1
    assert calls <= 5, f"one seal check made {calls} eth_calls"


# V8 -------------------------------------------------------------------------------------------------
def test_shredding_a_record_with_many_versions_neither_loses_the_event_nor_bricks_the_vault(
        fresh_chain: Chain, tmp_path: Path) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "healthcare")
    people = _people(service)
    service.write_many(people["writer"], [("vitals-9", f"{i}".encode()) for i in range(1100)])
    with contextlib.suppress(QeaimsError):
        service.shred(people["custodian"], "vitals-9")
    service.recover()  # every later vault command starts with this
    if service.store.shredded("vitals-9"):
        shreds = _on_chain(fresh_chain, tmp_path, service.recorder.identity.address, VAULT_SHRED, "v8")
        assert [s["record"] for s in shreds] == ["vitals-9"]


# V9 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["auditor", "writer"])
def test_roles_that_may_not_read_cannot_decrypt_records_from_the_files(
        fresh_chain: Chain, tmp_path: Path, role: str) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "water")
    people = _people(service)
    service.write(people["writer"], "op-1", b"operator badge 4411")
    who = people[role]
    epoch, readers = service.store.readers()
    if who.reader not in readers:
        return  # no wrap at all for this role
    try:
        sector_key = unwrap_for_reader("water", who.reader, role, epoch, readers[who.reader][1], who.private_key)
    except VaultCryptoError:
        return  # a wrap this role's key does not open
    key_epoch, wrapped = service.store.record_key("op-1", 1)
    record_key = unwrap_record_key("water", "op-1", wrapped, sector_key, key_epoch, version=1)
    content = open_record(service.store.get("op-1", 1), record_key)
    before = _on_chain(fresh_chain, tmp_path, service.recorder.identity.address, VAULT_READ, "v9")
    assert content != b"operator badge 4411", f"the {role} read the record offline; on-chain reads: {len(before)}"


# V10 ------------------------------------------------------------------------------------------------
def test_a_grant_never_replaces_an_existing_readers_key(fresh_chain: Chain, tmp_path: Path) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "electricity")
    people = _people(service)
    service.write(people["writer"], "crew-7", b"crew 7 roster")
    mine = ReaderKey.generate("electricity", "reader-1", "reader")  # the custodian's own new key
    with pytest.raises(VaultError):
        service.grant(people["custodian"], ("reader-1", "reader", mine.public_bytes()))
    assert service.read(people["reader"], "crew-7", "storm staffing").content == b"crew 7 roster"


# V11 ------------------------------------------------------------------------------------------------
def _superscript_version(store: VaultStore) -> None:
    folder = store.path / "records" / "tx-1"
    (folder / "v\u00b2.json").write_bytes((folder / "v1.json").read_bytes())  # "²".isdigit(), int("²") fails


def _non_utf8_log_line(store: VaultStore) -> None:
    with (store.path / "access.jsonl").open("ab") as fh:
        fh.write(b'{"\xff": 1}\n')


def _non_utf8_record(store: VaultStore) -> None:
    (store.path / "records" / "tx-1" / "v1.json").write_bytes(b'{"\xff": 1}')


@pytest.mark.parametrize("plant", [_superscript_version, _non_utf8_log_line, _non_utf8_record],
                         ids=["superscript-version", "non-utf8-log", "non-utf8-record"])
def test_a_planted_file_makes_the_audit_report_not_crash(fresh_chain: Chain, tmp_path: Path, plant: Any) -> None:
    service = _service(fresh_chain, tmp_path / "vaults", "banking")
    people = _people(service)
    service.write(people["writer"], "tx-1", b"EUR 80 to FR76...")
    service.read(people["reader"], "tx-1", "fraud check")
    plant(service.store)
    report = _verify(fresh_chain, service, tmp_path)
    assert not report.ok


# V12 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["shred", "grant"])
def test_a_sealed_vault_refuses_irreversible_custody_changes(fresh_chain: Chain, tmp_path: Path, action: str) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "sewage")
    people = _people(service)
    service.write(people["writer"], "permit-1", b"discharge permit 17")
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        VAULT_SEAL, to_bytes32("sewage"), seal_payload("sewage", True, "quorum: sensor quarantine of gw-1"))
    assert service.seal_state().sealed
    with pytest.raises(VaultError, match="sealed"):
        if action == "shred":
            service.shred(people["custodian"], "permit-1")
        else:
            service.grant(people["custodian"], ReaderKey.generate("sewage", "newcomer", "reader"))


# V15 ------------------------------------------------------------------------------------------------
def test_a_read_is_not_released_when_the_seal_landed_before_its_event(fresh_chain: Chain, tmp_path: Path) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "healthcare")
    people = _people(service)
    service.write(people["writer"], "adm-1", b"admitted: ward 3")
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    watch = service.seal_state

    def seal_lands_after_the_check() -> Any:
        answer = watch()  # the chain's word at the moment of the check: not sealed
        if not answer.sealed:  # ... and the controller's seal is mined right after it (a real transaction)
            controller.record(VAULT_SEAL, to_bytes32("healthcare"),
                              seal_payload("healthcare", True, "quorum: sensor quarantine of icu-gw"))
        return answer

    service.seal_state = seal_lands_after_the_check
    try:
        service.read(people["reader"], "adm-1", "ward round")
    except VaultError:
        return  # refused: the property holds
    raise AssertionError("the content was released by a read whose event is on-chain after the vault's seal")



# V17 ------------------------------------------------------------------------------------------------
def test_the_seal_watch_reads_logs_in_bounded_ranges(fresh_chain: Chain) -> None:
    CHUNK = 1_000  # the watch's max_logs_range (the setting's default is 5,000: Besu's)

    chain = fresh_chain
    mine_blocks(chain.client.rpc, CHUNK + 500)
    spans: list[int] = []
    real = chain.client.rpc.call

    def spanning(method: str, params: Any = None, *args: Any, **kw: Any) -> Any:
        if method == "eth_getLogs":
            spans.append(int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1)
        return real(method, params, *args, **kw)

    chain.client.rpc.call = spanning  # type: ignore[method-assign]  # measures the real requests, answers nothing itself
    try:
        assert not SealWatch(chain.client, "healthcare", max_logs_range=CHUNK).state().sealed
    finally:
        del chain.client.rpc.call
    assert spans and max(spans) <= CHUNK, f"one eth_getLogs spanned {max(spans)} blocks"


# V18 ------------------------------------------------------------------------------------------------
def test_one_reader_cannot_read_as_another_from_the_command_line(fresh_chain: Chain) -> None:
    def env(me: str, new: str = "") -> dict[str, str]:  # each identity's own passphrase
        return {**fresh_chain.env, "QEAIMS_VAULT_PASSPHRASE": f"{me}-passphrase",
                "QEAIMS_VAULT_NEW_PASSPHRASE": f"{new}-passphrase"}

    for args, who in ((["vault", "init", "healthcare"], env("x", "custodian")),
                      (["vault", "grant", "healthcare", "--reader", "doctor", "--role", "reader"], env("custodian", "doctor")),
                      (["vault", "grant", "healthcare", "--reader", "nurse", "--role", "reader"], env("custodian", "nurse")),
                      (["vault", "write", "healthcare", "adm-1", "--as", "custodian", "--text", "ward 3, sepsis"],
                       env("custodian"))):
        assert run_cli(args, who).returncode == 0, args
    # the nurse, at the vault host with nothing but her own passphrase, names the doctor
    result = run_cli(["vault", "read", "healthcare", "adm-1", "--as", "doctor", "--reason", "just looking"], env("nurse"))
    assert result.returncode != 0 and "ward 3" not in result.stdout, "the nurse read adm-1 recorded as the doctor"
    assert "does not open" in result.stderr
    # and with the deployment's passphrase, which every key on the host used to share, nobody opens anything
    shared = {**fresh_chain.env, "QEAIMS_VAULT_PASSPHRASE": fresh_chain.settings.passphrase}
    assert run_cli(["vault", "read", "healthcare", "adm-1", "--as", "doctor", "--reason", "r"], shared).returncode != 0


# V19 ------------------------------------------------------------------------------------------------
def test_writes_queued_under_an_automatic_seal_land_after_the_automatic_unseal(fresh_chain: Chain) -> None:
    from vaults.local import open_vault

    chain = fresh_chain
    service = open_vault(chain.settings, chain.client, chain.deployment, "banking")
    people = _people(service)
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    node = to_bytes32("banking")
    # what controller._intrusion_response._seal_vaults records around a sensor quarantine of banking
    controller.record(VAULT_SEAL, node, seal_payload("banking", True, "quorum: sensor quarantine of atm-gw"))
    assert service.write(people["writer"], "tx-2", b"EUR 80 to FR76...").status == "queued"
    controller.record(VAULT_SEAL, node, seal_payload("banking", False, "quorum: every quarantine of banking lifted"))
    later = open_vault(chain.settings, chain.client, chain.deployment, "banking")  # the next vault command
    assert later.read(people["reader"], "tx-2", "fraud check").content == b"EUR 80 to FR76..."


# V20 ------------------------------------------------------------------------------------------------
def test_a_shredding_with_a_path_for_a_name_is_reported_not_followed(fresh_chain: Chain, tmp_path: Path) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "transportation")
    people = _people(service)
    service.write(people["writer"], "pass-1", b"season ticket 1")
    stolen = recorder(chain.client, chain.settings, dev_vault_recorder(chain.settings, "transportation"))
    stolen.record(VAULT_SHRED, to_bytes32("transportation"),
                  json.dumps({"vault": "transportation", "record": "../..", "versions": [1]}).encode())
    report = _verify(chain, service, tmp_path)
    assert not report.ok
    assert all(not u.get("files") for u in report.unshredded), report.unshredded
