"""What the controller has commanded in the field and not undone yet, read back from chain data.

When an isolation puts other assets at risk, the controller protects them before the cascade
arrives (a lift station's inflow diverted to the storm tank, an ATM cluster drained) and records
what each device acknowledged in its ``isolation-applied`` event; its ``reintegrated`` event for the
same isolation records the protective commands undone, and those whose undo waits for another
open isolation (``held``) until a later ``reintegrated`` event sends it (``released``). Between
the two, those assets run in a state the city chose: their sensors read far from normal operation, and an oracle must not take
that deviation for a fault and vote an isolation on it (the storm day isolated the sewage outfall
for the storm tank filling under the controller's own diversion). The isolation's own commands
hold their devices the same way until the reintegration: the storm day's surge diverted hospital-2's
admissions, and between the repair and the reintegration (which takes them back) the oracles called
its ``diverting`` flag falsified and the controller quarantined it. `commanded_assets` gives the
oracles and the controller that list; only events recorded by an account the quorum trusts with
repairs count.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.kinds import kind_by_name

__all__ = ["SILENT", "Answer", "Release", "commanded_assets", "commands_of", "field_ms", "may_have_acted", "released_assets",
           "sensor_asset"]

SILENT = "no answer from the device"  # a device that was online but did not answer in time
# how a device answered a command: done, already in that state, refused, no answer in time, none online
Answer = Literal["acked", "already", "refused", "silent", "offline"]

_APPLIED = kind_by_name("isolation-applied")
_REINTEGRATED = kind_by_name("reintegrated")


def sensor_asset(sensor: str) -> str:
    """The asset a sensor belongs to (``orifice:OR1/opening`` → ``orifice:OR1``)."""
    return sensor.rpartition("/")[0] or sensor


def may_have_acted(answer: dict[str, Any]) -> bool:
    """Whether a protective command recorded in an ``isolation-applied`` event may have moved its
    device: acknowledged (and not already in that state), or sent to a device that did not answer in
    time (a sewage twin takes commands between 5-minute reports; it acted on the diversion after the
    controller stopped waiting). A refusal, or a sector with no device online, moved nothing.
    Events recorded before the ``answer`` field existed are read from ``ok``/``already``/``error``."""
    if "answer" in answer:
        return answer["answer"] in ("acked", "silent")
    if answer.get("ok"):
        return not answer.get("already")
    return answer.get("error") == SILENT


def _holds(answer: dict[str, Any]) -> bool:
    """Whether one of the isolation's own commands holds its device: done, already so (the isolation
    keeps it there), or sent to a device that did not answer in time."""
    if "answer" in answer:
        return answer["answer"] in ("acked", "already", "silent")
    return bool(answer.get("ok")) or answer.get("error") == SILENT


@dataclass(frozen=True)
class Release:
    """A command the controller held and has given back: what it was, and the field time (ms) at
    which its devices answered the undo (None when no answer carried one)."""

    what: str
    field_ms: int | None


def commanded_assets(db: sqlite3.Connection, sector: str, trusted: Callable[[str], bool]) -> dict[str, str]:
    """Assets of `sector` held in a commanded state now (a protection, or the isolation's own isolate
    and restore commands, until its reintegration): asset → what was commanded, e.g.
    ``"orifice:OR1/gate open (isolation 2)"``. `trusted(address)` says whether an event's recorder
    may speak for the controller (it holds the quorum's repair role)."""
    return _replay(db, sector, trusted)[0]


def released_assets(db: sqlite3.Connection, sector: str, trusted: Callable[[str], bool]) -> dict[str, Release]:
    """Assets of `sector` the controller held and has since given back (and does not hold again),
    each with its latest release. A command's effect outlasts it: the first reading after a hospital's
    diversion is lifted shows its ``diverting`` flag jump back, which a model trained on normal days
    calls falsified; and the other hospitals' two-hour arrival counts carry the diverted patients
    for two hours (`SectorPlugin.command_aftermath_s`). The storm day quarantined the flag and
    isolated hospital-1 for exactly these."""
    return commands_of(db, sector, trusted)[1]


def commands_of(db: sqlite3.Connection, sector: str, trusted: Callable[[str], bool]
                ) -> tuple[dict[str, str], dict[str, Release]]:
    """`commanded_assets` and `released_assets` from one reading of the events (a caller that needs
    both reads the event table once)."""
    held, released = _replay(db, sector, trusted)
    return held, {asset: r for asset, r in released.items() if asset not in held}


def _release_ms(body: dict[str, Any], sector: str, asset: str) -> int | None:
    """The field time (ms) of a ``reintegrated`` step for `asset`: the latest time a device reported
    acting on it, else (its undo unanswered yet) on any device of its `sector`. Each sector's twin answers on its own clock,
    and one device's answer must not time another's release: the latest `at` of the whole step let an
    undo in another sector (hours ahead) or one device answering with a far-future time stretch the
    release window of every asset given back with it (review, release)."""
    answers = [a for a in (*body.get("acks", []), *body.get("unprotected", []), *body.get("released", []))
               if isinstance(a, dict) and a.get("sector") == sector]
    own = [ms for ms in (field_ms(a.get("at")) for a in answers if str(a.get("asset")) == asset) if ms is not None]
    times = own or [ms for ms in (field_ms(a.get("at")) for a in answers) if ms is not None]
    return max(times) if times else None


def field_ms(at: Any) -> int | None:
    """A field time (ISO 8601, a twin's clock) in ms since the epoch, None if absent or unreadable.

    A time without a UTC offset is UTC, as every twin's clock is: read as the host's local time it
    moved a release or a verdict by the host's offset (hours), and the release window with it."""
    if not isinstance(at, str):
        return None
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    return int((when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp() * 1000)


def _replay(db: sqlite3.Connection, sector: str, trusted: Callable[[str], bool]
            ) -> tuple[dict[str, str], dict[str, Release]]:
    """(assets held now → what, assets given back → their latest release), from the events in order."""
    held: dict[tuple[str, int], dict[str, str]] = {}  # (recorder, isolation) → asset → command
    released: dict[str, Release] = {}
    rows = db.execute("SELECT oracle, kind, payload FROM events WHERE kind IN (?, ?) ORDER BY block, log_index",
                      (_APPLIED, _REINTEGRATED)).fetchall()
    for recorder, kind, payload in rows:
        if not trusted(str(recorder)):
            continue
        try:
            body = json.loads(bytes(payload))
            key = (str(recorder).lower(), int(body["proposal"]))
            if int(kind) == _REINTEGRATED:
                # an undo another open isolation still needed waits (``held``) until a later
                # reintegration sends it (``released``, from the isolation it belongs to)
                before = held.pop(key, {})
                waiting = {str(h["asset"]) for h in body.get("held", []) if h.get("of") == "protection"}
                if waiting & before.keys():
                    held[key] = {asset: what for asset, what in before.items() if asset in waiting}
                released.update({asset: Release(what, _release_ms(body, sector, asset))
                                 for asset, what in before.items() if asset not in waiting})
                for done in body.get("released", []):
                    what = held.get((key[0], int(done["from"])), {}).pop(str(done["asset"]), None)
                    if what is not None:
                        released[str(done["asset"])] = Release(what, _release_ms(body, sector, str(done["asset"])))
                continue
            step = body.get("step", "applied")
            if step not in ("applied", "restored"):
                continue
            # the isolation's own commands (its isolate and restore plans: a hospital's admissions
            # diverted, a valve shut) hold their devices as much as its protections do, until the
            # reintegration gives them back; a ``restored`` step (same kind) adds its restore commands
            own = {str(a["asset"]): f"{a['actuator']} {a['action']} (isolation {key[1]})"
                   for a in body.get("acks", []) if _holds(a) and a.get("sector") == sector}
            # either step adds to what the isolation holds, never replaces it: an ``applied`` step
            # recorded again (a controller that lost its outbox walks its isolations anew, and its
            # devices answer "already") must not drop what the first one moved
            held.setdefault(key, {}).update(own)
            if step == "applied":
                held[key].update({str(a["asset"]): f"{a['actuator']} {a['action']} (isolation {key[1]})"
                                  for a in body.get("protected", []) if may_have_acted(a) and a.get("sector") == sector})
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a controller step this reader understands: it commands nothing
    now = {asset: what for assets in held.values() for asset, what in assets.items()}
    return now, released
