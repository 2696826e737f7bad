"""`/audit/verifications`: the whole audit as a background job, on a real Anvil, one job at a time; a
forged batch is a finding of the job and shows in that event's evidence."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import api.routers.audit as audit_router
from api.live.hub import hub_of
from api.live.messages import Message
from chain.audit_run import audit_afresh
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.api._regulator import API, RegApi, build
from tests.conftest import Chain
from tests.support import oracle


@pytest.fixture(scope="module")
def api(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegApi]:
    built = build(chain, tmp_path_factory.mktemp("audit-api"))
    yield built
    built.client.close()


def _post(reg: RegApi, token: str, body: dict[str, Any] | None = None) -> Any:
    return reg.client.post(f"{API}/audit/verifications", headers=reg.tokens.header(token), json=body)


def _wait(reg: RegApi, job: str, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state: dict[str, Any] = reg.get(f"/audit/verifications/{job}", reg.tokens.auditor).json()
        if state["status"] != "running":
            return state
        time.sleep(0.1)
    raise AssertionError(f"verification {job} still running after {timeout_s} s")


def test_a_verification_runs_in_the_background_one_at_a_time(api: RegApi, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real: Callable[..., Any] = audit_afresh

    def held(*args: Any, **kwargs: Any) -> Any:  # the real audit, started only when the test says
        assert gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(audit_router, "audit_afresh", held)  # what the job's thread calls
    told: list[Message] = []
    hub_of(api.client.app).add_sink(told.append)  # what the stream's audit-progress topic carries
    started = _post(api, api.tokens.auditor)
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    assert started.json()["status"] == "running" and started.headers["location"].endswith(job)
    busy = _post(api, api.tokens.governor)
    assert busy.status_code == 409 and busy.json() == {
        "error": f"verification {job} is still running; wait for it (GET /api/v1/audit/verifications/{job})"}
    running = api.get(f"/audit/verifications/{job}", api.tokens.governor).json()
    assert running["status"] == "running" and running["result"] is None and running["requested_by"] == "audit-1"
    gate.set()
    done = _wait(api, job)
    assert done["status"] == "done" and done["error"] is None, done
    result = done["result"]
    assert result["ok"] is True and result["invalid"] == [] and result["problems"] == []
    assert result["events"] == result["valid"] >= 5 and result["key_epochs"] >= 24
    anchor = result["anchor"]
    assert re.fullmatch(r"\d+:0x[0-9a-f]{64}", anchor) and int(anchor.split(":")[0]) == result["head"]
    assert done["finished"] >= done["started"] and done["progress"]["step"]
    mine = [m.data for m in told if m.topic == "audit-progress" and m.data["id"] == job]
    assert mine[0]["status"] == "running" and mine[-1]["status"] == "done" and mine[-1]["ok"] is True
    assert {"indexing chain logs", "verifying batches", "recounting decisions"} <= {m["step"] for m in mine}

    # the anchor given back: the chain still holds it; one it never held is a finding
    again = _wait(api, _post(api, api.tokens.auditor, {"anchors": [anchor]}).json()["id"])
    assert again["result"]["ok"] is True
    head = int(anchor.split(":")[0])
    wrong = _wait(api, _post(api, api.tokens.auditor, {"anchors": [f"{head}:0x{'ab' * 32}"]}).json()["id"])
    assert wrong["result"]["ok"] is False
    assert [p["check"] for p in wrong["result"]["problems"]] == ["anchor"]


def test_who_may_ask_and_bad_requests(api: RegApi) -> None:
    refused = _post(api, api.tokens.operator_water)
    assert refused.status_code == 403 and "needs: auditor, governor" in refused.json()["error"]
    assert api.get("/audit/verifications/0123456789abcdef", api.tokens.operator_water).status_code == 403
    bad = _post(api, api.tokens.auditor, {"anchors": ["12:0xnothex"]})
    assert bad.status_code == 422
    assert bad.json() == {"error": "anchor '12:0xnothex' must look like BLOCK:0xHASH (as a previous audit printed it)"}
    unknown = api.get("/audit/verifications/0123456789abcdef", api.tokens.auditor)
    assert unknown.status_code == 404 and "no verification 0123456789abcdef" in unknown.json()["error"]
    assert api.get("/audit/verifications/nope", api.tokens.auditor).status_code == 422


def test_a_forged_batch_is_a_finding_of_the_job_and_of_its_events_evidence(fresh_chain: Chain, tmp_path: Path) -> None:
    reg = build(fresh_chain, tmp_path / "api")
    ident = oracle(fresh_chain.settings, "water", 2)
    batch = sign_batch(ident, chain_id=fresh_chain.client.chain_id, ledger=fresh_chain.deployment.event_ledger,
                       events=[EventToSign(seq=1, kind=2, node=to_bytes32("pump-2"), payload=b"{}")])
    forged = bytes([batch.pq_signature[0] ^ 0xFF]) + batch.pq_signature[1:]
    fresh_chain.client.transact(ident.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch,
                                forged)
    reg.ctx.sync()
    event = reg.get("/events", reg.tokens.auditor, oracle=ident.address).json()["items"][0]
    evidence = reg.get(f"/events/{event['block']}/{event['log_index']}", reg.tokens.auditor).json()
    assert evidence["verified"] is False
    assert evidence["batch"]["verifies"] is False
    assert evidence["batch"]["reason"] == "ML-DSA-65 signature does not verify"
    assert evidence["key"]["valid"] is True  # the key is fine: the signature is not
    honest = reg.get("/events", reg.tokens.auditor, node=reg.pump).json()["items"][0]
    assert reg.get(f"/events/{honest['block']}/{honest['log_index']}", reg.tokens.auditor).json()["verified"] is True

    job = _wait(reg, _post(reg, reg.tokens.auditor).json()["id"])
    assert job["status"] == "done" and job["result"]["ok"] is False
    assert [(i["oracle"], i["seq"], i["reason"]) for i in job["result"]["invalid"]] == [
        (ident.address, 1, "ML-DSA-65 signature does not verify")]
    reg.client.close()
