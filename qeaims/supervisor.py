"""The supervisor behind `qeaims up`: the city's processes on one machine, kept running.

Each component is an ordinary `qeaims` command (`broker`, `twin --sector S`, `oracles --sector S
--count N`) run as a child process, as an operator would run it on another machine (where each
oracle runs alone: `oracle --sector S --index I`; on one machine a sector's oracles share a host
process, which pays the imports once, see `oracles.process.run_oracle_host`).
The supervisor starts them in dependency order (broker, oracles, then the twins that feed them and the
API that shows what they record),
restarts any that dies (its work is crash-safe, so a restart is always allowed) with a growing
back-off, and writes what it sees to ``<home>/run/status.json`` after every change, which is
what `qeaims ps` and `qeaims up` read. Each child's output goes to ``<home>/run/logs/<name>.log``.

On SIGTERM it stops the twins first (no new readings), then the oracles (each anchors what it
stored before it exits), then the broker; anything still alive after the grace period is killed.
The chain is not the supervisor's: it belongs to `qeaims chain up|down` (a keeper journals it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from core.config import Settings
from core.errors import ConfigError
from core.messages import Sector

__all__ = ["Component", "Supervisor", "is_qeaims", "pid_alive", "plan", "read_status", "run_dir", "status_path"]

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_S = 30.0
"""A child that ran this long before it died was healthy: its next restart starts the back-off again
at its first step. Without it every crash in a component's life counted (found by the crash campaign:
the fourth kill of an oracle host in an hour waited 10 s to restart, the fifth 30 s)."""


def run_dir(settings: Settings) -> Path:
    return settings.home / "run"


def status_path(settings: Settings) -> Path:
    return run_dir(settings) / "status.json"


@dataclass(frozen=True)
class Component:
    name: str  # "broker", "twin-water", "oracles-water"
    args: tuple[str, ...]  # the qeaims sub-command and its flags
    stage: int  # start order; stopped in reverse (twins before oracles before the broker)
    ready: str = '-started"'  # what its log says once it is ready (any ``*-started`` line by default)


WIRE_PORT_OFFSET = 10
"""A sector's gateway listens on the broker's port + 10 + the sector's place in `Sector` (1893-1898 by default)."""


def wire_ports(sectors: Sequence[Sector], mqtt_port: int) -> dict[Sector, int]:
    """Each sector's gateway port in front of a broker on `mqtt_port` (`qeaims up --wire-watch`)."""
    ports = {s: mqtt_port + WIRE_PORT_OFFSET + list(Sector).index(s) for s in sectors}
    if any(port > 65535 for port in ports.values()):
        raise ConfigError(f"--mqtt-port {mqtt_port} leaves no room for the gateways' ports above it "
                          f"(+{WIRE_PORT_OFFSET}..+{WIRE_PORT_OFFSET + len(Sector) - 1}): choose a lower one")
    return ports


def plan(sectors: Sequence[Sector], *, oracles_per_sector: int, mqtt_port: int, speed: float,
         kme_port: int | None = None, wire_learn_field_s: float | None = None,
         api_port: int | None = None) -> list[Component]:
    """What `qeaims up` runs for these sectors (with `kme_port`: the KME that keys the secure links; with
    `wire_learn_field_s`: each sector's gateway on its twin's path, learning from that much field time;
    with `api_port`: the API and dashboard on loopback, `qeaims serve`)."""
    out = [Component("broker", ("broker", "--port", str(mqtt_port)), 0)]
    if kme_port is not None:
        out.append(Component("kme", ("kme", "--port", str(kme_port)), 0))
    out.append(Component("controller", ("controller", "--mqtt-port", str(mqtt_port), "--speed", f"{speed:g}"), 1))
    gateways = wire_ports(sectors, mqtt_port) if wire_learn_field_s is not None else {}
    for sector in sectors:  # one host process per sector, its oracles on their own threads (`run_oracle_host`)
        wire = ("--wire-port", str(gateways[sector]), "--wire-learn-s", f"{wire_learn_field_s / speed:g}") \
            if wire_learn_field_s is not None else ()
        out.append(Component(f"oracles-{sector.value}", (
            "oracles", "--sector", sector.value, "--count", str(oracles_per_sector), "--mqtt-port", str(mqtt_port),
            *wire), 1, ready='"oracle-host-started"'))
    for sector in sectors:  # a watched twin reaches the broker through its sector's gateway
        out.append(Component(f"twin-{sector.value}", (
            "twin", "--sector", sector.value, "--speed", f"{speed:g}", "--mqtt-port",
            str(gateways.get(sector, mqtt_port))), 2))
    if api_port is not None:  # it only reads the chain (and the twins' service messages): after what writes it
        out.append(Component("api", ("serve", "--port", str(api_port)), 2, ready='"api-started"'))
    return out


@dataclass
class ChildState:
    name: str
    pid: int | None = None
    state: str = "starting"  # starting (launched, not yet ready), running, restarting, stopped
    restarts: int = 0
    started_at: str = ""
    last_exit: int | None = None
    log: str = ""
    _next_start: float = field(default=0.0, repr=False)
    _started: float = field(default=0.0, repr=False)  # monotonic time of the last start
    _failures: int = field(default=0, repr=False)  # crashes in a row, each within STABLE_S of its start
    _log_offset: int = field(default=0, repr=False)


