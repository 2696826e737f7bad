"""Two processes signing with one key (the running controller, and the control room's command with the
controller's identity): each keeps its own nonce; a send refused as "nonce too low" is sent again with the
chain's, instead of failing the controller's step or the operator's command."""

from __future__ import annotations

import pytest

from chain.connect import connect
from chain.deploy import dev_controller
from chain.recorder import canonical_payload
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.support import recorder

pytestmark = pytest.mark.chain


def test_a_second_signer_of_the_same_key_does_not_fail_the_first(chain) -> None:  # type: ignore[no-untyped-def]
    controller = dev_controller(chain.settings)
    first = recorder(chain.client, chain.settings, controller)
    other_client, _ = connect(chain.settings)  # another process: its own nonce cache
    second = recorder(other_client, chain.settings, controller)
    kind = kind_by_name("maintenance")
    first.record(kind, to_bytes32("two-signers"), canonical_payload({"n": 1}))
    second.record(kind, to_bytes32("two-signers"), canonical_payload({"n": 2}))  # took the nonce first expected
    seq = first.record(kind, to_bytes32("two-signers"), canonical_payload({"n": 3}))
    assert seq == first.chain_last_seq()
