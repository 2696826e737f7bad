"""Every message that crosses a process boundary, defined once (STYLE rule 10).

Sensor readings flow from the sector twins (or real devices over MQTT/Modbus) to the oracles;
verdicts flow from detectors into ledger events; commands flow from the controller to actuators.
Each model is frozen and forbids unknown fields, so a malformed message fails loudly at the
boundary instead of deep inside a detector. `Sector` is an open, registered name (`core.sectors`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.sectors import Sector

__all__ = [
    "ActuatorCommand",
    "AttackKind",
    "FaultKind",
    "Reading",
    "Sector",
    "Verdict",
    "VerdictKind",
]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _since_1970(moment: datetime) -> datetime:
    """Readings are stored and hashed with Unix-millisecond times: nothing before 1970 exists."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if aware < datetime(1970, 1, 1, tzinfo=UTC):
        raise ValueError("must not be before 1970-01-01T00:00:00Z")
    return moment


AssetId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
"""Asset ids fit a bytes32 on-chain (`keys.ids.to_bytes32`)."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reading(_Message):
    """One sensor sample. `quantity` names what is measured (`voltage_pu`, `pressure_m`, …)."""

    sector: Sector
    asset_id: AssetId
    sensor_id: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[str, Field(min_length=1, max_length=48)]
    unit: Annotated[str, Field(max_length=16)]
    value: Annotated[float, AfterValidator(_finite)]
    timestamp: Annotated[datetime, AfterValidator(_since_1970)]


class FaultKind(StrEnum):
    """Physical faults the twins can be made to suffer."""

    LINE_FAULT = "line-fault"
    TRANSFORMER_TRIP = "transformer-trip"
    FEEDER_OVERLOAD = "feeder-overload"
    PIPE_BREAK = "pipe-break"
    LEAK = "leak"
    PUMP_FAILURE = "pump-failure"
    BLOCKAGE = "blockage"
    OVERFLOW = "overflow"
    INCIDENT = "incident"
    SIGNAL_OUTAGE = "signal-outage"
    POWER_LOSS = "power-loss"
    EQUIPMENT_FAILURE = "equipment-failure"
    ADMISSION_SURGE = "admission-surge"
    OUTAGE = "outage"
    DEGRADATION = "degradation"
    FRAUD_BURST = "fraud-burst"  # a payment switch flooded by transactions from a few sources


class AttackKind(StrEnum):
    """Cyber attacks on measurements and commands, in the BATADAL style."""

    REPLAY = "replay"
    BIAS = "bias"
    DRIFT = "drift"
    FROZEN = "frozen"
    SPOOFED_COMMAND = "spoofed-command"


class VerdictKind(StrEnum):
    ANOMALY = "anomaly"
    FAULT = "fault"
    INTRUSION = "intrusion"
    MAINTENANCE = "maintenance"


class Verdict(_Message):
    """A detector's judgement about one asset, in words an operator can read."""

    sector: Sector
    asset_id: AssetId
    kind: VerdictKind
    score: Annotated[float, AfterValidator(_finite)]
    threshold: Annotated[float, AfterValidator(_finite)]
    sensors: tuple[str, ...]
    reason: Annotated[str, Field(min_length=1, max_length=512)]
    observed_at: datetime


class ActuatorCommand(_Message):
    """A command to a twin's (or a device's) actuator; `action` is actuator-specific (open, close, …)."""

    sector: Sector
    asset_id: AssetId
    actuator_id: Annotated[str, Field(min_length=1, max_length=64)]
    action: Annotated[str, Field(min_length=1, max_length=32)]
    value: float | None = None
    decision_ref: Annotated[str, Field(max_length=80)] = ""
