"""What a vault puts on the chain, and the one vault fact it reads back live: sealed or not.

Events (kinds in `core.kinds`; node = the vault's name as bytes32; payload canonical JSON, so the
same fact always gives the same bytes and an auditor can rebuild it):

- ``vault-write``  ``{vault, record, version, commitment}``: the salted commitment of a record
  version (`vaults.envelope.commitment`), recorded by the vault's own recorder;
- ``vault-read``   ``{vault, record, version, reader, role, reason, granted, refusal, log_seq,
  log_digest}``: one read asked for, granted or refused, with a keyed hash of its reason and the
  access log entry it matches (its seq and digest: a log rolled back or rewritten no longer matches);
- ``vault-shred``  ``{vault, record, versions: [first, last]}``: a record's keys destroyed;
- ``key-rotation`` ``{vault, revoked, role, epoch, rotated, holders, reason}``: an identity revoked
  (`vaults.service.VaultService.revoke`): when it held the sector key, a new one (``epoch``) was made
  and every live record key re-wrapped for it, for the ``holders`` key holders that remain. The
  ledger has no vault kind for reader changes (grants are not recorded on-chain), and the kinds are
  fixed forever, so the vault uses the ledger's ``key-rotation`` kind, on the vault's node;
- ``vault-seal``   ``{vault, sealed, reason}``: sealed or unsealed. Only a holder of the isolation
  quorum's REPAIR_ROLE (the controller, which acts on the sectors' quorum decisions and on the
  control room's orders) may seal or unseal; a ``vault-seal`` from anyone else means nothing, so a
  compromised vault cannot unseal itself.

The governors' council may also unseal (`vaults.council_unseal`): not by an event (a contract records
none) but by executing a proposal of a fixed, no-op form that names the seal it lifts; it counts
where the council logged ``ProposalExecuted``, only if that seal is still the one in force, and only
if the governors' ML-DSA-65 approvals recount to the threshold from the council's logs (the contract
checks only their length: without the recount, the ECDSA keys of a threshold of governors would do).

`SealWatch` reads the vault's ``vault-seal`` events with ``eth_getLogs`` filtered on the ledger's
indexed ``kind`` and ``node`` topics, and the REPAIR_ROLE grants and revocations likewise, remembers
how far it read, and takes the newest seal whose recorder held REPAIR_ROLE where it was recorded,
or a council unseal executed after it that names it. No chain, no answer: the service then refuses
reads (fail closed).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from chain.client import ChainClient, _normalise_log
from chain.council_audit import recount_council
from chain.indexer import _jsonable
from chain.logs import DEFAULT_MAX_LOGS_RANGE, LogReader
from chain.recorder import canonical_payload
from chain.registry_history import REPAIR_ROLE
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from vaults.council_unseal import SealFact, SealState, UnsealProposal, decide, parse_unseal
from vaults.store import AccessEntry

__all__ = [
    "KEY_ROTATION",
    "VAULT_READ",
    "VAULT_SEAL",
    "VAULT_SHRED",
    "VAULT_WRITE",
    "SealState",
    "SealWatch",
    "read_payload",
    "revoke_payload",
    "seal_payload",
    "shred_payload",
    "vault_node",
    "write_payload",
]

VAULT_WRITE = kind_by_name("vault-write")
VAULT_READ = kind_by_name("vault-read")
VAULT_SHRED = kind_by_name("vault-shred")
VAULT_SEAL = kind_by_name("vault-seal")
KEY_ROTATION = kind_by_name("key-rotation")
COUNCIL = "GovernanceCouncil"

def vault_node(vault: str) -> bytes:
    return to_bytes32(vault)


def write_payload(vault: str, record: str, version: int, commitment: bytes) -> bytes:
    return canonical_payload({"vault": vault, "record": record, "version": version, "commitment": commitment.hex()})


def read_payload(vault: str, entry: AccessEntry, refusal: str) -> bytes:
    return canonical_payload({
        "vault": vault, "record": entry.record_id, "version": entry.version, "reader": entry.reader,
        "role": entry.role, "reason": entry.reason_hash, "granted": entry.granted, "refusal": refusal,
        "log_seq": entry.seq, "log_digest": entry.digest(),
    })


def shred_payload(vault: str, record: str, first: int, last: int) -> bytes:
    """A record's versions run 1..n with none skipped, so the first and last say which keys went (a list of
    every version would outgrow the ledger's 4,096-byte payload past about a thousand versions)."""
    return canonical_payload({"vault": vault, "record": record, "versions": [first, last]})


