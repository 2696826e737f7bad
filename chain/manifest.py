"""The deployment manifest: where our contracts live on which chain, written once by `qeaims deploy`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import DeploymentMissing

__all__ = ["Deployment", "load_deployment", "save_deployment"]


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    deployment_id: str  # random, per deployment: binds local state (outboxes) to these contracts
    chain_id: int
    rpc_url: str
    deployed_at_block: int
    deployer: str
    registry: str
    event_ledger: str
    isolation_quorum: str
    governance_council: str
    governors: tuple[str, ...]
    council_threshold: int

    def addresses(self) -> dict[str, str]:
        return {
            "Registry": self.registry,
            "EventLedger": self.event_ledger,
            "IsolationQuorum": self.isolation_quorum,
            "GovernanceCouncil": self.governance_council,
        }


def save_deployment(deployment: Deployment, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(deployment.model_dump(), indent=2) + "\n")
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_deployment(path: Path) -> Deployment:
    try:
        return Deployment.model_validate_json(path.read_text())
    except FileNotFoundError as exc:
        raise DeploymentMissing(f"no deployment at {path}: run `qeaims deploy` first") from exc
    except ValidationError as exc:
        raise DeploymentMissing(f"deployment manifest {path} is damaged: redeploy with `qeaims deploy`") from exc
