"""Where `qeaims scenario run` keeps each KPI report it prints, and how a reader finds them again.

One file per run: ``<home>/scenarios/reports/<scenario>-<yyyymmddThhmmssZ>.json`` (UTC, the moment the
report was written). The command writes it (atomically: a reader never sees half a report); the API's
`/kpis` reads the files only, so the executive view shows the figures a run measured, with the targets
the report itself carries, and never recomputes them. It lives in `core` because both sides share the
name scheme and the check that keeps a requested name inside the directory (no path traversal).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError

__all__ = ["NAME_PATTERN", "ReportFile", "list_reports", "read_report", "report_name", "reports_dir", "write_report"]

_STAMP = "%Y%m%dT%H%M%SZ"
_SCENARIO = r"[a-z0-9][a-z0-9-]{0,62}[a-z0-9]|[a-z0-9]"
NAME_PATTERN = rf"^(?P<scenario>{_SCENARIO})-(?P<stamp>\d{{8}}T\d{{6}}Z)$"
"""A report's name (its file name without ``.json``): a scenario's name, a dash, the UTC stamp."""
_NAME = re.compile(NAME_PATTERN)


def reports_dir(home: Path) -> Path:
    return home / "scenarios" / "reports"


def report_name(scenario: str, at: datetime) -> str:
    """The name a report of `scenario` written at `at` gets (ConfigError for a name the scheme cannot hold)."""
    name = f"{scenario}-{at.astimezone(UTC).strftime(_STAMP)}"
    if _NAME.fullmatch(name) is None:
        raise ConfigError(f"a scenario's name must be lower-case letters, digits and dashes, not {scenario!r}")
    return name


@dataclass(frozen=True)
class ReportFile:
    name: str
    scenario: str
    written: datetime
    path: Path
    size: int


def _parse(path: Path) -> ReportFile | None:
    match = _NAME.fullmatch(path.name.removesuffix(".json"))
    if match is None or not path.name.endswith(".json") or not path.is_file():
        return None
    try:
        written = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
    except ValueError:  # 20261399T... matches the pattern but is no time
        return None
    return ReportFile(match.group(0), match["scenario"], written, path, path.stat().st_size)


def write_report(home: Path, scenario: str, report: dict[str, Any], *, at: datetime | None = None) -> Path:
    """Writes `report` as ``<scenario>-<UTC stamp>.json`` under `reports_dir(home)`, atomically (a temporary
    file in the same directory, then a rename). Returns the file's path."""
    directory = reports_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report_name(scenario, at or datetime.now(UTC))}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(report, out, indent=1, default=str)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def list_reports(home: Path, *, scenario: str | None = None) -> list[ReportFile]:
    """Every report file, oldest first (then by name); files that do not follow the scheme are ignored."""
    directory = reports_dir(home)
    if not directory.is_dir():
        return []
    found = [f for f in (_parse(p) for p in directory.iterdir()) if f is not None]
    if scenario is not None:
        found = [f for f in found if f.scenario == scenario]
    return sorted(found, key=lambda f: (f.written, f.name))


def read_report(home: Path, name: str) -> tuple[ReportFile, dict[str, Any]] | None:
    """The report called `name` and its content; None when there is none. A name that is not a report's
    name (``../x``, ``a/b``, ``x.json``) is a ConfigError before any path is built from it."""
    if _NAME.fullmatch(name) is None:
        raise ConfigError(f"{name[:80]!r} is not a report's name (<scenario>-<yyyymmddThhmmssZ>)")
    found = _parse(reports_dir(home) / f"{name}.json")
    if found is None:
        return None
    try:
        content = json.loads(found.path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"report {name} is damaged ({type(exc).__name__})") from None
    if not isinstance(content, dict):
        raise ConfigError(f"report {name} is not a JSON object")
    return found, content
