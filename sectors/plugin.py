"""The one interface a sector provides: `SectorPlugin`, and per-sector tables read through it.

A sector is a package that builds one `SectorPlugin` and declares it (an entry point in the
``qeaims.sectors`` group, or ``QEAIMS_SECTOR_PLUGINS``; see `core.sectors`). The plug-in says, in
one place, everything the rest of the system needs to know about the sector:

- the twin (``open_twin``), how often its sensors report, and which registered nodes its assets
  belong to (``anchor_rules``) — the unit the isolation quorum votes on;
- its members in the development consortium (``operator``, ``nodes``), which ``qeaims deploy``
  registers on-chain;
- how its detector is trained (``training``: rows, exogenous inputs, detector) and the faults its
  detector is evaluated on (``fault_cases``);
- the controller's responses (``responses``: a module with ``isolate_plan``, ``restore_plan`` and
  ``reintegrate_plan``), which physical fault an isolated asset most likely suffers
  (``fault_patterns``), and how long its crews take (``crew_travel_s``, ``crew_repair_s``);
- how much service the twin delivers (``service_level``) and its default scenario (``scenario``).

Layers: this module is the sectors layer's public face. The oracles, the controller and the
application read sectors only through it (and `sectors.runner`, `sectors.anchors`); none of them
imports a sector's own package (import-linter checks it). Callables that belong to a higher layer
(the controller's response module) are named by dotted path and imported when first used.

`by_sector` gives the per-sector tables that used to be literal dicts (``REPORT_PERIOD_S``,
``ANCHOR_RULES``, …) as read-only mappings over the registry, so a sector registered later is in
them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from core.errors import ConfigError, UnknownSector
from core.messages import AttackKind, FaultKind, Reading, Sector
from core.sectors import DevNode
from core.sectors import plugin as _registered_plugin
from sectors.drawing import NetworkDrawing
from sectors.invariants import Invariants, Window

__all__ = ["DevNode", "FaultCase", "FieldFault", "RegisteredSectors", "ScenarioFault", "SectorPlugin", "TrainingPlan",
           "by_sector", "plugin_of"]

T = TypeVar("T")


@dataclass(frozen=True)
class TrainingPlan:
    """How much normal operation a sector's model is trained on, and why."""

    rows: int
    stride: int  # report periods between training rows
    why: str
    range_margin: float = 0.25  # FirstPassCheck limits (its defaults unless the sensors are coarse)
    jump_factor: float = 3.0
    inputs: Callable[[int, int, int, int], Callable[[Any, int], None]] | None = None
    """Exogenous inputs normal operation includes (sewage: rain): (seed, rows, stride, period_s) → drive(runner, i)."""
    counters: tuple[str, ...] = ()  # quantities that are totalisers: the model sees their increments
    pooled: tuple[str, ...] = ()  # asset types built alike: first-pass limits shared per quantity
    detector: str | Callable[[], Any] = "pca"  # the sector's default detector (a name or a factory)
    detector_options: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments for a named one
    runs: int = 1  # twin runs (days) of `rows` each: the seed's, then seeds 1000, 2000, … above it
    smoothing_rows: int = 3  # the causal rolling median over the scores (`oracles.detect.calibrate`)
    threshold_margin: float = 1.0  # the calibrated threshold × this (`oracles.detect.production.Calibration`)


