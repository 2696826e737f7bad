"""Revoking a vault identity: a new sector key for those who remain, every live record key re-wrapped, the
revoked key opening nothing on disk (even with the old sector key it once unwrapped kept aside), crashes
at each step recovered, and bad input refused with nothing changed.

Each test runs on a chain of its own (`fresh_chain`): a revocation's ``key-rotation`` event stays on the
vault's node, and another test's vault of the same sector would be audited against it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chain.client import _normalise_log
from chain.deploy import dev_controller
from keys.ids import to_bytes32
from tests.conftest import run_cli
from tests.support import recorder
from tests.vaults.test_service_chain import _service, _verify
from vaults.envelope import VaultCryptoError, unwrap_for_reader, unwrap_record_key
from vaults.onchain import KEY_ROTATION, VAULT_SEAL, seal_payload
from vaults.reader_keys import ReaderKey
from vaults.service import VaultDenied, VaultService
from vaults.store import VaultCorrupt, VaultError, VaultStore

pytestmark = pytest.mark.chain


class Crash(BaseException):
    """A process dying mid-step: nothing catches it, no cleanup runs but the lock's release."""


def _people(service: VaultService) -> dict[str, ReaderKey]:
    names = {"custodian": "custodian", "alice": "reader", "bob": "reader", "clerk": "writer", "auditor": "auditor"}
    people = {name: ReaderKey.generate(service.vault, name, role) for name, role in names.items()}
    service.create(people["custodian"])
    for name in ("alice", "bob", "clerk", "auditor"):
        service.grant(people["custodian"], people[name])
    return people


def _sector_key_of(service: VaultService, who: ReaderKey) -> tuple[int, bytes]:
    epoch, readers = service.store.readers()
    return epoch, unwrap_for_reader(service.vault, who.reader, who.role, epoch, readers[who.reader][1], who.private_key)


def _opens_anything(service: VaultService, who: ReaderKey, old: tuple[int, bytes]) -> list[str]:
    """What ``who``'s ML-KEM key, or the sector key it unwrapped before its revocation, still opens on disk."""
    opened = []
    epoch, readers = service.store.readers()
    previous = service.store.previous_readers()
    sections = [(epoch, readers), *([previous] if previous else [])]
    for at, wraps in sections:
        for name, (role, wrap) in wraps.items():
            for as_name, as_role in {(name, role), (who.reader, who.role)}:
                try:
                    unwrap_for_reader(service.vault, as_name, as_role, at, wrap, who.private_key)
                    opened.append(f"{name}'s wrap of epoch {at}")
                except VaultCryptoError:
                    pass
    for record, version in service.store.records():
        if service.store.shredded(record):
            continue
        key_epoch, wrapped = service.store.record_key(record, version)
        for at in {key_epoch, old[0]}:
            try:
                unwrap_record_key(service.vault, record, wrapped, old[1], at, version=version)
                opened.append(f"{record} v{version}")
            except VaultCryptoError:
                pass
    return opened


