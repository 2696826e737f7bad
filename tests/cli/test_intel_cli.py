"""`qeaims intel`: what is in force, the STIX export, a withdrawal, and one `error:` line per mistake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import stix2

from tests.chain.test_indicators import _publish, _verdicts
from tests.cli.test_vault_cli import _error, _ok
from tests.conftest import run_cli


def test_list_export_and_withdraw(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    env = chain.env
    cites = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.44.0.1")
    _publish(chain, cites, "source-address", "10.44.0.1")
    old = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.44.0.2")
    _publish(chain, old, "source-address", "10.44.0.2", expires=datetime.now(UTC) + timedelta(seconds=1))
    listed = json.loads(_ok(run_cli(["intel", "list", "--json"], env)))
    assert "10.44.0.1" in {r["value"] for r in listed["in_force"]}
    bundle = stix2.parse(_ok(run_cli(["intel", "export"], env)), allow_custom=True)
    assert "[ipv4-addr:value = '10.44.0.1']" in {o.pattern for o in bundle.objects if o.type == "indicator"}

    assert "unknown indicator kind 'ip'" in _error(run_cli(["intel", "withdraw", "--kind", "ip", "--value", "x",
                                                            "--reason", "r"], env))
    assert "IPv4 or IPv6" in _error(run_cli(["intel", "withdraw", "--kind", "source-address", "--value", "10.44",
                                             "--reason", "r"], env))
    assert "expired at" in _error(run_cli(["intel", "withdraw", "--kind", "source-address", "--value", "10.44.0.2",
                                           "--reason", "reassigned"], env))
    assert "say why" in _error(run_cli(["intel", "withdraw", "--kind", "source-address", "--value", "10.44.0.1"], env))
    _ok(run_cli(["intel", "withdraw", "--kind", "source-address", "--value", "10.44.0.1", "--reason",
                 "a reassigned address"], env))
    listed = json.loads(_ok(run_cli(["intel", "list", "--json"], env)))
    assert "10.44.0.1" not in {r["value"] for r in listed["in_force"]}
    bundle = stix2.parse(_ok(run_cli(["intel", "export"], env)), allow_custom=True)
    assert [o.revoked for o in bundle.objects if o.type == "indicator" and "10.44.0.1" in o.pattern] == [True]
