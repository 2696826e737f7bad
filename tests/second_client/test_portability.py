"""What keeps the production code portable to any EVM client (Besu in the consortium): no method of a
development chain's own namespace (`anvil_*`, `evm_*`, `hardhat_*`) outside the dev chain's module,
and contracts within EIP-170's code size limit (docs/evm-clients.md)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from chain.artifacts import CONTRACTS
from core.config import project_root
from tests.conftest import _build_contracts_once

pytestmark = pytest.mark.unit

PRODUCTION_PACKAGES = ("qeaims", "api", "controller", "oracles", "sectors", "vaults", "intel", "bus", "gateway",
                       "chain", "links", "keys", "core")
DEV_CHAIN = Path("chain/node.py")  # Anvil's journal replay: the one place allowed evm_mine and the like
# the dev chain's public port: its allowlist names the Anvil methods it forwards (and it rebases the fee after
# a client's evm_revert); it fronts only the embedded Anvil, never a production node
DEV_GATE = Path("chain/gate.py")
# the Byzantine campaign's private Anvil moves its clock past each run's voting window (a campaign tool on a
# dev chain it starts itself, refusing --rpc-url: never the production path)
CAMPAIGN_DEV_CHAIN = Path("qeaims/campaigns/devchain.py")
_DEV_METHOD = re.compile(r"^(anvil|evm|hardhat)_\w*$")
EIP170_CODE_LIMIT = 24_576


def dev_chain_methods(root: Path, packages: tuple[str, ...], allowed: frozenset[Path] = frozenset()) -> list[str]:
    """`path:line: 'method'` for every string constant in `packages` under `root` that names a development
    chain's JSON-RPC method (`anvil_…`, `evm_…`, `hardhat_…`; f-string pieces included).

    A string that is the name of a function or class defined in these packages (`anvil_binary` in an
    `__all__`) is Python, not an RPC method, and not reported."""
    trees = {path: ast.parse(path.read_text(), str(path))
             for package in packages for path in sorted((root / package).rglob("*.py"))}
    defined = {node.name for tree in trees.values() for node in ast.walk(tree)
               if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    found: list[tuple[Path, int, str]] = []
    for path, tree in trees.items():
        if path.relative_to(root) in allowed:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and _DEV_METHOD.match(node.value)
                    and node.value not in defined):
                found.append((path.relative_to(root), node.lineno, node.value))
    return [f"{path}:{line}: {value!r}" for path, line, value in sorted(found)]


def test_no_development_chain_method_outside_the_dev_chain() -> None:
    assert dev_chain_methods(project_root(), PRODUCTION_PACKAGES, frozenset({DEV_CHAIN, DEV_GATE, CAMPAIGN_DEV_CHAIN})) == []


def test_the_dev_chain_module_is_where_they_are() -> None:
    """The allowance is needed (chain/node.py replays the journal with evm_mine), so the scan sees them."""
    found = dev_chain_methods(project_root(), ("chain",))
    assert found and all(line.startswith((str(DEV_CHAIN), str(DEV_GATE))) for line in found)
    assert any(line.startswith(str(DEV_CHAIN)) for line in found)
    campaign = dev_chain_methods(project_root(), ("qeaims",))
    assert campaign and all(line.startswith(str(CAMPAIGN_DEV_CHAIN)) for line in campaign)


def test_the_scan_finds_a_planted_call(tmp_path: Path) -> None:
    package = tmp_path / "oracles"
    package.mkdir()
    (package / "clean.py").write_text('def anvil_free() -> str:\n    return "anvil_free"  # a name, not a method\n')
    (package / "planted.py").write_text(
        "def skip(rpc, seconds, name):\n"
        '    rpc.call("evm_increaseTime", [seconds])\n'
        '    rpc.call(f"hardhat_{name}", [])\n'
        "    rpc.call('anvil_setBalance', ['0x0', '0x1'])\n"
    )
    assert dev_chain_methods(tmp_path, ("oracles",)) == [
        "oracles/planted.py:2: 'evm_increaseTime'",
        "oracles/planted.py:3: 'hardhat_'",
        "oracles/planted.py:4: 'anvil_setBalance'",
    ]
    assert dev_chain_methods(tmp_path, ("oracles",), frozenset({Path("oracles/planted.py")})) == []


def test_every_contract_is_within_eip170() -> None:
    """Runtime code of every deployed contract at most 24,576 bytes (EIP-170; Besu's default
    `contractSizeLimit`); the deployed sizes are checked again on the chain in test_production_path."""
    _build_contracts_once()  # current artifacts, not whatever build/out holds
    out = project_root() / "build" / "out"
    sizes = {}
    for name in CONTRACTS:
        artifact = json.loads((out / f"{name}.sol" / f"{name}.json").read_text())
        sizes[name] = (len(artifact["deployedBytecode"]["object"].removeprefix("0x"))) // 2
    assert all(0 < size <= EIP170_CODE_LIMIT for size in sizes.values()), sizes