@dataclass(frozen=True)
class FaultCase:
    """A fault to inject for detection evaluation (``qeaims detect attribution``).

    `warm_rows`/`max_rows` override the evaluation's for a fault that only shows in some state
    (a lift-station pump fails unseen until the wet well reaches its start level) or slowly.
    `rain_mm_h` rains on the twin from its first row (sewage: weather is an input, not a fault).
    `start` opens the twin at that time, for a fault that shows only at some hour (a feeder surge
    breaks its limits by day; the same surge at 03:00 stays within them, and is no overload).
    `kind=None` injects nothing: a run of normal operation under those conditions (a storm, the
    morning peak), where every verdict is a false alarm and every FAULT vote a wrongful one.
    An `AttackKind` falsifies the sensor `target` (``severity``: a bias's magnitude, in the
    sensor's unit): the right answer is an intrusion verdict on that sensor, and any FAULT vote
    is a wrongful one (nothing physical broke).
    """

    kind: FaultKind | AttackKind | None
    target: str = ""
    severity: float | None = None
    asset: str | None = None
    warm_rows: int | None = None
    max_rows: int | None = None
    rain_mm_h: float | None = None
    start: datetime | None = None  # the twin's first row (UTC): a fault that only shows at some hour

    @property
    def label(self) -> str:
        what = "normal" if self.kind is None else f"{self.kind.value} {self.target}"
        return what + ("" if self.rain_mm_h is None else f" in {self.rain_mm_h:g} mm/h rain")

    @property
    def attack(self) -> bool:
        return isinstance(self.kind, AttackKind)

    @property
    def named(self) -> str:
        """The asset a right verdict names: the faulted asset, or the falsified sensor's asset."""
        return self.asset or (self.target.split("/", 1)[0] if self.attack else self.target)


@dataclass(frozen=True)
class ScenarioFault:
    """One fault of a sector's default scenario, ``at_s`` field seconds after the scenario starts."""

    at_s: float
    kind: FaultKind
    target: str
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldFault:
    """A fault the field shows (`SectorPlugin.field_fault`): its kind and the asset it breaks."""

    kind: FaultKind
    asset: str
    severity: float | None = None  # how hard, as the twin's ``inject_fault`` takes it; None: the planner's


