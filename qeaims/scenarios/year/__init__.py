"""`qeaims scenario run year`: a year of random faults, with the controller and without it, offline.

Why offline: a year cannot be played through the chain and the oracles in minutes, and the issue
allows a fast mode provided it drives the same controller code. Here the controller's own planner
(`controller.planning.TwinPlanner` → `controller.responses.plan_for`), its crew pool
(`controller.crews`) and its minimum-loss reconfiguration (`controller.electricity`) run against the
sectors' twins; what is left out is detection and the chain's latency, replaced by a stated
response time (`assumptions.AUTO_RESPONSE_S`), and the faults' interaction (each is measured alone).

Modules: `assumptions` (every rate and price, cited), `faults` (the draw), `levels` (service with
and without the plans, measured on the twins), `predict` (the CUSUM predictor's work orders),
`dispatch` (crews), `cascade` (the protective commands), `energy` (feeder losses), `outcomes` (one fault's spans in each world),
`run` (the year and its report), `table` (the rich table).
"""
