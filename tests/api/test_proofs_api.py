"""`/proofs/{oracle}/{batch}:{index}`: a stored reading proven against its on-chain root, the same answer
as `qeaims audit proof --json`, and re-checked offline by `scripts/check_proof.py`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api._regulator import RegApi, build, telemetry
from tests.conftest import Chain, cli_env, run_cli
from tests.oracles.test_telemetry import _tamper

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegApi, Path]]:
    built = build(chain, tmp_path_factory.mktemp("proofs-api"))
    store = telemetry(built)
    yield built, store
    built.client.close()


def _check_offline(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_proof.py"), str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_proof_agrees_with_the_command_and_checks_offline(api: tuple[RegApi, Path], tmp_path: Path) -> None:
    reg, _ = api
    got = reg.get(f"/proofs/{reg.water}/2:5", reg.tokens.auditor, download="true")
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"] == f'attachment; filename="proof-{reg.water}-2-5.json"'
    body = got.json()
    assert body["ok"] is True and body["reason"] is None and body["root"] == body["local_root"]
    assert body["sector"] == "water" and body["asset"] == "tank-7" and len(body["proof"]) == 3  # 8 leaves
    command = run_cli(["audit", "proof", "--oracle", reg.water, "--reading", "2:5", "--json"], cli_env(reg.settings))
    assert command.returncode == 0, command.stderr
    printed = json.loads(command.stdout)
    assert {k: body[k] for k in printed} == printed  # every field the command prints, equal

    saved = tmp_path / "proof.json"
    saved.write_bytes(got.content)
    offline = _check_offline(saved)
    assert offline.returncode == 0 and offline.stdout.startswith("OK reading 2:5 (tank-7"), offline.stderr
    forged = dict(body, body=body["body"].replace('"value":', '"value":1', 1))  # another value, same proof
    saved.write_text(json.dumps(forged))
    caught = _check_offline(saved)
    assert caught.returncode == 1 and "the leaf in the file is not the one its body gives" in caught.stdout
    saved.write_text(json.dumps(dict(body, leaf=None, body=forged["body"])))
    assert "not to the root" in _check_offline(saved).stdout
    saved.write_text("{}")
    assert _check_offline(saved).returncode == 2


def test_a_reading_altered_in_the_store_is_a_finding_not_an_error(api: tuple[RegApi, Path]) -> None:
    reg, store = api
    assert reg.get(f"/proofs/{reg.water}/3:2", reg.tokens.operator_water).json()["ok"] is True
    _tamper(store, 3, 2, {"value": 9.9})
    found = reg.get(f"/proofs/{reg.water}/3:2", reg.tokens.auditor)
    assert found.status_code == 200
    body = found.json()
    assert body["ok"] is False and body["reason"] == "the stored reading differs from the one that was anchored"
    assert body["root"] == body["local_root"]  # the batch is intact: only the one reading was changed
    assert reg.get(f"/proofs/{reg.water}/3:1", reg.tokens.auditor).json()["ok"] is True  # its neighbour still proves
    never = reg.get(f"/proofs/{reg.water}/4:0", reg.tokens.auditor).json()
    assert never["ok"] is False and "never handed to the ledger" in never["reason"] and never["proof"] is None


@pytest.mark.parametrize(("who", "path", "status", "says"), [
    ("auditor", "/proofs/{water}/2-5", 422, "reading id '2-5' is not BATCH:INDEX"),
    ("auditor", "/proofs/{water}/0:1", 422, "is not BATCH:INDEX"),
    ("auditor", "/proofs/0xzz/1:0", 422, "oracle '0xzz' is not an address"),
    ("auditor", "/proofs/{water}/9:0", 404, "no batch 9"),
    ("auditor", "/proofs/{water}/1:8", 404, "batch 1 has 8 readings"),
    ("auditor", "/proofs/0x00000000000000000000000000000000000000aa/1:0", 404, "is not registered on this chain"),
    ("auditor", "/proofs/{electricity}/1:0", 404, "holds no telemetry store"),
    ("operator_electricity", "/proofs/{water}/1:0", 403, "an operator of electricity may not read water's detail"),
])
def test_bad_refs_and_other_sectors_are_refused_in_one_sentence(api: tuple[RegApi, Path], who: str, path: str,
                                                               status: int, says: str) -> None:
    reg, _ = api
    response = reg.get(path.format(water=reg.water, electricity=reg.electricity), getattr(reg.tokens, who))
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert says in message and "\n" not in message
