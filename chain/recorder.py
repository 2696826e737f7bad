"""Turns an oracle's outbox into signed ledger batches: sign once per batch with ML-DSA-65,
send from the oracle's secp256k1 account, confirm in the outbox when the receipt arrives.

Batches are pipelined up to the client's in-flight window. The ledger demands that each batch
start right after the oracle's last recorded sequence, so if one batch fails, the batches behind
it fail too and are resent in order after `sync()`: nothing is skipped and nothing is recorded twice.

Bounds (EventLedger, issue 13). A batch holds at most `MAX_BATCH_EVENTS` events and
`MAX_BATCH_BYTES` encoded bytes: the recorder cuts the outbox into batches by both. The ledger
also takes at most `MAX_BATCHES_PER_BLOCK` batches and `MAX_BYTES_PER_BLOCK` bytes per oracle and
block. The recorder never has more than that in flight: every transaction that lands in one block
was sent before the block was sealed and its receipt is read after, so it was in flight at the
same moment as all the others of that block, and their sum is within the budget. Budget is given
back only when a receipt is read, so the next batch can only land in a later block. Should the
ledger refuse a batch anyway (another sender on the same account used the block's budget), the
batches behind it fail on their sequence numbers, and the recorder re-syncs with the chain and
sends again: every retry is sent after the refused transaction's receipt, so it lands in a later
block, with a fresh budget. It gives up only after three attempts in a row that recorded nothing.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.client import ChainClient, SentTx
from chain.outbox import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCHES_PER_BLOCK,
    MAX_BYTES_PER_BLOCK,
    EventOutbox,
    OutboxRow,
)
from core.errors import ChainError, ContractRejected, IdentityError, TransactionFailed
from keys.hybrid import sign_batch
from keys.identity import HybridIdentity

__all__ = ["EventRecorder", "FlushReport", "RotationUnfinished", "canonical_payload", "check_key_epoch"]

MAX_BATCH = 500  # events per batch by default (the ledger takes at most MAX_BATCH_EVENTS = 512)
# refusals after which the recorder re-syncs with the chain and sends again from its lastSeq
_RETRIED = frozenset({"LedgerSequenceGap", "LedgerSequenceNotIncreasing", "LedgerRateLimited"})
_ATTEMPTS_WITHOUT_PROGRESS = 3


def canonical_payload(value: dict[str, Any]) -> bytes:
    """Payloads are canonical JSON (sorted keys, no spaces) so the same content hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class RotationUnfinished(IdentityError):
    """The keystore is exactly one key epoch ahead of the registry: this oracle's own rotation is not on
    this chain (lost with a killed chain's unjournaled last blocks, or a crash between the keystore's
    write and the transaction). Finishing it (`chain.rotation.rotate_oracle_key` resends the same
    rotation) mends it; every other mismatch is an `IdentityError` no retry mends."""

    reason = "its own rotation is not on the chain"


def check_key_epoch(client: ChainClient, identity: HybridIdentity) -> None:
    """Refuse to go on with a key the registry does not hold: batches signed at another epoch would
    be refused by the ledger. A registry ahead of the keystore means someone rotated this oracle's key
    (a compromise) or an old keystore was restored; a keystore two or more ahead was not made by a
    rotation of this chain: both stay fatal."""
    record = client.call1("Registry", "oracle", identity.address)
    epoch = int(record[3])
    if epoch == identity.key_epoch:
        if bytes(record[2]) != identity.pq_key_hash:
            # the registry took a rotation to a key this keystore does not hold, sent from this oracle's own
            # account (`rotateKey` cannot check ML-DSA): its account key is in other hands, or a second copy
            # of the keystore was rotated elsewhere; no batch signed here would verify (review s38b, 1)
            raise IdentityError(
                f"oracle {identity.address}: the registry holds key epoch {epoch} with another key than this "
                "keystore's: the account key may be compromised, or another copy of the keystore was rotated; "
                "it signs nothing until an operator looks")
        return
    message = (f"oracle {identity.address} signs with key epoch {identity.key_epoch} but the registry "
               f"holds epoch {epoch}")
    if identity.key_epoch == epoch + 1:
        raise RotationUnfinished(f"{message}: its rotation to epoch {identity.key_epoch} is not on the chain")
    raise IdentityError(f"{message}: finish the rotation with `qeaims keys rotate` or load the current keystore")


@dataclass
class FlushReport:
    events: int = 0
    batches: int = 0
    latencies_s: list[float] = field(default_factory=list)
    last_receipt: dict[str, Any] | None = None


