"""The consortium path end to end on a chain: generate → deploy with the generated deployer → allowlist
from the Registry, and every account that then signs anything is on it.

Anvil stands in for Besu (which cannot be installed here); the one thing Besu's genesis would do that
Anvil does not, the deployer's balance (`alloc`), is one transfer from Anvil's development account,
and that transfer is the only transaction the allowlist need not cover. Its own chain rather than the
session one: other tests register and remove oracles on the shared chain, and the question here is
"does anyone outside the list sign", which needs a chain whose every block this test knows.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from chain.besu.generate import NetworkSpec, generate_network
from chain.besu.genesis import QbftParams
from chain.client import ChainClient
from chain.connect import connect
from chain.consortium import vault_sector
from chain.control_room import record_as_control_room
from chain.deploy import DEFAULT_ADMIN_ROLE, dev_deployer, dev_vault_recorder
from chain.node import start_anvil, stop_anvil
from chain.recorder import canonical_payload
from chain.rpc import RpcClient
from core.config import load_settings
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.conftest import FAST_SCRYPT_N, Chain, free_port
from tests.support import isolate_by_quorum, recorder, run_main


def _senders(rpc: RpcClient, first: int, last: int) -> dict[str, int]:
    """Every transaction's sender in blocks first..last, with how many it sent."""
    out: dict[str, int] = {}
    for number in range(first, last + 1):
        block = rpc.call("eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            out[tx["from"].lower()] = out.get(tx["from"].lower(), 0) + 1
    return out


def _allowlist(path: Path) -> dict[str, list[str]]:
    return tomllib.loads(path.read_text())


def test_generated_deployer_deploys_and_the_registry_allowlist_is_the_planned_one(
        capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QEAIMS_SCRYPT_N", str(FAST_SCRYPT_N))
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port(), scrypt_n=FAST_SCRYPT_N)
    net = generate_network(settings, NetworkSpec(validators=4, sectors=("water", "electricity"),
                                                 params=QbftParams(chain_id=20_261)), tmp_path / "net")
    planned = _allowlist(tmp_path / "net" / "permissions_config.toml")
    start_anvil(settings)
    try:
        rpc = RpcClient(settings.rpc_url)
        funder = dev_deployer()
        bootstrap = ChainClient(rpc, chain_id=settings.chain_id, contracts={})
        bootstrap.wait(bootstrap.send_raw(funder, to=net.deployer, value=10**23, gas=21_000, label="genesis alloc"))
        base = ["--home", str(settings.home), "--rpc-url", settings.rpc_url]

        code, out, err = run_main(capsys, *base, "deploy", "--deployer-key", str(tmp_path / "net" / "deployer" / "key"),
                                  "--json")
        assert code == 0, err
        assert json.loads(out)["deployer"] == net.deployer
        client, deployment = connect(settings)
        assert not client.call1("Registry", "hasRole", DEFAULT_ADMIN_ROLE, net.deployer)  # renounced: droppable

        rebuilt = tmp_path / "rebuilt.toml"
        code, out, err = run_main(capsys, *base, "network", "allowlist", "--out", str(rebuilt), "--include-deployer",
                                  "--nodes-from", str(tmp_path / "net" / "permissions_config.toml"))
        assert code == 0, err
        assert sorted(_allowlist(rebuilt)["accounts-allowlist"]) == sorted(planned["accounts-allowlist"])
        assert _allowlist(rebuilt)["nodes-allowlist"] == planned["nodes-allowlist"]

        # the stack at work: oracles vote an isolation, the controller and a vault's recorder record events
        before = int(rpc.call("eth_blockNumber"), 16)
        isolate_by_quorum(Chain(settings, client, deployment), "water", "pump-1", "pump-1")
        record_as_control_room(settings, "notice", "water", {"id": "1" * 32})
        vault = dev_vault_recorder(settings, "water")
        recorder(client, settings, vault).record(kind_by_name("intrusion"), to_bytes32("gw-1"), canonical_payload(
            {"sector": vault_sector("water"), "verdict": "intrusion", "indicators": []}))
        head = int(rpc.call("eth_blockNumber"), 16)

        allowed = set(planned["accounts-allowlist"])
        signers = _senders(rpc, 1, head)
        assert signers.pop(funder.address.lower()) == 1  # the stand-in for the genesis alloc, and nothing else
        assert set(signers) <= allowed, set(signers) - allowed
        assert len(set(_senders(rpc, before + 1, head))) >= 5  # three oracles, the controller, the recorder

        code, _, err = run_main(capsys, "--home", str(settings.home), "network", "allowlist", "--out", str(rebuilt),
                                "--rpc-url", settings.rpc_url)
        assert code == 0, err
        after = _allowlist(rebuilt)
        assert set(after["accounts-allowlist"]) == allowed - {net.deployer.lower()} and "nodes-allowlist" not in after
        assert deployment.deployer == net.deployer
    finally:
        stop_anvil(settings)


def test_the_session_chains_registry_allowlist_is_its_keystores(chain: Chain) -> None:
    """The shared dev consortium, as many tests leave it: quarantines keep an oracle on the list, a removed
    newcomer is off it, so the live list still equals the member keystores (read, never rewritten)."""
    from chain.besu.accounts import planned_accounts, registry_accounts

    planned = [a for a in planned_accounts(chain.settings, chain.deployment.deployer) if a.role != "deployer"]
    live = registry_accounts(chain.client, chain.deployment)
    assert sorted(a.address for a in live) == sorted(a.address for a in planned)
    assert sorted((a.address, a.role) for a in live) == sorted((a.address, a.role) for a in planned)
    assert sorted((a.address, a.sector) for a in live if a.role == "oracle") == \
        sorted((a.address, a.sector) for a in planned if a.role == "oracle")


def test_deployer_key_needs_the_consortium_node(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "key"
    key.write_text("0x" + "11" * 32)
    code, _, err = run_main(capsys, "--home", str(tmp_path / "home"), "deploy", "--deployer-key", str(key))
    assert code == 2 and "--rpc-url" in err and err.count("\n") == 1
    key.write_text("not a key")
    code, _, err = run_main(capsys, "--home", str(tmp_path / "home"), "--rpc-url", "http://127.0.0.1:9",
                            "deploy", "--deployer-key", str(key))
    assert code == 2 and "one line: 0x followed by 64 hex digits" in err and err.count("\n") == 1
