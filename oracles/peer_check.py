"""Every oracle checks its peers: the EVM cannot verify ML-DSA-65, so each oracle re-verifies every
new batch on the ledger, and every new quorum vote (`chain.quorum_audit.bad_votes`: its signature over
the ballot, its key epoch, its voter), and treats a bad one as an intrusion. A key epoch whose
rotation the old key did not authorise is no key, so every batch or vote signed under it is bad too:
whoever took over the oracle's secp256k1 key cannot vote or record with a post-quantum key of its own.

What it does about one depends on who sent it. A peer of the same sector is put to the quorum:
this oracle opens (or votes on) a proposal to quarantine it, citing the bad batch as evidence; a
quarantine needs 2f+1 of the sector's other active oracles, so one confused watcher cannot
quarantine anyone. A sender from another sector cannot be voted on from here, so the oracle
records a hybrid-signed `intrusion` event about it for that sector's oracles and the auditors.
The checker remembers the last batch it looked at, so each batch is judged once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_utils.address import to_checksum_address

from chain.audit import verify_chain_history
from chain.client import ChainClient
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.logs import DEFAULT_MAX_LOGS_RANGE
from chain.manifest import Deployment
from chain.quorum import Action, QuorumClient
from chain.quorum_audit import bad_votes
from chain.recorder import EventRecorder, canonical_payload
from core.errors import ContractRejected
from core.kinds import kind_by_name
from keys.ids import event_id, to_bytes32

__all__ = ["PeerChecker", "PeerFinding"]


@dataclass(frozen=True)
class PeerFinding:
    sender: str
    batch: int
    first_seq: int
    reason: str
    action: str  # quarantine-vote, already-voted, already-inactive or intrusion-event
    proposal_id: int | None = None


class PeerChecker:
    def __init__(self, client: ChainClient, deployment: Deployment, recorder: EventRecorder, index_path: Path, *,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        self.client = client
        self.deployment = deployment
        self.recorder = recorder
        self.me = recorder.identity.address
        self.index = Indexer(index_path, client.rpc, deployment, contract_abis(), max_logs_range=max_logs_range)
        self.index.db.execute("CREATE TABLE IF NOT EXISTS peer_check (key TEXT PRIMARY KEY, value INTEGER)")
        self.quorum = QuorumClient(client)

    def close(self) -> None:
        self.index.close()

    def _next_batch(self) -> int:
        row = self.index.db.execute("SELECT value FROM peer_check WHERE key = 'next_batch'").fetchone()
        return 1 if row is None else int(row[0])

    def _set_next_batch(self, value: int) -> None:
        self.index.db.execute("INSERT OR REPLACE INTO peer_check(key, value) VALUES ('next_batch', ?)", (value,))

    def _sector_of(self, account: str) -> bytes:
        return bytes(self.client.call1("Registry", "oracle", account)[0])

    def _vote_mark(self) -> tuple[int, int]:
        row = self.index.db.execute("SELECT value FROM peer_check WHERE key = 'vote_mark'").fetchone()
        return (-1, -1) if row is None else divmod(int(row[0]), 1 << 32)

    def check(self) -> list[PeerFinding]:
        """Verify the batches and votes recorded since the last call; act on each bad one; return what was found."""
        self.index.sync()
        return self._check_votes() + self._check_batches()

    def _check_votes(self) -> list[PeerFinding]:
        mark = self._vote_mark()
        newest = self.index.db.execute("SELECT block, log_index FROM logs WHERE contract = 'IsolationQuorum' AND "
                                       "event = 'VoteCast' ORDER BY block DESC, log_index DESC LIMIT 1").fetchone()
        if newest is None or (int(newest[0]), int(newest[1])) <= mark:
            return []
        findings: list[PeerFinding] = []
        flagged: set[str] = set()
        for vote in bad_votes(self.index.db, self.client.chain_id, self.deployment.isolation_quorum, mark):
            if vote.voter == self.me.lower() or vote.voter in flagged:
                continue
            flagged.add(vote.voter)
            findings.append(self._respond(to_checksum_address(vote.voter), 0, 0,
                                          f"vote on proposal {vote.proposal_id}: {vote.reason}"))
        self.index.db.execute("INSERT OR REPLACE INTO peer_check(key, value) VALUES ('vote_mark', ?)",
                              ((int(newest[0]) << 32) + int(newest[1]),))
        return findings

    def _check_batches(self) -> list[PeerFinding]:
        start = self._next_batch()
        last = self.index.db.execute("SELECT MAX(batch_id) FROM batches").fetchone()[0]
        if last is None or int(last) < start:
            return []
        report = verify_chain_history(self.index.db, chain_id=self.client.chain_id,
                                      ledger=self.deployment.event_ledger, registry=self.deployment.registry,
                                      from_batch=start)
        findings: list[PeerFinding] = []
        seen: set[int] = set()
        for item in report.invalid:
            batch = item["batch"]
            if batch is None or batch in seen or str(item["oracle"]).lower() == self.me.lower():
                continue
            seen.add(batch)
            findings.append(self._respond(str(item["oracle"]), int(batch), int(item["seq"]), str(item["reason"])))
        self._set_next_batch(int(last) + 1)
        return findings

    def _respond(self, sender: str, batch: int, first_seq: int, reason: str) -> PeerFinding:
        my_sector = self._sector_of(self.me)
        record = self.client.call1("Registry", "oracle", sender)
        if bytes(record[0]) == my_sector:
            if int(record[4]) != 1:  # already quarantined or removed: nothing left to vote on
                return PeerFinding(sender, batch, first_seq, reason, "already-inactive")
            target = bytes(12) + bytes.fromhex(sender[2:])
            evidence = [event_id(sender, first_seq)] if first_seq else []  # a bad vote has no event id
            try:
                proposal = self.quorum.propose(self.recorder.identity, Action.QUARANTINE, target,
                                               to_bytes32("bad ML-DSA signature"), evidence)
            except ContractRejected as exc:
                if exc.error != "QuorumAlreadyVoted":  # a second bad batch while the vote is open
                    raise
                return PeerFinding(sender, batch, first_seq, reason, "already-voted")
            return PeerFinding(sender, batch, first_seq, reason, "quarantine-vote", proposal)
        self.recorder.record(kind_by_name("intrusion"), b"\0" * 32, canonical_payload(
            {"sender": sender, "batch": batch, "first_seq": first_seq, "reason": reason,
             "evidence": "0x" + event_id(sender, first_seq).hex()}))
        return PeerFinding(sender, batch, first_seq, reason, "intrusion-event")

