"""Attacks seen on the wire (issue 18, item 1): gateways that watch and police the city's device paths.

A `Gateway` is a TCP proxy in front of one Modbus TCP device or the MQTT broker. It parses every
frame both ways (`modbus_frames`, `mqtt_frames`: pure parsers that raise only `FrameError`), hands
each as an `Observation` to an observer, and enforces a `Policy` (deny entries with expiries,
quarantined devices, safe mode). A `Profile` is learnt per device from a training window of
observations (plus declared maintenance); a `Monitor` holds one detector per attack class and turns
observations into `Detection`s whose `payload()` is the canonical JSON of an on-chain `intrusion`
event. No chain code lives here: the caller records detections and sets the policy (docs/cyber.md,
"Attacks seen on the wire").

Layering: beside `bus` (it imports `core` and `bus.errors` only); nothing below it imports it.
"""

from gateway.detection import ATTACK_CLASSES, AttackClass, Detection
from gateway.errors import FrameError, GatewayError
from gateway.monitor import Monitor, Thresholds
from gateway.observation import Observation, ObservationLog, Observer, Source, Tee
from gateway.policy import Policy, PolicyChange
from gateway.profile import Interface, Maintenance, Profile
from gateway.proxy import COMMAND_TOPICS, Gateway

__all__ = ["ATTACK_CLASSES", "COMMAND_TOPICS", "AttackClass", "Detection", "FrameError", "Gateway", "GatewayError",
           "Interface", "Maintenance", "Monitor", "Observation", "ObservationLog", "Observer", "Policy", "PolicyChange", "Profile",
           "Source", "Tee", "Thresholds"]
