"""`chain.besu.operator_rpc`, the operator's way to a validator's loopback-only QBFT/PERM endpoint.

Besu itself cannot run here, so the endpoint is a WebSocket server on loopback that answers as Besu's
JSON-RPC does (a ``result``, or an ``error`` object with ``code`` and ``message``) and records what it
was sent: the test checks the request on the wire and what the operator sees, not the chain.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from chain.besu.operator_rpc import main

pytestmark = pytest.mark.unit


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    def handler(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            seen.append(request)
            if request["method"] == "qbft_proposeValidatorVote":
                ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": True}))
            else:
                ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                    "error": {"code": -32601, "message": "Method not found"}}))

    server: Server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}", seen
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_vote_goes_out_as_one_json_rpc_request_and_its_result_is_printed(
        endpoint: tuple[str, list[dict[str, object]]], capsys: pytest.CaptureFixture[str]) -> None:
    url, seen = endpoint
    voted = "0x" + "ab" * 20
    assert main(["qbft_proposeValidatorVote", json.dumps([voted, True]), "--url", url]) == 0
    assert seen == [{"jsonrpc": "2.0", "id": 1, "method": "qbft_proposeValidatorVote", "params": [voted, True]}]
    assert json.loads(capsys.readouterr().out) is True


def test_a_node_error_is_one_error_line(endpoint: tuple[str, list[dict[str, object]]],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = endpoint
    assert main(["perm_reloadPermissionsFromFile", "--url", url]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err == "error: perm_reloadPermissionsFromFile: Method not found\n"


def test_bad_params_and_an_unreachable_endpoint_are_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qbft_proposeValidatorVote", "0xabc", "--url", "ws://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.startswith("error: params must be a JSON array")
    assert main(["qbft_getPendingVotes", "--url", "ws://127.0.0.1:9"]) == 1  # port 9 (discard): nothing listens
    err = capsys.readouterr().err
    assert err.startswith("error: ws://127.0.0.1:9: ") and err.count("\n") == 1
