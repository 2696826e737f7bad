"""Review s37 (issue 20) findings on `chain.besu`: each a test that failed before its fix.

Finding 3: `qeaims network allowlist` (`registry_accounts`) lists the registered oracles and the
council's governors, but not an account the council gave the IsolationQuorum's REPAIR_ROLE (a repair
dispatcher, as `qeaims demo ledger` grants one). That account exists to send ``beginRepair``: on a
Besu network whose accounts allowlist is rebuilt from the chain, its every transaction is refused,
and an isolated node can no longer be repaired and voted back.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from chain.besu.accounts import registry_accounts
from chain.deploy import REPAIR_ROLE, dev_governors
from chain.governance import Council


@pytest.mark.chain
def test_a_repair_role_holder_the_council_appointed_is_on_the_registry_allowlist(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain  # its own: the session chain's live list must stay its keystores (test_allowlist_on_chain)
    crew = Account.create()
    council = Council(chain.client, dev_governors(chain.settings), max_logs_range=chain.settings.max_logs_range)
    council.pass_proposal([("IsolationQuorum", "grantRole", [REPAIR_ROLE, crew.address])],
                          "review20: a repair dispatcher")
    assert chain.client.call1("IsolationQuorum", "hasRole", REPAIR_ROLE, crew.address)
    listed = {(a.address, a.role) for a in registry_accounts(chain.client, chain.deployment)}
    assert (crew.address, "repair-crew") in listed
    # the council itself holds roles but sends nothing: a contract is never on the list
    assert chain.deployment.governance_council not in {address for address, _ in listed}
