"""A sector's wire watch in the one-machine city: the gateway on the twin's path, its profile, and every oracle's monitor.

In a plant, a sector's field devices reach the control network through a gateway. The city's devices
are its twins, and they reach the broker over MQTT; with `qeaims up --wire-watch` each sector's twin
connects to its sector's gateway (`gateway.Gateway`, protocol ``mqtt``) instead of the broker. The
gateway runs in the sector's oracle host, which is on the path anyway: the mirror to the oracles is
then in-process (in a plant it is a SPAN port to each oracle's machine). The oracles and the
controller keep their own sessions with the broker: they are the control room, not field devices.

*Profile.* Learnt from the first ``learn_s`` wall seconds of the twin's own traffic (no other client's), counted from the
first observation (the twin's CONNECT, as the host starts before the twins), then saved to
``<home>/gateways/<sector>-mqtt.json``. A host that restarts loads the saved profile and never
relearns from traffic an attacker may be in by then; deleting the file relearns. The twin's documented
interface is declared beside what was learnt (`gateway.Interface`): readings on its batch topic,
acknowledgements of commands and service notices, subscriptions to its control and command topics.
A quiet training window holds no acknowledgement (no command came) and no service notice (no
service changed); the documentation does. Until the profile exists nothing is judged.

*Monitors.* Each oracle of the host gets its own `WireOracle` (its own `gateway.Monitor`) once its
node runs and the profile exists, fed through the mirror. Its detections are appended to that oracle's
outbox (`sends=False`) and sent by its node's loop, in order with its other events, under its own
signature: one sender per account, so nonces and sequence numbers stay in order, and the event is on
disk before it is sent, so a crash loses none. An oracle that restarts gets a fresh monitor.

*Enforcement.* An `intel.feed.IndicatorFeed` applies what the chain holds in force (indicators as
deny entries, the sector's countermeasures) to the gateway's policy. The sectors are separate sites
that share one loopback only by the city's economy, so a local address named in one sector is
enforced in that sector alone (`intel.enforce.gateway_enforcer`, ``shared_network=False``): an
indicator naming 127.0.0.1 must not cut every sector's twin off.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from bus.mqtt import batch_topic
from chain.connect import connect
from chain.recorder import EventRecorder
from core.config import Settings
from core.errors import ConfigError
from core.messages import Sector
from gateway import Gateway, GatewayError, Interface, Observation, ObservationLog, Policy, Profile
from intel.enforce import gateway_enforcer
from intel.feed import IndicatorFeed
from oracles.node.state import log_line
from oracles.wire import WireOracle
from sectors.remote import ack_topic, cmd_topic, sim_topic, svc_topic

__all__ = ["DEFAULT_LEARN_S", "FEED_INTERVAL_S", "SectorWireWatch", "profile_path", "twin_client_id",
           "twin_interface"]

DEFAULT_LEARN_S = 240.0
"""Wall seconds of traffic a profile is learnt from: an hour of the city's field time at its speed of 15."""
FEED_INTERVAL_S = 2.0  # how often the chain's indicators are read (propagation is measured by the scenario)
WINDOW_S = 10.0  # the rate windows the profile counts requests in (`Profile.learn`)


def twin_client_id(sector: Sector) -> str:
    """The MQTT client id (and user name, `bus.client`) of a sector's twin, as `sectors.publish` sets it."""
    return f"twin-{sector.value}"


def twin_interface(sector: Sector) -> Interface:
    """What a twin is documented to do on MQTT (`sectors.publish.TwinPublisher`, `sectors.remote`)."""
    client = twin_client_id(sector)
    return Interface(client=f"{client}@{client}",
                     publish=(batch_topic(sector, client), ack_topic(sector), svc_topic(sector)),
                     subscribe=(sim_topic(sector), cmd_topic(sector)),
                     note="the city's twin: readings, acknowledgements, service notices; control and commands")


def profile_path(home: Path, sector: Sector) -> Path:
    return home / "gateways" / f"{sector.value}-mqtt.json"


@dataclass
class _Learning:
    log: ObservationLog = field(default_factory=ObservationLog)
    first_mono: float | None = None