def _rotations(chain, vault: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    ledger = chain.client.abi("EventLedger")
    logs = chain.client.rpc.call("eth_getLogs", [{
        "address": chain.client.address("EventLedger"), "fromBlock": "0x0", "toBlock": "latest",
        "topics": ["0x" + ledger.topic("EventRecorded").hex(), None, "0x" + to_bytes32(vault).hex(),
                   "0x" + KEY_ROTATION.to_bytes(32, "big").hex()]}])
    decoded = [ledger.decode_log(_normalise_log(log)) for log in logs]
    return [json.loads(bytes(d.args["payload"])) for d in decoded if d is not None]


def test_a_revoked_reader_opens_nothing_old_or_new_and_those_who_remain_read_everything(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "healthcare")
    people = _people(service)
    for i in range(4):
        service.write(people["clerk"], f"adm-{i}", f"patient {i}: ward {i + 1}".encode())
    service.write(people["clerk"], "adm-0", b"patient 0: discharged")  # a second version
    service.write(people["clerk"], "adm-9", b"to be shredded")
    service.shred(people["custodian"], "adm-9")
    assert service.read(people["alice"], "adm-1", "ward round").content == b"patient 1: ward 2"
    old = _sector_key_of(service, people["alice"])  # what alice could keep from before her revocation
    assert old[0] == 1 and _opens_anything(service, people["alice"], old)  # the check can see an opening

    backup = tmp_path / "backup"
    shutil.copytree(service.store.path, backup)
    event = service.revoke(people["custodian"], "alice", "left the hospital")
    epoch, readers = service.store.readers()
    assert epoch == 2 and sorted(readers) == ["bob", "custodian"] and service.store.previous_readers() is None
    assert "alice" not in service.store.members()
    assert {service.store.record_key(r, v)[0] for r, v in service.store.records() if r != "adm-9"} == {2}
    assert _opens_anything(service, people["alice"], old) == []

    service.write(people["clerk"], "adm-5", b"patient 5: ward 6")  # written after: under the new key
    assert _opens_anything(service, people["alice"], old) == []
    for record in ("adm-0", "adm-5"):  # alice is refused, and the attempt is recorded
        with pytest.raises(VaultDenied, match="alice is not an identity"):
            service.read(people["alice"], record, "one last look")
    assert service.read(people["bob"], "adm-0", "ward round", version=1).content == b"patient 0: ward 1"
    assert service.read(people["bob"], "adm-0", "ward round").content == b"patient 0: discharged"
    assert service.read(people["custodian"], "adm-5", "audit").content == b"patient 5: ward 6"

    assert [p for p in _rotations(chain, "healthcare")] == [{
        "vault": "healthcare", "revoked": "alice", "role": "reader", "epoch": 2, "rotated": True, "holders": 2,
        "reason": "left the hospital"}]
    assert event.startswith(service.recorder.identity.address)
    report = _verify(chain, service, tmp_path)
    assert report.ok, report.lines()
    assert report.revocations == 1 and report.records == 7

    # the vault's key files restored from a backup of before the revocation (readers, members and record keys
    # together, so they agree with each other): the service refuses everyone, the audit says why
    for name in ("readers.json", "members.json", "keys"):
        target = service.store.path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        copy = backup / name
        shutil.copytree(copy, target) if copy.is_dir() else shutil.copy2(copy, target)
    restored = _service(chain, tmp_path / "vaults", "healthcare")
    for who in ("alice", "bob"):
        with pytest.raises(VaultCorrupt, match="restored from before a revocation"):
            restored.read(people[who], "adm-1", "after the restore")
    rolled = _verify(chain, restored, tmp_path)
    assert not rolled.ok and any("rolled back" in p for p in rolled.problems), rolled.lines()


def test_revoking_a_writer_removes_it_without_a_rotation(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = _service(fresh_chain, tmp_path / "vaults", "banking")
    people = _people(service)
    service.write(people["clerk"], "tx-1", b"EUR 10")
    before = service.store.readers()[0]
    service.revoke(people["custodian"], "clerk", "contract ended")
    assert service.store.readers()[0] == before and "clerk" not in service.store.members()
    with pytest.raises(VaultDenied, match="clerk is not an identity"):
        service.write(people["clerk"], "tx-2", b"EUR 20")
    assert _rotations(fresh_chain, "banking")[0]["rotated"] is False
    assert _verify(fresh_chain, service, tmp_path).ok


@pytest.mark.parametrize("step", ["set_readers", "remove_member", "rewrap"])
def test_a_crash_at_each_step_of_a_revocation_leaves_the_vault_readable_and_converges(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "water")
    people = _people(service)
    for i in range(5):
        service.write(people["clerk"], f"meter-{i}", f"account {i}".encode())
    old = _sector_key_of(service, people["alice"])
    real = getattr(service.store, step)
    calls = {"n": 0}

    def crashing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == (3 if step == "rewrap" else 1):  # mid-re-wrap: two keys done, three not
            raise Crash(step)
        return real(*args, **kwargs)

    monkeypatch.setattr(service.store, step, crashing)
    with pytest.raises(Crash):
        service.revoke(people["custodian"], "alice", "badge lost")
    monkeypatch.undo()

    # the process restarts: a new service on the same files recovers what the intents say, then every
    # remaining reader reads every record (whichever epoch wraps its key)
    restarted = _service(chain, tmp_path / "vaults", "water")
    restarted.recover()
    if step == "set_readers":  # the crash came before anything changed: nothing happened, nothing is recorded
        assert "alice" in restarted.store.members() and restarted.store.readers()[0] == 1
        assert restarted.read(people["alice"], "meter-0", "still mine").content == b"account 0"
        assert _rotations(chain, "water") == []
        assert _verify(chain, restarted, tmp_path).ok
        return
    assert "alice" not in restarted.store.members()
    # mid-rotation her ML-KEM key opens no wrap, of either epoch (only keys not yet re-wrapped open with the
    # old sector key she may have kept: the rotation's whole point is to end that)
    assert [o for o in _opens_anything(restarted, people["alice"], old) if "wrap" in o] == []
    if step == "rewrap":
        epochs = sorted(restarted.store.record_key(f"meter-{i}", 1)[0] for i in range(5))
        assert epochs == [1, 1, 1, 2, 2] and restarted.store.previous_readers() is not None
    for i in range(5):
        assert restarted.read(people["custodian"], f"meter-{i}", "billing").content == f"account {i}".encode()
    # the first read by a key holder finished the re-wrap: every key under epoch 2, the previous epoch gone
    assert restarted.store.previous_readers() is None
    assert {restarted.store.record_key(f"meter-{i}", 1)[0] for i in range(5)} == {2}
    assert restarted.read(people["bob"], "meter-4", "billing").content == b"account 4"
    assert _opens_anything(restarted, people["alice"], old) == []
    with pytest.raises(VaultDenied):
        restarted.read(people["alice"], "meter-0", "still mine")
    assert [p["revoked"] for p in _rotations(chain, "water")] == ["alice"]  # recorded once
    restarted.recover()
    assert [p["revoked"] for p in _rotations(chain, "water")] == ["alice"]
    report = _verify(chain, restarted, tmp_path)
    assert report.ok, report.lines()


def test_bad_revocations_are_refused_and_change_nothing(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    service = _service(chain, tmp_path / "vaults", "electricity")
    people = _people(service)
    service.write(people["clerk"], "bill-1", b"EUR 55")
    files = ("readers.json", "members.json")

    def snapshot() -> tuple[bytes, ...]:
        keys = sorted((service.store.path / "keys").rglob("*.json"))
        return (*((service.store.path / f).read_bytes() for f in files), *(k.read_bytes() for k in keys),
                str(service.recorder.outbox.last_seq()).encode())

    before = snapshot()
    with pytest.raises(VaultError, match="^mallory is not an identity of vault electricity$"):
        service.revoke(people["custodian"], "mallory", "who?")
    with pytest.raises(VaultError, match="without a custodian holding its key"):
        service.revoke(people["custodian"], "custodian", "leaving")
    with pytest.raises(VaultError, match="needs a reason"):
        service.revoke(people["custodian"], "alice", "  ")
    with pytest.raises(VaultDenied, match="the role reader may not revoke"):
        service.revoke(people["bob"], "alice", "I do not like her")
    with pytest.raises(VaultError, match="not a valid name"):
        service.revoke(people["custodian"], "../alice", "path")
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    controller.record(VAULT_SEAL, to_bytes32("electricity"), seal_payload("electricity", True, "control room order"))
    with pytest.raises(VaultError, match="sealed.*no identity is revoked"):
        service.revoke(people["custodian"], "alice", "left")
    assert snapshot() == before
    assert _rotations(chain, "electricity") == []


def test_vault_revoke_from_the_command_line(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain

    def as_(who: str, new: str = "") -> dict[str, str]:
        return {**chain.env, "QEAIMS_VAULT_PASSPHRASE": f"{who}-secret", "QEAIMS_VAULT_NEW_PASSPHRASE": f"{new}-secret"}

    def ok(args: list[str], env: dict[str, str]) -> str:
        result = run_cli(args, env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def error(args: list[str], env: dict[str, str]) -> str:
        result = run_cli(args, env)
        assert result.returncode != 0, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]

    ok(["vault", "init", "sewage"], as_("custodian", "custodian"))
    for name, role in (("alice", "reader"), ("bob", "reader"), ("clerk", "writer")):
        ok(["vault", "grant", "sewage", "--reader", name, "--role", role], as_("custodian", name))
    ok(["vault", "write", "sewage", "permit-1", "--as", "clerk", "--text", "discharge permit 7"], as_("clerk"))
    vault = chain.settings.home / "vaults" / "sewage"
    before = [(vault / f).read_bytes() for f in ("readers.json", "members.json")]
    assert "mallory is not an identity" in error(["vault", "revoke", "sewage", "--reader", "mallory", "--reason", "x"],
                                                 as_("custodian"))
    assert "without a custodian" in error(["vault", "revoke", "sewage", "--reader", "custodian", "--reason", "x"],
                                          as_("custodian"))
    assert "--reason" in error(["vault", "revoke", "sewage", "--reader", "alice"], as_("custodian"))
    assert [(vault / f).read_bytes() for f in ("readers.json", "members.json")] == before
    out = ok(["vault", "revoke", "sewage", "--reader", "alice", "--reason", "moved to another utility"],
             as_("custodian"))
    assert "sector key rotated to epoch 2" in out and "2 key holder(s) remain" in out
    assert "alice is not an identity" in error(["vault", "read", "sewage", "permit-1", "--as", "alice", "--reason",
                                                "curious"], as_("alice"))
    shown = run_cli(["vault", "read", "sewage", "permit-1", "--as", "bob", "--reason", "inspection"], as_("bob"))
    assert shown.returncode == 0 and shown.stdout == "discharge permit 7\n", shown.stderr
    shown = json.loads(ok(["vault", "status", "sewage", "--json"], chain.env))
    assert (shown["epoch"], shown["key_holders"], shown["rotation_unfinished"]) == (2, ["bob", "custodian"], False)
    report = json.loads(ok(["vault", "verify", "sewage", "--json"], chain.env))
    assert report["ok"] and report["vaults"][0]["details"]["revocations"] == 1


_DIES_MID_REWRAP = """
import os
from chain.connect import connect
from core.config import load_settings
from vaults.local import open_vault, reader_key_path
from vaults.reader_keys import load_reader_key

settings = load_settings()
client, deployment = connect(settings)
service = open_vault(settings, client, deployment, "sewage")
real, done = service.store.rewrap, []

def dying(*args, **kwargs):
    if len(done) == 2:
        os._exit(9)  # the process dies here: no exception, no cleanup, two record keys re-wrapped
    done.append(real(*args, **kwargs))

service.store.rewrap = dying
service.revoke(load_reader_key(reader_key_path(settings, "sewage", "custodian"), "custodian-secret"), "alice", "lost")
"""


def test_a_revocation_killed_mid_rewrap_leaves_the_vault_readable_and_the_next_read_converges(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain

    def as_(who: str, new: str = "") -> dict[str, str]:
        return {**chain.env, "QEAIMS_VAULT_PASSPHRASE": f"{who}-secret", "QEAIMS_VAULT_NEW_PASSPHRASE": f"{new}-secret"}

    def ok(args: list[str], env: dict[str, str]) -> str:
        result = run_cli(args, env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    ok(["vault", "init", "sewage"], as_("custodian", "custodian"))
    for name, role in (("alice", "reader"), ("bob", "reader"), ("clerk", "writer")):
        ok(["vault", "grant", "sewage", "--reader", name, "--role", role], as_("custodian", name))
    for i in range(5):
        ok(["vault", "write", "sewage", f"permit-{i}", "--as", "clerk", "--text", f"permit {i}"], as_("clerk"))
    died = subprocess.run([sys.executable, "-c", _DIES_MID_REWRAP], env=chain.env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert died.returncode == 9, died.stderr
    store = VaultStore(chain.settings.home / "vaults", "sewage")
    assert sorted(store.record_key(f"permit-{i}", 1)[0] for i in range(5)) == [1, 1, 1, 2, 2]
    assert store.previous_readers() is not None and "alice" not in store.members()
    assert json.loads(ok(["vault", "status", "sewage", "--json"], chain.env))["rotation_unfinished"] is True

    # the next command recovers (the event, sent once) and bob's read, the next key holder's, converges
    assert ok(["vault", "read", "sewage", "permit-4", "--as", "bob", "--reason", "inspection"], as_("bob")) == "permit 4\n"
    assert {store.record_key(f"permit-{i}", 1)[0] for i in range(5)} == {2} and store.previous_readers() is None
    for i in range(5):
        assert ok(["vault", "read", "sewage", f"permit-{i}", "--as", "custodian", "--reason", "audit"],
                  as_("custodian")) == f"permit {i}\n"
    refused = run_cli(["vault", "read", "sewage", "permit-0", "--as", "alice", "--reason", "x"], as_("alice"))
    assert refused.returncode != 0 and "alice is not an identity" in refused.stderr
    assert [p["revoked"] for p in _rotations(chain, "sewage")] == ["alice"]
    report = json.loads(ok(["vault", "verify", "sewage", "--json"], chain.env))
    assert report["ok"], report


def test_a_revocation_refuses_while_queued_writes_did_not_land(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Review s35, finding 6: a seal between the revocation's check and the landing of the queued writes left
    them wrapped for the old sector key, which the revoked reader holds, and the rotation went on."""
    from vaults.council_unseal import SealState

    sealed = [False]
    service = _service(fresh_chain, tmp_path / "vault", "healthcare",
                       seal_state=lambda: SealState(sealed=sealed[0], reason="test"))
    people = _people(service)
    sealed[0] = True
    service.write(people["clerk"], "adm-9", b"patient 9: ward 2")  # queued under the old epoch
    sealed[0] = False
    service.apply_pending = lambda: 0  # type: ignore[method-assign]  # the seal came back before they landed
    before = service.store.readers()
    with pytest.raises(VaultError, match="queued writes that did not land"):
        service.revoke(people["custodian"], "alice", "left the hospital")
    assert service.store.readers() == before and service.store.pending()