@dataclass(frozen=True)
class SectorPlugin:
    """Everything the system needs to know about one sector (see the module docstring)."""

    name: str
    title: str
    operator: str
    nodes: tuple[DevNode, ...]
    report_period_s: int
    open_twin: Callable[[int, datetime | None], Any]
    """(seed, start or None for the twin's default) → the sector's twin object."""
    training: TrainingPlan
    responses: str
    """Dotted path of the module with ``isolate_plan``, ``restore_plan``, ``reintegrate_plan``."""
    twin_type: str
    """``module:Class`` of the twin, so a plan is never made on another sector's twin."""
    service_level: Callable[[Any], Any]
    """twin → `sectors.service.ServiceLevel`: the share of the sector's service delivered now."""
    anchor_rules: tuple[tuple[str, str], ...] = ()
    fault_patterns: tuple[tuple[str, FaultKind], ...] = ()
    crew_travel_s: float = 1800.0
    crew_repair_s: float = 3600.0
    manual_response: Callable[[Any, str], Callable[[], None] | None] | None = None
    """What a crew does by hand on arriving at a fault, before it repairs it, when nothing is
    automated: (twin, faulted asset) → what undoes it after the repair, or None. The
    automation-off baseline (`sectors.baseline`) sends such a crew to every fault of the sector;
    without one, nobody responds there (water: the crew shuts the break's valves)."""
    fault_cases: tuple[FaultCase, ...] = ()
    open_training_twin: Callable[[int], Any] | None = None
    """seed → the twin used for training, when it differs from ``open_twin`` (transport: no baseline)."""
    scenario: tuple[ScenarioFault, ...] = ()
    scenario_settle_s: float = 3600.0
    scada_physics: str | None = None
    """Dotted path of the module with the sector's SCADA physics layer for a network of its kind read
    from a file (water: `sectors.water.scada_physics`, which `qeaims detect eval --dataset batadal` runs
    on C-Town): loaded by path, as ``responses`` is, so the oracles reach it through the plug-in."""
    invariants: Invariants | None = None
    """The plant's physics rules (`sectors.invariants`): a broken one is a fault named in one row."""
    vouches: Callable[[Window], frozenset[str]] | None = None
    """Instruments the plant's physics shows consistent with their neighbours in the newest row (a water
    pipe's flow meter that the mass balances of both its junctions agree with): the model alone may not
    call one of them falsified (`oracles.sector_model.SectorModel.assess`)."""
    commanded_effect: Callable[[str, Mapping[str, str]], str | None] | None = None
    """(sensor, assets the controller holds commanded → what) → why the sensor reads what it does
    because of a command on *another* asset (hospital-1's arrivals while hospital-2's admissions are
    diverted to it), or None. An isolation driven by such a sensor is moot, as one driven by a
    commanded asset's own sensor is (`oracles.node.voting`)."""
    command_aftermath_s: float = 0.0
    """Field seconds a command's effect on *other* assets' readings outlasts its release: the
    hospitals' arrival counts run over two hours, so the patients a diversion sent to hospital-1 stay
    in its count for two hours after the diversion is lifted. `commanded_effect` is asked about the
    commands released within this time of a verdict's reading, as well as those held now."""
    windowed: Callable[[str], bool] | None = None
    """Whether a sensor reads a count over the last `command_aftermath_s` (an ED board's arrivals and
    admissions over two hours): after its own node's hold is released it still shows the held
    time's load for that long (hospital-2's mass-casualty arrivals, after its diversion is lifted,
    read above any normal day's), which the model's first-pass range check calls a lone sensor out
    of line. The controller takes a quorum of intrusion verdicts on such a sensor, judged within
    that time after the release, for the release's tail (`controller._intrusion_response`)."""
    field_fault: Callable[[Sequence[Reading], str], FieldFault | None] | None = None
    """(the field's newest readings, asset a verdict named) → the fault the field shows there and the
    asset it breaks, where the name cannot tell (a hospital: power loss, a declared mass-casualty
    surge or a failed ventilator fleet; a feeder: a line, an overload or its transformer); None:
    the name decides (``fault_patterns``). The controller's planner asks it before it breaks its
    model."""
    network: Callable[[], NetworkDrawing] | None = None
    """The sector's network as the dashboard draws it (`sectors.drawing`): its model's elements with
    their coordinates, links, the on-chain node each anchors to, and every node of ``nodes`` as a
    marker. Reads the model's geometry only (no simulation) and is cached for the process."""

    def __post_init__(self) -> None:
        if self.report_period_s <= 0:
            raise ConfigError(f"sector {self.name!r}: report period must be positive")
        strange = [n.node for n in self.nodes if n.sector != self.name]
        if strange:
            raise ConfigError(f"sector {self.name!r} lists nodes of another sector: {', '.join(strange)}")

    @property
    def sector(self) -> Sector:
        return Sector(self.name)


def plugin_of(sector: Sector | str) -> SectorPlugin:
    """The registered plug-in of ``sector`` (one `error:` line naming the choices if there is none)."""
    found = _registered_plugin(sector)
    if not isinstance(found, SectorPlugin):
        raise ConfigError(f"sector {str(sector)!r} is registered with a {type(found).__name__}, not a SectorPlugin")
    return found


class _BySector(Mapping[Sector, T], Generic[T]):
    """A read-only per-sector table computed from the registered plug-ins when read."""

    def __init__(self, read: Callable[[SectorPlugin], T]) -> None:
        self._read = read

    def __getitem__(self, sector: Sector) -> T:
        try:
            return self._read(plugin_of(Sector(sector)))
        except UnknownSector:  # not a sector: not in the table
            raise KeyError(sector) from None

    def __iter__(self) -> Iterator[Sector]:
        return iter(list(Sector))

    def __len__(self) -> int:
        return len(list(Sector))


class RegisteredSectors(Sequence[Sector]):
    """The registered sectors as a live sequence (built-ins first): a sector registered later is in it."""

    def __getitem__(self, index: Any) -> Any:
        return list(Sector)[index]

    def __len__(self) -> int:
        return len(list(Sector))


def by_sector(read: Callable[[SectorPlugin], T]) -> Mapping[Sector, T]:
    """``{sector: read(plugin)}`` for every registered sector, read live from the registry."""
    return cast(Mapping[Sector, T], _BySector(read))
