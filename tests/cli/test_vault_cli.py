"""`qeaims vault`: the whole life of a vault from the command line, and one `error:` line for each
mistake, which changes nothing (the transportation sector's vault: no other test uses it)."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import run_cli


def _error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error"), result.stderr
    return lines[0]


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_vault_from_the_command_line(chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = chain.env
    vault = chain.settings.home / "vaults" / "transportation"

    def as_(who: str, new: str = "") -> dict[str, str]:  # each identity's own passphrase (never the deployment's)
        return {**base, "QEAIMS_VAULT_PASSPHRASE": f"{who}-secret", "QEAIMS_VAULT_NEW_PASSPHRASE": f"{new}-secret"}

    env = as_("custodian", "custodian")
    _ok(run_cli(["vault", "init", "transportation"], env))
    for name, role in (("dispatcher", "reader"), ("clerk", "writer"), ("inspector", "auditor")):
        _ok(run_cli(["vault", "grant", "transportation", "--reader", name, "--role", role], as_("custodian", name)))
    assert "already" in _error(run_cli(["vault", "grant", "transportation", "--reader", "clerk", "--role", "reader"],
                                       as_("custodian", "x-clerk")))
    written = json.loads(_ok(run_cli(["vault", "write", "transportation", "pass-1", "--as", "clerk", "--text",
                                      "season pass 4411, J. Doe", "--json"], as_("clerk"))))
    assert written["status"] == "committed" and written["version"] == 1
    # the clerk, with her own passphrase, cannot act as the dispatcher
    assert "does not open" in _error(run_cli(["vault", "read", "transportation", "pass-1", "--as", "dispatcher",
                                              "--reason", "curious"], as_("clerk")))
    env = as_("dispatcher")
    read = run_cli(["vault", "read", "transportation", "pass-1", "--as", "dispatcher", "--reason", "fare dispute"], env)
    assert _ok(read) == "season pass 4411, J. Doe\n" and "recorded on-chain" in read.stderr

    log = (vault / "access.jsonl").read_bytes()
    assert "needs a reason" in _error(run_cli(["vault", "read", "transportation", "pass-1", "--as", "dispatcher"], env))
    assert "no vault 'gas'" in _error(run_cli(["vault", "read", "gas", "pass-1", "--as", "x", "--reason", "r"], env))
    assert "no record pass-9" in _error(run_cli(["vault", "read", "transportation", "pass-9", "--as", "dispatcher",
                                                 "--reason", "r"], env))
    assert "unknown role 'boss'" in _error(run_cli(["vault", "grant", "transportation", "--reader", "x", "--role",
                                                    "boss"], env))
    assert "exactly one of --text and --file" in _error(run_cli(["vault", "write", "transportation", "p", "--as",
                                                                 "clerk"], as_("clerk")))
    assert "set QEAIMS_VAULT_PASSPHRASE" in _error(run_cli(["vault", "read", "transportation", "pass-1", "--as",
                                                            "dispatcher", "--reason", "r"], base))
    assert "add --yes" in _error(run_cli(["vault", "shred", "transportation", "pass-1"], env))
    assert (vault / "access.jsonl").read_bytes() == log  # none of those changed anything

    refused = _error(run_cli(["vault", "read", "transportation", "pass-1", "--as", "inspector", "--reason", "spot check"],
                             as_("inspector")))
    assert "the role auditor may not read" in refused and "the attempt is recorded on-chain" in refused
    assert (vault / "access.jsonl").read_bytes() != log

    _ok(run_cli(["vault", "seal", "transportation", "--reason", "intrusion on the ticketing gateway"], env))
    assert "is sealed" in _error(run_cli(["vault", "read", "transportation", "pass-1", "--as", "dispatcher",
                                          "--reason", "fare dispute"], env))
    assert "queued" in _ok(run_cli(["vault", "write", "transportation", "pass-2", "--as", "clerk", "--text", "p2"],
                                   as_("clerk")))
    assert "1 queued write" in _ok(run_cli(["vault", "unseal", "transportation", "--reason", "gateway re-imaged"], env))

    report = json.loads(_ok(run_cli(["vault", "verify", "transportation", "--json"], env)))
    assert (report["ok"], report["records"], report["tampered"], report["unrecorded_reads"]) == (True, 2, 0, 0)
    assert report["vaults"][0]["reads_on_chain"] == 3

    record = vault / "records" / "pass-2" / "v1.json"
    body = json.loads(record.read_text())
    body["content_hash"] = "00" * 32
    record.write_text(json.dumps(body))
    failed = run_cli(["vault", "verify", "--json"], env)
    assert failed.returncode == 1
    found = json.loads(failed.stdout)
    assert (found["ok"], found["tampered"], found["records"]) == (False, 1, 2)
    assert "does not match the chain" in failed.stderr