class EventRecorder:
    def __init__(self, client: ChainClient, identity: HybridIdentity, outbox: EventOutbox) -> None:
        self.client = client
        self.identity = identity
        self.outbox = outbox
        self._synced = False
        # EventLedger's bounds; instance attributes so that a test can play a sender that ignores them
        self.max_batch_bytes = MAX_BATCH_BYTES
        self.batches_per_block = MAX_BATCHES_PER_BLOCK
        self.bytes_per_block = MAX_BYTES_PER_BLOCK

    def chain_last_seq(self) -> int:
        return int(self.client.call1("EventLedger", "lastSeq", self.identity.address))

    def sync(self) -> int:
        """Reconcile with the chain; returns the number of events waiting to be sent.

        Also refuses to go on with a key the registry no longer (or not yet) holds (`check_key_epoch`).
        """
        check_key_epoch(self.client, self.identity)
        waiting = self.outbox.reconcile(self.chain_last_seq())
        self._synced = True
        return waiting

    def write_ahead(self, kind: int, node: bytes, payload: bytes) -> int:
        """Make the event durable in the outbox, not yet sent; returns its sequence number.

        For a caller that must note "done" before anything can fail: once this returns, a restart
        reads the event back from the outbox, so the caller's memory should say the same. The first
        call syncs, so the seq comes after what the chain already holds.
        """
        if not self._synced:
            self.sync()
        return self.outbox.append(kind, node, payload)

    def record(self, kind: int, node: bytes, payload: bytes) -> int:
        """Write ahead, then flush; returns the event's sequence number."""
        seq = self.write_ahead(kind, node, payload)
        self.flush()
        return seq

    def flush(
        self,
        *,
        max_batch: int = MAX_BATCH,
        on_confirmed: Callable[[int, float], None] | None = None,
    ) -> FlushReport:
        """Send every pending event in order, in batches within the ledger's bounds.

        A sequence refusal means the chain and the outbox disagree (the chain lost blocks, another
        sender got in between, or a batch was refused for the block's budget and those behind it
        followed): re-sync and send again, in a later block. Any other error is raised after re-syncing,
        and so is a sequence refusal after three attempts in a row that recorded nothing.
        """
        max_batch = max(1, min(max_batch, MAX_BATCH_EVENTS))
        report = FlushReport()
        stalled = 0
        last_seen = -1
        resynced = 0
        while True:
            try:
                self._flush_once(max_batch, on_confirmed, report)
                return report
            except ContractRejected as exc:
                if exc.error not in _RETRIED:
                    raise
                on_chain = self.chain_last_seq()  # progress is what the chain holds, however it got there
                stalled = 0 if on_chain > last_seen else stalled + 1
                last_seen = on_chain
                if stalled >= _ATTEMPTS_WITHOUT_PROGRESS:
                    raise
            except TransactionFailed as exc:
                # another process signed with this key meanwhile (the control room's command with the
                # controller's identity): the client dropped its nonce; send again with the chain's
                if "nonce too low" not in str(exc) or resynced >= _ATTEMPTS_WITHOUT_PROGRESS:
                    raise
                resynced += 1

    def next_batch(self, max_batch: int = MAX_BATCH, after_seq: int = 0) -> list[OutboxRow]:
        """The pending events after `after_seq` that make the next batch: at most `max_batch` events
        (and MAX_BATCH_EVENTS) and `max_batch_bytes` encoded bytes; never empty while any is pending
        (one event always fits)."""
        rows = self.outbox.pending(max(1, min(max_batch, MAX_BATCH_EVENTS)), after_seq=after_seq)
        size = 0
        for i, row in enumerate(rows):
            size += row.size
            if size > self.max_batch_bytes and i > 0:
                return rows[:i]
        return rows

    def _flush_once(self, max_batch: int, on_confirmed: Callable[[int, float], None] | None,
                    report: FlushReport) -> None:
        if not self._synced:
            self.sync()
        in_flight: deque[tuple[SentTx, list[OutboxRow], int]] = deque()
        in_flight_bytes = 0
        after = 0
        queued: list[OutboxRow] = []
        window = self.client.inflight_per_sender
        try:
            while True:
                while len(in_flight) < window:
                    if not queued:
                        queued = self.next_batch(max_batch, after_seq=after)
                    if not queued:
                        break
                    size = sum(r.size for r in queued)
                    if in_flight and (len(in_flight) >= self.batches_per_block
                                      or in_flight_bytes + size > self.bytes_per_block):
                        break  # a block's budget is in flight: this batch waits for a receipt
                    in_flight.append((self._send(queued), queued, size))
                    in_flight_bytes += size
                    after = queued[-1].seq
                    queued = []
                if not in_flight:
                    break
                sent, rows, size = in_flight.popleft()
                receipt = self.client.wait(sent)
                in_flight_bytes -= size
                self.outbox.mark_confirmed([r.seq for r in rows], sent.tx_hash)
                latency = time.monotonic() - sent.sent_at
                report.events += len(rows)
                report.batches += 1
                report.latencies_s.append(latency)
                report.last_receipt = receipt
                if on_confirmed is not None:
                    on_confirmed(len(rows), latency)
        except BaseException:
            # every transaction still in flight is awaited, so its window slot is given back
            for sent, _, _ in in_flight:
                try:
                    self.client.wait(sent, timeout_s=5.0)
                except ChainError:
                    pass
            self._synced = False
            raise

    def _send(self, rows: list[OutboxRow]) -> SentTx:
        batch = sign_batch(
            self.identity,
            chain_id=self.client.chain_id,
            ledger=self.client.address("EventLedger"),
            events=[r.to_sign() for r in rows],
        )
        # Gas is computed rather than estimated: estimation would run against the latest block, where
        # the batches still in flight ahead of this one are not yet recorded, and so would revert.
        payload_bytes = sum(len(r.payload) for r in rows)
        gas = 120_000 + 60_000 + len(rows) * 9_000 + payload_bytes * 40 + 3309 * 40
        return self.client.send(
            self.identity.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch,
            batch.pq_signature, gas=gas,
        )
