"""How commands and faults reach wntr: the link is taken out of automatic control and set by hand.

Net3 runs its pumps and pipe 330 from tank levels and the clock. An operator's "stop pump 335" has
to win over "tank 1 low → start pump 335", and a failed pump must not start whatever anyone
commands. So while a link is overridden, the network's own controls that set its status are
removed from the model (kept aside) and the status is set directly; handing the link back to
"auto" restores those controls and the status the link had when they were set aside.

Precedence per link: a failed pump is off; else any closed isolation valve on it closes it; else
the manual open/close; else automatic control.

Why not wntr ``Rule`` objects with a high priority (as ``Pump.add_outage`` does)? The
WNTRSimulator evaluates rules from rule-step 0 on every ``run_sim`` call, so in stepwise
simulation a rule that acts sends the solver back to a past time. Set-aside controls avoid that.

Pump speed has no effect in the WNTRSimulator, so a speed command replaces the pump curve by its
affinity-law scaling (Q·s, H·s²) — the physics a variable-speed drive has.
"""

from __future__ import annotations

from typing import Any

from wntr.network import LinkStatus
from wntr.network.controls import ControlAction

__all__ = ["MAX_PUMP_SPEED", "MIN_PUMP_SPEED", "LinkOverrides"]

MIN_PUMP_SPEED = 0.5
"""Below about half speed a real pump drive is run off instead (and the single-point curves of
Net3 give no useful head there); "stop" is the command for zero."""

MAX_PUMP_SPEED = 1.2


class LinkOverrides:
    """The overrides of one network: manual states, closed isolation valves, failed pumps."""

    def __init__(self, wn: Any) -> None:
        self._wn = wn
        self.manual: dict[str, bool] = {}  # link -> True open / False closed, set by commands
        self.closing_valves: dict[str, set[str]] = {}  # link -> closed isolation valves on it
        self.failed_pumps: set[str] = set()
        self.speeds: dict[str, float] = {}
        self._base_curves = {name: pump.pump_curve_name for name, pump in wn.head_pumps()}
        self._aside: dict[str, list[tuple[str, Any]]] = {}  # link -> its controls, set aside
        self._auto_status: dict[str, Any] = {}  # link -> status when its controls were set aside

    # -- manual and valve overrides -------------------------------------------------------------
    def set_manual(self, link: str, is_open: bool | None) -> None:
        """Hand mode for ``link`` (open or closed), or back to automatic control with ``None``."""
        if is_open is None:
            self.manual.pop(link, None)
        else:
            self.manual[link] = is_open
        self._sync(link)

    def set_valve(self, link: str, valve_id: str, closed: bool) -> None:
        """Record isolation valve ``valve_id`` on ``link`` as closed or open and re-derive the link."""
        valves = self.closing_valves.setdefault(link, set())
        if closed:
            valves.add(valve_id)
        else:
            valves.discard(valve_id)
            if not valves:
                del self.closing_valves[link]
        self._sync(link)

    def _sync(self, link: str) -> None:
        if link in self.failed_pumps or self.closing_valves.get(link):
            wanted: bool | None = False
        else:
            wanted = self.manual.get(link)
        obj = self._wn.get_link(link)
        if wanted is None:
            if link in self._aside:
                for name, control in self._aside.pop(link):
                    self._wn.add_control(name, control)
                _set_status(obj, self._auto_status.pop(link))
            return
        if link not in self._aside:
            self._aside[link] = [(n, c) for n, c in self._wn.controls() if _sets_status_of(c, obj)]
            for name, _ in self._aside[link]:
                self._wn.remove_control(name)
            self._auto_status[link] = obj.status
        _set_status(obj, LinkStatus.Open if wanted else LinkStatus.Closed)

    # -- faults ---------------------------------------------------------------------------------
    def fail_pump(self, pump: str) -> None:
        self.failed_pumps.add(pump)
        self._sync(pump)

    def repair_pump(self, pump: str) -> None:
        """The pump can run again: by hand if it was commanded so, else by its controls."""
        self.failed_pumps.discard(pump)
        self._sync(pump)

    # -- pump speed ------------------------------------------------------------------------------
    def set_speed(self, pump: str, speed: float) -> None:
        """Scale the pump curve by the affinity laws; speed 1 restores the original curve."""
        if pump not in self._base_curves:
            raise ValueError(f"pump {pump!r} has no head curve to scale")
        if not MIN_PUMP_SPEED <= speed <= MAX_PUMP_SPEED:
            raise ValueError(f"speed must be within {MIN_PUMP_SPEED}..{MAX_PUMP_SPEED}, got {speed}")
        link = self._wn.get_link(pump)
        base = self._base_curves[pump]
        if abs(speed - 1.0) < 1e-9:
            link.pump_curve_name = base
            self.speeds.pop(pump, None)
            return
        name = f"{base}@{pump}x{speed:.4f}"
        if name not in self._wn.curve_name_list:
            points = [(q * speed, h * speed * speed) for q, h in self._wn.get_curve(base).points]
            self._wn.add_curve(name, "HEAD", points)
        link.pump_curve_name = name
        self.speeds[pump] = speed

    def speed(self, pump: str) -> float:
        return self.speeds.get(pump, 1.0)


def _sets_status_of(control: Any, link: Any) -> bool:
    return any(action.target() == (link, "status") for action in control.actions())


def _set_status(link: Any, status: Any) -> None:
    ControlAction(link, "status", status).run_control_action()
