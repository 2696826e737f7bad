"""All settings in one place, with defaults that work on a laptop.

Every value can be overridden by an environment variable `QEAIMS_<NAME>` (e.g. `QEAIMS_HOME`,
`QEAIMS_RPC_PORT`); the command's flags override those. The data directory holds everything a
node operator owns: chain state, keystores, the deployment manifest and the audit index.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ConfigError

__all__ = ["Settings", "load_settings", "project_root"]

DEV_PASSPHRASE = "qeaims-dev-only"


def project_root() -> Path:
    """The checkout that holds `contracts/`, `node_modules/` and `foundry.toml`."""
    override = os.environ.get("QEAIMS_PROJECT_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path = Field(default=Path(".qeaims"), description="data directory (QEAIMS_HOME)")
    rpc_host: str = "127.0.0.1"
    rpc_port: int = Field(default=8545, ge=1, le=65535)
    rpc_url_override: str | None = Field(default=None, description="use an external node instead")
    chain_id: int = Field(default=31337, ge=1)
    journal_interval_s: float = Field(default=0.25, gt=0, le=60, description="chain journal catch-up interval")
    block_time_s: float | None = Field(default=None, ge=0.05, description="None = mine on demand")
    block_gas_limit: int = Field(default=400_000_000, ge=30_000_000)
    passphrase: str = Field(default=DEV_PASSPHRASE, repr=False, description="keystore passphrase")
    scrypt_n: int = Field(default=2**15, ge=2**10)
    inflight_per_sender: int = Field(default=8, ge=1, le=256)
    tx_timeout_s: float = Field(default=60.0, gt=0)
    voting_window_s: int = Field(default=600, ge=60)
    isolation_cap_bps: int = Field(default=2500, ge=1, le=10_000)
    council_threshold: int = Field(default=4, ge=1)
    proposal_lifetime_s: int = Field(default=7 * 24 * 3600, ge=60)
    council_delay_s: int = Field(default=1, ge=1, le=30 * 24 * 3600,
                                 description="council timelock (QEAIMS_COUNCIL_DELAY); production: 172800 (2 days)")
    max_logs_range: int = Field(default=5_000, ge=1,
                                description="most blocks one eth_getLogs request spans (QEAIMS_MAX_LOGS_RANGE): at most "
                                            "the node's limit (Besu --rpc-max-logs-range, 5,000 by default); a node "
                                            "that refuses a span gets it halved (chain.logs)")

    @field_validator("rpc_url_override")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def rpc_url(self) -> str:
        return self.rpc_url_override or f"http://{self.rpc_host}:{self.rpc_port}"

    @property
    def chain_dir(self) -> Path:
        return self.home / "chain"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystores"

    @property
    def manifest_path(self) -> Path:
        return self.home / "deployment.json"

    @property
    def index_path(self) -> Path:
        return self.home / "index.sqlite"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


_ENV_FIELDS = {
    "HOME": "home",
    "RPC_HOST": "rpc_host",
    "RPC_PORT": "rpc_port",
    "RPC_URL": "rpc_url_override",
    "CHAIN_ID": "chain_id",
    "JOURNAL_INTERVAL": "journal_interval_s",
    "BLOCK_TIME": "block_time_s",
    "PASSPHRASE": "passphrase",
    "SCRYPT_N": "scrypt_n",
    "INFLIGHT": "inflight_per_sender",
    "COUNCIL_DELAY": "council_delay_s",
    "MAX_LOGS_RANGE": "max_logs_range",
}


def load_settings(**overrides: object) -> Settings:
    """Settings from defaults, then `QEAIMS_*` variables, then explicit overrides (flags)."""
    values: dict[str, object] = {}
    for env_name, field in _ENV_FIELDS.items():
        raw = os.environ.get(f"QEAIMS_{env_name}")
        if raw not in (None, ""):
            values[field] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
    return settings.model_copy(update={"home": settings.home.expanduser().resolve()})
