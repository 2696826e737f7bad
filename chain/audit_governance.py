"""Every role change, governance override, repair and status change, explained from the logs
alone (part of `chain.audit`: `check_governance`).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from eth_utils.crypto import keccak

from chain.audit_findings import Problems, as_hex, indexed_logs, problem, readable_name
from chain.manifest import Deployment
from chain.registry_history import NODE_STATUS, ORACLE_STATUS, REPAIR_ROLE, RegistryHistory

__all__ = ["check_governance"]


_COUNCIL_EXECUTIONS = ("ProposalExecuted", "EmergencyExecuted")


def check_governance(db: sqlite3.Connection, history: RegistryHistory, deployment: Deployment) -> Problems:
    """Every role change, override, repair and status change, explained from the logs alone.

    - RoleGranted/RoleRevoked: the deployer only while deploying (at or before the manifest's block),
      then only the council (a holder may renounce its own role); after the deployment the deployer
      holds no role, and the council holds the admin role of the Registry and the quorum;
    - GovernanceOverride: in a transaction the council executed;
    - RepairStarted: by a holder of REPAIR_ROLE at that position;
    - NodeStatusChanged / OracleStatusChanged: in the same transaction as the decision that explains
      it — the quorum's ProposalExecuted on that target, a GovernanceOverride or RepairStarted of that
      node, or a council execution.
    """
    out: Problems = []
    council, deployer = deployment.governance_council.lower(), deployment.deployer.lower()
    deployed = deployment.deployed_at_block
    for log in indexed_logs(db, "RoleGranted", "RoleRevoked"):
        sender, account = str(log.args["sender"]).lower(), str(log.args["account"]).lower()
        role = as_hex(log.args["role"])
        during_deployment = log.block <= deployed and sender == deployer
        renounced = log.event == "RoleRevoked" and sender == account
        if not (sender == council or during_deployment or renounced):
            out.append(problem("roles", f"{log.contract}.{log.event} of role {_role_name(role)} to {account} by {sender}, "
                                        "which is not the council", log.block, log.tx))
    end_of_deployment = (deployed, 1 << 30)
    for contract in ("Registry", "IsolationQuorum"):
        for role in _ROLE_NAMES:
            if history.has_role_at(contract, role, deployer, end_of_deployment):
                out.append(problem("roles", f"the deployer {deployer} still holds {contract}'s {_role_name(role)} after "
                                            f"the deployment (block {deployed})", deployed))
        if not history.has_role_at(contract, _DEFAULT_ADMIN, council, (1 << 62, 0)):
            out.append(problem("roles", f"the council {council} does not hold {contract}'s DEFAULT_ADMIN_ROLE"))

    council_txs = {log.tx for log in indexed_logs(db, *_COUNCIL_EXECUTIONS) if log.contract == "GovernanceCouncil"}
    executed: dict[str, set[str]] = defaultdict(set)  # tx → targets the quorum executed
    for log in indexed_logs(db, "ProposalExecuted"):
        if log.contract == "IsolationQuorum":
            executed[log.tx].add(as_hex(log.args["target"]))
    overrides: dict[str, set[str]] = defaultdict(set)
    for log in indexed_logs(db, "GovernanceOverride"):
        overrides[log.tx].add(as_hex(log.args["node"]))
        if log.tx not in council_txs:
            out.append(problem("override", f"GovernanceOverride of {readable_name(as_hex(log.args['node']))} was not executed "
                                           "by the council", log.block, log.tx))
    repairs: dict[str, set[str]] = defaultdict(set)
    for log in indexed_logs(db, "RepairStarted"):
        node, by = as_hex(log.args["node"]), str(log.args["by"]).lower()
        repairs[log.tx].add(node)
        if not history.has_role_at("IsolationQuorum", REPAIR_ROLE, by, log.position):
            out.append(problem("repair", f"RepairStarted of {readable_name(node)} by {by}, which does not hold REPAIR_ROLE",
                               log.block, log.tx))
    for log in indexed_logs(db, "NodeStatusChanged", "OracleStatusChanged"):
        if log.contract != "Registry":
            continue
        if log.event == "NodeStatusChanged":
            target = as_hex(log.args["node"])
            what = f"node {readable_name(target)}"
            explained = (target in executed.get(log.tx, ()) or target in overrides.get(log.tx, ())
                         or target in repairs.get(log.tx, ()))
        else:
            account = str(log.args["account"]).lower()
            target = "0x" + account[2:].rjust(64, "0")
            what = f"oracle {account}"
            explained = target in executed.get(log.tx, ())
        if not explained and log.tx not in council_txs:
            frm, to = int(log.args["from"]), int(log.args["to"])
            names = NODE_STATUS if log.event == "NodeStatusChanged" else ORACLE_STATUS
            out.append(problem("status", f"{what} moved {names.get(frm, frm)} → {names.get(to, to)} with no quorum "
                                         "execution, override, repair or council execution in the same transaction",
                               log.block, log.tx))
    out += [problem("registry", p.message, p.position[0], p.tx) for p in history.problems]
    return out


_DEFAULT_ADMIN = "0x" + "00" * 32
_ROLE_NAMES = {_DEFAULT_ADMIN: "DEFAULT_ADMIN_ROLE",
               **{"0x" + keccak(text=n).hex(): n for n in ("GOVERNANCE_ROLE", "STATUS_ROLE", "REPAIR_ROLE")}}


def _role_name(role: str) -> str:
    return _ROLE_NAMES.get(role, role)
