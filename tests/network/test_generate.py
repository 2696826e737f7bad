"""`qeaims network generate`: the files are Besu's formats, derive from their keys, and agree with each other.

Nothing here runs Besu (it cannot be installed on these machines): the checks recompute what Besu
would read, with libraries other than the ones that wrote it where one exists (eth_keys for the
addresses, tomllib/yaml/json for the parsing, the published Besu example for the RLP layout).
"""

from __future__ import annotations

import hashlib
import json
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from eth_keys import keys as eth_keys

from chain.besu.generate import NetworkSpec, generate_network
from chain.besu.genesis import QBFT_MIX_HASH, QbftParams, decode_extra_data, encode_extra_data
from chain.besu.nodekeys import parse_enode
from chain.consortium import ORACLES_PER_SECTOR, sectors
from core.config import Settings, load_settings
from keys.keystore import read_keystore_header
from tests.support import run_main

FAST_SCRYPT_N = 1024

# Besu's own QBFT page (docs/private-networks/how-to/configure/consensus/qbft.md, "Extra data"): these
# four validators, in this order, encode to exactly this string; the contract-selection genesis in the
# same page (no validators) to the second.
BESU_VALIDATORS = ["0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb", "0x06e23768a0f59cf365e18c2e0c89e151bcdedc70",
                   "0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de", "0xab5e7f4061c605820d3744227eed91ff8e2c8908"]
BESU_EXTRA = ("0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706cc08b8f44b"
              "11e43cba0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1bf1236b8c15148971e1"
              "de94ab5e7f4061c605820d3744227eed91ff8e2c8908c080c0")
BESU_EMPTY_EXTRA = "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0"


@dataclass(frozen=True)
class Net:
    settings: Settings
    out: Path


