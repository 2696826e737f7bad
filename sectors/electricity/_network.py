"""The IEEE 33-bus feeder (Baran & Wu 1989) as pandapower ships it, made switchable and rated.

Numbering. Asset ids use the *literature* numbering so that papers can be read against the twin:
``bus-k`` is Baran & Wu bus k (1 = substation) = pandapower bus k-1; ``line-k`` is branch k =
pandapower line k-1; ``sw-k`` is the switch on branch k; ``load-k`` is the load on bus k (32 of
them, buses 2..33); ``feeder-1`` is the whole feeder and ``sub-1`` the substation supply
(pandapower's ext_grid at bus 1).

Switch layout. As in Baran & Wu's reconfiguration problem, every branch is switchable: branch k
carries switch ``sw-k`` (pandapower switch k-1, element line k-1) at its ``from_bus`` end. The 32
feeder branches are closed sectionalisers that also act as protective devices (type ``CB``); the
five tie branches 33–37 (pandapower lines 32–36: buses 8–21, 9–15, 12–22, 18–33, 25–29) are
normally open (type ``LBS``). pandapower ships the ties out of service; here they are in service
and their open switch keeps them dead, so closing ``sw-33`` really closes tie 33. Because a switch
sits at one end only, a branch is still wired to its ``to_bus``: isolating a faulted branch k
therefore means opening ``sw-k`` *and* de-energising its to-bus (the faulted section is branch k
plus bus ``to(k)``).

Ratings. case33bw carries no ampacities (``max_i_ka`` is a 99999 placeholder), so a check
"no line above its rating" needs an assumption. We use representative ACSR overhead ampacities
by role: trunk branches 1–5 carry 2/0 "Quail" (270 A; the trunk head is at 78 % at daily peak),
laterals 6–32 carry #2 "Sparrow" (180 A), ties 33–37 carry #4 "Swan" (140 A).

Customers. The case gives kW only; we assume 2 kW after-diversity peak demand per customer
(a residential-heavy feeder), i.e. ``max(1, round(p_kw / 2))`` customers per load, 1,857 in all.
"""

from __future__ import annotations

import copy
import functools
import re
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
from numpy.typing import NDArray

from sectors._twin import UnknownAsset

__all__ = [
    "FEEDER_ID",
    "KW_PER_CUSTOMER",
    "N_BUSES",
    "N_LINES",
    "SUBSTATION_ID",
    "TIE_BRANCHES",
    "asset_index",
    "build_network",
    "bus_id",
    "customers",
    "line_id",
    "load_id",
    "switch_id",
]

N_BUSES = 33
N_LINES = 37
TIE_BRANCHES: tuple[int, ...] = (33, 34, 35, 36, 37)
FEEDER_ID = "feeder-1"
SUBSTATION_ID = "sub-1"
KW_PER_CUSTOMER = 2.0

TRUNK_KA, LATERAL_KA, TIE_KA = 0.270, 0.180, 0.140

_ID = re.compile(r"^(bus|line|sw|load)-([0-9]+)$")


def bus_id(index: int) -> str:
    """Asset id of pandapower bus ``index``."""
    return f"bus-{index + 1}"


def line_id(index: int) -> str:
    """Asset id of pandapower line ``index`` (literature branch ``index + 1``)."""
    return f"line-{index + 1}"


def switch_id(index: int) -> str:
    """Asset id of the switch on pandapower line ``index`` (switch and line indices coincide)."""
    return f"sw-{index + 1}"


def load_id(bus: int) -> str:
    """Asset id of the load on pandapower bus ``bus``."""
    return f"load-{bus + 1}"


def asset_index(asset_id: str, kind: str) -> int:
    """The pandapower index behind ``asset_id`` of ``kind`` (bus, line, sw, load); loads map to
    their bus index. Raises :class:`UnknownAsset` with the valid range."""
    match = _ID.match(asset_id)
    number = int(match.group(2)) if match and match.group(1) == kind else 0
    low, high = {"bus": (1, N_BUSES), "line": (1, N_LINES), "sw": (1, N_LINES), "load": (2, N_BUSES)}[kind]
    if not low <= number <= high:
        raise UnknownAsset(f"{asset_id!r} is not a {kind} of the 33-bus feeder ({kind}-{low}..{kind}-{high})")
    return number - 1


def _rating_ka(branch: int) -> float:
    if branch in TIE_BRANCHES:
        return TIE_KA
    return TRUNK_KA if branch <= 5 else LATERAL_KA


@functools.cache
def _pristine() -> pp.pandapowerNet:
    with warnings.catch_warnings():  # pandas/pandapower deprecation chatter while loading the case
        warnings.simplefilter("ignore")
        net = pn.case33bw()
    net.line["in_service"] = True
    net.line["max_i_ka"] = [_rating_ka(k + 1) for k in range(N_LINES)]
    net.line["name"] = [line_id(k) for k in range(N_LINES)]
    net.bus["name"] = [bus_id(k) for k in range(N_BUSES)]
    net.load["name"] = [load_id(int(b)) for b in net.load.bus]
    for k in range(N_LINES):
        tie = k + 1 in TIE_BRANCHES
        pp.create_switch(
            net, bus=int(net.line.from_bus.at[k]), element=k, et="l", closed=not tie,
            type="LBS" if tie else "CB", name=switch_id(k),
        )
    net.load["customers"] = [max(1, round(p * 1000.0 / KW_PER_CUSTOMER)) for p in net.load.p_mw]
    return net


def build_network() -> pp.pandapowerNet:
    """A fresh, independent copy of the switchable 33-bus feeder in its normal (base) state.

    Loading the case from pandapower takes about two seconds, so the pristine network is built
    once per process and deep-copied (tens of milliseconds) for every twin.
    """
    return copy.deepcopy(_pristine())


def customers(net: pp.pandapowerNet) -> NDArray[np.int64]:
    """Customers per load row, aligned with ``net.load``."""
    return np.asarray(net.load["customers"].to_numpy(), dtype=np.int64)