def revoke_payload(vault: str, revoked: str, role: str, epoch: int, rotated: bool, holders: int, reason: str) -> bytes:
    return canonical_payload({"vault": vault, "revoked": revoked, "role": role, "epoch": epoch, "rotated": rotated,
                              "holders": holders, "reason": reason[:300]})


def seal_payload(vault: str, sealed: bool, reason: str) -> bytes:
    return canonical_payload({"vault": vault, "sealed": sealed, "reason": reason[:512]})


class SealWatch:
    """The vault's seal state as the chain says it (module docstring: whose word counts).

    Whose word counts is decided where the event stands: the recorder held REPAIR_ROLE at that block
    and log position (read from the quorum's own RoleGranted/RoleRevoked logs), so a seal stays when
    its controller later loses the role, and a flood of seals from accounts without it costs nothing
    but the logs (no call per event). A council unseal (`vaults.council_unseal`) counts at the position
    of the council's own ``ProposalExecuted`` log, if it names the seal then in force."""

    def __init__(self, client: ChainClient, vault: str, *, max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        self.client, self.vault = client, vault
        self._reader = LogReader(client.rpc, max_logs_range)
        self._next_block = 0
        self._events: list[tuple[int, int, str, dict[str, Any]]] = []  # (block, log index, recorder, payload)
        self._roles: dict[str, list[tuple[int, int, bool]]] = {}  # account → (block, log index, holds after)
        self._proposals: dict[int, tuple[UnsealProposal, tuple[int, int]]] = {}  # by id: the unseal, where created
        self._council: list[SealFact] = []  # their executions
        self._council_logs: list[tuple[int, int, str, str, str]] = []  # every council log, for the recount
        self.stale: list[SealFact] = []  # council unseals executed that lifted nothing (at the last `state`)

    def _logs(self, contract: str, topics: list[Any], head: int) -> list[Any]:
        """The logs from where the last poll stopped to ``head``, in pages the node accepts (`chain.logs`:
        nodes bound the range one request may span, Besu by its --rpc-max-logs-range)."""
        return self._reader.get({"address": self.client.address(contract), "topics": topics}, self._next_block, head)

    def _poll(self) -> None:
        head = int(self.client.rpc.call("eth_blockNumber"), 16)
        if head < self._next_block:
            return
        quorum = self.client.abi("IsolationQuorum")
        granted, revoked = quorum.topic("RoleGranted"), quorum.topic("RoleRevoked")
        for log in self._logs("IsolationQuorum", [["0x" + granted.hex(), "0x" + revoked.hex()], REPAIR_ROLE], head):
            decoded = quorum.decode_log(_normalise_log(log))
            if decoded is not None:
                self._roles.setdefault(str(decoded.args["account"]).lower(), []).append(
                    (decoded.block_number, decoded.log_index, decoded.event == "RoleGranted"))
        self._poll_council(head)
        ledger = self.client.abi("EventLedger")
        kind_topic = "0x" + VAULT_SEAL.to_bytes(32, "big").hex()
        for log in self._logs("EventLedger", ["0x" + ledger.topic("EventRecorded").hex(), None,
                                              "0x" + vault_node(self.vault).hex(), kind_topic], head):
            decoded = ledger.decode_log(_normalise_log(log))
            if decoded is None:
                continue
            try:
                payload = json.loads(bytes(decoded.args["payload"]))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(payload, dict) and payload.get("vault") == self.vault and isinstance(payload.get("sealed"), bool):
                self._events.append((decoded.block_number, decoded.log_index, str(decoded.args["oracle"]).lower(),
                                     payload))
        self._next_block = head + 1

    def _poll_council(self, head: int) -> None:
        """The council's logs (nobody else can emit logs from its address): its unseal proposals of this
        vault (`ProposalCreated`), their executions (`ProposalExecuted`), and everything the ML-DSA recount
        needs (governors and their keys, thresholds, approvals with their signatures)."""
        council = self.client.abi(COUNCIL)
        address = self.client.address(COUNCIL)
        for log in self._logs(COUNCIL, [], head):
            decoded = council.decode_log(_normalise_log(log))
            if decoded is None:
                continue
            a = decoded.args
            self._council_logs.append((decoded.block_number, decoded.log_index, "0x" + decoded.tx_hash.hex(),
                                       decoded.event, json.dumps({k: _jsonable(v) for k, v in a.items()})))
            if decoded.event == "ProposalCreated":
                unseal = parse_unseal(address, [str(t) for t in a["targets"]], [int(v) for v in a["values"]],
                                      [bytes(c) for c in a["calldatas"]], str(a["description"]), bytes(a["callsHash"]))
                if unseal is not None and unseal.vault == self.vault:
                    self._proposals[int(a["proposalId"])] = (unseal, (decoded.block_number, decoded.log_index))
            elif decoded.event == "ProposalExecuted" and int(a["proposalId"]) in self._proposals:
                pid = int(a["proposalId"])
                unseal, made = self._proposals[pid]
                self._council.append(SealFact(decoded.block_number, decoded.log_index, "council", f"council:{pid}",
                                              self._recounts(pid), reason=unseal.reason, proposal=pid,
                                              seal=unseal.seal, created=made))

    def _recounts(self, proposal: int) -> bool:
        """Whether the council's execution of ``proposal`` recounts from its logs: the governors' ML-DSA-65
        approvals valid and at the threshold (`chain.council_audit.recount_council`), so a council unseal
        counts live exactly as the audit counts it. Run once per executed unseal (they are rare)."""
        db = sqlite3.connect(":memory:")
        try:
            db.execute("CREATE TABLE logs (block INTEGER, log_index INTEGER, tx_hash TEXT, timestamp INTEGER, "
                       "contract TEXT, event TEXT, args TEXT)")
            db.executemany(f"INSERT INTO logs VALUES (?, ?, ?, NULL, '{COUNCIL}', ?, ?)", self._council_logs)
            findings = recount_council(db, self.client.chain_id, self.client.address(COUNCIL))
        finally:
            db.close()
        return not any(not f["ok"] and f.get("proposal_id") == proposal and f["kind"] == "executed-without-quorum"
                       for f in findings)

    def _held(self, account: str, block: int, log_index: int) -> bool:
        holds = False
        for at_block, at_index, state in self._roles.get(account, ()):
            if (at_block, at_index) < (block, log_index):
                holds = state
        return holds

    def facts(self) -> list[SealFact]:
        """Every seal fact read so far, in chain order (``counts`` says whose word counted)."""
        self._poll()
        seals = [SealFact(block, index, "seal", recorder, self._held(recorder, block, index),
                          bool(payload["sealed"]), str(payload.get("reason", "")))
                 for block, index, recorder, payload in self._events]
        return sorted([*seals, *self._council], key=lambda f: (f.block, f.log_index))

    def state(self) -> SealState:
        state, self.stale = decide(self.facts())
        return state

    def unseal_proposals(self) -> dict[int, UnsealProposal]:
        """This vault's council unseal proposals seen so far, by id (executed or not)."""
        self._poll()
        return {pid: unseal for pid, (unseal, _) in self._proposals.items()}
