"""The KME's key store and QKD supply, in process: blocks built by hand, then the real `QkdLink`."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest

from core.errors import ConfigError
from links.kme.store import KeyStore, StoreRefused
from links.kme.supply import KeySupply
from links.plan import LinkPlan, LinkSpec
from links.qkd import Eavesdropper
from tests.support import wait_until

LINK = "a~b"


def test_keys_are_cut_from_the_pool_and_given_to_each_end_once() -> None:
    store = KeyStore([LINK, "a~c"])
    material = bytes(range(256))
    assert store.add(LINK, material, material) == 256
    keys = store.take_for_master(LINK, 3, 256)
    assert [k for _, k in keys] == [material[0:32], material[32:64], material[64:96]]
    assert len({i for i, _ in keys}) == 3
    assert store.available_bytes(LINK) == 256 - 96 and store.reserved_count(LINK) == 3
    with pytest.raises(StoreRefused) as other_link:
        store.give_to_slave("a~c", [keys[0][0]])
    assert other_link.value.status == 400
    assert store.give_to_slave(LINK, [keys[1][0]]) == [keys[1]]
    with pytest.raises(StoreRefused) as again:
        store.give_to_slave(LINK, [keys[1][0]])
    assert again.value.status == 400 and again.value.details[0]["key_ID"] == keys[1][0]
    with pytest.raises(StoreRefused, match="named twice"):
        store.give_to_slave(LINK, [keys[0][0], keys[0][0]])
    assert store.reserved_count(LINK) == 2


def test_a_block_whose_copies_differ_is_refused() -> None:
    store = KeyStore([LINK])
    with pytest.raises(ConfigError, match="disagree"):
        store.add(LINK, b"\x00" * 32, b"\x00" * 31 + b"\x01")
    assert store.available_bytes(LINK) == 0


def test_short_pool_is_503_and_the_pool_is_capped() -> None:
    store = KeyStore([LINK], max_pool_bytes=100)
    assert store.add(LINK, b"k" * 300, b"k" * 300) == 100
    with pytest.raises(StoreRefused) as short:
        store.take_for_master(LINK, 4, 256)
    assert short.value.status == 503 and "3 key(s) of 256 bits" in str(short.value)
    assert store.available_bytes(LINK) == 100  # nothing taken by a refused request


def test_reserved_keys_survive_a_restart_and_discarded_ones_say_why(tmp_path: Path) -> None:
    path = tmp_path / "kme-state.json"
    store = KeyStore([LINK], state_path=path)
    store.add(LINK, b"q" * 128, b"q" * 128)
    (first, key1), (second, _) = store.take_for_master(LINK, 2, 256)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())["links"][LINK]["reserved"]) == {first, second}

    again = KeyStore([LINK], state_path=path)
    assert again.available_bytes(LINK) == 0  # the pool is not kept: nobody has seen it
    assert again.give_to_slave(LINK, [first]) == [(first, key1)]
    assert again.discard(LINK) == 32
    with pytest.raises(StoreRefused) as gone:
        again.give_to_slave(LINK, [second])
    assert gone.value.status == 503 and "compromised" in str(gone.value)
    assert json.loads(path.read_text())["links"][LINK]["reserved"] == {}


def test_keys_the_slave_never_fetches_expire() -> None:
    store = KeyStore([LINK], max_reserved=3)
    store.add(LINK, b"e" * 512, b"e" * 512)
    ids = [key_id for key_id, _ in store.take_for_master(LINK, 5, 256)]
    assert store.reserved_count(LINK) == 3
    with pytest.raises(StoreRefused) as expired:
        store.give_to_slave(LINK, [ids[0]])
    assert expired.value.status == 400 and "expired" in str(expired.value)
    assert [k for k, _ in store.give_to_slave(LINK, ids[2:])] == ids[2:]


def test_a_damaged_state_file_is_a_plain_error(tmp_path: Path) -> None:
    path = tmp_path / "kme-state.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match="damaged"):
        KeyStore([LINK], state_path=path)


def test_concurrent_masters_never_get_the_same_key() -> None:
    store = KeyStore([LINK], max_pool_bytes=64 * 1024)
    material = bytes(i % 251 for i in range(64 * 1024))
    store.add(LINK, material, material)
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            keys = store.take_for_master(LINK, 2, 256)
            with lock:
                got.extend(keys)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 800 and len({i for i, _ in got}) == 800
    assert store.available_bytes(LINK) == 64 * 1024 - 800 * 32
    assert sorted(material[i:i + 32] for i in range(0, 800 * 32, 32)) == sorted(k for _, k in got)


def test_eavesdropper_compromises_the_link_and_three_clean_blocks_restore_it() -> None:
    plan = LinkPlan(links=(LinkSpec(master="a", slave="b", distance_km=25.0),))
    store = KeyStore([LINK])
    supply = KeySupply(plan, store, seed=7, pulses_per_block=5_000_000)
    block = supply.run_block(LINK)
    assert not block.attack_detected and block.final_bits > 0
    assert store.available_bytes(LINK) == block.final_bits // 8
    store.take_for_master(LINK, 1, 256)  # delivered to the master only: discarded with the link

    supply.set_eavesdropper(LINK, Eavesdropper(kind="intercept-resend", fraction=1.0))
    attacked = supply.run_block(LINK)
    assert attacked.attack_detected and supply.compromised(LINK)
    assert store.available_bytes(LINK) == 0 and store.reserved_count(LINK) == 0
    state = supply.state_of(LINK)
    assert state["state"] == "compromised" and state["alarms"] and state["alarm_count"] == 1
    assert state["eavesdropper"] == {"kind": "intercept-resend", "fraction": 1.0}
    assert state["last_block"]["attack_detected"] is True

    supply.set_eavesdropper(LINK, None)
    for _ in range(2):
        supply.run_block(LINK)
        assert supply.compromised(LINK) and store.available_bytes(LINK) == 0  # clean, not yet trusted
    supply.run_block(LINK)
    assert not supply.compromised(LINK) and store.available_bytes(LINK) > 0
    state = supply.state_of(LINK)
    assert state["state"] == "secure" and state["blocks"] == 5 and state["alarm_count"] == 1


def test_the_refill_thread_fills_pools_and_bounds_its_monitoring() -> None:
    plan = LinkPlan(links=(LinkSpec(master="a", slave="b", distance_km=25.0),
                           LinkSpec(master="a", slave="far", distance_km=140.0)))
    store = KeyStore(["a~b", "a~far"])
    supply = KeySupply(plan, store, seed=3, pulses_per_block=2_000_000, monitor_s=60.0, low_water_bytes=1024)
    supply.start()
    try:
        wait_until(lambda: store.available_bytes("a~b") >= 1024, 20.0, what="the 25 km pool to fill")
        time.sleep(0.5)
    finally:
        supply.stop()
    assert supply.state_of("a~far")["blocks"] == 1  # it makes no key: it waits for the round, no spinning
    assert supply.state_of("a~far")["last_block"]["final_bits"] == 0
    filled = supply.state_of("a~b")["blocks"]
    assert store.available_bytes("a~b") >= 1024

    # full pools: only monitoring blocks, at most monitor_duty of a core (unbounded, this loop takes ~60 %)
    busy = KeySupply(plan, store, seed=4, pulses_per_block=2_000_000, monitor_s=0.0, low_water_bytes=0,
                     monitor_duty=0.25)
    cpu = time.process_time()
    busy.start()
    time.sleep(2.0)
    busy.stop()
    cpu = time.process_time() - cpu
    assert filled >= 1 and sum(busy.state_of(link_id)["blocks"] for link_id in ("a~b", "a~far")) >= 4
    assert cpu <= 2.0 * 0.25 * 1.6, cpu
