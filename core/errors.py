"""The one exception tree of QEAIMS, so the command can turn any user mistake into one plain line.

    QeaimsError                      message is one line a user can act on
    ├── ConfigError                  bad setting or flag value
    │   ├── InvalidEvent             an event the ledger would refuse (size, kind, node)
    │   └── ModelError (oracles/training.py) a saved model missing, corrupt, tampered or for another sector
    ├── ChainError                   anything about the chain
    │   ├── ChainNotRunning          no node answers at the RPC URL
    │   ├── ChainStartFailed         the embedded node could not start
    │   ├── DeploymentMissing        no manifest, or the manifest does not match the chain
    │   ├── BuildFailed              forge could not compile the contracts
    │   └── TransactionFailed        a transaction reverted or was never mined
    │       └── ContractRejected     reverted with a decoded custom error (name + arguments)
    ├── IdentityError                keystore or identity problems seen by the command
    ├── AuditFailed                  verification found invalid records
    ├── TwinError (sectors/_twin.py) a sector twin refused an asset, command, fault or attack
    │   └── UnknownAsset, InvalidCommand, InvalidFault, InvalidAttack
    └── IngestError (oracles/ingest) a device path (MQTT broker, Modbus poller) could not run

`keys/` keeps its own `KeysError` tree (it imports nothing from the project); the command treats
both trees as user-facing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditFailed",
    "BuildFailed",
    "ChainError",
    "ChainNotRunning",
    "ChainStartFailed",
    "ConfigError",
    "ContractRejected",
    "DeploymentMissing",
    "IdentityError",
    "InvalidEvent",
    "QeaimsError",
    "TransactionFailed",
    "UnknownSector",
]


class QeaimsError(Exception):
    """Base of every error the command reports as one line instead of a traceback."""


class ConfigError(QeaimsError):
    """A setting, flag or argument has a value the product cannot use."""


class UnknownSector(ConfigError, ValueError):
    """A sector name no registered plug-in provides. A `ValueError` too, so that pydantic reports it as
    a validation error at a process boundary and the wire parser rejects the message."""


class InvalidEvent(ConfigError):
    """An event the ledger would always refuse; refused before it gets a sequence number."""


class ChainError(QeaimsError):
    """The chain could not do what was asked."""


class ChainNotRunning(ChainError):
    """No JSON-RPC node answers at the configured URL."""


class ChainStartFailed(ChainError):
    """The embedded Anvil process did not come up."""


class DeploymentMissing(ChainError):
    """There is no deployment manifest, or its contracts are not on the running chain."""


class BuildFailed(ChainError):
    """`forge build` failed."""


class TransactionFailed(ChainError):
    """A transaction reverted, ran out of retries, or was dropped."""


class TransactionLost(TransactionFailed):
    """The node no longer has a transaction it took: dropped from its pool, or lost with the blocks a
    restarted chain did not keep. The chain answers again; sending again (the client has dropped its
    nonce) is the fix."""


class ContractRejected(TransactionFailed):
    """A contract reverted with a custom error that we decoded from its ABI."""

    def __init__(self, contract: str, error: str, args: dict[str, Any]) -> None:
        self.contract = contract
        self.error = error
        self.args_by_name = args
        shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
        super().__init__(f"{contract} rejected the transaction: {error}({shown})")


class IdentityError(QeaimsError):
    """A local identity (keystore) is missing, unreadable, or not registered."""


class AuditFailed(QeaimsError):
    """`audit verify` found records that do not verify."""


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        if len(value) == 32 and text and all(32 <= c < 127 for c in text):
            return repr(text.decode())
        return "0x" + value.hex()
    return str(value)
