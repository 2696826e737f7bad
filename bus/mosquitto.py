"""Mosquitto, the distribution's MQTT broker, run as the city's broker whenever it is installed.

Why not the embedded amqtt broker everywhere: a field site runs Mosquitto (or another production
broker), and amqtt 0.12 differs where it matters to "nothing is lost". It does not redeliver a QoS 1
message that was delivered but never acknowledged when a persistent session resumes, it hands a
reconnecting client other topics' retained messages, and with thirty clients on two cores it became
the slowest hop of the city (readings reached the oracles up to a minute late). Mosquitto keeps QoS 1
sessions across client reconnects and, with persistence on, across its own restart; it is a C
process that costs the city almost nothing. The embedded broker stays as the fallback on machines
without Mosquitto (`qeaims broker --engine embedded`, or `auto` when it is not installed).

`MosquittoBroker` has the embedded broker's interface (`start`, `stop`, `url`, context manager).
It writes its configuration under its data directory (``<home>/broker``): one listener on the
given address, sessions kept for clients that ask for them, no per-client queue limit the city
could reach (an oracle that is down for an hour at 30x gets every batch it missed), persistence
saved every few seconds and on a clean stop. Development settings: any client name is accepted
without a password (as with the embedded broker); a site adds TLS listeners and a password file
or certificate authentication in its own configuration.

The broker child is bound to the process that started it (Linux ``PR_SET_PDEATHSIG``): if
`qeaims broker` is killed, Mosquitto goes with it instead of holding the port against the restart.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Self

from bus.errors import IngestError
from core.child import Start, last_log_lines, spawn_logged, wait_ready

__all__ = ["MosquittoBroker", "mosquitto_executable"]

_SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
AUTOSAVE_S = 5  # persistence written at least this often (and on every clean stop)
MAX_QUEUED_MESSAGES = 600_000
MAX_QUEUED_BYTES = 2 * 1024**3


def mosquitto_executable() -> str | None:
    """Path of the installed `mosquitto` binary, or None (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in _SEARCH if os.access(p, os.X_OK)), None)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _check_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Mosquitto binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise IngestError(f"Mosquitto could not listen on {host}:{port}: {exc.strerror or exc}") from None


class MosquittoBroker:
    """A Mosquitto child process listening on `host:port`, with its state under `data_dir`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, data_dir: Path,
                 executable: str | None = None) -> None:
        self.host, self.port, self.data_dir = host, port, Path(data_dir)
        self.executable = executable or mosquitto_executable()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def config(self) -> str:
        """The configuration file's text (Mosquitto 2.0 syntax)."""
        store = self.data_dir / "store"
        return "\n".join([
            "# written by `qeaims broker`: the city's development broker (see bus/mosquitto.py)",
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            "allow_anonymous true",  # development: names without passwords, as the embedded broker
            "persistence true",
            f"persistence_location {store}/",
            f"autosave_interval {AUTOSAVE_S}",
            # per-session queues bounded: a day of the busiest sector at 30x (electricity: ~6 batches a
            # wall second) fits, and an abandoned or hostile session cannot grow the broker without end
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            "max_inflight_messages 100",
            "persistent_client_expiration 1d",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            # as root, stay root: the store lives under the 0700 data directory, which Debian's
            # 'mosquitto' user cannot reach; the broker listens on this machine only (a site's broker
            # runs as its own user, with TLS, passwords and ACLs)
            "user root" if os.geteuid() == 0 else "",
            "",
        ])

    def start(self, timeout_s: float = 10.0) -> Self:
        """Start Mosquitto and return once it accepts connections; `IngestError` with its reason otherwise."""
        if self._process is not None:
            return self
        if self.executable is None:
            raise IngestError("Mosquitto is not installed (Debian: apt-get install mosquitto); "
                              "use the embedded broker (--engine embedded)")
        _check_free(self.host, self.port)  # a broker already there would answer our readiness probe
        (self.data_dir / "store").mkdir(parents=True, exist_ok=True, mode=0o700)
        self.config_path.write_text(self.config())
        process = self._process = spawn_logged([self.executable, "-c", str(self.config_path)], self.log_path,
                                               preexec_fn=_die_with_parent)
        outcome = wait_ready(process, self._accepts, timeout_s, interval_s=0.05)
        if outcome is Start.EXITED:
            self._process = None
            raise IngestError(f"Mosquitto could not listen on {self.host}:{self.port}: {self._last_log_line()}")
        if outcome is Start.TIMED_OUT:
            self.stop()
            raise IngestError(f"Mosquitto did not accept connections on {self.host}:{self.port} "
                              f"within {timeout_s:g} s; see {self.log_path}")
        return self

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop cleanly (SIGTERM: Mosquitto saves its sessions and queued messages), killing it if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def kill(self) -> None:
        """Stop without saving (as a crash would): what was not autosaved is lost."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10.0)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _last_log_line(self) -> str:
        return next(iter(last_log_lines(self.log_path)), "it exited without a word")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
