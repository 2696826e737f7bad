"""The controller's response to spoofed sensors (part of `controller.node`).

Spoofed sensors take another path (`controller.cyber`): a quorum of intrusion verdicts naming
one sensor gets it quarantined (a ``sensor-quarantine`` event), a technician to the device, and the
quarantine lifted once the tampering is removed.

The sensors named, the oracles' status and sector and each sector's required votes are read from
the index and the chain (`controller.cyber.IntrusionTally` does the counting); the chain's answers
are cached for a few seconds, as the loop runs twice a second and statuses change rarely.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast

from web3 import Web3

from chain.commanded import Release, commands_of, sensor_asset
from chain.countermeasures import COMMAND_ATTACKS as CHAIN_COMMAND_ATTACKS
from chain.quarantines import signature_check
from chain.recorder import canonical_payload
from controller._controller_state import (
    COUNTERMEASURE,
    INDICATOR,
    INTRUSION,
    SENSOR_QUARANTINE,
    ControllerState,
    log_line,
)
from controller._safe_mode import SafeModes
from controller.cyber import TECHNICIAN_S, Candidate, Quarantine, Told
from controller.deadlines import Deadline
from core.errors import ChainError, QeaimsError
from core.messages import Sector
from intel.indicator import DEFAULT_TTL
from keys.errors import KeysError
from keys.ids import from_bytes32, to_bytes32
from sectors.plugin import plugin_of
from sectors.remote import SimControl
from vaults.onchain import VAULT_SEAL, SealWatch, seal_payload, vault_node

__all__ = ["IntrusionResponse", "to_checksum"]


_T = TypeVar("_T")

RELEASE_ROWS = 2
"""Report periods after a hold's release in which a sensor of the released device reads the release
itself: the first row shows the commanded state jump back, and a device that reports the change a
period late shows it in the second."""


def _judged_release(q: Quarantine, release: Release, sector: str, required: int) -> bool:
    """Whether the quorum's evidence is the release itself: fewer than `required` voters judged a
    reading outside `RELEASE_ROWS` report periods either side of the release's field time (after it,
    for a count over a window, `SectorPlugin.windowed`: the plug-in's `command_aftermath_s`).

    The tail's cost, stated: a spoof of such a count begun within the aftermath, and kept up (one
    verdict per open episode), is not quarantined. It moves nothing either: a hospital's load
    verdicts are moot for the same time (`oracles.node.voting._lingering`), and a surge is named
    only on the dispatch centre's and the hospital's declared MCI (`sectors.healthcare.rules`).

    Both bounds matter. After it: one oracle's fresh verdict must not turn a quorum of verdicts on
    the release into a quarantine (one voice is never enough). Before it: a spoof begun under the
    hold and kept up (one verdict per open episode) is taken at the release, and a release stamped
    far ahead by the device that answered it excuses nothing judged at the field's real time. A
    verdict without a field time, or a release without one, is never excused."""
    if release.field_ms is None:
        return False
    plugin = plugin_of(sector)
    before = RELEASE_ROWS * plugin.report_period_s * 1000
    # a count over a window (`SectorPlugin.windowed`) reads the held time's load for that window
    tail = max(before, plugin.command_aftermath_s * 1000) if plugin.windowed and plugin.windowed(q.sensor) else before
    outside = sum(1 for ms in q.observed if ms is None or not -before <= ms - release.field_ms <= tail)
    return outside < required


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _iso_or(text: str, default: datetime) -> datetime:
    """An oracle's ISO time (UTC), or ``default`` if it gives none, one that does not convert (year 1 in
    another zone), or a time after ``default``; never earlier than a day before it (an oracle cannot
    backdate a story: the indicator's first-seen is when the quorum's attack began, not a claim)."""
    try:
        moment = datetime.fromisoformat(text)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return default
    return max(min(moment, default), default - timedelta(days=1))


COMMAND_ATTACKS = CHAIN_COMMAND_ATTACKS
"""Wire attack classes in which a device took (or was sent) a command it should not have: its quarantine follows
(the chain's own set: a safe mode's recount counts the same classes)."""

AUTO_SEAL = "quorum: "
"""How a seal the controller recorded for a quarantine begins its reason (the only ones it lifts)."""


class IntrusionResponse(ControllerState):
    """Sensors quarantined on a quorum of intrusion verdicts, and lifted once a technician has been."""

    _safe_modes: SafeModes | None = None  # made on first use (`_decide_safe_modes`)

    def _respond_to_intrusions(self) -> None:
        self.tally.read(self.index.db, INTRUSION)
        named = {o for by in self.tally.named.values() for o in by}
        if not any(self._may_quarantine(q) for q in self.tally.quorate(named, {s: 2 for s, _ in self.tally.named})):
            fresh: list[Quarantine] = []  # no sensor named by two oracles yet: nothing to ask the chain
        else:
            required = self._required_votes()
            fresh = [q for q in self.tally.quorate(self._active_oracles(), required) if self._may_quarantine(q)]
        for q in self._not_commanded(fresh):
            q.due = Deadline.after(TECHNICIAN_S, sector=Sector(q.sector), wall_now=self._clock(), speed=self.speed,
                                   field_clock=self.field_clock)
            q.seq = self._record_quarantine(q, "quarantined", evidence=[list(e) for e in q.evidence],
                                            required=self._required_votes()[q.sector], **q.due.as_fields(),
                                            technician_s=TECHNICIAN_S)
            self.quarantines[q.key] = q
            self._vault_seals_due = True
            self.recorder.flush()  # noted first: a failed send is retried, never the quarantine
        for q in self.quarantines.values():
            if not q.lifted and q.due.passed(sector=Sector(q.sector), wall_now=self._clock(),
                                             field_clock=self.field_clock):
                ack = self.commander.control(Sector(q.sector), SimControl(op="clear-attack", target=q.sensor))
                q.seen = dict(self.tally.named.get((q.sector, q.sensor), {}))
                self._record_quarantine(q, "lifted", quarantine=q.seq, field_ok=ack.ok, field_error=ack.error,
                                        seen=q.seen)
                q.lifted = True
                self.tally.after[(q.sector, q.sensor)] = q.seen
                self._vault_seals_due = True
                self.recorder.flush()  # noted first: a failed send never clears the attack twice
        if self._vault_seals_due:
            self._seal_vaults()
            self._vault_seals_due = False

    def _publish_indicators(self) -> None:
        """Publish each indicator that as many distinct Active oracles of one sector as its quorum needs
        named in wire-intrusion verdicts (`chain.indicators` is what every reader recounts). Only verdicts
        in batches whose signature verifies count (as in the recount), only verdicts since the story's
        last publication or withdrawal count towards the next (`controller.cyber.Candidate`), and what
        goes into the publication (classes, first seen, devices) comes from the voters' verdicts alone,
        bounded: one oracle's verdict can neither inflate nor break it. One candidate that fails does
        not stop the others."""
        self.indicator_tally.me = self.me
        self.indicator_tally.read(self.index.db, INTRUSION, INDICATOR)
        now = datetime.now(UTC)
        verifies = signature_check(self.index.db)
        published = False
        for (sector, ident), c in sorted(self.indicator_tally.candidates.items()):
            until = self.published_indicators.get(f"{sector}|{ident}") or c.published_until
            if until is not None and _aware(until) > now:
                continue
            fresh = c.fresh()
            if not fresh:
                continue
            voters = sorted((o, t) for o, t in fresh.items() if self._active_in(o, sector)
                            and (verifies is None or verifies(o, t.seq)))
            required = self._cached(f"required:{sector}", partial(self._required, sector))
            if not voters or len(voters) < required:
                continue
            try:
                self._publish(sector, c, voters, required, now)
                published = True
            except ChainError:
                raise  # the chain is down or refused: the loop backs off, not a failed indicator
            except QeaimsError as exc:
                log_line("controller-indicator-failed", sector=sector, value=c.value[:64], error=str(exc)[:200])
        self._decide_safe_modes(published)

    def _decide_safe_modes(self, published: bool) -> None:
        """A sector under a campaign of command attacks goes to safe mode, and leaves it when the evidence
        lapses (`controller._safe_mode`), on the index as it is now (``published``: this pass published, so
        the index is synced again first, and the third device's publication decides in the same pass). Its
        failure is logged: the publications above stand."""
        if published:
            self.index.sync()
        if self._safe_modes is None:
            self._safe_modes = SafeModes(self.me)
            self._safe_modes.load(self.recorder)
        try:
            self._safe_modes.step(self.index.db, self.recorder, datetime.now(UTC))
        except QeaimsError as exc:
            if isinstance(exc, ChainError):
                raise  # the chain is down: the loop backs off and starts over
            log_line("controller-safe-mode-failed", error=str(exc)[:200])

    def _publish(self, sector: str, c: Candidate, voters: list[tuple[str, Told]], required: int,
                 now: datetime) -> None:
        members = self._cached(f"slots:{sector}", partial(self._slots, sector))
        first_seen = min((_iso_or(t.first_seen, now) for _, t in voters), default=now)
        classes = sorted({t.wire_class for _, t in voters if t.wire_class})
        body = {"state": "published", "id": c.id, "kind": c.kind, "value": c.value,
                "confidence": min(100, round(100 * len(voters) / max(members, 1))), "source_sector": sector,
                "first_seen": first_seen.isoformat(), "expires": (now + DEFAULT_TTL).isoformat(),
                "description": (f"{', '.join(classes) or 'wire intrusion'} seen by {len(voters)} of {members} "
                                f"{sector} oracles")[:280],
                "evidence": [[o, t.seq] for o, t in voters], "required": required}
        # the indicator and its device quarantines are written ahead and noted, then sent together: a
        # failed send is retried (`run_once` flushes first), it never publishes the indicator twice
        seq = self.recorder.write_ahead(INDICATOR, to_bytes32(sector), canonical_payload(body))
        self.published_indicators[f"{sector}|{c.id}"] = now + DEFAULT_TTL
        c.after = {o: t.seq for o, t in c.by.items()}
        log_line("controller-indicator-published", sector=sector, kind=c.kind, value=c.value, seq=seq,
                 voters=len(voters))
        if set(classes) & COMMAND_ATTACKS:
            for device in sorted({t.device for _, t in voters if t.device}):
                self._quarantine_device(sector, device, c.id, seq)
        self.recorder.flush()

    def _quarantine_device(self, sector: str, device: str, indicator: str, indicator_seq: int) -> None:
        """A device that took a command it should not have (a write outside its client's profile, a replayed
        command) refuses commands at its gateway until it is repaired: its readings keep flowing, so it
        stays in service (no isolation, which is the quorum's alone). Once per device while in force."""
        key = f"{sector}|{device}"
        self.device_quarantines = self._device_quarantines_in_outbox()  # a lift by the control room counts
        if key in self.device_quarantines:
            return
        ident = f"quarantine-device:{sector}:{device}:{indicator_seq}"
        body = {"state": "applied", "id": ident, "type": "quarantine-device", "sector": sector, "device": device,
                "indicator": indicator, "reason": "a command attack on the device, published by its sector's quorum"}
        seq = self.recorder.write_ahead(COUNTERMEASURE, to_bytes32(sector), canonical_payload(body))  # sent by `_publish`
        self.device_quarantines[key] = ident
        log_line("controller-device-quarantined", sector=sector, device=device, seq=seq)

    def _active_in(self, oracle: str, sector: str) -> bool:
        status, registered = self._cached(f"oracle:{oracle}", partial(self._oracle_record, oracle))
        return status == 1 and registered == sector

    def _slots(self, sector: str) -> int:
        return int(self.client.call1("Registry", "oracleSlots", to_bytes32(sector)))

    def _seal_vaults(self) -> None:
        """A sector's vault is sealed while a quorum-confirmed quarantine of one of its devices is on (a
        compromised gateway must not be a way into patients' or payments' records), and unsealed once
        the last is lifted, but only where this controller sealed it for that: a seal the control room
        ordered stays until the control room lifts it. Compared with the chain's word each time
        (`vaults.onchain.SealWatch`), so a restart between a quarantine and its seal catches up and
        repeats nothing."""
        on = {q.sector for q in self.quarantines.values() if not q.lifted}
        for sector in sorted({q.sector for q in self.quarantines.values()}):
            watch = self._seal_watches.setdefault(sector, SealWatch(self.recorder.client, sector,
                                                                    max_logs_range=self.index.logs.max_range))
            state = watch.state()
            if sector in on and not state.sealed:
                why = ", ".join(sorted(q.sensor for q in self.quarantines.values() if q.sector == sector and not q.lifted))
                self._record_seal(sector, True, f"{AUTO_SEAL}sensor quarantine of {why}")
            elif (sector not in on and state.sealed and self._is_me(state.by)
                  and state.reason.startswith(AUTO_SEAL)):
                self._record_seal(sector, False, f"{AUTO_SEAL}every quarantine of {sector} lifted")

    def _record_seal(self, sector: str, sealed: bool, reason: str) -> None:
        seq = self.recorder.record(VAULT_SEAL, vault_node(sector), seal_payload(sector, sealed, reason))
        log_line("controller-vault-sealed" if sealed else "controller-vault-unsealed", sector=sector, seq=seq)

    def _may_quarantine(self, q: Quarantine) -> bool:
        """Not quarantined now: never, or lifted (the tally then counts only verdicts since the lift,
        so a second quarantine is the attacker back, not the first quorum again)."""
        before = self.quarantines.get(q.key)
        return before is None or before.lifted

    def _not_commanded(self, fresh: list[Quarantine]) -> list[Quarantine]:
        """The quarantines due, but for sensors of devices this controller holds in a commanded state:
        they read what the city told them to (a hospital's ``diverting`` flag while its admissions are
        diverted), which a model trained on normal days calls falsified; and for sensors whose every
        quorum judged the release of such a hold (`RELEASE_ROWS` report periods either side of it,
        where the flag jumps back: `_judged_release`). A quorum of fresh verdicts after that is taken
        (`IntrusionTally` keeps each oracle's latest). Logged once each, not recorded."""
        out: list[Quarantine] = []
        held: dict[str, dict[str, str]] = {}
        given_back: dict[str, dict[str, Release]] = {}
        required = self._required_votes()
        for q in fresh:
            if q.sector not in held:
                trusted = self._is_me
                held[q.sector], given_back[q.sector] = commands_of(self.index.db, q.sector, trusted)
            asset = sensor_asset(q.sensor)
            what = held[q.sector].get(asset)
            release = given_back[q.sector].get(asset)
            if what is None and release is not None and _judged_release(q, release, q.sector, required.get(q.sector, 1)):
                what = f"{release.what}, released: the verdicts judged the release"
            if what is None:
                out.append(q)
            elif f"{q.key}|{q.observed_ms}" not in self._commanded_logged:
                self._commanded_logged.add(f"{q.key}|{q.observed_ms}")
                log_line("controller-quarantine-moot", sector=q.sector, sensor=q.sensor, held_by=what)
        return out

    def _is_me(self, who: str) -> bool:
        return who.lower() == self.me.lower()

    def _record_quarantine(self, q: Quarantine, state: str, **fields: Any) -> int:
        """Written ahead only: the caller notes the state, then flushes (so a failed send is not redone)."""
        body = {"state": state, "sector": q.sector, "sensor": q.sensor, "asset": q.asset, "node": q.node, **fields}
        seq = self.recorder.write_ahead(SENSOR_QUARANTINE, to_bytes32(q.node or q.asset), canonical_payload(body))
        log_line(f"controller-sensor-{state}", sector=q.sector, sensor=q.sensor, node=q.node, seq=seq)
        return seq

    def _active_oracles(self) -> dict[str, str]:
        """Each named oracle that is Active, with its registry sector's name."""
        named = {o for by in self.tally.named.values() for o in by}
        out: dict[str, str] = {}
        for o in named:
            status, sector = self._cached(f"oracle:{o}", partial(self._oracle_record, o))
            if status == 1:
                out[o] = sector
        return out

    def _required_votes(self) -> dict[str, int]:
        sectors = {sector for sector, _ in self.tally.named}
        return {s: self._cached(f"required:{s}", partial(self._required, s)) for s in sectors}

    def _oracle_record(self, oracle: str) -> tuple[int, str]:
        record = self.client.call1("Registry", "oracle", to_checksum(oracle))
        try:
            sector = from_bytes32(bytes(record[0]))
        except KeysError:
            sector = ""
        return int(record[4]), sector

    def _required(self, sector: str) -> int:
        return int(self.client.call1("IsolationQuorum", "requiredVotes", to_bytes32(sector)))

    def _cached(self, key: str, read: Callable[[], _T], ttl_s: float = 5.0) -> _T:
        """A chain view read at most every `ttl_s` (the loop runs twice a second; statuses change rarely)."""
        cached = self._chain_view.get(key)
        if cached is not None and time.monotonic() - cached[0] <= ttl_s:
            return cast(_T, cached[1])
        value = read()
        self._chain_view[key] = (time.monotonic(), value)
        return value


def to_checksum(address: str) -> str:
    return str(Web3.to_checksum_address(address))
