"""The Python kind names and the ledger's `EventKind` enum are one list, in one order, forever.

The numeric kind is part of every signed batch message, so a kind added in one place only, or in a
different position, would make the audit name events wrongly or the ledger refuse them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.kinds import KINDS, kind_by_name, kind_name

pytestmark = pytest.mark.unit

_SOL = Path(__file__).resolve().parents[2] / "contracts" / "interfaces" / "IEventLedger.sol"


def _solidity_kinds() -> list[str]:
    body = re.search(r"enum EventKind \{(.*?)\}", _SOL.read_text(), re.DOTALL)
    assert body is not None
    names = re.findall(r"^\s*([A-Z][A-Za-z]*)\s*,?\s*(?://.*)?$", body.group(1), re.MULTILINE)
    return [re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower() for name in names]


def test_the_python_kinds_are_the_ledger_enum_in_order() -> None:
    assert list(KINDS) == _solidity_kinds()


def test_the_vault_and_intelligence_kinds_come_after_every_kind_ever_signed() -> None:
    assert KINDS.index("sensor-quarantine") == 16
    assert [kind_by_name(k) for k in ("vault-write", "vault-read", "vault-shred", "vault-seal", "indicator",
                                      "countermeasure")] == [17, 18, 19, 20, 21, 22]
    assert kind_name(24) == "kind-24"


def test_the_notice_kind_comes_last_after_every_kind_ever_signed() -> None:
    assert kind_by_name("notice") == 23 and kind_name(23) == "notice"


def test_an_unknown_kind_is_one_plain_error() -> None:
    with pytest.raises(ConfigError, match="unknown event kind 'vault'"):
        kind_by_name("vault")


def test_the_signer_and_the_outbox_take_every_kind_the_ledger_takes() -> None:
    from chain.outbox import MAX_KIND
    from keys.messages import MAX_EVENT_KIND

    assert MAX_EVENT_KIND == MAX_KIND == len(KINDS) - 1 == 23
