"""The rules of a council unseal without a chain: which logged proposals are unseals (`parse_unseal`) and
when an executed one lifts a seal (`decide`). The chain tests (test_council_unseal.py) show the logs."""

from __future__ import annotations

from keys.council_messages import calls_hash, description_hash
from vaults.council_unseal import NOOP_SELECTOR, SealFact, SealState, decide, parse_unseal, unseal_description

COUNCIL = "0x" + "c0" * 20
OTHER = "0x" + "0d" * 20


def _parse(targets: list[str], values: list[int], datas: list[bytes], description: str, logged: bytes | None = None):  # type: ignore[no-untyped-def]
    digest = calls_hash(targets, values, datas, description_hash(description)) if logged is None else logged
    return parse_unseal(COUNCIL, targets, values, datas, description, digest)


def test_only_the_canonical_no_op_self_call_is_an_unseal() -> None:
    text = unseal_description("water", (120, 1), "pump controller re-imaged")
    unseal = _parse([COUNCIL], [0], [NOOP_SELECTOR], text)
    assert unseal is not None and (unseal.vault, unseal.seal, unseal.reason) == ("water", (120, 1),
                                                                                  "pump controller re-imaged")
    assert _parse([COUNCIL.upper().replace("0X", "0x")], [0], [NOOP_SELECTOR], text) is not None  # checksum case
    refused = {
        "another target": _parse([OTHER], [0], [NOOP_SELECTOR], text),
        "a value": _parse([COUNCIL], [1], [NOOP_SELECTOR], text),
        "another call": _parse([COUNCIL], [0], [bytes.fromhex("c7f758a8")], text),
        "arguments": _parse([COUNCIL], [0], [NOOP_SELECTOR + b"\0" * 32], text),
        "two calls": _parse([COUNCIL, COUNCIL], [0, 0], [NOOP_SELECTOR, NOOP_SELECTOR], text),
        "not canonical": _parse([COUNCIL], [0], [NOOP_SELECTOR], text.replace(":", ": ")),
        "extra field": _parse([COUNCIL], [0], [NOOP_SELECTOR], text[:-1] + ',"x":1}'),
        "no prefix": _parse([COUNCIL], [0], [NOOP_SELECTOR], text.removeprefix("vault-unseal ")),
        "not JSON": _parse([COUNCIL], [0], [NOOP_SELECTOR], "vault-unseal water please"),
        "a hash that is not the calls'": _parse([COUNCIL], [0], [NOOP_SELECTOR], text, b"\1" * 32),
    }
    assert {why: u for why, u in refused.items() if u is not None} == {}


def _seal(block: int, sealed: bool = True, counts: bool = True) -> SealFact:
    return SealFact(block, 0, "seal", "0xcontroller", counts, sealed, "quorum: x" if sealed else "lifted")


def _council(block: int, names: int, created: int, pid: int = 7) -> SealFact:
    return SealFact(block, 0, "council", f"council:{pid}", True, reason="decided", proposal=pid, seal=(names, 0),
                    created=(created, 0))


def test_an_executed_unseal_lifts_only_the_seal_it_names_and_only_if_made_after_it() -> None:
    assert decide([_seal(10), _council(20, names=10, created=12)])[0] == SealState(
        False, "decided", 20, "council:7", 0, 7)
    # made before the seal it names existed (a guessed position): lifts nothing
    state, stale = decide([_council(20, names=10, created=9), _seal(10)])
    assert state.sealed and [f.proposal for f in stale] == [7]
    # names an older seal: lifts nothing; names the seal in force: lifts it
    assert decide([_seal(10), _seal(11, False), _seal(15), _council(20, names=10, created=12)])[0].sealed
    assert not decide([_seal(10), _seal(15), _council(20, names=15, created=16)])[0].sealed
    # the vault not sealed at all: nothing to lift; a seal afterwards stands
    assert decide([_council(20, names=10, created=12)])[0] == SealState(False)
    assert decide([_seal(10), _council(20, names=10, created=12), _seal(30)])[0].sealed
    # a seal whose word does not count is not the seal in force
    assert decide([_seal(10), _seal(15, counts=False), _council(20, names=15, created=16)])[0].block == 10
