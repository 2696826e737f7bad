"""The `qeaims` command as an operator and an auditor use it, against a real Anvil."""

from __future__ import annotations

import json

import pytest

from core.config import load_settings
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.conftest import cli_env, free_port, run_cli
from tests.support import oracle


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_input_gets_one_clear_line(chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = chain.env
    assert "unknown sector 'gas'" in _one_line_error(run_cli(["audit", "events", "--sector", "gas"], env))
    assert "no keystore" in _one_line_error(run_cli(["event", "record", "--oracle", "water-9", "--kind", "fault"], env))
    assert "unknown event kind" in _one_line_error(
        run_cli(["event", "record", "--oracle", "water-1", "--kind", "explosion"], env))
    assert "not valid JSON" in _one_line_error(
        run_cli(["event", "record", "--oracle", "water-1", "--kind", "fault", "--payload", "{oops"], env))
    assert "No such option" in _one_line_error(run_cli(["audit", "verify", "--colour"], env))
    wrong = dict(env, QEAIMS_PASSPHRASE="not-the-passphrase")
    assert "wrong passphrase" in _one_line_error(
        run_cli(["event", "record", "--oracle", "water-1", "--kind", "fault"], wrong))
    nowhere = cli_env(load_settings(home=tmp_path / "empty", rpc_port=free_port()))
    assert "start it with `qeaims chain up`" in _one_line_error(run_cli(["audit", "verify"], nowhere))
    assert "invalid setting rpc_port" in _one_line_error(run_cli(["--port", "99999", "chain", "status"], env))


def test_operator_and_auditor_workflow(fresh_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = fresh_chain.env
    made = run_cli(["keys", "new", "water-5", "--json"], env)
    assert made.returncode == 0, made.stderr
    address = json.loads(made.stdout)["address"]
    assert run_cli(["chain", "fund", address], env).returncode == 0
    proposed = run_cli(["gov", "propose", "register-oracle", "--oracle", "water-5", "--sector", "water",
                        "--operator", "city-water", "--governor", "water"], env)
    assert proposed.returncode == 0, proposed.stderr
    proposal = int(proposed.stdout.split()[1])
    for governor in ("electricity", "sewage"):
        assert run_cli(["gov", "approve", str(proposal), "--governor", governor], env).returncode == 0
    early = run_cli(["gov", "execute", str(proposal), "--governor", "water"], env)
    assert "has 3 valid ML-DSA approvals of current governors (the council counts 3); the council needs 4" in \
        _one_line_error(early)
    assert run_cli(["gov", "approve", str(proposal), "--governor", "banking"], env).returncode == 0
    assert run_cli(["gov", "execute", str(proposal), "--governor", "water"], env).returncode == 0
    listed = json.loads(run_cli(["gov", "list", "--json"], env).stdout)
    assert [p["state"] for p in listed if p["id"] == proposal] == ["executed"]

    for kind in ("anomaly", "fault"):
        rec = run_cli(["event", "record", "--oracle", "water-5", "--kind", kind, "--node", "pump-1",
                       "--payload", '{"pressure_bar": 0.4}', "--json"], env)
        assert rec.returncode == 0, rec.stderr
    rotated = run_cli(["keys", "rotate", "--oracle", "water-5", "--json"], env)
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["new_epoch"] == 2
    assert run_cli(["event", "record", "--oracle", "water-5", "--kind", "repaired", "--node", "pump-1"],
                   env).returncode == 0
    shown = json.loads(run_cli(["keys", "show", "--oracle", "water-5", "--json"], env).stdout)
    assert shown["on_chain"]["key_epoch"] == shown["key_epoch"] == 2

    events = json.loads(run_cli(["audit", "events", "--node", "pump-1", "--json"], env).stdout)
    assert [(e["oracle"], e["seq"], e["kind"]) for e in events] == [
        (address.lower(), 1, "anomaly"), (address.lower(), 2, "fault"), (address.lower(), 3, "repaired")]
    assert json.loads(run_cli(["audit", "events", "--kind", "fault", "--sector", "water", "--json"],
                              env).stdout)[0]["payload"] == {"pressure_bar": 0.4}
    verified = run_cli(["audit", "verify", "--json"], env)
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["events"] == report["valid"] == 3 and report["invalid"] == []
    assert report["key_epochs"] == 33  # 24 dev oracles, the controller, 6 vault recorders, water-5 and its rotation

    # an event signed with a tampered ML-DSA signature is caught, from chain data alone
    ident = oracle(fresh_chain.settings, "water", 2)
    batch = sign_batch(ident, chain_id=fresh_chain.client.chain_id, ledger=fresh_chain.deployment.event_ledger,
                       events=[EventToSign(seq=1, kind=2, node=to_bytes32("pump-2"), payload=b"{}")])
    forged = bytes([batch.pq_signature[0] ^ 0xFF]) + batch.pq_signature[1:]
    fresh_chain.client.transact(ident.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch, forged)
    failed = run_cli(["audit", "verify", "--json"], env)
    assert failed.returncode == 1
    bad = json.loads(failed.stdout)
    assert bad["invalid"] == [{"oracle": ident.address, "seq": 1, "batch": 4, "block": bad["invalid"][0]["block"],
                               "reason": "ML-DSA-65 signature does not verify"}]


def test_chain_up_status_down_and_restart_keep_history(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(load_settings(home=tmp_path / "home", rpc_port=free_port(), scrypt_n=1024))
    assert run_cli(["chain", "status"], env).returncode == 3  # not running yet
    try:
        assert run_cli(["deploy"], env).returncode == 0
        assert run_cli(["event", "record", "--oracle", "banking-1", "--kind", "anomaly"], env).returncode == 0
        status = json.loads(run_cli(["chain", "status", "--json"], env).stdout)
        assert status["running"] and status["deployment"]["EventLedger"].startswith("0x")
        assert run_cli(["chain", "down"], env).returncode == 0
        assert run_cli(["chain", "up"], env).returncode == 0
        events = json.loads(run_cli(["audit", "events", "--json"], env).stdout)
        assert [(e["kind"], e["seq"]) for e in events] == [("anomaly", 1)]
        assert run_cli(["audit", "verify"], env).returncode == 0
        # a redeploy starts a new ledger: rotated keys restart at epoch 1, old events are not re-recorded
        assert run_cli(["keys", "rotate", "--oracle", "banking-1"], env).returncode == 0
        assert run_cli(["deploy"], env).returncode == 0
        again = run_cli(["event", "record", "--oracle", "banking-1", "--kind", "fault", "--json"], env)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["seq"] == 1
        assert [e["kind"] for e in json.loads(run_cli(["audit", "events", "--json"], env).stdout)] == ["fault"]
        assert run_cli(["audit", "verify"], env).returncode == 0
    finally:
        run_cli(["chain", "down"], env)


def test_more_bad_input_found_in_review(chain) -> None:  # type: ignore[no-untyped-def]
    env = chain.env
    assert "oracle's address" in _one_line_error(
        run_cli(["isolation", "propose", "quarantine", "0x" + "zz" * 20, "--oracle", "water-1"], env))
    assert "no isolation proposal 999" in _one_line_error(run_cli(["isolation", "show", "999"], env))
    assert "no isolation proposal 999" in _one_line_error(run_cli(["isolation", "vote", "999", "--oracle", "water-1"], env))
    assert "greater than or equal to 1" in _one_line_error(
        run_cli(["gov", "propose", "set-floor", "0", "--governor", "water"], env))
    assert "less than or equal to 8" in _one_line_error(
        run_cli(["gov", "propose", "set-quarantine-rate", "9", "3600", "--governor", "water"], env))
    assert "http://" in _one_line_error(run_cli(["--rpc-url", "notaurl", "chain", "status"], env))
    assert "Not a directory" in _one_line_error(run_cli(["--home", "/dev/null/x", "chain", "up"], env))
    huge = run_cli(["audit", "events", "--since", "99999999999999999999d", "--json"], env)
    assert huge.returncode == 0, huge.stderr
    refused = _one_line_error(run_cli(["gov", "propose", "set-threshold", "99", "--governor", "water"], env))
    assert "CouncilInvalidThreshold" in refused


@pytest.mark.unit
def test_a_full_disk_is_one_error_line_and_a_sqlite_bug_keeps_its_traceback(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """CI once ran out of disk mid-suite: a command writing its index printed a traceback."""
    import sqlite3

    import qeaims.cli

    def full() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(qeaims.cli, "discover", full)
    with pytest.raises(SystemExit) as stopped:
        qeaims.cli.main(["chain", "status"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and err.startswith("error: a local database failed")

    def bug() -> None:
        raise sqlite3.OperationalError("no such table: eventz")

    monkeypatch.setattr(qeaims.cli, "discover", bug)
    with pytest.raises(sqlite3.OperationalError, match="eventz"):
        qeaims.cli.main(["chain", "status"])
