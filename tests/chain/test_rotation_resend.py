"""A rotation resent after it reached the chain is refused by the registry, never mined twice (review s38
finding 3); the refusal is the decoded custom error `chain.rotation` recognises as "already rotated"."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from chain.deploy import oracle_keystore
from chain.rotation import rotate_oracle_key
from core.errors import ContractRejected, IdentityError
from keys.hybrid import sign_rotation
from keys.keystore import archive_path, load_keystore, read_keystore_header, rotate_keystore

pytestmark = pytest.mark.chain


def test_the_same_rotation_sent_again_is_refused_and_the_next_one_still_goes(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 2)
    start = read_keystore_header(keystore).key_epoch
    first = rotate_oracle_key(client, keystore, settings.passphrase)
    assert (first.old_epoch, first.new_epoch, first.resumed) == (start, start + 1, False)
    old = load_keystore(archive_path(keystore, start), settings.passphrase)
    new = load_keystore(keystore, settings.passphrase)
    proof = sign_rotation(old, new.mldsa_key, chain_id=client.chain_id, registry=client.address("Registry"))
    with pytest.raises(ContractRejected) as refused:  # what a resend racing the original meets
        client.transact(old.account, "Registry", "rotateKey", proof.old_epoch, proof.new_public_key,
                        proof.old_signature, proof.new_signature)
    assert refused.value.error == "RegistryKeyEpochMismatch"
    assert (refused.value.args_by_name["expected"], refused.value.args_by_name["actual"]) == (start, start + 1)
    record = client.call1("Registry", "oracle", new.address)
    assert (int(record[3]), bytes(record[2])) == (start + 1, new.pq_key_hash)
    second = rotate_oracle_key(client, keystore, settings.passphrase)  # the epoch check blocks no honest rotation
    assert (second.old_epoch, second.new_epoch) == (start + 1, start + 2)


def test_a_keystore_one_ahead_without_its_archive_is_one_plain_identity_error(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings, client = fresh_chain.settings, fresh_chain.client
    keystore = oracle_keystore(settings, "water", 3)
    start = read_keystore_header(keystore).key_epoch
    rotate_keystore(keystore, settings.passphrase, MLDSA65PrivateKey.generate())  # one ahead, never sent
    archive = archive_path(keystore, start)
    archive.unlink()
    with pytest.raises(IdentityError, match=f"keystore {archive} is missing"):
        rotate_oracle_key(client, keystore, settings.passphrase)
    assert int(client.call1("Registry", "oracle", read_keystore_header(keystore).address)[3]) == start