def _seeded(seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Net:
    root = tmp_path_factory.mktemp("besu-net")
    settings = load_settings(home=root / "home", scrypt_n=FAST_SCRYPT_N)
    spec = NetworkSpec(validators=5, sectors=sectors(), params=QbftParams(chain_id=20_261))
    generate_network(settings, spec, root / "net")
    return Net(settings, root / "net")


def _json(path: Path):  # type: ignore[no-untyped-def]
    return json.loads(path.read_text())


def _validators(net: Net) -> list[dict[str, str]]:
    return _json(net.out / "validators.json")  # type: ignore[no-any-return]


def test_extra_data_layout_is_besus_published_example() -> None:
    assert encode_extra_data(BESU_VALIDATORS, ascending=False) == BESU_EXTRA
    assert encode_extra_data([]) == BESU_EMPTY_EXTRA
    _vanity, validators, vote, round_, seals = decode_extra_data(BESU_EXTRA)
    assert [v.lower() for v in validators] == BESU_VALIDATORS and (vote, round_, seals) == ([], 0, [])


def test_extra_data_decodes_to_exactly_the_validators_in_ascending_order(net: Net) -> None:
    genesis = _json(net.out / "genesis.json")
    vanity, validators, vote, round_, seals = decode_extra_data(genesis["extraData"])
    listed = [v["address"] for v in _validators(net)]
    assert len(listed) == 5
    assert validators == sorted(listed, key=lambda a: bytes.fromhex(a[2:]))
    assert vanity == b"\x00" * 32 and vote == [] and round_ == 0 and seals == []


def test_validator_addresses_derive_from_their_keys(net: Net) -> None:
    for v in _validators(net):
        folder = net.out / v["name"]
        key_text = (folder / "key").read_text()
        assert key_text.startswith("0x") and len(key_text) == 66 and "\n" not in key_text  # Besu's `key` file
        private = eth_keys.PrivateKey(bytes.fromhex(key_text[2:]))
        assert private.public_key.to_checksum_address() == v["address"] == (folder / "address").read_text().strip()
        assert (folder / "key.pub").read_text() == "0x" + private.public_key.to_bytes().hex() == v["public_key"]
        assert (folder / "key").stat().st_mode & 0o077 == 0


def test_every_file_parses_and_says_what_besu_needs(net: Net) -> None:
    genesis = _json(net.out / "genesis.json")
    config = genesis["config"]
    assert config["chainId"] == 20_261 and config["zeroBaseFee"] is True
    assert config["londonBlock"] == 0 and config["shanghaiTime"] == 0 and config["cancunTime"] == 0
    assert config["qbft"] == {"blockperiodseconds": 2, "epochlength": 30_000, "requesttimeoutseconds": 4}
    assert genesis["difficulty"] == "0x1" and genesis["mixHash"] == QBFT_MIX_HASH
    assert (net.out / "README.md").read_text().startswith("# QEAIMS consortium network")
    for v in _validators(net):
        node = tomllib.loads((net.out / v["name"] / "config.toml").read_text())
        assert node["min-gas-price"] == 0 and node["discovery-enabled"] is False
        assert node["rpc-max-logs-range"] == Settings().max_logs_range == 5_000  # Besu's default, and the stack's
        assert node["rpc-http-api"] == ["ETH", "NET", "WEB3"]  # the stack's; the operator's are on loopback WS
        assert node["rpc-ws-host"] == "127.0.0.1" and {"QBFT", "PERM", "ADMIN"} <= set(node["rpc-ws-api"])
        assert node["permissions-nodes-config-file-enabled"] and node["permissions-accounts-config-file-enabled"]
        assert node["p2p-host"] in node["host-allowlist"] and "*" not in node["host-allowlist"]
        assert v["rpc_url"] == f"http://{node['p2p-host']}:{node['rpc-http-port']}"
    compose = yaml.safe_load((net.out / "docker-compose.yml").read_text())
    besu = {name: s for name, s in compose["services"].items() if name.startswith("validator-")}
    assert sorted(besu) == [v["name"] for v in _validators(net)]
    assert all(s["image"].startswith("hyperledger/besu:") and not s["image"].endswith(":latest") for s in besu.values())


def test_enodes_in_static_nodes_and_the_allowlist_match_the_keys(net: Net) -> None:
    static = _json(net.out / "static-nodes.json")
    allowed = tomllib.loads((net.out / "permissions_config.toml").read_text())["nodes-allowlist"]
    assert static == allowed and len(static) == 5
    for enode, v in zip(static, _validators(net), strict=True):
        public_key, host, port = parse_enode(enode)
        node = tomllib.loads((net.out / v["name"] / "config.toml").read_text())
        derived = eth_keys.PrivateKey(bytes.fromhex((net.out / v["name"] / "key").read_text()[2:])).public_key
        assert public_key == derived.to_bytes() and (host, port) == (node["p2p-host"], node["p2p-port"])


def test_allowlist_is_exactly_the_deployer_and_the_member_keystores(net: Net) -> None:
    """Read from the keystore files' headers, not from the code that wrote the list."""
    keystores = [p for p in net.settings.keystore_dir.rglob("*.json") if ".epoch" not in p.name]
    members = {read_keystore_header(p).address.lower() for p in keystores}
    deployer = (net.out / "deployer" / "address").read_text().strip().lower()
    allowed = tomllib.loads((net.out / "permissions_config.toml").read_text())["accounts-allowlist"]
    assert len(allowed) == len(set(allowed)) == 1 + len(sectors()) * (1 + ORACLES_PER_SECTOR + 1) + 1
    assert set(allowed) == members | {deployer}
    genesis = _json(net.out / "genesis.json")
    assert {"0x" + a for a in genesis["alloc"]} == set(allowed)  # the balance the client's gas tip needs
    roles = [a["role"] for a in _json(net.out / "accounts.json")]
    assert roles.count("deployer") == 1 and roles.count("controller") == 1
    assert roles.count("oracle") == len(sectors()) * ORACLES_PER_SECTOR


def test_sector_services_use_their_operators_validator(net: Net) -> None:
    compose = yaml.safe_load((net.out / "docker-compose.yml").read_text())
    rpc_of = {v["operator_sector"]: v["rpc_url"] for v in reversed(_validators(net))}  # an operator's first
    for sector in sectors():
        service = compose["services"][f"oracles-{sector}"]
        url = service["command"][service["command"].index("--rpc-url") + 1]
        assert url == rpc_of.get(sector, _validators(net)[sectors().index(sector) % 5]["rpc_url"])
        limit = tomllib.loads((net.out / "validator-1" / "config.toml").read_text())["rpc-max-logs-range"]
        assert service["environment"]["QEAIMS_MAX_LOGS_RANGE"] == str(limit)  # log reads within the nodes' limit
    assert {"broker", "controller"} <= set(compose["services"])


def test_every_compose_mount_names_a_generated_file_and_every_config_path_a_mount(net: Net) -> None:
    compose = yaml.safe_load((net.out / "docker-compose.yml").read_text())
    for v in _validators(net):
        mounts = {}
        for volume in compose["services"][v["name"]]["volumes"]:
            source, target = volume.split(":")[:2]
            assert (net.out / source).exists(), source
            mounts[target] = net.out / source
        node = tomllib.loads((net.out / v["name"] / "config.toml").read_text())
        for option in ("genesis-file", "node-private-key-file", "static-nodes-file", "permissions-nodes-config-file",
                       "permissions-accounts-config-file"):
            assert node[option] in mounts, option
        assert mounts[node["node-private-key-file"]].read_text() == (net.out / v["name"] / "key").read_text()
        assert node["data-path"] in mounts and mounts[node["data-path"]].is_dir()
        flag, *overrides = compose["services"][v["name"]]["command"]
        assert mounts[flag.removeprefix("--config-file=")] == net.out / v["name"] / "config.toml"
        assert overrides == ["--rpc-ws-host=127.0.0.1"]  # outranks the image's BESU_RPC_WS_HOST=0.0.0.0


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_keys_give_the_same_files_and_fresh_keys_differ(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", scrypt_n=FAST_SCRYPT_N)
    spec = NetworkSpec(validators=4, sectors=("water", "sewage"), params=QbftParams(chain_id=777))
    generate_network(settings, spec, tmp_path / "a", entropy=_seeded(7))
    generate_network(settings, spec, tmp_path / "b", entropy=_seeded(7))
    generate_network(settings, spec, tmp_path / "c")  # secrets.token_bytes, as the command does
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert (tmp_path / "a" / "validator-1" / "key").read_text() != (tmp_path / "c" / "validator-1" / "key").read_text()


def test_named_hosts_switch_on_dns_and_leave_out_the_compose_file(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", scrypt_n=FAST_SCRYPT_N)
    hosts = ("v1.city.example", "v2.city.example", "v3.city.example", "10.0.0.4")
    spec = NetworkSpec(validators=4, sectors=("water",), params=QbftParams(chain_id=777), hosts=hosts)
    generate_network(settings, spec, tmp_path / "net")
    assert not (tmp_path / "net" / "docker-compose.yml").exists()
    first = tomllib.loads((tmp_path / "net" / "validator-1" / "config.toml").read_text())
    last = tomllib.loads((tmp_path / "net" / "validator-4" / "config.toml").read_text())
    assert first["Xdns-enabled"] is True and "Xdns-enabled" not in last
    assert [parse_enode(e)[1] for e in _json(tmp_path / "net" / "static-nodes.json")] == list(hosts)
    # no Compose file carries the loopback flag here: the README's run line must, or Besu's image binds
    # the operator's WebSocket (QBFT, PERM) to every interface (its BESU_RPC_WS_HOST outranks config.toml)
    assert "--config-file=/config/config.toml --rpc-ws-host=127.0.0.1" in (tmp_path / "net" / "README.md").read_text()


@pytest.mark.parametrize(("args", "says"), [
    (["--validators", "3"], "at least 4"),
    (["--validators", "four"], "valid integer"),
    (["--validators", "4", "--sectors", "water,gasworks"], "unknown sector 'gasworks'"),
    (["--validators", "4", "--chain-id", "31337"], "chain id 31337 is taken"),
    (["--validators", "4", "--besu-image", "hyperledger/besu:latest"], "pinned tag"),
    (["--validators", "4", "--hosts", "v1.example,v2.example"], "names 2 hosts for 4 validators"),
])
def test_bad_input_is_one_error_line_and_writes_nothing(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                        args: list[str], says: str) -> None:
    monkeypatch.setenv("QEAIMS_SCRYPT_N", str(FAST_SCRYPT_N))
    code, _out, err = run_main(capsys, "--home", str(tmp_path / "home"), "network", "generate",
                              "--out", str(tmp_path / "net"), *args)
    assert code == 2 and says in err and err.count("\n") == 1 and err.startswith("error")
    assert not (tmp_path / "net").exists() and not (tmp_path / "home" / "keystores").exists()


def test_an_existing_folder_that_is_not_empty_is_refused(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "genesis.json").write_text("{}")
    code, _, err = run_main(capsys, "--home", str(tmp_path / "home"), "network", "generate",
                            "--validators", "4", "--out", str(tmp_path / "net"))
    assert code == 2 and "exists and is not empty" in err and err.count("\n") == 1
    assert [p.name for p in (tmp_path / "net").iterdir()] == ["genesis.json"]
    assert (tmp_path / "net" / "genesis.json").read_text() == "{}"


def test_the_command_writes_a_network_into_an_empty_folder(capsys, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QEAIMS_SCRYPT_N", str(FAST_SCRYPT_N))
    (tmp_path / "net").mkdir()
    code, out, err = run_main(capsys, "--home", str(tmp_path / "home"), "network", "generate", "--validators", "4",
                              "--sectors", "water,electricity", "--chain-id", "4242", "--json", "--out",
                              str(tmp_path / "net"))
    assert code == 0, err
    report = json.loads(out)
    assert [v["operator_sector"] for v in report["validators"]] == ["water", "electricity"] * 2
    assert report["notes"] and json.loads((tmp_path / "net" / "genesis.json").read_text())["config"]["chainId"] == 4242


@pytest.mark.parametrize("name", ["chain.besu.accounts", "chain.besu.compose", "chain.besu.generate",
                                  "chain.besu.genesis", "chain.besu.nodefiles", "chain.besu.nodekeys",
                                  "chain.besu.readme"])
def test_module_all_lists_its_public_definitions(name: str) -> None:
    import importlib
    import inspect

    module = importlib.import_module(name)
    defined = {item for item, value in vars(module).items() if not item.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == name}
    assert all(hasattr(module, item) for item in module.__all__)
    assert defined <= set(module.__all__), sorted(defined - set(module.__all__))
