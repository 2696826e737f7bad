"""The gate forwards only JSON-RPC methods whose effects the journal replays (review s38, finding 2):
a refused method gets a JSON-RPC error naming it, a batch holding one is refused whole, chunked bodies
and WebSocket upgrades get an HTTP error, and keep-alive and pipelined requests are answered in order."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.gate import allowed, next_base_fee
from core.config import Settings
from tests.chain.gate_support import bare_chain

pytestmark = pytest.mark.chain

ACCOUNT_9 = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with bare_chain(Path(tmp_path_factory.mktemp("gate")) / "home") as settings:
        yield settings


def _request(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), extra)) + body


def _responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """Read `count` HTTP responses (Content-Length bodies) from `sock`: (status, body) each."""
    data, out = b"", list[tuple[int, bytes]]()
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "the gate closed the connection"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(data) < length:
            data += sock.recv(65536)
        out.append((int(head.split(b" ", 2)[1]), data[:length]))
        data = data[length:]
    return out


def _call(method: str, params: list[object], ident: int = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}


def _connect(settings: Settings) -> socket.socket:
    return socket.create_connection((settings.rpc_host, settings.rpc_port), timeout=5)


def test_the_allowlist() -> None:
    for method in ("eth_sendRawTransaction", "eth_call", "net_version", "web3_clientVersion", "txpool_status",
                   "evm_snapshot", "evm_revert", "evm_mine", "anvil_mine", "evm_setAutomine", "evm_increaseTime",
                   "evm_setNextBlockTimestamp", "evm_setIntervalMining", "anvil_nodeInfo", "anvil_metadata",
                   "anvil_dropAllTransactions"):
        assert allowed(method), method
    for method in ("anvil_setBalance", "anvil_setCode", "anvil_setStorageAt", "anvil_setNonce", "anvil_setCoinbase",
                   "anvil_setNextBlockBaseFeePerGas", "evm_setBlockGasLimit", "anvil_setChainId",
                   "anvil_impersonateAccount", "anvil_autoImpersonateAccount", "anvil_reset", "anvil_loadState",
                   "anvil_setMinGasPrice", "eth_sendUnsignedTransaction", "debug_setHead", "hardhat_setBalance"):
        assert not allowed(method), method


def test_eip1559_next_base_fee() -> None:  # the figures Anvil 1.7.1 mined for 21,000-gas blocks of 30M gas
    assert next_base_fee(1_000_000_000, 21_000, 30_000_000) == 875_175_000
    assert next_base_fee(1_000_000_000, 15_000_000, 30_000_000) == 1_000_000_000
    assert next_base_fee(1_000_000_000, 30_000_000, 30_000_000) == 1_125_000_000


def test_a_state_changing_method_is_refused_with_an_error_naming_it(chain: Settings) -> None:
    with _connect(chain) as sock:
        sock.sendall(_request(json.dumps(_call("anvil_setBalance", [ACCOUNT_9, "0x1"], 7)).encode()))
        sock.sendall(_request(json.dumps(_call("eth_getBalance", [ACCOUNT_9, "latest"], 8)).encode()))
        (status, body), (_, balance) = _responses(sock, 2)  # the connection stays open after a refusal
    reply = json.loads(body)
    assert status == 200 and reply["id"] == 7 and reply["error"]["code"] == -32601
    assert "anvil_setBalance" in reply["error"]["message"] and "journaled transaction" in reply["error"]["message"]
    assert int(json.loads(balance)["result"], 16) != 1


def test_a_batch_with_one_refused_method_is_refused_whole(chain: Settings) -> None:
    batch = [_call("eth_blockNumber", [], 1), _call("anvil_setCode", [ACCOUNT_9, "0x00"], 2)]
    with _connect(chain) as sock:
        sock.sendall(_request(json.dumps(batch).encode()))
        sock.sendall(_request(json.dumps(_call("eth_getCode", [ACCOUNT_9, "latest"], 3)).encode()))
        (_, body), (_, code) = _responses(sock, 2)
    replies = json.loads(body)
    assert [r["id"] for r in replies] == [1, 2]
    assert all(r["error"]["code"] == -32601 and "anvil_setCode" in r["error"]["message"] for r in replies)
    assert json.loads(code)["result"] == "0x"


def test_pipelined_requests_are_answered_in_order_on_one_connection(chain: Settings) -> None:
    calls = [_call("eth_chainId", [], 1), _call("anvil_setNonce", [ACCOUNT_9, "0x5"], 2),
             _call("net_version", [], 3), _call("eth_getTransactionCount", [ACCOUNT_9, "latest"], 4)]
    with _connect(chain) as sock:
        sock.sendall(b"".join(_request(json.dumps(c).encode()) for c in calls))  # one write: pipelined
        replies = [json.loads(body) for _, body in _responses(sock, len(calls))]
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert int(replies[0]["result"], 16) == chain.chain_id and "error" in replies[1]
    assert replies[2]["result"] == str(chain.chain_id) and replies[3]["result"] == "0x0"


@pytest.mark.parametrize(("extra", "status"), [(b"Transfer-Encoding: chunked\r\n", 411),
                                                (b"Connection: Upgrade\r\nUpgrade: websocket\r\n", 501)])
def test_chunked_bodies_and_upgrades_get_an_http_error(chain: Settings, extra: bytes, status: int) -> None:
    with _connect(chain) as sock:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra + b"\r\n"
        sock.sendall(head)
        [(got, body)] = _responses(sock, 1)
        assert got == status and body.startswith(b"error: ")
        assert sock.recv(1) == b""  # and the connection ends
