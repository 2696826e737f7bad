"""The chain's record of the secure links: every session's key ids and epoch, every QKD alarm and the response.

The controller is the city's recording authority for the links (the field gateways are not chain
parties). It reads every master's signed handshake (``qlink/<link>/hs``, public: key ids, epoch,
mode, KEM ciphertext; never key material), checks both signatures against the link directory,
and records one ``key-rotation`` event per (link, epoch). It polls the KME for each QKD link's
state; when one turns compromised it records a ``qkd-alarm`` event of type ``link-compromised``
with the measured statistics that raised it and the response (the KME discarded the link's keys;
the master moves the channel to ML-KEM-768 ⊕ X25519 at once), and ``link-restored`` when the
statistics are normal again. The fallback and the return to hybrid show up as the next
``key-rotation`` events, with their mode.

Nothing is recorded twice: what the outbox already holds (this controller's write-ahead log of
events) is skipped, so a restart that sees the retained handshakes again adds nothing.
Event kinds are fixed forever (they are signed), so the alarm uses the ledger's existing
``qkd-alarm`` kind, and the payload's ``type`` says which.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bus.client import NamedClient
from bus.secure import LINK_ROOT
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder, canonical_payload
from core.errors import QeaimsError
from core.kinds import kind_by_name
from core.logs import log_line
from links.channel import ChannelRefused, Handshake, verify_handshake
from links.endpoint import Directory
from links.plan import LinkPlan

__all__ = ["KEY_ROTATION", "QKD_ALARM", "LinkWatch", "link_node"]

KEY_ROTATION = kind_by_name("key-rotation")
QKD_ALARM = kind_by_name("qkd-alarm")
POLL_S = 2.0
INBOX_MAX = 10_000
FALLBACK_RESPONSE = ("the KME discarded the QKD link's keys; the link's master moved the channel to "
                     "ML-KEM-768 + X25519 (pq-fallback) at once; it returns to hybrid when the QKD statistics are normal")


def link_node(link_id: str) -> bytes:
    """A link's bytes32 on the ledger: SHA-256 of its id (ids are longer than 32 characters)."""
    return hashlib.sha256(link_id.encode()).digest()


class _HandshakeFeed(NamedClient):
    def __init__(self, *, host: str, port: int, inbox: queue.Queue[bytes]) -> None:
        super().__init__("controller-link-watch", host=host, port=port, settle_s=0.2)
        self._listen([(f"{LINK_ROOT}/+/hs", 1)], lambda _t, payload: _offer(inbox, payload))


def _offer(inbox: queue.Queue[bytes], payload: bytes) -> None:
    """Bounded: a flood of handshakes costs the watch a full queue, not its memory (each real one is
    republished every 15 s, so a dropped one comes back)."""
    try:
        inbox.put_nowait(payload)
    except queue.Full:
        log_line("qeaims.controller", "handshake-dropped", reason="the watch's queue is full")


