"""`qeaims oracle --sector S --index I`: one oracle as its own process, against any RPC URL;
`qeaims oracles --sector S --count N`: a sector's oracles in one host process (`run_oracle_host`).

Wires the pieces: the oracle's keystore (`keystores/oracles/<sector>-<index>.json`), the sector's
trained model (`oracles.training`; trained and saved on first use), an MQTT subscriber on the
sector's topics and any Modbus devices to poll, all feeding one `ReadingSink` that the
`OracleNode` loop drains. A host given a wire port also runs its sector's gateway on the twin's
path and each oracle's monitor of it (`oracles.wire_watch`). SIGTERM or SIGINT stop it cleanly: the loop finishes its pass, anchors
what it stored and exits; SIGKILL loses nothing either (see `oracles.node`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bus.secure import open_links
from chain.connect import connect
from chain.deploy import oracle_keystore
from chain.recorder import RotationUnfinished, check_key_epoch
from chain.rotation import rotate_oracle_key, settle_pending_rotation
from core.config import Settings
from core.errors import ChainError, ConfigError, IdentityError
from core.logs import setup_logging
from core.messages import Sector
from keys.keystore import load_keystore
from links.plan import oracle_sae
from oracles.ingest.modbus import ModbusPoller
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.registers import PUMP_MAP
from oracles.ingest.sink import ReadingSink
from oracles.node import KeyRotationOwed, NodeOptions, OracleNode, log_line
from oracles.training import ModelError, load_model, load_or_train
from oracles.wire_watch import DEFAULT_LEARN_S, SectorWireWatch

__all__ = ["OracleProcessOptions", "parse_endpoint", "run_oracle", "run_oracle_host", "setup_logging"]


@dataclass(frozen=True)
class OracleProcessOptions:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    model: Path | None = None  # default: <home>/models/<sector>.joblib, trained if missing
    modbus: tuple[tuple[str, int], ...] = ()  # pump-station RTUs to poll (PUMP_MAP)
    modbus_interval_s: float = 1.0
    max_future_s: float = 300.0
    idle_s: float = 0.2  # pause between passes of the oracle's loop
    latency_report_s: float = 15.0  # how often the per-hop ingest latency is logged
    node: NodeOptions = field(default_factory=NodeOptions)
    wire_port: int | None = None  # a host's sector gateway on the twin's path (`oracles.wire_watch`)
    wire_learn_s: float = DEFAULT_LEARN_S


def parse_endpoint(text: str) -> tuple[str, int]:
    """``"10.0.0.7:5020"`` → ("10.0.0.7", 5020), with the reason in the error."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:5020)")
    return host, int(port)


