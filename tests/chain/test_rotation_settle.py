"""`settle_pending_rotation`: an oracle starting on the key a timed-out rotation sent clears that rotation's
record, so a rotation asked for later rotates instead of taking the record for its own retry."""

from __future__ import annotations

from pathlib import Path

from chain.rotation import settle_pending_rotation
from keys.identity import HybridIdentity
from keys.rotating import PendingRotation, read_pending_rotation, record_pending_rotation, rotation_lock


def _record_for(keystore: Path, identity: HybridIdentity) -> None:
    record_pending_rotation(keystore, PendingRotation(identity.address, identity.key_epoch, identity.pq_key_hash))


def test_the_record_of_the_key_an_oracle_starts_on_is_cleared_and_only_that_one(tmp_path: Path) -> None:
    keystore = tmp_path / "water-3.json"
    serving = HybridIdentity.generate()
    _record_for(keystore, serving)
    assert settle_pending_rotation(keystore, serving) and read_pending_rotation(keystore) is None
    other = HybridIdentity.generate()  # a rotation to another key (one running, or sent by another copy)
    _record_for(keystore, other)
    assert not settle_pending_rotation(keystore, serving) and read_pending_rotation(keystore) is not None


def test_a_rotation_holding_the_lock_keeps_its_record(tmp_path: Path) -> None:
    keystore = tmp_path / "water-3.json"
    serving = HybridIdentity.generate()
    _record_for(keystore, serving)
    with rotation_lock(keystore, timeout_s=1.0):  # a rotation is running: it settles its record itself
        assert not settle_pending_rotation(keystore, serving)
    assert read_pending_rotation(keystore) is not None