def read_status(settings: Settings) -> dict[str, Any] | None:
    """The supervisor's last status, or None if it never ran here."""
    path = status_path(settings)
    try:
        value: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # being rewritten right now: the caller polls again
    return value


def is_qeaims(pid: int, role: str = "") -> bool:
    """Is `pid` still a `qeaims` process (of this `role`, e.g. ``supervise``), not a reused pid?"""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"qeaims" in argv and (not role or role.encode() in argv)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    def __init__(self, settings: Settings, components: Sequence[Component], *, grace_s: float = 15.0,
                 meta: dict[str, Any] | None = None) -> None:
        """`meta` goes into the status file as is (the city's speed and broker port, for scenarios)."""
        self.meta = dict(meta or {})
        self.settings = settings
        self.components = list(components)
        self.grace_s = grace_s
        self.logs = run_dir(settings) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.states = {c.name: ChildState(c.name, log=str(self.logs / f"{c.name}.log")) for c in self.components}
        self._files: dict[str, IO[bytes]] = {}
        self.stopping = False

    def _command(self, component: Component) -> list[str]:
        flags = ["--home", str(self.settings.home)]
        if self.settings.rpc_url_override:
            flags += ["--rpc-url", self.settings.rpc_url_override]
        else:
            flags += ["--port", str(self.settings.rpc_port)]
        return [sys.executable, "-m", "qeaims", *flags, *component.args]

    def _start(self, component: Component) -> None:
        state = self.states[component.name]
        log = self._files.get(component.name)
        if log is None:
            log = open(state.log, "ab")  # noqa: SIM115 - kept open for the child's whole life
            self._files[component.name] = log
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        state._log_offset = os.fstat(log.fileno()).st_size
        child = subprocess.Popen(self._command(component), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env)
        self.children[component.name] = child
        state.pid, state.state, state._started = child.pid, "starting", time.monotonic()
        state.started_at = datetime.now(UTC).isoformat(timespec="seconds")

    def write_status(self) -> None:
        path = status_path(self.settings)
        body = {"supervisor": os.getpid(), "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                "stopping": self.stopping, **self.meta,
                "components": [{k: v for k, v in asdict(s).items() if not k.startswith("_")}
                               for s in self.states.values()]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2))
        os.replace(tmp, path)

    def _ready(self, component: Component) -> bool:
        """Has the child logged its ready line (subscribed, listening) since it was started?"""
        state = self.states[component.name]
        try:
            with open(state.log, "rb") as log:
                log.seek(state._log_offset)
                return component.ready.encode() in log.read()
        except OSError:
            return False

    def start_all(self, stop: threading.Event, *, ready_timeout_s: float = 900.0) -> None:
        """Start stage by stage; a stage starts once the previous one is ready (an oracle subscribed
        before its twin publishes, or it would miss the first readings)."""
        for stage in sorted({c.stage for c in self.components}):
            if stop.is_set():
                return
            for component in (c for c in self.components if c.stage == stage):
                self._start(component)
            self.write_status()
            deadline = time.monotonic() + ready_timeout_s
            while not stop.is_set() and time.monotonic() < deadline:
                if self.check():
                    self.write_status()
                if all(self.states[c.name].state == "running" for c in self.components if c.stage == stage):
                    break
                time.sleep(0.2)

    def check(self) -> bool:
        """Restart children that died; True if anything changed."""
        changed = False
        now = time.monotonic()
        for component in self.components:
            state = self.states[component.name]
            child = self.children.get(component.name)
            if state.state == "restarting" and now >= state._next_start:
                self._start(component)
                changed = True
            elif state.state == "starting" and child is not None and child.poll() is None and self._ready(component):
                state.state = "running"
                changed = True
            elif child is not None and state.state in ("starting", "running") and child.poll() is not None:
                state.last_exit, state.pid = child.returncode, None
                if now - state._started >= STABLE_S:
                    state._failures = 0
                delay = RESTART_BACKOFF_S[min(state._failures, len(RESTART_BACKOFF_S) - 1)]
                state.restarts += 1
                state._failures += 1
                state.state, state._next_start = "restarting", now + delay
                changed = True
        return changed

    def stop_all(self) -> None:
        self.stopping = True
        self.write_status()
        for stage in sorted({c.stage for c in self.components}, reverse=True):
            group = [c for c in self.components if c.stage == stage and c.name in self.children]
            for component in group:
                child = self.children[component.name]
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s
            for component in group:
                child = self.children[component.name]
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                state = self.states[component.name]
                state.state, state.pid, state.last_exit = "stopped", None, child.returncode
            self.write_status()
        for log in self._files.values():
            log.close()

    def run(self, stop: threading.Event) -> None:
        try:
            self.start_all(stop)
            while not stop.wait(0.5):
                if self.check():
                    self.write_status()
        finally:
            self.stop_all()


def install_stop_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop
