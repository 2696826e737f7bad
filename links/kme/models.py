"""The data formats of ETSI GS QKD 014 v1.1.1 (clause 6), as pydantic models: the HTTP contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Error", "Key", "KeyContainer", "KeyId", "KeyIds", "KeyRequest", "LinkState", "Status"]


class Status(BaseModel):
    """6.1 Status: the key stream between the calling master SAE and a slave SAE."""

    source_KME_ID: str
    target_KME_ID: str
    master_SAE_ID: str
    slave_SAE_ID: str
    key_size: int
    stored_key_count: int
    max_key_count: int
    max_key_per_request: int
    max_key_size: int
    min_key_size: int
    max_SAE_ID_count: int
    status_extension: dict[str, Any] | None = None


class KeyRequest(BaseModel):
    """6.2 Key request (POST enc_keys)."""

    model_config = ConfigDict(extra="forbid")

    number: int | None = None
    size: int | None = None
    additional_slave_SAE_IDs: list[str] | None = None
    extension_mandatory: list[dict[str, Any]] | None = None
    extension_optional: list[dict[str, Any]] | None = None


class Key(BaseModel):
    key_ID: str
    key: str  # base64
    key_ID_extension: dict[str, Any] | None = None
    key_extension: dict[str, Any] | None = None


class KeyContainer(BaseModel):
    """6.3 Key container."""

    keys: list[Key]
    key_container_extension: dict[str, Any] | None = None


class KeyId(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_ID: str = Field(min_length=1, max_length=64)
    key_ID_extension: dict[str, Any] | None = None


class KeyIds(BaseModel):
    """6.4 Key IDs (POST dec_keys)."""

    model_config = ConfigDict(extra="forbid")

    key_IDs: list[KeyId] = Field(min_length=1)
    key_IDs_extension: dict[str, Any] | None = None


class Error(BaseModel):
    """6.5 Error."""

    message: str
    details: list[dict[str, Any]] | None = None


class LinkState(BaseModel):
    """Not in the standard (an extension of this KME): one QKD link's state as its pair measures it."""

    link_id: str
    master: str
    slave: str
    distance_km: float
    state: str  # secure | compromised
    blocks: int
    alarms: list[str]  # the alarms of the block that made the link compromised (empty once secure)
    alarm_count: int = 0  # blocks with an alarm since the KME started
    keys_available: int  # keys of `key_size` bits in store
    last_block: dict[str, Any] | None = None
    eavesdropper: dict[str, Any] | None = None  # the simulation's Eve, shown to the operations desk only
    changed_at: float
