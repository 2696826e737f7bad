"""Every rate, duration and price the year scenario uses, each with where its order of magnitude comes from.

Why one module: the year's figures are only as good as these inputs, so a reader must be able to
check and change them in one place. They are *assumptions*, round numbers of the right order for
a mid-size utility, taken from public studies; none is fitted to this city, and the report says
so. Crew travel and repair times are not here: the year uses the crews' own planning figures
(`controller.crews.TRAVEL_S` / `REPAIR_S`, from each sector plug-in), as the live controller does.
"""

from __future__ import annotations

from typing import Final

YEAR_H: Final = 8760.0
"""Hours in the simulated (non-leap) year."""

# --- failure rates ---------------------------------------------------------------------------------

LINE_FAULTS_PER_KM_YEAR: Final = 0.065
"""Sustained faults per km of distribution line a year: Allan, Billinton et al., "A reliability test
system for educational purposes — basic distribution system data and results", IEEE Trans. Power
Systems 6(2), 1991 (RBTS, 11 kV lines: 0.065 f/km·yr). The twin's 32 feeder sections are 1 km each."""

MAIN_BREAKS_PER_100KM_YEAR: Final = 8.7
"""Water main breaks per 100 km a year: Folkman, "Water Main Break Rates in the USA and Canada: A
Comprehensive Study", Utah State University, 2018 (14 breaks per 100 miles a year ≈ 8.7 per 100 km)."""

DATA_CENTRE_OUTAGES_PER_YEAR: Final = 0.2
"""Outages of one data centre a year: Uptime Institute, Annual Outage Analysis 2023 (a little over half
of operators report an outage in the past three years; one site ≈ 0.2 a year)."""

ATM_CLUSTER_OUTAGES_PER_YEAR: Final = 2.0
"""Outages of one ATM cluster (comms or power to a group of ATMs) a year. An assumption: no public
per-cluster figure was found; ATM networks publish availabilities of 95–99 %, mostly lost to
single-machine faults (cash-outs, jams) that this twin does not model, so a couple of cluster-wide
outages a year is taken as the order of magnitude."""

# --- response ---------------------------------------------------------------------------------------

AUTO_RESPONSE_S: Final = 180.0
"""Field seconds from a fault's onset to the controller's isolation and restoration taking effect:
the system brief's future-state cross-system response (1–3 min), the acceptance target of issue 16,
taken at its upper end rather than a best run."""

CREWS_PER_SECTOR: Final = 2
"""Repair crews on call per sector (`controller.crews.CrewPool`'s default, as the live controller)."""

BASELINE_DISPATCH_DELAY_S: Final = 0.0
"""With automation off a crew is sent when customers call. Taken as zero — the crew leaves at the
onset — which flatters the baseline: every baseline duration here is a lower bound."""

# --- predictive maintenance --------------------------------------------------------------------------

PRECURSOR_SHARE: Final = 0.3
"""Share of failures preceded by a measurable degradation (partial discharge or tan-δ on a cable, acoustic
leak noise on a main, a UPS battery's internal resistance). An assumption: condition monitoring is
reported to flag a minority of failures in advance, and no public figure fits all three sectors; the
preventive share scales with it, so the report names it beside the result."""

PRECURSOR_DAYS: Final = 30
"""Days over which a precursor grows before the failure (linearly, from nothing)."""

PRECURSOR_SHIFT_SD: Final = 3.0
"""The precursor's size at the failure, in standard deviations of the daily signal's noise."""

CUSUM_K: Final = 0.5
"""CUSUM reference value (half the shift, in SD, it is tuned to see): the textbook choice for a
1-SD shift (Montgomery, "Introduction to Statistical Quality Control", ch. 9)."""

FALSE_ALARMS_PER_ASSET_YEAR: Final = 0.01
"""Target share of healthy assets whose signal alarms within a year; the CUSUM threshold is chosen
on simulated normal signals (a training seed) to meet it, never on the failures."""

PREVENTIVE_LEAD_S: Final = 3 * 86400.0
"""Time from a prediction to its planned crew visit (a work order scheduled within three days)."""

INSPECTION_S: Final = 3600.0
"""Crew time on site for a preventive work order that finds nothing to repair (a false alarm)."""

# --- prices ----------------------------------------------------------------------------------------

ENERGY_USD_PER_MWH: Final = 60.0
"""Price of the energy lost in the feeder: the order of US wholesale prices (EIA, Wholesale
Electricity and Natural Gas Market Data, 2023 hub averages of 30–80 USD/MWh)."""

VOLL_USD_PER_MWH: Final = 20_000.0
"""Value of lost load: London Economics for Ofgem/DECC, "The Value of Lost Load (VoLL) for
Electricity in Great Britain", 2013 (about £17,000/MWh for domestic and SME customers ≈ 20,000 USD)."""

WATER_USD_PER_CUSTOMER_HOUR: Final = 5.0
"""Value of an hour without water (or at too low a pressure) for one customer: anchored on Ofwat's
Guaranteed Standards Scheme (£50 to a household for a 12-hour unplanned interruption ≈ £4/h)."""

BANK_USD_PER_FAILED_TRANSACTION: Final = 1.0
"""Cost of one legitimate transaction turned away (lost interchange, customer time). A placeholder:
no public per-transaction figure was found; the count is reported beside it."""

CREW_USD_PER_HOUR: Final = 200.0
"""A crew-hour (a crew of two or three with its vehicle): the order of US line-worker wages (BLS
Occupational Employment and Wages, electrical power-line installers, ~45 USD/h) times crew and overhead."""

TRUCK_ROLL_USD: Final = 150.0
"""Fixed cost of sending a vehicle out (dispatch, fuel, mileage): an industry rule-of-thumb order
(utility and telecom "truck roll" costs are quoted at 150–600 USD); the low end is taken."""
