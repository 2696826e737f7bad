"""Council overrides through the API, on a real Anvil: the same path as `qeaims gov`, signed with each
governor's own keystore, refused in one sentence when the passphrase, the role or the council says no.

The module has its own chain (forced isolations and a forged approval must not reach the session chain's
other tests); its four governors are the development consortium's, as the gov CLI tests use them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenStore
from chain.governance import Council
from chain.node import stop_anvil
from core.errors import ConfigError
from keys.council_messages import sign_approval
from keys.ids import to_bytes32
from tests.conftest import Chain, make_chain
from tests.support import governor

pytestmark = pytest.mark.chain

GOVERNORS = ("water", "electricity", "sewage", "banking")
FIFTH = "healthcare"  # the emergency path needs threshold + 1 approvals
ISOLATED = 2  # IRegistry.NodeStatus


@dataclass
class Api:
    chain: Chain
    http: TestClient
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def post(self, path: str, who: str, body: dict[str, Any]) -> Any:
        return self.http.post(f"/api/v1{path}", json=body, headers=self.as_(who))

    def secret(self) -> str:
        return self.chain.settings.passphrase

    def nonce(self, name: str) -> int:
        return int(self.chain.client.rpc.call("eth_getTransactionCount", [governor(self.chain.settings, name).address,
                                                                           "latest"]), 16)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    chain = make_chain(tmp_path_factory.mktemp("api-gov") / "home")
    try:
        store = TokenStore(chain.settings.home / "api")
        tokens = {name: store.add("governor", f"gov-{name}", governor=name) for name in (*GOVERNORS, FIFTH)}
        tokens["auditor"] = store.add("auditor", "audit-1")
        tokens["operator"] = store.add("operator", "ops-water", sector="water")
        http = TestClient(create_app(chain.settings, follow=False), raise_server_exceptions=False)
        yield Api(chain, http, tokens)
    finally:
        stop_anvil(chain.settings)


def _node_status(api: Api, node: str) -> int:
    return int(api.chain.client.call1("Registry", "node", to_bytes32(node))[3])


def _one_sentence(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


def test_a_force_isolation_proposed_approved_and_executed_through_the_api_isolates_the_node(api: Api) -> None:
    assert _node_status(api, "pump-2") != ISOLATED
    made = api.post("/governance/proposals", "water", {"kind": "force-isolate", "node": "pump-2", "sector": "water",
                                                       "reason": "storm", "passphrase": api.secret()})
    assert made.status_code == 201, made.text
    shown = made.json()
    pid = shown["id"]
    assert shown["state"] == "pending" and shown["approvals"] == 1 and shown["hash_matches"]
    assert [(c["target"], c["function"], c["args"]) for c in shown["calls"]] == [
        ("IsolationQuorum", "forceIsolate", {"node": "pump-2", "reason": "storm"})]
    water = governor(api.chain.settings, "water").address
    assert [(a["governor"], a["signature_ok"], a["counts"]) for a in shown["approval_checks"]] == [(water, True, True)]
    assert "passphrase" not in made.text and api.secret() not in made.text

    for name in ("electricity", "sewage"):
        assert api.post(f"/governance/proposals/{pid}/approve", name, {"passphrase": api.secret()}).status_code == 200
    # one approval short of the threshold (4): the council refuses, by name, and nothing changes
    nonce = api.nonce("water")
    early = api.post(f"/governance/proposals/{pid}/execute", "water", {"passphrase": api.secret()})
    assert "has 3 valid ML-DSA approvals" in _one_sentence(early, 409)
    assert api.nonce("water") == nonce and _node_status(api, "pump-2") != ISOLATED
    assert Council(api.chain.client).state(pid) == "Pending"

    done = api.post(f"/governance/proposals/{pid}/approve", "banking", {"passphrase": api.secret()})
    assert done.status_code == 200 and done.json()["state"] in ("queued", "ready") and done.json()["eta"] > 0
    deadline = time.monotonic() + 15
    while True:  # the development delay is 1 s of block time: before it the council says CouncilWrongState
        executed = api.post(f"/governance/proposals/{pid}/execute", "water", {"passphrase": api.secret()})
        if executed.status_code == 200 or time.monotonic() > deadline:
            break
        assert "CouncilWrongState" in _one_sentence(executed, 409)
        time.sleep(0.3)
    assert executed.status_code == 200, executed.text
    assert executed.json()["state"] == "executed" and executed.json()["valid_approvals"] == 4
    assert _node_status(api, "pump-2") == ISOLATED

    auditor = api.http.get(f"/api/v1/governance/proposals/{pid}", headers=api.as_("auditor"))
    assert auditor.status_code == 200 and auditor.json()["problems"] == []
    listed = api.http.get("/api/v1/governance/proposals", headers=api.as_("auditor")).json()
    assert [(p["id"], p["state"], p["calls"]) for p in listed["items"] if p["id"] == pid] == [(pid, "executed", 1)]


def test_execute_with_a_missing_approval_is_a_409_and_changes_nothing(api: Api) -> None:
    cap_before = int(api.chain.client.call1("IsolationQuorum", "isolationCapBps"))
    made = api.post("/governance/proposals", "sewage", {"kind": "set-cap", "cap": 1234, "passphrase": api.secret()})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    for name in ("water", "electricity"):
        assert api.post(f"/governance/proposals/{pid}/approve", name, {"passphrase": api.secret()}).status_code == 200
    block = int(api.chain.client.rpc.call("eth_blockNumber"), 16)
    refused = api.post(f"/governance/proposals/{pid}/execute", "sewage", {"passphrase": api.secret()})
    error = _one_sentence(refused, 409)
    assert error == (f"proposal {pid} has 3 valid ML-DSA approvals of current governors (the council counts 3); "
                     "the council needs 4; nothing was sent")
    assert int(api.chain.client.rpc.call("eth_blockNumber"), 16) == block  # no transaction was mined
    assert int(api.chain.client.call1("IsolationQuorum", "isolationCapBps")) == cap_before
    shown = api.http.get(f"/api/v1/governance/proposals/{pid}", headers=api.as_("auditor")).json()
    assert shown["state"] == "pending" and shown["approvals"] == shown["valid_approvals"] == 3


def test_a_wrong_passphrase_is_a_403_and_sends_nothing(api: Api) -> None:
    count = int(api.chain.client.call1("GovernanceCouncil", "proposalCount"))
    nonce = api.nonce("banking")
    wrong = "not-the-passphrase-" + "x" * 8
    refused = api.post("/governance/proposals", "banking", {"kind": "force-isolate", "node": "lift-1",
                                                            "passphrase": wrong})
    error = _one_sentence(refused, 403)
    assert "wrong passphrase" in error and wrong not in refused.text
    assert api.post("/governance/proposals/1/approve", "banking", {"passphrase": wrong}).status_code == 403
    assert int(api.chain.client.call1("GovernanceCouncil", "proposalCount")) == count
    assert api.nonce("banking") == nonce


def test_only_governors_act_and_only_auditors_and_governors_read(api: Api) -> None:
    body = {"kind": "force-isolate", "node": "lift-1", "passphrase": api.secret()}
    count = int(api.chain.client.call1("GovernanceCouncil", "proposalCount"))
    for who in ("auditor", "operator"):
        assert "needs: governor" in _one_sentence(api.post("/governance/proposals", who, body), 403)
        assert _one_sentence(api.post("/governance/proposals/1/approve", who, {"passphrase": api.secret()}), 403)
    assert _one_sentence(api.http.post("/api/v1/governance/proposals", json=body), 401)
    assert _one_sentence(api.http.get("/api/v1/governance/proposals", headers=api.as_("operator")), 403)
    store = TokenStore(api.chain.settings.home / "api")
    token = store.add("governor", "gov-alice", governor="alice")
    refused = api.http.post("/api/v1/governance/proposals", json=body, headers={"Authorization": f"Bearer {token}"})
    assert "has no keystore" in _one_sentence(refused, 403)
    with pytest.raises(ConfigError, match="names the governor's keystore file"):  # a path is never a governor
        store.add("governor", "gov-path", governor="../oracles/water-1")
    assert int(api.chain.client.call1("GovernanceCouncil", "proposalCount")) == count
    assert "no council proposal 999" in _one_sentence(
        api.http.get("/api/v1/governance/proposals/999", headers=api.as_("auditor")), 404)
    assert "takes node" in _one_sentence(api.post("/governance/proposals", "water",
                                                  {"kind": "force-isolate", "passphrase": api.secret()}), 422)
    assert "not registered in sector electricity" in _one_sentence(api.post(
        "/governance/proposals", "water", {**body, "sector": "electricity"}), 422)
    assert int(api.chain.client.call1("GovernanceCouncil", "proposalCount")) == count


def test_an_approval_whose_ml_dsa_signature_does_not_verify_is_shown_and_not_counted(api: Api) -> None:
    # a cap change: it simulates whatever state the other tests left the nodes in (a reintegration of
    # pump-2 only did after the force-isolation test had run first)
    made = api.post("/governance/proposals", "water", {"kind": "set-cap", "cap": 2345, "passphrase": api.secret()})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    # the electricity governor's account approves with an ML-DSA signature over another calls hash: the
    # contract cannot check ML-DSA and takes it; the recount (and so the API) must not count it
    forger = governor(api.chain.settings, "electricity")
    api.chain.reconnect()  # a client whose nonces are read afresh: the API's own sent from this account
    council = Council(api.chain.client)
    digest = council.proposal(pid).recomputed_hash()
    bad = sign_approval(forger, chain_id=api.chain.client.chain_id, council=council.address, proposal_id=pid,
                        calls_hash=b"\x01" * 32, key_epoch=1)
    api.chain.client.transact(forger.account, "GovernanceCouncil", "approve", pid, digest, 1, bad)
    shown = api.http.get(f"/api/v1/governance/proposals/{pid}", headers=api.as_("auditor")).json()
    checks = {a["governor"]: (a["signature_ok"], a["counts"]) for a in shown["approval_checks"]}
    assert checks[forger.address] == (False, False)
    assert shown["approvals"] == 2 and shown["valid_approvals"] == 1


def test_an_emergency_execution_needs_threshold_plus_one_approvals_and_skips_the_delay(api: Api) -> None:
    made = api.post("/governance/proposals", "water", {"kind": "force-isolate", "node": "lift-2",
                                                       "passphrase": api.secret()})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    for name in GOVERNORS[1:]:
        assert api.post(f"/governance/proposals/{pid}/approve", name, {"passphrase": api.secret()}).status_code == 200
    short = api.post(f"/governance/proposals/{pid}/emergency", "water", {"passphrase": api.secret(), "reason": "flood"})
    assert "an emergency execution needs 5" in _one_sentence(short, 409)
    assert _node_status(api, "lift-2") != ISOLATED
    assert api.post(f"/governance/proposals/{pid}/approve", FIFTH, {"passphrase": api.secret()}).status_code == 200
    done = api.post(f"/governance/proposals/{pid}/emergency", "water", {"passphrase": api.secret(), "reason": "flood"})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "executed" and _node_status(api, "lift-2") == ISOLATED