class SectorWireWatch:
    """The gateway of one sector's twin path, learning and then mirroring to its oracles' monitors."""

    def __init__(self, settings: Settings, sector: Sector, *, broker: tuple[str, int], listen_port: int,
                 learn_s: float = DEFAULT_LEARN_S, feed_interval_s: float = FEED_INTERVAL_S) -> None:
        if not learn_s > 0:
            raise ConfigError(f"the wire watch's learning window must be positive, got {learn_s:g} s")
        self.settings, self.sector, self.learn_s = settings, sector, learn_s
        self.path = profile_path(settings.home, sector)
        self.policy = Policy()
        self.gateway = Gateway(broker[0], broker[1], listen_port=listen_port, protocol="mqtt", sector=sector.value,
                               device=f"broker-{sector.value}", policy=self.policy, monitor=self)
        self.profile: Profile | None = None
        self._learning: _Learning | None = None
        self._lock = threading.Lock()
        self._recorders: dict[int, EventRecorder] = {}
        self._wires: dict[int, WireOracle] = {}
        self._feed: IndicatorFeed | None = None
        self.observed = 0

    # --- life --------------------------------------------------------------------------------------

    def start(self) -> SectorWireWatch:
        if self.path.is_file():
            try:
                self.profile = Profile.load(self.path)
            except GatewayError as exc:
                raise ConfigError(f"{exc}: delete it to learn the profile again") from None
            if self.profile.device != self.gateway.device or self.profile.protocol != "mqtt":
                raise ConfigError(f"{self.path} is the profile of {self.profile.device}, not {self.gateway.device}")
            log_line("wire-profile-loaded", sector=self.sector.value, path=str(self.path),
                     clients=len(self.profile.clients))
        else:
            self._learning = _Learning()
        self.gateway.start()
        client, deployment = connect(self.settings)
        self._feed = IndicatorFeed(client, deployment, self.settings.home / "gateways" / f"feed-{self.sector.value}.sqlite",
                                   interval_s=FEED_INTERVAL_S, max_logs_range=self.settings.max_logs_range)
        self._feed.add(gateway_enforcer(self.sector.value, self.policy, sector=self.sector.value, shared_network=False))
        self._feed.run()
        log_line("wire-watch-started", sector=self.sector.value, port=self.gateway.port,
                 upstream=f"{self.gateway.upstream[0]}:{self.gateway.upstream[1]}",
                 profile="loaded" if self.profile is not None else f"learning for {self.learn_s:g} s")
        return self

    def stop(self) -> None:
        self.gateway.stop()
        if self._feed is not None:
            self._feed.stop()
        with self._lock:
            wires, self._wires = list(self._wires.values()), {}
        for wire in wires:
            wire.stop()

    # --- the oracles -------------------------------------------------------------------------------

    def attach(self, index: int, recorder: EventRecorder) -> None:
        """Oracle `index` runs with `recorder` (its node's): give it a monitor once there is a profile."""
        with self._lock:
            self._recorders[index] = recorder
            old = self._wires.pop(index, None)
            if self.profile is not None:
                self._wires[index] = self._wire(recorder, self.profile)
        if old is not None:
            old.stop()

    @staticmethod
    def _wire(recorder: EventRecorder, profile: Profile) -> WireOracle:
        """An oracle's monitor: its events go into its node's outbox, sent by the node's loop."""
        return WireOracle(recorder, [profile], sends=False).run()

    def detach(self, index: int) -> None:
        with self._lock:
            self._recorders.pop(index, None)
            old = self._wires.pop(index, None)
        if old is not None:
            old.stop()

    @property
    def detections(self) -> int:
        with self._lock:
            return sum(w.queued for w in self._wires.values())

    # --- the mirror (runs on the gateway's loop thread) ----------------------------------------------

    def observe(self, obs: Observation) -> None:
        self.observed += 1
        learning = self._learning
        if learning is not None:
            learning.log.observe(obs)
            if learning.first_mono is None:
                learning.first_mono = obs.mono
            elif obs.mono - learning.first_mono >= self.learn_s:
                self._learnt(learning)
            return
        with self._lock:
            wires = list(self._wires.values())
        for wire in wires:
            wire.observe(obs)

    def _learnt(self, learning: _Learning) -> None:
        """Learn from the twin's own traffic only: a stranger who connects while the gateway learns stays a
        stranger (`unknown-client` from then on), and is named in the log line (review s35, finding 4)."""
        twin = twin_interface(self.sector).client
        seen = learning.log.snapshot()
        strangers = sorted({o.source.client_key for o in seen if o.source.client_key != twin
                            and o.direction == "request"})
        profile = Profile.learn([o for o in seen if o.source.client_key == twin or o.direction != "request"],
                                device=self.gateway.device, window_s=WINDOW_S).with_interfaces(twin_interface(self.sector))
        profile = profile.model_copy(update={"clients": {k: c for k, c in profile.clients.items() if k == twin}})
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        profile.save(tmp)
        tmp.replace(self.path)
        with self._lock:
            self.profile = profile
            self._learning = None
            for index, recorder in self._recorders.items():
                self._wires[index] = self._wire(recorder, profile)
        log_line("wire-profile-learnt", sector=self.sector.value, path=str(self.path),
                 observations=profile.observations, clients=sorted(profile.clients),
                 rate_limits={k: c.rate.limit for k, c in profile.clients.items()}, not_learnt=strangers[:16])
