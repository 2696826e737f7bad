"""The heal bench's oracles, each a process of its own, as `qeaims up` runs them.

In one interpreter with the twin, SCADA, the controller and the chain watcher, four oracles shared
one GIL on two cores: the same fault row reached the four verdicts over 0.7 to 3.2 s, and the
third vote (the one that executes the isolation) waited for the slowest of three. Each oracle
here is `oracles.process.run_oracle` (the code `qeaims oracle` runs) in a spawned process, with a
pipe on which the bench asks whether it has reached the steady state a fault is timed from.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from core.config import Settings
from core.errors import QeaimsError
from core.logs import setup_logging
from core.messages import Sector
from oracles.node import OracleNode
from oracles.process import OracleProcessOptions, run_oracle

__all__ = ["OracleProcess", "not_steady", "start_oracles"]

_STARTING = "is starting"


@dataclass
class OracleProcess:
    index: int
    process: BaseProcess
    conn: Connection
    lock: threading.Lock

    def not_steady(self, node: str, timeout_s: float = 30.0) -> str:
        """What keeps `node` from steady state in this oracle ("" when nothing does)."""
        with self.lock:
            if not self.process.is_alive():
                return f"exited (code {self.process.exitcode})"
            self.conn.send(("steady", node))
            if not self.conn.poll(timeout_s):
                return f"did not answer within {timeout_s:g} s"
            return str(self.conn.recv())

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop it as SIGTERM stops `qeaims oracle` (it anchors what it stored), then reap it."""
        with self.lock:
            if self.process.is_alive():
                try:
                    self.conn.send(("stop", ""))
                except OSError:
                    pass
            self.process.join(timeout_s)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5.0)
            self.conn.close()

    def check(self) -> None:
        """Raise if the process died (a bench component failed)."""
        if not self.process.is_alive() and self.process.exitcode is not None:
            raise QeaimsError(f"oracle {self.index} exited with code {self.process.exitcode}")


def start_oracles(settings: Settings, sector: Sector, count: int, options: OracleProcessOptions) -> list[OracleProcess]:
    """Spawn oracles 1…count of `sector`; each answers `not_steady` with "is starting" until it subscribed."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads and sockets
    log = bool(logging.getLogger("qeaims").handlers)  # the bench's caller wants the components' log lines
    out = []
    for index in range(1, count + 1):
        parent, child = context.Pipe()
        process = context.Process(target=_main, args=(settings, sector, index, options, child, log),
                                  name=f"bench-oracle-{index}", daemon=True)
        process.start()
        child.close()
        out.append(OracleProcess(index, process, parent, threading.Lock()))
    return out


def not_steady(node_obj: OracleNode, node: str) -> str:
    """What keeps `node` from steady state in one oracle: a fault episode open on it, a reintegration
    it has not seen yet or its settling window after it (a fault inside it is acted on later, by
    design: it would be timed from the window, not from the fault), or more than two report periods
    of readings unjudged."""
    if any(key.startswith(f"{node}|fault") for key in list(node_obj.stream.open_episodes)):
        return "still sees a fault on it"
    if node_obj.under_repair(node):  # back on-chain, but this oracle's settling has not started yet
        return "has not seen the reintegration yet"
    if node_obj.settling(node):
        return "is in its settling window after the reintegration"
    if node_obj.stream.rows < node_obj.stream.warmup or node_obj.backlog() > 2 * len(node_obj.stream.model.sensors):
        return f"has not caught up with the readings ({node_obj.backlog()} unjudged)"
    return ""


def _main(settings: Settings, sector: Sector, index: int, options: OracleProcessOptions, conn: Connection,
          log: bool) -> None:
    """The child: `run_oracle` in a thread, the bench's questions on the pipe in the main thread."""
    if log:
        setup_logging()
    stop = threading.Event()
    ready: list[OracleNode] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            run_oracle(settings, sector, index, options, stop=stop, on_ready=ready.append)
        except BaseException as exc:  # noqa: BLE001 - reported through the exit code
            failure.append(exc)

    loop = threading.Thread(target=body, name="oracle", daemon=True)
    loop.start()
    try:
        while loop.is_alive():
            if not conn.poll(0.2):
                continue
            what, node = conn.recv()
            if what == "stop":
                break
            with_node = ready[0] if ready else None
            try:
                conn.send(_STARTING if with_node is None else not_steady(with_node, node))
            except RuntimeError:  # the loop changed its episodes while we looked: ask again
                conn.send("is busy, ask again")
    except (EOFError, OSError):  # the bench went away
        pass
    stop.set()
    loop.join(60.0)
    if failure:
        raise SystemExit(f"oracle {index} failed: {type(failure[0]).__name__}: {failure[0]}")
