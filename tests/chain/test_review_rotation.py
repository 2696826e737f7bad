"""Review s38b (adversarial, rotation resend): the registry holding this oracle's key epoch but ANOTHER key.

`Registry.rotateKey` checks only `msg.sender` and `fromEpoch`; its two ML-DSA signatures are logged, not
verified. So whoever holds the oracle's secp256k1 account (a stolen account key, or a second copy of the
keystore that an operator rotated elsewhere) can move the registry to epoch N+1 with a key this oracle does
not hold. Both guards the resend work added compare epochs only (`check_key_epoch`, and the
`header.key_epoch == chain_epoch` branch of `rotate_oracle_key`), never the key hash, so the oracle then
(a) starts and signs batches with a key the registry does not hold, and (b) "rotates" again with a proof
signed by that unregistered key: the registry accepts it and every audit flags the epoch as an intrusion.
Each test states the wanted behaviour; findings 1 and 2 are fixed (the key hash is compared too), 4 by a lock
beside the keystore and 5 by a pending-rotation record there (`keys.rotating`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from chain.audit_keys import key_history
from chain.client import ChainClient
from chain.connect import contract_abis
from chain.deploy import oracle_keystore
from chain.indexer import Indexer
from chain.recorder import check_key_epoch
from chain.rotation import rotate_oracle_key
from core.errors import IdentityError, TransactionFailed
from keys.hybrid import sign_rotation
from keys.keystore import load_keystore, read_keystore_header, rotate_keystore
from tests.conftest import run_cli

pytestmark = pytest.mark.chain
ROOT = Path(__file__).resolve().parents[2]


def _foreign_rotation_then_own_keystore_ahead(client: ChainClient, keystore: Path, passphrase: str) -> int:
    """The registry moves N -> N+1 to a key this keystore never held (sent from the oracle's own account,
    as a thief of that account or a second keystore copy would), then the keystore makes its own N+1 key.
    Returns N."""
    start = read_keystore_header(keystore).key_epoch
    old = load_keystore(keystore, passphrase)
    foreign = sign_rotation(old, MLDSA65PrivateKey.generate(), chain_id=client.chain_id,
                            registry=client.address("Registry"))
    client.transact(old.account, "Registry", "rotateKey", foreign.old_epoch, foreign.new_public_key,
                    foreign.old_signature, foreign.new_signature)
    rotate_keystore(keystore, passphrase, MLDSA65PrivateKey.generate())
    return start


def test_a_registry_at_our_epoch_with_another_key_is_refused_at_start(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 2)
    start = _foreign_rotation_then_own_keystore_ahead(client, keystore, settings.passphrase)
    mine = load_keystore(keystore, settings.passphrase)
    record = client.call1("Registry", "oracle", mine.address)
    assert int(record[3]) == mine.key_epoch == start + 1 and bytes(record[2]) != mine.pq_key_hash  # the setup
    with pytest.raises(IdentityError):
        check_key_epoch(client, mine)


def test_a_rotation_is_never_signed_by_a_key_the_registry_does_not_hold(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 3)
    start = _foreign_rotation_then_own_keystore_ahead(client, keystore, settings.passphrase)
    address = read_keystore_header(keystore).address
    foreign_hash = bytes(client.call1("Registry", "oracle", address)[2])
    try:
        rotate_oracle_key(client, keystore, settings.passphrase)
    except IdentityError:
        pass  # the wanted answer: a key mismatch no retry mends
    record = client.call1("Registry", "oracle", address)
    # wanted: the registry still holds the foreign key at N+1 (no rotation signed by an unregistered key)
    assert (int(record[3]), bytes(record[2])) == (start + 1, foreign_hash)


def test_the_audit_flags_a_rotation_signed_by_an_unregistered_key_and_a_replayed_proof(fresh_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What held: the contract logs any signatures, but the audit checks each rotation against the key and the
    epochs it was signed for, so both the rotation finding 2 sends and an old proof replayed later are flagged."""
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 4)
    start = _foreign_rotation_then_own_keystore_ahead(client, keystore, settings.passphrase)
    mine = load_keystore(keystore, settings.passphrase)  # epoch N+1, a key the registry does not hold
    registry = client.address("Registry")
    unregistered = sign_rotation(mine, MLDSA65PrivateKey.generate(), chain_id=client.chain_id, registry=registry)
    client.transact(mine.account, "Registry", "rotateKey", start + 1, unregistered.new_public_key,
                    unregistered.old_signature, unregistered.new_signature)
    replayed = unregistered  # the same proof (signed for N+1 -> N+2) sent again from N+2
    client.transact(mine.account, "Registry", "rotateKey", start + 2, replayed.new_public_key,
                    replayed.old_signature, replayed.new_signature)
    index = Indexer(tmp_path / "index.sqlite", client.rpc, fresh_chain.deployment, contract_abis())
    index.sync()
    epochs = key_history(index.db, client.chain_id, registry)[mine.address.lower()]
    assert epochs[start].valid and epochs[start + 1].valid  # the foreign rotation was signed by the registered key
    assert not epochs[start + 2].valid and "not signed by both" in epochs[start + 2].reason
    assert not epochs[start + 3].valid and "not signed by both" in epochs[start + 3].reason  # a replayed proof
    index.db.close()


