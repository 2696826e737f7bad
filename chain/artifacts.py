"""Compiled contracts: `forge build` output under build/out, rebuilt when a source is newer."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from core.config import project_root
from core.errors import BuildFailed

__all__ = ["CONTRACTS", "Artifact", "build_contracts", "load_artifact"]

CONTRACTS = ("Registry", "EventLedger", "IsolationQuorum", "GovernanceCouncil")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


def _out_dir() -> Path:
    return project_root() / "build" / "out"


def _forge() -> Path:
    root = project_root() / "node_modules" / "@foundry-rs"
    for arch in ("linux-amd64", "linux-arm64"):
        candidate = root / f"forge-{arch}" / "bin" / "forge"
        if candidate.is_file():
            return candidate
    raise BuildFailed("forge is not installed: run `make install` (npm ci) in the project first")


def _stale() -> bool:
    out = _out_dir()
    artifacts = [out / f"{name}.sol" / f"{name}.json" for name in CONTRACTS]
    if not all(a.is_file() for a in artifacts):
        return True
    oldest = min(a.stat().st_mtime for a in artifacts)
    sources = (project_root() / "contracts").rglob("*.sol")
    return any(s.stat().st_mtime > oldest for s in sources)


def build_contracts(force: bool = False) -> None:
    """Compile with forge (solc-js shim) if artifacts are missing or older than the sources."""
    if not force and not _stale():
        return
    result = subprocess.run(
        [str(_forge()), "build", "--skip", "test", "--skip", "script"],
        cwd=project_root(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise BuildFailed(f"forge build failed: {lines[-1] if lines else 'no output'}")
    load_artifact.cache_clear()


@cache
def load_artifact(name: str) -> Artifact:
    path = _out_dir() / f"{name}.sol" / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BuildFailed(f"contract {name} is not built: run `qeaims deploy` or `forge build`") from exc
    code = data["bytecode"]["object"]
    return Artifact(name=name, abi=data["abi"], bytecode=bytes.fromhex(code.removeprefix("0x")))
