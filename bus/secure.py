"""Every MQTT message of the city inside a hybrid channel: what the broker and the wire see is ciphertext.

A client that talks to the broker through `SecureLinks` publishes each message (an inner topic
and payload, exactly as before) as one envelope per link that carries that topic from its SAE
(`links.plan`), on the link's outer topic::

    qlink/<link_id>/<sender SAE>     AES-256-GCM envelopes (`links.channel`), QoS as the inner message
    qlink/<link_id>/hs               the master's latest signed handshake (retained, QoS 1)

The inner topic travels inside the ciphertext, so a subscriber to ``#`` learns only which two SAEs
talk and how much, never a field name, a reading or a command. A receiving client opens each
envelope with the session of its epoch and hands the inner message to its old handler; a
replayed, reordered, truncated or altered envelope is refused and counted (`ChannelStats`), and
so is an inner topic the sender is not entitled to on that link (a field gateway cannot send a
command to another).

Sessions and crash safety. `SecureLinks` is one SAE's ends of its links in one process. The
master of a link starts a session (a new epoch) when it first sends, when the session is due
(`RotationPolicy`: by count and by age), and when the KME reports its QKD link compromised or
restored; each handshake is published retained before any envelope of its epoch. The SAE's
sessions are written to ``state/<sae>.json`` *before* an envelope leaves (so a restarted process
never reuses a counter under the same key: AES-GCM's one rule), and each reading client keeps its
own replay windows in ``state/<sae>.<reader>.json``, written before the inner message is handed
on; a restarted reader still opens what the broker kept for it and refuses what it already took.
A key is fetched from the KME once (``dec_keys`` consumes it), so sessions, not keys, are what
the files keep: they are secret material (mode 0600), as an HSM would hold them on a real site.

Fallback. When the KME cannot give a key (its QKD link is compromised, or the KME is down) the
master starts a ``pq-fallback`` session: ML-KEM-768 ⊕ X25519 only, still post-quantum. When the
link is secure again the next session is hybrid. Both changes happen at once, not at the next
scheduled rotation.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from paho.mqtt.client import topic_matches_sub

from core.errors import ConfigError, QeaimsError
from core.logs import log_line
from links.channel import (
    REPLAY_WINDOW,
    ChannelRefused,
    ChannelStats,
    Handshake,
    RotationPolicy,
    Session,
    accept,
    initiate,
    peek,
    verify_handshake,
)
from links.endpoint import Directory, EndpointKeys
from links.plan import LinkPlan, LinkSpec

__all__ = [
    "LINK_ROOT",
    "Deliver",
    "KeyService",
    "LinkReader",
    "SecureLinks",
    "data_topic",
    "handshake_topic",
]

LINK_ROOT = "qlink"
QKD_KEY_BITS = 256
PENDING_MAX = 2000  # envelopes a reader holds while their epoch's handshake is being accepted
QKD_POLL_S = 2.0
FALLBACK_RETRY_S = 5.0  # a fallback session for want of keys tries hybrid again after this long
HANDSHAKE_SLACK_S = 60.0  # a genuine current handshake is at most a session's age old (plus this)
PENDING_EPOCHS = 2  # an envelope waits for its handshake only if its epoch is this close above the known one
PENDING_PER_LINK = 256  # envelopes held per link while their handshake is on its way
HANDSHAKE_REPEAT_S = 15.0  # a master republishes its current handshake: anyone who can publish on the
# broker can overwrite a retained message, and a slave that joins later must still find the real one


def data_topic(link_id: str, sender: str) -> str:
    return f"{LINK_ROOT}/{link_id}/{sender}"


def handshake_topic(link_id: str) -> str:
    return f"{LINK_ROOT}/{link_id}/hs"


class KeyService(Protocol):
    """What `SecureLinks` needs of a KME (`links.kme.client.KmeClient` is one)."""

    def enc_keys(self, slave: str, number: int = 1, size: int = 256) -> Sequence[Any]: ...

    def dec_keys(self, master: str, key_ids: Sequence[str]) -> Sequence[Any]: ...

    def links(self) -> Sequence[Any]: ...


def _inner(topic: str, payload: bytes) -> bytes:
    raw = topic.encode()
    return len(raw).to_bytes(2, "big") + raw + payload


def _split_inner(data: bytes) -> tuple[str, bytes]:
    if len(data) < 2:
        raise ChannelRefused("malformed", "inner message shorter than its header")
    size = int.from_bytes(data[:2], "big")
    if len(data) < 2 + size:
        raise ChannelRefused("malformed", "inner topic runs past the message")
    try:
        return data[2:2 + size].decode(), data[2 + size:]
    except UnicodeDecodeError:
        raise ChannelRefused("malformed", "inner topic is not UTF-8") from None


def _write_private(path: Path, value: Any) -> None:
    """Atomically, 0600, and durably: the file and the rename reach the disk before this returns,
    so a power cut cannot bring back an older counter (AES-GCM nonce reuse) or replay window.
    (About 1 ms here: the city sends a few messages a second per link.)"""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(value, out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"link state file {path} is damaged ({exc}): move it away to start new sessions") from None
    if not isinstance(data, dict):
        raise ConfigError(f"link state file {path} is damaged: not an object")
    return data


KEEP_EPOCHS = 3  # sessions kept per link: the current one and the two before (envelopes still in flight)


def _sessions_from(data: dict[str, Any]) -> dict[str, dict[int, Session]]:
    out: dict[str, dict[int, Session]] = {}
    for link_id, epochs in data.get("sessions", {}).items():
        out[link_id] = {int(e): Session.from_state(s) for e, s in epochs.items()}
    return out


def _sessions_state(sessions: dict[str, dict[int, Session]]) -> dict[str, Any]:
    return {link_id: {str(e): s.to_state() for e, s in epochs.items()} for link_id, epochs in sessions.items()}


def _prune(epochs: dict[int, Session]) -> None:
    for old in sorted(epochs)[:-KEEP_EPOCHS]:
        del epochs[old]


def _hold(state_path: Path, sae_id: str) -> IO[bytes]:
    """An exclusive lock on the SAE's state for this process's life: two processes of one SAE would
    resume the same sessions and seal under the same (key, nonce), which AES-GCM never forgives."""
    state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(state_path.with_name(state_path.name + ".lock"), "ab")  # noqa: SIM115 - held until close()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(f"another process already runs {sae_id}'s links from {state_path.parent}: "
                          "stop it first (one process per SAE)") from None
    return handle


class SecureLinks:
    """One SAE's ends of its links in one process (module docstring)."""

    def __init__(self, sae_id: str, *, plan: LinkPlan, keys: EndpointKeys, directory: Directory,
                 kme: KeyService | None, state_path: Path | None = None,
                 policy: RotationPolicy | None = None, clock: Callable[[], float] = time.time) -> None:
        if keys.sae_id != sae_id:
            raise ConfigError(f"the endpoint keys are {keys.sae_id}'s, not {sae_id}'s")
        self.sae_id, self.plan, self.keys, self.directory, self.kme = sae_id, plan, keys, directory, kme
        self.links: dict[str, LinkSpec] = {link.link_id: link for link in plan.for_sae(sae_id)}
        if not self.links:
            raise ConfigError(f"the link plan gives {sae_id} no link")
        for link in self.links.values():
            directory.get(link.peer_of(sae_id))  # every peer's public keys are known up front
        self.policy = policy or RotationPolicy()
        self.state_path = state_path
        self._lock_file = _hold(state_path, sae_id) if state_path is not None else None
        self._clock = clock
        self._lock = threading.RLock()
        saved = _read_json(state_path) if state_path is not None else {}
        self._sessions = _sessions_from(saved)
        self._current: dict[str, int] = {k: int(v) for k, v in saved.get("current", {}).items()}
        self._last_epoch: dict[str, int] = {k: int(v) for k, v in saved.get("last_epoch", {}).items()}
        # link → its QKD state as the KME last said: secure | compromised | unknown (not reached yet)
        self._qkd: dict[str, str] = dict.fromkeys(self.links, "unknown")
        self._unaccepted: dict[str, bytes] = {}  # link → a handshake not yet accepted (KME unreachable)
        self._handshake: dict[str, bytes] = {}  # link → this master's current handshake (republished)
        self.stats: dict[str, ChannelStats] = {link_id: ChannelStats() for link_id in self.links}
        self.rotations: list[dict[str, Any]] = []  # what this process started or accepted, newest last
        self._readers: list[LinkReader] = []
        self._publish: Callable[[str, bytes, int, bool], None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.on_status: Callable[[dict[str, Any]], None] | None = None  # told the status every few seconds

    # --- wiring -------------------------------------------------------------------------------------

    def attach_publisher(self, publish: Callable[[str, bytes, int, bool], None]) -> None:
        """How this SAE's handshakes reach the broker (topic, payload, qos, retain): the client that
        publishes for it. The maintenance thread's rotations go through it."""
        self._publish = publish

    def reader(self, name: str, filters: Iterable[str]) -> LinkReader:
        """A reading client's view: its own replay windows, delivering inner messages matching `filters`."""
        path = None if self.state_path is None else self.state_path.with_name(f"{self.sae_id}.{name}.json")
        reader = LinkReader(self, name, tuple(filters), path)
        with self._lock:
            self._readers.append(reader)
        return reader

    def start(self) -> None:
        """The maintenance thread: rotations that are due, QKD state changes, handshakes to retry."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._maintain, name=f"links-{self.sae_id}", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _save(self) -> None:
        if self.state_path is not None:
            _write_private(self.state_path, {"sessions": _sessions_state(self._sessions), "current": self._current,
                                             "last_epoch": self._last_epoch})

    # --- sending ------------------------------------------------------------------------------------

    def seal(self, topic: str, payload: bytes) -> list[tuple[str, bytes, bool]]:
        """The messages to publish for one inner message: (outer topic, payload, retain), a handshake
        first where a link needs a new session. Nothing is returned for a topic no link carries."""
        out: list[tuple[str, bytes, bool]] = []
        with self._lock:
            for link in self.links.values():
                if not any(topic_matches_sub(f, topic) for f in link.carries_from(self.sae_id)):
                    continue
                session = self._sending_session(link, out)
                if session is None:
                    self.stats[link.link_id].count("no-session")
                    continue
                envelope = session.seal(_inner(topic, payload), sender=self.sae_id)
                self.stats[link.link_id].add_sealed()
                out.append((data_topic(link.link_id, self.sae_id), envelope, False))
            if out:
                self._save()  # before anything leaves: a restart must never reuse a counter
        return out

    def _sending_session(self, link: LinkSpec, out: list[tuple[str, bytes, bool]]) -> Session | None:
        epoch = self._current.get(link.link_id)
        session = self._sessions.get(link.link_id, {}).get(epoch) if epoch is not None else None
        if link.master == self.sae_id and (session is None or session.due(self.policy, self._clock())):
            out.append(self._rotate(link, "due" if session is not None else "start"))
            session = self._sessions[link.link_id][self._current[link.link_id]]
        return session

    def _rotate(self, link: LinkSpec, reason: str) -> tuple[str, bytes, bool]:
        """A new session on a link this SAE is the master of (the caller holds the lock)."""
        qkd_key: bytes | None = None
        key_ids: tuple[str, ...] = ()
        if self.kme is not None and self._qkd[link.link_id] != "compromised":
            try:
                got = self.kme.enc_keys(link.slave, 1, QKD_KEY_BITS)
                qkd_key, key_ids = bytes(got[0].key), (str(got[0].key_ID),)
            except QeaimsError as exc:
                log_line("qeaims.links", "qkd-key-unavailable", link=link.link_id, error=str(exc))
        epoch = max(self._last_epoch.get(link.link_id, 0) + 1, 1)
        self._last_epoch[link.link_id] = epoch
        handshake, session = initiate(link.link_id, epoch, self.keys, self.directory.get(link.slave),
                                      qkd_key=qkd_key, qkd_key_ids=key_ids, now=self._clock())
        epochs = self._sessions.setdefault(link.link_id, {})
        epochs[epoch] = session
        _prune(epochs)
        self._current[link.link_id] = epoch
        self._save()
        self._note("started", session, reason)
        self._handshake[link.link_id] = handshake.to_bytes()
        return handshake_topic(link.link_id), self._handshake[link.link_id], True

    def _note(self, what: str, session: Session, reason: str) -> None:
        entry = {"link": session.link_id, "epoch": session.epoch, "mode": session.mode, "what": what,
                 "reason": reason, "key_ids": list(session.qkd_key_ids), "session_id": session.session_id}
        self.rotations.append(entry)
        del self.rotations[:-200]
        log_line("qeaims.links", f"session-{what}", sae=self.sae_id, **entry)

    def rotate_now(self, link_id: str, reason: str) -> None:
        """Start a new session on a link this SAE is the master of and publish its handshake."""
        link = self.links[link_id]
        if link.master != self.sae_id:
            raise ConfigError(f"{self.sae_id} is not the master of {link_id}: only the master starts sessions")
        with self._lock:
            topic, payload, retain = self._rotate(link, reason)
            if self._publish is not None:
                self._publish(topic, payload, 1, retain)

    def handshakes(self) -> list[tuple[str, bytes, bool]]:
        """Start a session on every link this SAE is the master of (a process starting): the slaves
        can answer at once instead of waiting for the first message."""
        with self._lock:
            return [self._rotate(link, "start") for link in self.links.values() if link.master == self.sae_id]

    # --- receiving ----------------------------------------------------------------------------------

    def accept_handshake(self, payload: bytes) -> Session | None:
        """Take a master's handshake (idempotent: a retained one seen again changes nothing).
        Returns the session, or None when it must wait (the KME could not be reached); refuses a
        bad one with `ChannelRefused`."""
        handshake = Handshake.from_bytes(payload)
        link = self.links.get(handshake.link_id)
        if link is None or link.slave != self.sae_id or handshake.slave != self.sae_id:
            raise ChannelRefused("wrong-link", f"{handshake.link_id} is not a link {self.sae_id} is the slave of")
        # Everything that can be checked without the QKD key is checked before the KME is asked for
        # it: a key is delivered once, so a forged or stale handshake naming the real key ids would
        # otherwise use it up and cut the link off until its next rotation.
        verify_handshake(handshake, self.directory.get(link.master), expected_link_id=link.link_id)
        if self._clock() - handshake.created_at > self.policy.max_age_s + HANDSHAKE_SLACK_S:
            raise ChannelRefused("stale-epoch", f"the handshake of epoch {handshake.epoch} is older than a session "
                                                f"lives ({self.policy.max_age_s:g} s): a recording, not the master")
        with self._lock:
            known = self._sessions.get(link.link_id, {})
            if handshake.epoch in known:
                if known[handshake.epoch].session_id != handshake.session_id():
                    raise ChannelRefused("stale-epoch", f"a second, different handshake for epoch {handshake.epoch}")
                return known[handshake.epoch]
            after = max(known, default=0)
            if handshake.epoch <= after:
                raise ChannelRefused("stale-epoch", f"epoch {handshake.epoch} ≤ {after} already accepted")
            if (handshake.mode == "hybrid") != bool(handshake.qkd_key_ids):
                raise ChannelRefused("malformed", "a hybrid handshake names QKD key ids, a fallback one none")
            qkd_key: bytes | None = None
            if handshake.mode == "hybrid":
                if self.kme is None:
                    raise ChannelRefused("no-kme", "a hybrid handshake needs the KME, and this SAE has none")
                try:
                    qkd_key = bytes(self.kme.dec_keys(link.master, list(handshake.qkd_key_ids))[0].key)
                except QeaimsError as exc:
                    if getattr(exc, "status", 0) in (0, 503):  # unreachable or busy: try again later
                        self._unaccepted[link.link_id] = payload
                        log_line("qeaims.links", "handshake-waiting", link=link.link_id, epoch=handshake.epoch,
                                 error=str(exc))
                        return None
                    raise ChannelRefused("qkd-key", f"the KME refused key {handshake.qkd_key_ids}: {exc}") from exc
            session = accept(handshake, self.keys, self.directory.get(link.master), qkd_key=qkd_key,
                             expected_link_id=link.link_id, after_epoch=after,
                             max_age_s=self.policy.max_age_s + HANDSHAKE_SLACK_S, now=self._clock())
            epochs = self._sessions.setdefault(link.link_id, {})
            epochs[session.epoch] = session
            _prune(epochs)
            self._current[link.link_id] = max(self._current.get(link.link_id, 0), session.epoch)
            self._unaccepted.pop(link.link_id, None)
            self._save()
            self._note("accepted", session, "handshake")
        return session

    def newest_epoch(self, link_id: str) -> int:
        """The newest epoch this SAE holds a session of on the link (0: none yet)."""
        with self._lock:
            return max(self._sessions.get(link_id, {}), default=0)

    def _base_session(self, link_id: str, epoch: int) -> Session | None:
        with self._lock:
            return self._sessions.get(link_id, {}).get(epoch)

    def subscriptions(self) -> list[str]:
        """The outer topics a reading client of this SAE subscribes to."""
        out = []
        for link in self.links.values():
            peer = link.peer_of(self.sae_id)
            if link.carries_from(peer):
                out.append(data_topic(link.link_id, peer))
            if link.slave == self.sae_id:
                out.append(handshake_topic(link.link_id))
        return out

    # --- maintenance --------------------------------------------------------------------------------

    def poll_qkd(self) -> None:
        """Read the KME's QKD state of this SAE's master links; a change starts a new session at once."""
        if self.kme is None or not any(link.master == self.sae_id for link in self.links.values()):
            return
        try:
            answer = self.kme.links()
            states = {str(s.link_id): str(s.state) for s in answer}
            keys = {str(s.link_id): int(getattr(s, "keys_available", 0)) for s in answer}
        except QeaimsError:
            return
        for link_id, link in self.links.items():
            if link.master != self.sae_id or link_id not in states:
                continue
            before, state = self._qkd[link_id], states[link_id]
            self._qkd[link_id] = state
            current = self._current.get(link_id)
            if current is None:
                continue
            session = self._sessions.get(link_id, {}).get(current)
            mode = session.mode if session is not None else None
            if state == "compromised" and mode == "hybrid":
                self.rotate_now(link_id, "qkd-compromised")
            elif state == "secure" and mode == "pq-fallback" and session is not None and (
                    before != "secure" or (keys[link_id] > 0 and self._clock() - session.created_at > FALLBACK_RETRY_S)):
                # back to hybrid once the link is secure again, or once the KME has keys (it had none at start)
                self.rotate_now(link_id, "qkd-restored" if before == "compromised" else "qkd-keys")

    def _republish(self) -> None:
        with self._lock:
            current = dict(self._handshake)
        if self._publish is not None:
            for link_id, payload in current.items():
                self._publish(handshake_topic(link_id), payload, 1, True)

    def _maintain(self) -> None:
        next_poll = 0.0
        next_repeat = time.monotonic() + HANDSHAKE_REPEAT_S
        while not self._stop.wait(0.5):
            try:
                now = time.monotonic()
                if now >= next_repeat:
                    next_repeat = now + HANDSHAKE_REPEAT_S
                    self._republish()
                if now >= next_poll:
                    next_poll = now + QKD_POLL_S
                    self.poll_qkd()
                    if self.on_status is not None:
                        self.on_status({"sae": self.sae_id, "at": self._clock(), "links": self.status()})
                with self._lock:
                    due = [link for link in self.links.values() if link.master == self.sae_id
                           and link.link_id in self._current
                           and self._sessions[link.link_id][self._current[link.link_id]].due(self.policy, self._clock())]
                for link in due:
                    self.rotate_now(link.link_id, "due")
                for payload in list(self._unaccepted.values()):
                    self.accept_handshake(payload)
                for reader in list(self._readers):
                    reader.retry_pending()
            except (QeaimsError, OSError) as exc:  # a bad handshake or a full disk: said, and tried again
                log_line("qeaims.links", "maintenance-failed", sae=self.sae_id, error=str(exc))

    def status(self) -> dict[str, Any]:
        """Each link's current session (no key material) and counters."""
        with self._lock:
            out: dict[str, Any] = {}
            for link_id, link in self.links.items():
                epoch = self._current.get(link_id)
                session = self._sessions.get(link_id, {}).get(epoch) if epoch is not None else None
                out[link_id] = {
                    "peer": link.peer_of(self.sae_id), "role": "master" if link.master == self.sae_id else "slave",
                    "epoch": epoch, "mode": session.mode if session else None,
                    "key_ids": list(session.qkd_key_ids) if session else [],
                    "qkd": self._qkd[link_id], "stats": self.stats[link_id].snapshot()}
            return out


Deliver = Callable[[str, bytes, Callable[[], None]], None]
"""``deliver(inner_topic, payload, settle)``: the reader hands an opened message on; the receiver calls
`settle` once it has stored the message or is otherwise finished with it (see `LinkReader`)."""


@dataclass
class _Pending:
    topic: str
    payload: bytes
    deliver: Deliver
    refuse: Callable[[str, str], None]
    done: Callable[[], None] | None = None
    at: float = field(default_factory=time.monotonic)


PENDING_S = 30.0


class LinkReader:
    """One reading client's side of its SAE's links: its own replay windows, kept on disk.

    A window (`links.session.REPLAY_WINDOW`) remembers which of the last counters were accepted, so
    an envelope that arrives late still opens once: Mosquitto sends a reconnected client's live
    messages beside the ones it queued while the client was away, and a strict "above the highest"
    rule refused that whole backlog as replays (and acknowledged it away).

    In memory an envelope counts as accepted the moment it opens. On disk it counts only once it is
    *settled*: stored by the receiver (`Deliver`'s ``settle``), refused after opening, or not wanted
    here. A receiver killed between opening a message and storing it therefore accepts the broker's
    redelivery when it restarts, instead of refusing it as a replay and losing the readings for good.
    A second copy that reaches a live receiver while the first is still unsettled (the broker resends
    what was not acknowledged after any reconnect) is neither delivered again nor refused: once it
    verifies, its acknowledgement waits for the first copy's settle, so the broker keeps it until the
    first is stored. What a restart re-opens is exactly what was never settled; a replay of those few
    envelopes is accepted once, as the broker's redelivery would be, and receivers take messages at
    least once anyway (the telemetry store keeps one reading per sensor and time; the twin moves an
    actuator once per decision).
    """

    def __init__(self, links: SecureLinks, name: str, filters: tuple[str, ...], state_path: Path | None) -> None:
        self.links, self.name, self.filters, self.state_path = links, name, filters, state_path
        self._lock = threading.RLock()
        self._sessions = _sessions_from(_read_json(state_path)) if state_path is not None else {}
        self._pending: list[_Pending] = []
        # (link, epoch, direction) → counter opened, not yet settled → acknowledgements of its copies
        self._unsettled: dict[tuple[str, int, int], dict[int, list[Callable[[], None]]]] = {}
        self.copies_held = 0
        """Second copies of an envelope still being stored, held for its settle (the broker's resends)."""

    def _save(self) -> None:
        """Write the windows as far as they are settled: an unsettled counter is not accepted on disk."""
        if self.state_path is None:
            return
        state = _sessions_state(self._sessions)
        for (link_id, epoch, direction), counters in self._unsettled.items():
            saved = state.get(link_id, {}).get(str(epoch))
            if saved is None:
                continue
            top, seen = saved["received"][direction], int(saved["seen"][direction], 16)
            for counter in counters:
                if 0 <= top - counter < REPLAY_WINDOW:
                    seen &= ~(1 << (top - counter))
            saved["seen"][direction] = format(seen, "x")
        _write_private(self.state_path, {"sessions": state})

    def _settle(self, key: tuple[str, int, int], counter: int) -> list[Callable[[], None]]:
        """Count `counter` settled on disk; returns the acknowledgements of its copies, now due."""
        with self._lock:
            counters = self._unsettled.get(key)
            if counters is None or counter not in counters:
                return []  # settled twice: the second call changes nothing
            copies = counters.pop(counter)
            if not counters:
                del self._unsettled[key]
            self._save()
            return copies

    def receive(self, topic: str, payload: bytes, deliver: Deliver,
                refuse: Callable[[str, str], None], done: Callable[[], None] | None = None) -> None:
        """Handle one outer message: a handshake is accepted; an envelope is opened and its inner
        message handed to `deliver` (if it matches this reader's filters), or refused via `refuse`
        (reason, detail); one whose handshake is still being accepted waits (bounded). Exactly one
        of `deliver`, `refuse` and `done` is called for each message, in the end (`done`: taken,
        nothing to hand on: a handshake, or an inner topic this reader does not want). A delivered
        message is settled by the receiver calling the `settle` it was handed, which saves the
        window past it and then calls `done`."""
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != LINK_ROOT:
            refuse("topic", f"not a link topic: {topic}")
            return
        _, link_id, sender = parts
        stats = self.links.stats.get(link_id)
        if sender == "hs":
            if link_id not in self.links.links:
                # not ours: amqtt 0.12 hands a (re)connecting client the retained messages of every
                # subscribed topic in the broker, not only its own. Handshakes are public; skip it.
                if done is not None:
                    done()
                return
            try:
                if self.links.accept_handshake(payload) is not None:
                    self.retry_pending()
            except ChannelRefused as exc:
                if stats is not None:
                    stats.count(exc.reason)
                refuse(exc.reason, exc.detail)
                return
            if done is not None:
                done()
            return
        self._open(_Pending(topic, payload, deliver, refuse, done), link_id, sender, stats)

    def _open(self, item: _Pending, link_id: str, sender: str, stats: ChannelStats | None, retry: bool = False) -> bool:
        """True when done with `item` (delivered or refused), False when it must wait."""
        link = self.links.links.get(link_id)
        if link is None or stats is None or sender != link.peer_of(self.links.sae_id):
            item.refuse("wrong-link", f"{item.topic} is not a link {self.links.sae_id} reads")
            return True
        try:
            _direction, epoch, _counter = peek(item.payload)
        except ChannelRefused as exc:
            stats.count(exc.reason)
            item.refuse(exc.reason, exc.detail)
            return True
        with self._lock:
            epochs = self._sessions.setdefault(link_id, {})
            session = epochs.get(epoch)
            if session is None:
                base = self.links._base_session(link_id, epoch)
                if base is None:
                    if retry:
                        return False
                    # Only an envelope a few epochs ahead of the link's newest session can be one whose
                    # handshake is on its way; anything else is refused at once, and each link holds at
                    # most PENDING_PER_LINK, so unauthenticated junk cannot crowd out real envelopes.
                    newest = self.links.newest_epoch(link_id)
                    ahead = newest == 0 or newest < epoch <= newest + PENDING_EPOCHS  # 0: its first session
                    if not ahead:
                        return self._refuse_unknown(item, stats, epoch)
                    same = [p for p in self._pending if p.topic == item.topic]
                    if len(same) >= PENDING_PER_LINK or len(self._pending) >= PENDING_MAX:
                        # the oldest goes, not the newest: a real envelope waits only the moment its
                        # handshake takes, so junk sent before it cannot push it out
                        oldest = same[0] if same else self._pending[0]
                        self._pending.remove(oldest)
                        self._refuse_unknown(oldest, stats, peek(oldest.payload)[1])
                    self._pending.append(item)
                    return False
                session = Session.from_state(base.to_state())
                epochs[epoch] = session
                _prune(epochs)
            if self._copy_of_unsettled(item, session, link_id, epoch, sender, stats):
                return True
            try:
                inner = session.open(item.payload, sender=sender)
            except ChannelRefused as exc:
                stats.count(exc.reason)
                item.refuse(exc.reason, exc.detail)
                return True
            direction, _, counter = peek(item.payload)
            key = (link_id, epoch, direction)
            unsettled = self._unsettled.setdefault(key, {})
            unsettled[counter] = []  # open in memory, not yet on disk
            if len(unsettled) > 64:  # one failed and never settled: it is out of the window soon anyway
                for old in [c for c in unsettled if c <= counter - REPLAY_WINDOW]:
                    del unsettled[old]
            try:
                inner_topic, inner_payload = _split_inner(inner)
            except ChannelRefused as exc:
                stats.count(exc.reason)
                _run(self._settle(key, counter))
                item.refuse(exc.reason, exc.detail)
                return True
            if not any(topic_matches_sub(f, inner_topic) for f in link.carries_from(sender)):
                stats.count("not-carried")
                _run(self._settle(key, counter))
                item.refuse("not-carried", f"{sender} may not send {inner_topic} on {link_id}")
                return True
            stats.add_opened()
        if any(topic_matches_sub(f, inner_topic) for f in self.filters):
            def settle() -> None:
                copies = self._settle(key, counter)
                if item.done is not None:
                    item.done()
                _run(copies)

            item.deliver(inner_topic, inner_payload, settle)
        else:
            copies = self._settle(key, counter)
            if item.done is not None:
                item.done()
            _run(copies)
        return True

    def _copy_of_unsettled(self, item: _Pending, session: Session, link_id: str, epoch: int,
                           sender: str, stats: ChannelStats) -> bool:
        """A second copy of an envelope still being handled: True when it was one and is now dealt
        with (its acknowledgement waits for the first copy's settle, or it was refused as forged)."""
        direction, _, counter = peek(item.payload)
        waiting = self._unsettled.get((link_id, epoch, direction), {}).get(counter)
        if waiting is None:
            return False
        if not session.authentic(item.payload, sender=sender):
            stats.count("tamper")
            item.refuse("tamper", f"the tag of envelope {counter} does not verify")
            return True
        self.copies_held += 1
        if item.done is not None:
            waiting.append(item.done)
        return True

    def _refuse_unknown(self, item: _Pending, stats: ChannelStats, epoch: int) -> bool:
        stats.count("unknown-epoch")
        item.refuse("unknown-epoch", f"no session for epoch {epoch}")
        return True

    def retry_pending(self) -> None:
        with self._lock:
            waiting, self._pending = self._pending, []
        keep: list[_Pending] = []
        for item in waiting:
            _, link_id, sender = item.topic.split("/")
            stats = self.links.stats.get(link_id)
            if not self._open(item, link_id, sender, stats, retry=True):
                if time.monotonic() - item.at > PENDING_S and stats is not None:
                    self._refuse_unknown(item, stats, peek(item.payload)[1])
                else:
                    keep.append(item)
        with self._lock:
            self._pending = keep + self._pending


def _run(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()


def open_links(home: Path, sae_id: str, *, policy: RotationPolicy | None = None) -> SecureLinks | None:
    """This SAE's links as `qeaims up` set them up under ``<home>/links`` (`links.files`), or None
    when the data directory runs plaintext links (no plan: a bare broker for tests and tools)."""
    from links.files import LinkFiles
    from links.kme.client import KmeClient
    from links.pki import DevPki
    from links.site import write_status

    files = LinkFiles.of(home)
    if not files.enabled:
        return None
    plan = LinkPlan.load(files.plan)
    keys_path = files.endpoint_keys(sae_id)
    if not keys_path.is_file():
        raise ConfigError(f"no link keys for {sae_id} at {keys_path}: `qeaims up` (or `qeaims link setup`) makes them")
    keys = EndpointKeys.load(keys_path)
    directory = Directory.load(files.directory)
    kme = KmeClient(plan.kme_url, sae_id, DevPki(files.pki))
    links = SecureLinks(sae_id, plan=plan, keys=keys, directory=directory, kme=kme,
                        state_path=files.sae_state(sae_id), policy=policy)
    links.on_status = lambda status: write_status(files, sae_id, status)
    return links
