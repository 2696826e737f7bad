"""Real devices as a reading source: MQTT (an embedded broker) and Modbus TCP, into one sink.

The sector twins stand in for hardware until real devices are plugged in; this package is where
they plug in. Both paths end in the same place, a `sink.ReadingSink` of validated
`core.messages.Reading`s that the oracle process drains into its `oracles.telemetry.TelemetryStore`:

    MQTT publisher ──► EmbeddedBroker ──► MqttSubscriber ──┐
                                                           ├─► ReadingSink ──► TelemetryStore.ingest
    RTU / PLC (or ModbusDeviceSimulator) ◄── ModbusPoller ─┘

- `mqtt`: the topic scheme, `EmbeddedBroker` (amqtt, started by the supervisor) and `MqttSubscriber`.
- `modbus`: `ModbusPoller` (reads a device per a `DeviceMap`) and `ModbusDeviceSimulator`.
- `registers`: the register-map model and the register codec both of them share.
- `sink`: the thread-safe hand-off, with the counters and the one-line rejection log.

A bad message or an unreachable device never stops ingestion: it is counted and logged as one
structured line (see `sink`). `docs/DEVICES.md` is the short version for whoever wires a device.

Errors: `IngestError` (a `core.errors.QeaimsError`, like `TwinError` in `sectors/_twin.py`) is
raised only where a caller asked for something that cannot work, such as a broker that cannot bind.
"""

from __future__ import annotations

from bus.errors import IngestError, MessageRejected

__all__ = ["IngestError", "MessageRejected"]
