"""`qeaims serve` (a real uvicorn process), its tokens, the API in `qeaims up`'s plan, and `qeaims bench api`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException

from api.auth import TokenStore
from core.config import load_settings
from core.errors import ConfigError, QeaimsError
from core.messages import Sector
from qeaims import bench_api
from qeaims.cli import main
from qeaims.dev_tokens import ensure_dev_tokens
from qeaims.supervisor import plan
from tests.conftest import free_port


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command run in this process: its exit code, stdout and stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, _, err = _cli(args, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert lines[0].startswith("error"), lines
    return lines[0]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("QEAIMS_API_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


# --- qeaims serve, a real server -------------------------------------------------------------------


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float) -> str:
    """Read the server's stderr until a line with `needle` (the serve process logs JSON lines there)."""
    assert proc.stderr is not None
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if needle in line:
                found.append(line)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    assert found, f"no {needle!r} within {timeout_s} s; stderr: {''.join(seen)[-2000:]}"
    return found[0]


def test_serve_answers_with_a_token_and_says_when_it_listens(home: Path) -> None:
    token = TokenStore(home / "api").add("auditor", "audit-1")
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    cmd = [sys.executable, "-m", "qeaims", "--home", str(home), "--port", str(free_port())]
    server = subprocess.Popen([*cmd, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = _wait_for_line(server, '"api-started"', 60)
        started = json.loads(line)
        assert started["event"] == "api-started" and started["url"] == f"http://127.0.0.1:{port}/"
        api = next(c for c in plan([Sector.WATER], oracles_per_sector=1, mqtt_port=1, speed=1.0, api_port=port)
                   if c.name == "api")
        assert api.ready in line  # what the supervisor waits for is what the server logs
        who = httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"},
                        timeout=10)
        assert who.status_code == 200 and who.json() == {"role": "auditor", "label": "audit-1", "sector": None,
                                                         "governor": None}
        anonymous = httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", timeout=10)
        assert anonymous.status_code == 401 and set(anonymous.json()) == {"error"}
        # the same port again: one line naming the port, while the first server keeps serving
        again = subprocess.run([*cmd, "serve", "--port", str(port)], env=env, capture_output=True, text=True,
                               timeout=60, check=False)
        assert again.returncode == 2, again.stderr
        assert again.stderr.strip().splitlines() == [again.stderr.strip()] and f"port {port}" in again.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", timeout=10).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, server.returncode  # a stop asked for is a clean stop (`qeaims down` checks it)
    assert server.stderr is not None and '"api-stopped"' in server.stderr.read()


def test_serve_refuses_a_bad_port_or_a_public_host_in_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--home", str(home), "serve"]
    assert "--port" in _one_error([*base, "--port", "0"], capsys)
    assert "--port" in _one_error([*base, "--port", "65536"], capsys)
    assert "--port" in _one_error([*base, "--port", "http"], capsys)
    with socket.socket() as taken:  # were the refusal gone, the bind would fail here, not serve for ever
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        refused = _one_error([*base, "--host", "0.0.0.0", "--port", str(taken.getsockname()[1])], capsys)
    assert "not a loopback address" in refused and "--public-bind" in refused and "in clear" in refused
    assert "not a loopback address" in _one_error([*base, "--host", "example.org"], capsys)
    assert "not a loopback address" in _one_error([*base, "--host", "192.168.1.10", "--port", "8081"], capsys)


def test_token_add_list_remove(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--home", str(home), "serve", "token"]
    code, out, err = _cli([*base, "add", "--role", "operator", "--sector", "water", "--label", "ops-w"], capsys)
    assert code == 0, err
    token = out.strip()
    assert token.startswith("qe_") and "shown only now" in err
    store = TokenStore(home / "api")
    who = store.lookup(token)
    assert who is not None and (who.role, who.sector, who.label) == ("operator", "water", "ops-w")
    assert (home / "api" / "tokens.json").stat().st_mode & 0o777 == 0o600
    assert token not in (home / "api" / "tokens.json").read_text()  # kept as a digest

    code, out, err = _cli([*base, "add", "--role", "auditor", "--label", "audit"], capsys)
    auditor = out.strip()
    assert code == 0 and store.lookup(auditor) is not None, err
    code, out, _ = _cli([*base, "list", "--json"], capsys)
    listed = json.loads(out)["tokens"]
    assert code == 0 and [(t["label"], t["role"], t["sector"]) for t in listed] == [
        ("ops-w", "operator", "water"), ("audit", "auditor", None)]
    stored = json.loads((home / "api" / "tokens.json").read_text())["tokens"]
    assert not any(token in out or auditor in out or e["sha256"] in out for e in stored)  # never a token
    code, out, _ = _cli([*base, "list"], capsys)
    assert code == 0 and "ops-w" in out and "operator" in out and token not in out

    code, out, _ = _cli([*base, "remove", "--label", "ops-w"], capsys)
    assert code == 0 and "removed" in out
    assert store.lookup(token) is None and store.lookup(auditor) is not None
    assert "no token labelled 'ops-w'" in _one_error([*base, "remove", "--label", "ops-w"], capsys)
    assert "needs --sector" in _one_error([*base, "add", "--role", "operator", "--label", "x"], capsys)
    assert "unknown sector 'gas'" in _one_error([*base, "add", "--role", "operator", "--sector", "gas",
                                                 "--label", "x"], capsys)
    assert "choose auditor, operator or governor" in _one_error([*base, "add", "--role", "root", "--label", "x"],
                                                                capsys)
    assert "no governor keystore" in _one_error([*base, "add", "--role", "governor", "--governor", "mallory",
                                                 "--label", "x"], capsys)
    assert "--sector is for an operator" in _one_error([*base, "add", "--role", "auditor", "--sector", "water",
                                                        "--label", "x"], capsys)
    assert [e.label for e in store.entries()] == ["audit"]  # no refused add left a token behind


def test_dev_tokens_one_per_role_kept_across_restarts(home: Path) -> None:
    settings = load_settings(home=home)
    governors = settings.keystore_dir / "governors"
    governors.mkdir(parents=True)
    for name in ("electricity", "water"):  # what the development deployment leaves (one per sector)
        (governors / f"{name}.json").write_text("{}")
    path = ensure_dev_tokens(settings, [Sector.WATER], "http://127.0.0.1:8080/")
    assert path.stat().st_mode & 0o777 == 0o600
    first = {t["label"]: t for t in json.loads(path.read_text())["tokens"]}
    assert set(first) == {"dev-auditor", "dev-operator-water", "dev-governor-electricity", "dev-governor-water"}
    store = TokenStore(settings.home / "api")
    for label, entry in first.items():
        who = store.lookup(entry["token"])
        assert who is not None and who.label == label and who.role == entry["role"]
    assert store.lookup(first["dev-governor-water"]["token"]).governor == "water"  # type: ignore[union-attr]

    store.remove("dev-auditor")  # revoked by hand: made anew; the others are kept; a new sector is added
    second = {t["label"]: t for t in json.loads(
        ensure_dev_tokens(settings, [Sector.WATER, Sector.BANKING], "u").read_text())["tokens"]}
    assert second["dev-operator-water"]["token"] == first["dev-operator-water"]["token"]
    assert second["dev-auditor"]["token"] != first["dev-auditor"]["token"]
    assert store.lookup(second["dev-auditor"]["token"]) is not None
    assert store.lookup(second["dev-operator-banking"]["token"]).sector == "banking"  # type: ignore[union-attr]


# --- the API in qeaims up ----------------------------------------------------------------------------


def test_plan_runs_the_api_after_the_controller_and_oracles_when_asked() -> None:
    sectors = [Sector.WATER, Sector.ELECTRICITY]
    without = plan(sectors, oracles_per_sector=4, mqtt_port=1883, speed=15.0)
    assert "api" not in {c.name for c in without}
    components = plan(sectors, oracles_per_sector=4, mqtt_port=1883, speed=15.0, kme_port=8443, api_port=8099)
    api = next(c for c in components if c.name == "api")
    assert api.args == ("serve", "--port", "8099")  # loopback: serve's default host, no --public-bind
    writers = [c for c in components if c.name == "controller" or c.name.startswith("oracles-")]
    assert all(api.stage > c.stage for c in writers)
    assert api.ready == '"api-started"'
    assert [c.name for c in components if c.name != "api"] == [c.name for c in without[:1]] + ["kme"] + [
        c.name for c in without[1:]]  # nothing else changed


def test_up_refuses_an_api_port_in_use_before_starting_anything(home: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        line = _one_error(["--home", str(home), "--port", str(free_port()), "up", "--sectors", "water",
                           "--api-port", str(port)], capsys)
    assert f"--api-port {port} is in use" in line and "--no-api" in line
    assert not (home / "run").exists()  # refused before the chain, the training, the supervisor


def test_ps_shows_the_dashboard_and_where_the_dev_tokens_are(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "run").mkdir(parents=True)
    status = {"supervisor": 0, "components": [], "api": "http://127.0.0.1:8123/"}
    (home / "run" / "status.json").write_text(json.dumps(status))
    code, out, err = _cli(["--home", str(home), "ps"], capsys)
    assert code == 0 and "dashboard: http://127.0.0.1:8123/" in out and "dev-tokens" not in out, err
    ensure_dev_tokens(load_settings(home=home), [Sector.WATER], status["api"])
    code, out, _ = _cli(["--home", str(home), "ps"], capsys)
    assert code == 0 and str(home / "api" / "dev-tokens.json") in out
    (home / "run" / "status.json").write_text(json.dumps({**status, "api": None}))  # up --no-api
    code, out, _ = _cli(["--home", str(home), "ps"], capsys)
    assert code == 0 and "dashboard" not in out


# --- qeaims bench api --------------------------------------------------------------------------------


def test_bench_api_checks_its_target_and_bounds(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_api.check_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert bench_api.check_url("http://localhost:9") == "http://localhost:9"
    assert bench_api.check_url("http://[::1]:8080") == "http://[::1]:8080"
    for url, why in (("http://10.0.0.1:8080", "only a server on this machine"),
                     ("https://example.org", "only a server on this machine"),
                     ("ftp://127.0.0.1", "not an http(s) URL"), ("127.0.0.1:8080", "not an http(s) URL"),
                     ("http://127.0.0.1:99999", "port"), ("http://127.0.0.1:8080/?x=1", "without a query")):
        with pytest.raises(ConfigError, match=re.escape(why)):
            bench_api.check_url(url)
    with pytest.raises(ConfigError, match="--rate"):
        bench_api.check_options(bench_api.ApiBenchOptions(url="http://127.0.0.1:1", token="t", rate=2001))
    with pytest.raises(ConfigError, match="--seconds"):
        bench_api.check_options(bench_api.ApiBenchOptions(url="http://127.0.0.1:1", token="t", seconds=301))
    assert bench_api.percentile([], 95) is None
    assert bench_api.percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert bench_api.percentile([3.0, 1.0, 2.0], 50) == 2.0

    base = ["--home", str(home), "bench", "api"]
    assert "--rate" in _one_error([*base, "--rate", "5000", "--token", "t"], capsys)
    assert "--rate" in _one_error([*base, "--rate", "0", "--token", "t"], capsys)
    assert "--seconds" in _one_error([*base, "--seconds", "301", "--token", "t"], capsys)
    assert "not 10.0.0.1" in _one_error([*base, "--url", "http://10.0.0.1:8080", "--token", "t"], capsys)
    assert "no token" in _one_error([*base, "--url", "http://127.0.0.1:8080"], capsys)
    assert "no API answers" in _one_error([*base, "--url", f"http://127.0.0.1:{free_port()}", "--token", "t",
                                           "--seconds", "1"], capsys)


def _stub_api() -> FastAPI:
    """An API with the events routes' shapes (100 events; every 10th one answers 404), for the generator."""
    stub = FastAPI()

    @stub.get("/api/v1/whoami")
    def whoami(authorization: str = Header("")) -> dict[str, str]:
        if authorization != "Bearer tok":
            raise HTTPException(401, "unknown token")
        return {"role": "auditor"}

    @stub.get("/api/v1/events")
    def events(limit: int = 100, cursor: str | None = None) -> dict[str, object]:
        after = int(cursor.split(":")[0]) if cursor else 100
        items = [{"block": b, "log_index": 0} for b in range(after - 1, max(after - 1 - limit, -1), -1)]
        return {"items": items, "next_cursor": f"{items[-1]['block']}:0" if items and items[-1]["block"] else None}

    @stub.get("/api/v1/events/{block}/{log_index}")
    def event(block: int, log_index: int) -> dict[str, int]:
        if block % 10 == 3:
            raise HTTPException(404, "no such event")
        return {"block": block, "log_index": log_index}

    return stub


@pytest.fixture
def stub_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_stub_api(), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the stub API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_bench_api_sends_the_rate_it_was_asked_and_counts_errors(stub_url: str) -> None:
    with pytest.raises(QeaimsError, match="refused the token"):
        bench_api.run_api_bench(bench_api.ApiBenchOptions(url=stub_url, token="wrong", rate=10, seconds=1))
    result = bench_api.run_api_bench(bench_api.ApiBenchOptions(url=stub_url, token="tok", rate=100, seconds=2))
    data = bench_api.result_dict(result)
    assert data["sampled_events"] == 100  # paged with the cursor to the end
    listed, one = data["endpoints"]["events?limit=100"], data["endpoints"]["events/{block}/{log_index}"]
    assert listed["sent"] == one["sent"] == 100  # 100 req/s for 2 s, half each
    assert listed["ok"] == 100 and listed["errors"] == {}
    assert one["errors"].get("HTTP 404", 0) > 0 and one["ok"] + one["errors"]["HTTP 404"] == 100
    assert 0 < listed["p50_ms"] <= listed["p95_ms"] <= listed["p99_ms"]
    assert data["seconds"] >= 1.98, data  # the sends were paced over the 2 s (the last was due at 1.99 s), not bunched
    assert data["achieved_rate"] <= 101, data


def test_connections_to_the_served_socket_send_without_nagle_delay() -> None:
    """uvicorn serves on the socket `bind_socket` made; asyncio turns Nagle off (TCP_NODELAY) only on
    sockets whose proto says TCP, and an accepted socket inherits it. With proto 0 every keep-alive
    response waited ~40 ms for the client's delayed ACK (measured: p50 44 ms instead of 2 ms)."""
    import asyncio

    from qeaims.commands.serve_cmd import bind_socket

    async def accepted_nodelay() -> int:
        sock = bind_socket("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            seen.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 5)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
