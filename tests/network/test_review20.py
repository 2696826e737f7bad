"""Review s37 (issue 20) findings on `chain.besu`: each a test that failed before its fix.

Finding 5 (below): `planned_accounts` promises to leave existing keystores as they are, but when any
member keystore is missing it runs `member_identities`, which renumbers every rotated keystore to epoch 1
and moves its archives aside.

Finding 3: `qeaims network allowlist` (`registry_accounts`) lists the registered oracles and the
council's governors, but not an account the council gave the IsolationQuorum's REPAIR_ROLE (a repair
dispatcher, as `qeaims demo ledger` grants one). That account exists to send ``beginRepair``: on a
Besu network whose accounts allowlist is rebuilt from the chain, its every transaction is refused,
and an isolated node can no longer be repaired and voted back.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from chain.besu.accounts import registry_accounts
from chain.deploy import REPAIR_ROLE, dev_governors
from chain.governance import Council


@pytest.mark.chain
def test_a_repair_role_holder_the_council_appointed_is_on_the_registry_allowlist(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain  # its own: the session chain's live list must stay its keystores (test_allowlist_on_chain)
    crew = Account.create()
    council = Council(chain.client, dev_governors(chain.settings), max_logs_range=chain.settings.max_logs_range)
    council.pass_proposal([("IsolationQuorum", "grantRole", [REPAIR_ROLE, crew.address])],
                          "review20: a repair dispatcher")
    assert chain.client.call1("IsolationQuorum", "hasRole", REPAIR_ROLE, crew.address)
    listed = {(a.address, a.role) for a in registry_accounts(chain.client, chain.deployment)}
    assert (crew.address, "repair-crew") in listed
    # the council itself holds roles but sends nothing: a contract is never on the list
    assert chain.deployment.governance_council not in {address for address, _ in listed}

@pytest.mark.unit
def test_network_generate_leaves_a_rotated_keystore_as_it_is_when_another_is_missing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A home of a running deployment where one oracle rotated its key (epoch 2 on-chain, the epoch-1
    keystore archived beside it) and one member keystore is missing (a vault added later, say).
    Planning the allowlist must create the missing one and touch nothing else: a keystore renumbered to
    epoch 1 signs every later vote and batch under an epoch the Registry no longer holds."""
    from chain.besu.accounts import planned_accounts
    from chain.deploy import oracle_keystore, vault_recorder_keystore
    from core.config import load_settings
    from keys.identity import HybridIdentity
    from keys.keystore import load_keystore, read_keystore_header, save_keystore
    from tests.conftest import FAST_SCRYPT_N

    settings = load_settings(home=tmp_path / "home", scrypt_n=FAST_SCRYPT_N)
    planned_accounts(settings, Account.create().address)  # every keystore, as `network generate` first makes them
    rotated = oracle_keystore(settings, "water", 2)
    archive = rotated.with_name(f"{rotated.stem}.epoch1.json")
    rotated.rename(archive)  # a rotation as `keys.keystore.rotate_keystore` leaves it: same account, new key
    account = load_keystore(archive, settings.passphrase).account
    save_keystore(HybridIdentity(account=account, mldsa_key=HybridIdentity.generate().mldsa_key, key_epoch=2),
                  rotated, settings.passphrase, label="oracle water #2", scrypt_n=FAST_SCRYPT_N)
    before = rotated.read_bytes()
    vault_recorder_keystore(settings, "water").unlink()

    planned_accounts(settings, Account.create().address)

    assert vault_recorder_keystore(settings, "water").is_file()  # the missing one was made
    assert archive.is_file(), "the epoch-1 archive was moved away"
    assert rotated.read_bytes() == before, "the rotated keystore was rewritten"
    assert read_keystore_header(rotated).key_epoch == 2


# Finding 6 (fixed): each validator's config.toml served its HTTP JSON-RPC on every interface
# (``rpc-http-host = "0.0.0.0"``) with the QBFT and PERM APIs, and no authentication. ``host-allowlist``
# checks only the HTTP Host header, which a caller writes as it likes. Anyone who reached the port (any
# QEAIMS service container on the Compose network, among them the twins and oracles that read
# untrusted MQTT traffic; any host on the operator's LAN outside Compose) could cast the validator's
# `qbft_proposeValidatorVote` and rewrite its allowlists (`perm_addAccountsToAllowlist`,
# `perm_addNodesToAllowlist`). Now the HTTP endpoint serves ETH, NET and WEB3 only, and the operator's
# APIs are on a WebSocket bound to the validator's loopback. The test checks every JSON-RPC endpoint a
# node serves, with the host it will really bind: Besu's Docker image sets BESU_RPC_HTTP_HOST and
# BESU_RPC_WS_HOST to 0.0.0.0, and an environment variable outranks the config file, so only a
# command-line flag in the Compose file keeps an endpoint on loopback.
_OPERATOR_APIS = {"QBFT", "PERM", "ADMIN", "DEBUG", "MINER", "PLUGINS", "TRACE"}
_IMAGE_ENV_HOSTS = {"rpc-http-host": "0.0.0.0", "rpc-ws-host": "0.0.0.0"}  # besu-eth/besu docker/Dockerfile ENV


def _effective(node: dict[str, Any], command: list[str]) -> dict[str, Any]:
    """Besu's order of precedence: command line, then environment (the image's), then the config file."""
    out = {**node, **_IMAGE_ENV_HOSTS}
    for flag in command:
        key, _, value = flag.removeprefix("--").partition("=")
        out[key] = value
    return out


@pytest.mark.unit
def test_no_validator_serves_its_operator_apis_unauthenticated_on_a_network_interface(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tomllib

    import yaml

    from chain.besu.generate import NetworkSpec, generate_network
    from chain.besu.genesis import QbftParams
    from core.config import load_settings
    from tests.conftest import FAST_SCRYPT_N

    settings = load_settings(home=tmp_path / "home", scrypt_n=FAST_SCRYPT_N)
    net = generate_network(settings, NetworkSpec(validators=4, sectors=("water",), params=QbftParams(chain_id=20_262)),
                           tmp_path / "net")
    compose = yaml.safe_load((tmp_path / "net" / "docker-compose.yml").read_text())
    for validator in net.validators:
        node = tomllib.loads((tmp_path / "net" / validator.name / "config.toml").read_text())
        service = compose["services"][validator.name]
        for layout, settings_seen in (("config.toml", node), ("compose", _effective(node, service["command"]))):
            for endpoint in ("rpc-http", "rpc-ws"):
                if not settings_seen.get(f"{endpoint}-enabled"):
                    continue
                loopback = settings_seen.get(f"{endpoint}-host", "127.0.0.1") in ("127.0.0.1", "localhost", "::1")
                authenticated = bool(settings_seen.get(f"{endpoint}-authentication-enabled"))
                apis = {a.upper() for a in settings_seen.get(f"{endpoint}-api", ["ETH", "NET", "WEB3"])}
                assert loopback or authenticated or not (_OPERATOR_APIS & apis), (validator.name, layout, endpoint)
        published = [p for p in service.get("ports", []) if str(p).rsplit(":", 1)[-1] != "8545"]
        assert not published, (validator.name, published)  # only the stack's HTTP port leaves the container
    assert any(_effective({}, compose["services"][v.name]["command"]).get("rpc-ws-host") == "127.0.0.1"
               for v in net.validators)