def run_oracle(settings: Settings, sector: Sector, index: int, options: OracleProcessOptions = OracleProcessOptions(),
               *, stop: threading.Event | None = None,
               on_ready: Callable[[OracleNode], None] | None = None) -> None:
    """Run until `stop` is set (`qeaims oracle` sets it on SIGTERM/SIGINT)."""
    keystore = oracle_keystore(settings, sector.value, index)
    if not keystore.is_file():
        raise IdentityError(f"no oracle keystore at {keystore}: is {sector.value}-{index} part of this deployment? "
                            "(`qeaims deploy` creates the development consortium's oracles)")
    if options.modbus and PUMP_MAP.sector != sector:
        raise ConfigError(f"--modbus polls the built-in {PUMP_MAP.sector.value} pump-station map; "
                          f"a {sector.value} oracle has no Modbus device map")
    identity = load_keystore(keystore, settings.passphrase)
    client, deployment = connect(settings)
    try:  # a key the registry does not hold is found now, not at the first anchor
        check_key_epoch(client, identity)
    except RotationUnfinished as exc:
        return _rotate_then_run(settings, sector, index, options, exc, stop=stop, on_ready=on_ready)
    except ChainError:
        pass  # the chain is down at start: the loop's first sync checks again
    else:  # the registry holds this key: a rotation to it that timed out and was mined since is settled
        settle_pending_rotation(keystore, identity)
    model = (load_model(options.model, sector=sector) if options.model is not None
             else load_or_train(settings.home, sector))
    if model.sector != sector:
        raise ConfigError(f"model {options.model} is for {model.sector.value}, not {sector.value}")
    stop = stop or threading.Event()
    sink = ReadingSink()
    node = OracleNode(settings=settings, client=client, deployment=deployment, identity=identity, model=model,
                      sink=sink, options=options.node)
    links = open_links(settings.home, oracle_sae(sector.value, index))
    subscriber = MqttSubscriber(sink, host=options.mqtt_host, port=options.mqtt_port, sectors=[sector],
                                client_id=f"oracle-{sector.value}-{index}", max_future_s=options.max_future_s,
                                links=links)
    pollers: Sequence[ModbusPoller] = [
        ModbusPoller(PUMP_MAP, sink, host=host, port=port, interval_s=options.modbus_interval_s)
        for host, port in options.modbus
    ]
    # The loop runs before the subscription is granted: a resumed session first receives what the
    # broker kept for it, and each of those messages is acknowledged only once the loop stored it.
    loop_stop = threading.Event()  # set only after the inputs are closed, so the loop stores their last readings
    failure: list[BaseException] = []

    def loop_body() -> None:
        try:
            node.run(loop_stop, idle_s=options.idle_s)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread (one line if a user mistake)
            failure.append(exc)
            stop.set()

    loop = threading.Thread(target=loop_body, name="oracle-loop")
    loop.start()
    try:
        subscriber.start(timeout_s=30.0)
        for poller in pollers:
            poller.start()
        if links is not None:
            links.start()
        log_line("oracle-started", oracle=identity.address, sector=sector.value, index=index,
                 mqtt=f"{options.mqtt_host}:{options.mqtt_port}", sensors=len(model.sensors), cursor=node.cursor,
                 links="hybrid" if links is not None else "plaintext")
        if on_ready is not None:
            on_ready(node)
        next_report = time.monotonic() + options.latency_report_s
        while not stop.wait(0.5):
            if time.monotonic() >= next_report:  # how late readings reach this oracle (`qeaims ps --latency`)
                next_report += options.latency_report_s
                log_line("ingest-latency", sector=sector.value, index=index, **subscriber.latency.summary())
    finally:
        for poller in pollers:
            poller.stop()
        subscriber.stop()
        if links is not None:
            links.close()
        loop_stop.set()
        loop.join()
        log_line("oracle-stopped", oracle=identity.address, stored=node.stats.stored, judged=node.stats.judged,
                 episodes=node.stats.episodes, votes=node.stats.votes, chain_errors=node.stats.chain_errors)
        node.close()
    if failure and isinstance(failure[0], KeyRotationOwed | RotationUnfinished):
        stop.clear()
        return _rotate_then_run(settings, sector, index, options, failure[0], stop=stop, on_ready=on_ready)
    if failure:
        raise failure[0]


def _rotate_then_run(settings: Settings, sector: Sector, index: int, options: OracleProcessOptions,
                     why: KeyRotationOwed | RotationUnfinished, *, stop: threading.Event | None,
                     on_ready: Callable[[OracleNode], None] | None) -> None:
    """Rotate (or finish this oracle's own rotation: `rotate_oracle_key` resends it when the keystore is
    one epoch ahead; its proof is bound to the chain id, the registry and both epochs), then serve
    again with the new key."""
    rotated = rotate_oracle_key(connect(settings)[0], oracle_keystore(settings, sector.value, index), settings.passphrase)
    log_line("key-rotated", oracle=rotated.address, old_epoch=rotated.old_epoch, new_epoch=rotated.new_epoch,
             resumed=rotated.resumed, reason=why.reason)
    return run_oracle(settings, sector, index, options, stop=stop, on_ready=on_ready)


