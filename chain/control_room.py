"""The control room's own orders, recorded on the ledger with the controller's identity.

A vault's seal, an indicator's withdrawal, a countermeasure's lift, a crisis notice: each is one event
signed with the controller's hybrid identity (its keystore in the home) and sent through the
controller's own write-ahead outbox, so a command (or the API) and a running controller share one
sequence and neither skips or repeats the other's numbers (`EventRecorder.flush` re-syncs when the
other signed meanwhile). Readers count these events only from a holder of the quorum's REPAIR_ROLE
at their position (`chain.indicators`, `chain.countermeasures`, `chain.notices`): any other oracle
can record the same kind, and it means nothing.

Here, below `qeaims`, because the command (`qeaims intel`, `qeaims vault`) and the API
(`api/routers/notices.py`) both record this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.config import Settings

__all__ = ["Recorded", "record_as_control_room"]


@dataclass(frozen=True)
class Recorded:
    """Where the event went: the recorder's address (lower-case) and its sequence number."""

    oracle: str
    seq: int


def record_as_control_room(settings: Settings, kind: str, node: str, body: dict[str, Any]) -> Recorded:
    """One event of `kind` about `node` (a name, cut to 32 bytes), payload `body` as canonical JSON,
    signed with the controller's identity and flushed to the chain before this returns."""
    from chain.connect import connect
    from chain.deploy import dev_controller
    from chain.outbox import EventOutbox
    from chain.recorder import EventRecorder, canonical_payload
    from core.kinds import kind_by_name
    from keys.ids import to_bytes32

    client, deployment = connect(settings)
    identity = dev_controller(settings)
    outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
    try:
        seq = EventRecorder(client, identity, outbox).record(kind_by_name(kind), to_bytes32(node[:32]),
                                                             canonical_payload(body))
    finally:
        outbox.close()
    return Recorded(oracle=identity.address.lower(), seq=seq)
