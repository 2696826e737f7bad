"""A child server process whose output goes to a log file, and the wait until it is ready.

The Hardhat node (`chain.hardhat_node`) and Mosquitto (`bus.mosquitto`) are started the same way:
their stdout and stderr appended to one log under their data directory (the log is what an
operator reads when one does not come up), then polled until they answer, exit, or run out of
time. Each says what "ready" means (an RPC answer, a TCP connection) and turns the outcome into
its own error; chain and bus are siblings, so what they share lives here.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["Start", "last_log_lines", "spawn_logged", "wait_ready"]


class Start(Enum):
    READY = "ready"
    EXITED = "exited"  # the child ended before it was ready
    TIMED_OUT = "timed-out"  # still running, never ready within the time given


def spawn_logged(argv: Sequence[str], log_path: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start `argv` with no stdin and stdout and stderr appended to `log_path` (the child keeps the
    file open; ours is closed on return). `popen` passes on (cwd, env, start_new_session, ...)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                **popen)


def wait_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout_s: float,
               interval_s: float) -> Start:
    """Poll `ready()` until it holds, the child exits, or `timeout_s` passes; `ready` may raise to
    give up at once (the caller stops the child)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if ready():
            return Start.READY
        if process.poll() is not None:
            return Start.EXITED
        if time.monotonic() > deadline:
            return Start.TIMED_OUT
        time.sleep(interval_s)


def last_log_lines(log_path: Path, count: int = 1) -> list[str]:
    """The last `count` non-blank lines of a child's log ([] when it has none or cannot be read)."""
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []
    return lines[-count:]