HOST_RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def run_oracle_host(settings: Settings, sector: Sector, indexes: Sequence[int],
                    options: OracleProcessOptions = OracleProcessOptions(), *, stop: threading.Event | None = None,
                    on_ready: Callable[[], None] | None = None) -> None:
    """Run several of a sector's oracles in one process, each on its own threads, until `stop`.

    Why: on a two-core machine, 24 oracle processes each importing scikit-learn, web3 and the
    cryptography stack made `qeaims up` take over a minute before a twin could start. A host pays
    the imports once per sector. Each oracle keeps everything that makes it an independent voter:
    its own keystore and signing key, chain client and nonces, telemetry store, state file, MQTT
    session and secure link; nothing of one is reachable through another's objects. What they
    share is the process (a bug that crashes it stops all of them, and the supervisor restarts the
    host) and the model file, which each loads and verifies for itself. A consortium in production
    runs each oracle on its operator's own machine (`qeaims oracle --sector S --index I`); the host
    is the one-machine city's economy, not its trust model.

    An oracle whose run fails is restarted in the host with a growing back-off, as the supervisor
    would restart its process; the others keep running. One that fails with a mistake no restart
    mends (no keystore, a damaged link state) ends alone; the host raises that error once every
    oracle has ended, and runs on with the others until then. `on_ready` is called once, when every
    oracle has subscribed or ended (the host's ``oracle-host-started`` line is what `qeaims up` waits for).
    """
    if not indexes:
        raise ConfigError("an oracle host needs at least one oracle index")
    stop = stop or threading.Event()
    if options.model is None:  # train (once, here) before any oracle thread looks for the model
        load_or_train(settings.home, sector)
    settled: dict[int, bool] = {}  # index → subscribed (True) or ended for good (False)
    lock = threading.Lock()
    announced = threading.Event()

    def settle(index: int, running: bool) -> None:
        """Once every oracle has subscribed or ended, the host is ready (once), if any one runs."""
        with lock:
            settled.setdefault(index, running)
            complete = len(settled) == len(indexes) and any(settled.values()) and not announced.is_set()
            if complete:
                announced.set()
        if complete and on_ready is not None:
            on_ready()

    def one(index: int) -> None:
        restarts = 0
        while not stop.is_set():
            def started(node: OracleNode, index: int = index) -> None:
                if watch is not None:
                    watch.attach(index, node.recorder)
                settle(index, True)

            try:
                try:
                    run_oracle(settings, sector, index, options, stop=own_stop[index], on_ready=started)
                finally:
                    if watch is not None:
                        watch.detach(index)
            except (ConfigError, IdentityError, ModelError) as exc:
                # a mistake no restart mends (its keystore, its link state): that oracle ends, its
                # peers keep the sector's quorum; the host ends only once every oracle has ended so
                log_line("oracle-ended", sector=sector.value, index=index, error=f"{type(exc).__name__}: {exc}")
                fatal.append(exc)
                settle(index, False)
                return
            except Exception as exc:  # noqa: BLE001 - one oracle's failure must not end its peers
                delay = HOST_RESTART_BACKOFF_S[min(restarts, len(HOST_RESTART_BACKOFF_S) - 1)]
                restarts += 1
                log_line("oracle-failed", sector=sector.value, index=index, error=f"{type(exc).__name__}: {exc}",
                         restart_in_s=delay, restarts=restarts)
                own_stop[index].clear()
                stop.wait(delay)
                continue
            return

    # the sector's gateway first: the twins connect through it, and it learns from their first packet
    watch = (SectorWireWatch(settings, sector, broker=(options.mqtt_host, options.mqtt_port),
                             listen_port=options.wire_port, learn_s=options.wire_learn_s).start()
             if options.wire_port is not None else None)
    own_stop = {index: threading.Event() for index in indexes}
    fatal: list[BaseException] = []
    threads = [threading.Thread(target=one, args=(index,), name=f"oracle-{sector.value}-{index}")
               for index in indexes]
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(0.5):
            if not any(thread.is_alive() for thread in threads):
                break
    finally:
        stop.set()
        while any(thread.is_alive() for thread in threads):
            for event in own_stop.values():  # again each round: a rotating oracle clears its own
                event.set()
            for thread in threads:
                thread.join(0.5)
        if watch is not None:
            watch.stop()
    if fatal:
        raise fatal[0]
