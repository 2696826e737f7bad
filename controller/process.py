"""`qeaims controller`: the controller as its own process, against any RPC URL and broker.

It loads its registered identity (``keystores/controller.json``, created by `qeaims deploy`),
connects to the chain and to the broker the devices listen on, and runs `Controller.run_once`
every half second. A chain outage or a device that does not answer only delays the step it
was on (retried with back-off); the controller's state is on the chain and in its outbox, so a
restart, however abrupt, resumes where it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bus.secure import SecureLinks
from chain.connect import connect
from chain.deploy import controller_keystore
from controller.commander import Commander, CommandTimeout
from controller.deadlines import FieldClock
from controller.link_watch import LinkWatch
from controller.node import Controller, Planner, log_line
from core.backoff import next_backoff
from core.config import Settings
from core.errors import ChainError, IdentityError, QeaimsError
from core.messages import Sector
from keys.keystore import load_keystore

__all__ = ["run_controller"]

BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


def run_controller(settings: Settings, planner: Planner, *, mqtt_host: str = "127.0.0.1", mqtt_port: int = 1883,
                   speed: float = 1.0, stop: threading.Event | None = None,
                   on_ready: Callable[[Controller], None] | None = None, links: SecureLinks | None = None,
                   field_clock: FieldClock | None = None) -> None:
    """Run until `stop`; with `links`, commands go through the controller's secure links and every
    link's sessions and QKD alarms are recorded on-chain (`controller.link_watch`); with `field_clock`
    (`controller.scada.FieldView.clock`) crews are due in field time (`controller.deadlines`)."""
    keystore = controller_keystore(settings)
    if not keystore.is_file():
        raise IdentityError(f"no controller keystore at {keystore}: `qeaims deploy` creates it")
    identity = load_keystore(keystore, settings.passphrase)
    client, deployment = connect(settings)
    stop = stop or threading.Event()
    watch = None
    if links is not None:
        watch = LinkWatch(plan=links.plan, directory=links.directory, kme=links.kme, host=mqtt_host,
                          port=mqtt_port).start()
    try:
        with Commander(host=mqtt_host, port=mqtt_port, links=links) as commander:
            controller = Controller(settings=settings, client=client, deployment=deployment, identity=identity,
                                    commander=commander, planner=planner, speed=speed, field_clock=field_clock)
            controller.link_watch = watch
            log_line("controller-started", controller=identity.address, mqtt=f"{mqtt_host}:{mqtt_port}")
            try:  # from here on the controller is closed however the run ends (its index and outbox)
                if on_ready is not None:
                    on_ready(controller)
                _warm(planner)
                _loop(controller, stop)
            finally:
                log_line("controller-stopped", controller=identity.address,
                         open=[i.proposal for i in controller.isolations.values() if not i.finished])
                controller.close()
    finally:  # the link watch too, even when the broker or the controller's own files would not open
        if watch is not None:
            watch.close()


def _loop(controller: Controller, stop: threading.Event) -> None:
    """`Controller.run_once` every half second until `stop`, a failed step retried with back-off."""
    failures = 0
    while not stop.is_set():
        try:
            controller.run_once()
            failures = 0
        except (ChainError, CommandTimeout) as exc:
            failures, delay = next_backoff(failures, exc, BACKOFF_S)
            log_line("controller-retry", error=str(exc), retry_in_s=delay)
            stop.wait(delay)
            continue
        except QeaimsError as exc:  # a device refused, or a plan cannot be made: say so, go on
            failures += 1
            log_line("controller-step-failed", error=str(exc))
            stop.wait(BACKOFF_S[-1])
            continue
        stop.wait(0.5)

def _warm(planner: Planner) -> None:
    """Open the planner's models before the first isolation can need a plan (`TwinPlanner.warm`).

    Only an optimisation: whatever it raises is logged and the controller starts regardless (a model
    that cannot open fails its first plan instead, recorded on-chain). It runs inside the loop's
    try/finally, so even what is not caught here (an interrupt) still closes the controller.
    """
    warm = getattr(planner, "warm", None)
    if not callable(warm):
        return
    try:
        took = warm(list(Sector))
    except Exception as exc:  # noqa: BLE001 - a planner of any make: its warming must never stop the controller
        log_line("controller-models-cold", error=f"{type(exc).__name__}: {exc}"[:300])
        return
    log_line("controller-models-warm", seconds={k: round(v, 2) for k, v in took.items()})