class LinkWatch:
    """Collects handshakes and QKD states on its own threads; `record` writes them from the caller's."""

    def __init__(self, *, plan: LinkPlan, directory: Directory, kme: Any, host: str = "127.0.0.1",
                 port: int = 1883, clock: Callable[[], float] = time.time) -> None:
        self.plan, self.directory, self.kme = plan, directory, kme
        self._inbox: queue.Queue[bytes] = queue.Queue(maxsize=INBOX_MAX)
        self._feed = _HandshakeFeed(host=host, port=port, inbox=self._inbox)
        self._clock = clock
        self._states: dict[str, dict[str, Any]] = {}  # link → the KME's last answer about it
        self._states_lock = threading.Lock()
        self._recorded_epochs: set[tuple[str, int]] = set()
        self._recorded_state: dict[str, str] = {}
        self._recorded_alarms: dict[str, int] = {}  # link → the KME's alarm count when last recorded
        self._loaded = False
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="link-watch-kme", daemon=True)
        self.refused = 0

    def start(self) -> LinkWatch:
        self._feed.connect()
        self._poller.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._feed.close()
        self._poller.join(timeout=5.0)

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> None:
        try:
            answer = self.kme.links()
        except QeaimsError as exc:
            log_line("qeaims.controller", "kme-unreachable", error=str(exc))
            return
        with self._states_lock:
            for state in answer:
                data = state.model_dump() if hasattr(state, "model_dump") else dict(state)
                self._states[str(data["link_id"])] = data

    def _load(self, outbox: EventOutbox) -> None:
        for row in outbox.rows_of_kinds([KEY_ROTATION, QKD_ALARM]):
            try:
                body = json.loads(row.payload)
                if row.kind == KEY_ROTATION:
                    self._recorded_epochs.add((str(body["link"]), int(body["epoch"])))
                elif body.get("type") in ("link-compromised", "link-restored"):
                    self._recorded_state[str(body["link"])] = ("compromised" if body["type"] == "link-compromised"
                                                               else "secure")
                    if body.get("alarm_count") is not None:
                        self._recorded_alarms[str(body["link"])] = int(body["alarm_count"])
            except (ValueError, KeyError, TypeError):
                continue
        self._loaded = True

    def record(self, recorder: EventRecorder) -> list[int]:
        """Record what is new since the last call; returns the new events' sequence numbers."""
        if not self._loaded:
            self._load(recorder.outbox)
        seqs: list[int] = []
        while True:
            try:
                payload = self._inbox.get_nowait()
            except queue.Empty:
                break
            seqs.extend(self._rotation(recorder, payload))
        with self._states_lock:
            states = dict(self._states)
        for link_id, data in sorted(states.items()):
            seqs.extend(self._alarm(recorder, link_id, data))
        return seqs

    def _rotation(self, recorder: EventRecorder, payload: bytes) -> Sequence[int]:
        try:
            handshake = Handshake.from_bytes(payload)
            link = self.plan.get(handshake.link_id)
            verify_handshake(handshake, self.directory.get(link.master), expected_link_id=link.link_id)
        except (ChannelRefused, QeaimsError) as exc:
            self.refused += 1
            log_line("qeaims.controller", "handshake-refused", error=str(exc))
            return ()
        key = (handshake.link_id, handshake.epoch)
        if key in self._recorded_epochs:
            return ()
        body = {"type": "link-session", "link": handshake.link_id, "master": handshake.master,
                "slave": handshake.slave, "epoch": handshake.epoch, "mode": handshake.mode,
                "key_ids": list(handshake.qkd_key_ids), "started_at": handshake.created_at,
                "session_id": handshake.session_id()}
        seq = recorder.write_ahead(KEY_ROTATION, link_node(handshake.link_id), canonical_payload(body))
        self._recorded_epochs.add(key)  # noted once durable: a failed send is retried, never recorded twice
        log_line("qeaims.controller", "link-rotation-recorded", seq=seq, link=handshake.link_id,
                 epoch=handshake.epoch, mode=handshake.mode)
        recorder.flush()
        return (seq,)

    def _alarm(self, recorder: EventRecorder, link_id: str, data: dict[str, Any]) -> Sequence[int]:
        """A compromise is recorded when the state turns compromised *or* the KME's alarm count grew
        since the last record: a link compromised and restored between two polls (one alarmed block,
        then clean ones) is a compromise all the same, and the keys handed out before it were exposed."""
        state = str(data.get("state", ""))
        if state not in ("secure", "compromised"):
            return ()
        count = int(data.get("alarm_count") or 0)
        seen = self._recorded_alarms.get(link_id, 0)
        if count < seen:  # the KME restarted and counts from zero again
            self._recorded_alarms[link_id] = seen = 0
        before = self._recorded_state.get(link_id, "secure")
        seqs: list[int] = []
        if before != "compromised" and (state == "compromised" or count > seen):
            seqs.append(self._record_alarm(recorder, link_id, data, "compromised", count))
        if state == "secure" and self._recorded_state.get(link_id, "secure") == "compromised":
            seqs.append(self._record_alarm(recorder, link_id, data, "secure", count))
        self._recorded_alarms[link_id] = count
        return seqs

    def _record_alarm(self, recorder: EventRecorder, link_id: str, data: dict[str, Any], state: str,
                      count: int) -> int:
        last = data.get("last_block") or {}
        body: dict[str, Any] = {
            "type": "link-compromised" if state == "compromised" else "link-restored", "link": link_id,
            "qber": last.get("qber"), "alarms": list(data.get("alarms") or last.get("alarms") or []),
            "blocks": data.get("blocks"), "alarm_count": count, "observed_at": self._clock()}
        if state == "compromised":
            body["response"] = FALLBACK_RESPONSE
        seq = recorder.write_ahead(QKD_ALARM, link_node(link_id), canonical_payload(body))
        self._recorded_state[link_id] = state  # noted once durable, as in `_rotation`
        log_line("qeaims.controller", str(body["type"]), seq=seq, link=link_id, alarms=body["alarms"])
        recorder.flush()
        return seq