_ROTATION_HELD_INSIDE = textwrap.dedent("""
    import sys
    from pathlib import Path

    from chain import rotation
    from chain.connect import connect
    from core.config import load_settings

    home, port, keystore = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    real = rotation.rotate_keystore

    def held(*args, **kwargs):
        print("inside", flush=True)  # keystore header and registry read at epoch N, nothing written yet
        sys.stdin.readline()  # until the test lets it go on
        return real(*args, **kwargs)

    rotation.rotate_keystore = held
    settings = load_settings(home=home, rpc_port=port)
    result = rotation.rotate_oracle_key(connect(settings)[0], keystore, settings.passphrase)
    print("rotated", result.old_epoch, result.new_epoch, flush=True)
""")


def test_two_rotations_of_one_oracle_at_once_leave_a_keystore_the_registry_holds(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Finding 4: two rotations of one oracle at once (the host's and `qeaims keys rotate`) both read keystore and
    registry at epoch N; without a lock both went on, leaving the keystore two epochs ahead (fatal at every start)
    or holding a key the registry does not hold. Here a second process, the real `rotate_oracle_key` held inside
    its critical section (it has read epoch N and is about to write the new key), rotates while this process
    starts its own. Wanted: this one waits for the other's lock, then finds the key it was asked to retire
    retired and returns that rotation; one rotation, and the keystore holds the key the registry holds."""
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 2)
    start = read_keystore_header(keystore).key_epoch
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QEAIMS_PASSPHRASE": settings.passphrase}
    other = subprocess.Popen([sys.executable, "-c", _ROTATION_HELD_INSIDE, str(settings.home), str(settings.rpc_port),
                              str(keystore)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    here: dict[str, Any] = {}

    def rotate_here() -> None:
        try:
            here["result"] = rotate_oracle_key(client, keystore, settings.passphrase)
        except BaseException as exc:  # noqa: BLE001 - reported below
            here["error"] = exc

    thread = threading.Thread(target=rotate_here)
    try:
        assert other.stdin is not None and other.stdout is not None
        assert other.stdout.readline().strip() == "inside", other.stderr.read() if other.stderr else ""
        thread.start()
        thread.join(3.0)  # a rotation here takes well under a second when nothing holds it back
        waited, epoch_meanwhile = thread.is_alive(), read_keystore_header(keystore).key_epoch
        other.stdin.write("go\n")
        other.stdin.flush()
        out, err = other.communicate(timeout=120)
        thread.join(120)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    on_disk = read_keystore_header(keystore)
    record = client.call1("Registry", "oracle", on_disk.address)
    assert (on_disk.key_epoch, on_disk.pq_key_hash) == (int(record[3]), bytes(record[2])), (here, out, err)
    assert waited and epoch_meanwhile == start, "the second rotation did not wait for the first's lock"
    assert other.returncode == 0 and out.split() == ["rotated", str(start), str(start + 1)], err
    result = here["result"]  # one rotation answered both: the one that waited sent nothing
    assert (result.old_epoch, result.new_epoch, result.tx_hash, result.resumed) == (start, start + 1, None, True)
    assert int(record[3]) == start + 1


def _pending_rotation_times_out(fresh_chain: Any) -> tuple[int, Any]:
    """Keystore one ahead, its rotation in the pool and not mined (automine off); `rotate_oracle_key` is called
    as an oracle restarting then does. Returns (N, the new identity); automine is back on, nothing mined yet."""
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 3)
    start = read_keystore_header(keystore).key_epoch
    old = load_keystore(keystore, settings.passphrase)
    new = rotate_keystore(keystore, settings.passphrase, MLDSA65PrivateKey.generate())  # crashed after this write
    proof = sign_rotation(old, new.mldsa_key, chain_id=client.chain_id, registry=client.address("Registry"))
    client.rpc.call("evm_setAutomine", [False])
    try:
        client.send(old.account, "Registry", "rotateKey", proof.old_epoch, proof.new_public_key, proof.old_signature,
                    proof.new_signature)  # sent before the crash, in the pool, not mined
        client.receipt_timeout_s = 2.0
        began = time.monotonic()
        with pytest.raises(TransactionFailed, match="not mined"):
            rotate_oracle_key(client, keystore, settings.passphrase)
        assert time.monotonic() - began < 10
        assert int(client.call1("Registry", "oracle", new.address)[3]) == start  # nothing resent, nothing mined
    finally:
        client.rpc.call("evm_setAutomine", [True])
    return start, new


def test_a_pending_rotation_that_is_not_mined_is_awaited_within_the_bound_and_never_counted_done(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """What held (attacks 1 and 4): the resend path trusts "pending" only to decide not to resend; it reports the
    rotation done only once the latest block holds exactly its key, and gives up within the receipt timeout."""
    start, new = _pending_rotation_times_out(fresh_chain)
    fresh_chain.client.rpc.call("evm_mine", [])
    record = fresh_chain.client.call1("Registry", "oracle", new.address)
    assert (int(record[3]), bytes(record[2])) == (start + 1, new.pq_key_hash)  # the one rotation, once


def test_a_retry_after_not_mined_does_not_rotate_twice(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Finding 5: once the rotation that timed out is mined, the keystore and the registry agree at N+1, which
    looked like a fresh start; the retry rotated again. The pending-rotation record says N+1 was this keystore's
    rotation, so the retry finishes it; the rotation after that is a real one again."""
    start, new = _pending_rotation_times_out(fresh_chain)
    fresh_chain.client.rpc.call("evm_mine", [])  # the original lands just after the timeout
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 3)
    try:  # the retry `_await`'s message invites (`qeaims keys rotate` run again)
        retried = rotate_oracle_key(client, keystore, settings.passphrase)
    except IdentityError:
        retried = None
    assert int(client.call1("Registry", "oracle", new.address)[3]) == start + 1  # wanted: still the one rotation
    assert retried is not None and (retried.new_epoch, retried.tx_hash) == (start + 1, None)
    assert read_keystore_header(keystore).pq_key_hash == new.pq_key_hash
    again = rotate_oracle_key(client, keystore, settings.passphrase)  # the record is settled: this one rotates
    assert (again.old_epoch, again.new_epoch) == (start + 1, start + 2) and again.tx_hash is not None


def test_the_cli_says_a_retry_sent_nothing_and_how_to_rotate_again(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Review s39's suspicion: a `keys rotate` that finds the earlier, timed-out rotation mined sends nothing
    (finding 5's retry) and printed "rotated ... (resumed)", so an operator asking to retire key N+1 could take
    that for done. It now says nothing was sent and how to rotate again; run again, it rotates."""
    start, _ = _pending_rotation_times_out(fresh_chain)
    fresh_chain.client.rpc.call("evm_mine", [])
    retried = run_cli(["keys", "rotate", "--oracle", "water-3"], fresh_chain.env)
    assert retried.returncode == 0, retried.stderr
    said = " ".join(retried.stdout.split())  # as read, not as the terminal wrapped it
    assert said.startswith("nothing sent: the rotation of water-3") and \
        f"from key epoch {start} to {start + 1}, sent earlier, is on the chain" in said
    assert "`qeaims keys rotate --oracle water-3` again" in said
    again = run_cli(["keys", "rotate", "--oracle", "water-3"], fresh_chain.env)
    assert again.returncode == 0 and f"from key epoch {start + 1} to {start + 2} in block" in " ".join(
        again.stdout.split()), again
