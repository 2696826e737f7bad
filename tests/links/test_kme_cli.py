"""`qeaims kme` as a process: it serves until SIGTERM, and bad input is one ``error:`` line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from links.files import LinkFiles
from links.kme.client import KmeClient
from links.pki import DevPki
from links.plan import LinkPlan, LinkSpec
from tests.conftest import free_port
from tests.support import wait_until

pytestmark = pytest.mark.city


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "QEAIMS_HOME": str(home), "COLUMNS": "200"}


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qeaims", "kme", *args], env=_env(home), capture_output=True,
                          text=True, timeout=60, check=False)


def _plan(home: Path, port: int) -> LinkPlan:
    plan = LinkPlan(links=(LinkSpec(master="alpha", slave="beta", distance_km=10.0),),
                    kme_url=f"https://127.0.0.1:{port}")
    plan.save(LinkFiles.of(home).plan)
    return plan


def test_no_plan_is_one_error_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.startswith("error: no link plan at") and len(done.stderr.strip().splitlines()) == 1


def test_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    port = free_port()
    _plan(tmp_path, port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = _run(tmp_path, "--port", str(port))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert errors == [(f"error: the KME cannot listen on 127.0.0.1:{port}: Address already in use "
                       "(is another KME running? choose another --port)")]


def test_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    plan = _plan(tmp_path, port)
    files = LinkFiles.of(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "qeaims", "kme", "--port", str(port)], env=_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (files.pki / "sae" / "beta.pem").is_file(), 30.0, what="the PKI")

        def keys() -> int:
            try:
                with KmeClient(plan.kme_url, "alpha", DevPki(files.pki), timeout_s=2.0) as kme:
                    return kme.status("beta").stored_key_count
            except Exception:  # noqa: BLE001 - not up yet
                return 0

        wait_until(keys, 30.0, what="the KME to answer with keys", interval_s=0.2)
        with KmeClient(plan.kme_url, "alpha", DevPki(files.pki)) as master:
            given = master.enc_keys("beta")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events[0] == "kme-started" and events[-1] == "kme-stopped"
    saved = json.loads(files.kme_state.read_text())
    assert given[0].key_ID in saved["links"]["alpha~beta"]["reserved"]
