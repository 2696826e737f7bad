"""Each controller pass starts from what the ledger holds, not from what its outbox remembers sending.

A chain killed hard loses the blocks its keeper had not journaled yet (at most a keeper interval). An
event of the controller mined in such a block was marked confirmed in the outbox, so nothing local
was pending; the next step could then cite it (`event:<controller>:<seq>`, which the twins check on
the chain) while no pass would ever resend it. `run_once` re-syncs the recorder with the ledger's
`lastSeq` first and sends what the chain lost before anything acts.
"""

from __future__ import annotations

import pytest

from chain.deploy import dev_controller
from chain.recorder import canonical_payload
from core.errors import ChainError
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.controller.test_cyber import _controller

pytestmark = pytest.mark.chain


def _held(asset: str) -> bytes:
    return canonical_payload({"sector": "banking", "asset": asset, "actuator": f"{asset}/ratelimit",
                              "action": "limit", "ok": True, "already": False, "answer": "acked", "error": ""})


def test_an_event_mined_then_lost_with_the_chain_is_sent_again_by_the_next_pass(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    me = dev_controller(chain.settings).address
    ctl = _controller(chain)
    try:
        ctl.run_once()
        ctl.recorder.record(kind_by_name("isolation-applied"), to_bytes32("switch-1"), _held("switch-1"))
        snapshot = chain.client.rpc.call("evm_snapshot")
        seq = ctl.recorder.record(kind_by_name("isolation-applied"), to_bytes32("switch-2"), _held("switch-2"))
        assert int(chain.client.call1("EventLedger", "lastSeq", me)) == seq
        chain.client.rpc.call("evm_revert", [snapshot])  # the block the killed chain had not journaled
        assert int(chain.client.call1("EventLedger", "lastSeq", me)) == seq - 1
        assert ctl.outbox.pending_count() == 0  # the outbox still says confirmed
        for _ in range(3):  # as the controller's loop: the first send may find the node lost its nonce too
            try:
                ctl.run_once()
                break
            except ChainError:
                continue
        assert int(chain.client.call1("EventLedger", "lastSeq", me)) == seq
        assert ctl.outbox.pending_count() == 0
    finally:
        ctl.close()


def test_a_chain_error_while_publishing_indicators_ends_the_pass(fresh_chain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A chain that is down is the loop's back-off, not a failed indicator logged and skipped."""
    from tests.chain.test_indicators import _verdicts

    chain = fresh_chain
    _verdicts(chain, "water", (1, 2, 3), "source-address", "10.203.0.9")
    ctl = _controller(chain)

    def chain_down(*_args: object, **_kw: object) -> None:
        raise ChainError("the chain at http://127.0.0.1:1 does not answer (test)")

    monkeypatch.setattr(ctl, "_publish", chain_down)
    try:
        with pytest.raises(ChainError):
            ctl.run_once()
    finally:
        ctl.close()
