"""The embedded chain's processes, found and stopped safely: pid files, /proc checks, sockets.

Split from `chain.node` (which starts, replays and stops the chain) so that module reads as the
story of a start. Everything here errs on the side of touching nothing that is not this chain's:
a pid file's number is believed only when /proc shows this chain's Anvil or keeper behind it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from core.config import Settings, project_root

__all__ = ["find_anvil", "journal_path", "listening_port", "listens_on", "pid_file", "port_listening", "read_pid", "spawn",
           "state_cache", "stop_process"]


def pid_file(settings: Settings, name: str = "anvil") -> Path:
    return settings.chain_dir / f"{name}.pid"


def journal_path(settings: Settings) -> Path:
    return settings.chain_dir / "journal.jsonl"


def state_cache(settings: Settings) -> Path:
    """Where this chain's Anvil spills old states (see `chain.node._state_cache`); also how its
    Anvil is recognised: no other chain's Anvil has this `--cache-path`."""
    return settings.chain_dir / "anvil-states"


def port_listening(host: str, port: int) -> bool:
    """Whether anything accepts TCP connections on host:port (a stopped process still does: the
    kernel completes the handshake into its backlog)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as probe:
            # a port in the ephemeral range with nothing on it can be "connected" to by the probe itself
            # (TCP simultaneous open: the kernel picked that very port as the probe's source)
            return bool(probe.getsockname() != probe.getpeername())
    except OSError:
        return False


def _argv(pid: int) -> list[str] | None:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return None


def _option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def is_ours(pid: int, name: str, settings: Settings) -> bool:
    """Whether ``pid`` runs this chain's Anvil or keeper, as its pid file claims.

    After a reboot (or pid reuse) a pid file's number can belong to another program, or to another
    chain's Anvil or keeper on the same machine (a second home, a benchmark's chain): none of them may
    be signalled, cleaned up after or taken for this chain. So the command line must be the program
    *and* this chain's, and run as this user: Anvil with this chain's state cache (unique per chain directory; its port is a
    private one the kernel picked), the keeper on this chain's journal. Where /proc cannot tell
    (another OS), the pid file is believed."""
    argv = _argv(pid)
    if argv is None:
        return True
    try:
        if Path(f"/proc/{pid}").stat().st_uid != os.getuid():  # we started it, so it runs as us
            return False
    except OSError:
        return False
    if name == "anvil":
        return Path(argv[0]).name == "anvil" and _option(argv, "--cache-path") == str(state_cache(settings))
    return "chain.keeper" in argv[:3] and _option(argv, "--journal") == str(journal_path(settings))


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def read_pid(settings: Settings, name: str = "anvil") -> int | None:
    """The live process of this chain that ``name``'s pid file names, or None."""
    try:
        pid = int(pid_file(settings, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's: ours only if its command line says so
        pass
    if is_zombie(pid) or not is_ours(pid, name, settings):
        return None
    return pid


def find_anvil(settings: Settings) -> int | None:
    """This chain's live Anvil: the pid file's, or, if that is lost or stale, any process whose command
    line is this chain's Anvil (the pid file is then written again). Two Anvils on one state cache
    would spill into each other's history, so a start must find the one already running."""
    pid = read_pid(settings)
    if pid is not None:
        return pid
    for entry in Path("/proc").glob("[0-9]*"):
        found = int(entry.name)
        argv = _argv(found)
        if argv and Path(argv[0]).name == "anvil" and is_ours(found, "anvil", settings) and not is_zombie(found):
            pid_file(settings).write_text(f"{found}\n")
            return found
    return None


def listening_port(pid: int) -> int | None:
    """The loopback TCP port that process ``pid`` itself listens on (matched by socket inode), or None.

    Anvil is started with ``--port 0``: the kernel picks a free port, so no other process can hold it
    first, and this reads back which one it is from the socket Anvil owns, not from a port number that
    anything could answer on."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    inodes = {link[len("socket:["):-1] for link in links if link.startswith("socket:[")}
    for line in table:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes and local.startswith("0100007F:"):  # LISTEN on 127.0.0.1
            return int(local.split(":")[1], 16)
    return None


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening TCP socket on ``port`` (any address, IPv4 or 6)."""
    try:
        inodes = {link[len("socket:["):-1] for link in (os.readlink(f"/proc/{pid}/fd/{fd}")
                                                         for fd in os.listdir(f"/proc/{pid}/fd"))
                  if link.startswith("socket:[")}
        tables = [Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:] for name in ("tcp", "tcp6")]
    except OSError:
        return False
    return any(fields[3] == "0A" and fields[9] in inodes and int(fields[1].rsplit(":", 1)[1], 16) == port
               for table in tables for fields in (line.split() for line in table))


def spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=project_root())
    finally:
        log.close()


def stop_process(settings: Settings, name: str, sig: signal.Signals, wait_s: float = 30.0) -> bool:
    """Signal this chain's ``name`` process and wait for its end (SIGKILL after ``wait_s``)."""
    pid = find_anvil(settings) if name == "anvil" else read_pid(settings, name)
    if pid is None:
        pid_file(settings, name).unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if is_zombie(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    pid_file(settings, name).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
