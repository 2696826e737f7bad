"""The self-healing controller: it acts only on decisions that are on-chain first.

- `plans.py`: what a sector response is (actuator commands + what it costs the city), shared by all.
- `electricity.py`: FLISR (locate, isolate, restore by power-flow-checked tie switching) and
  minimum-loss reconfiguration on the feeder.
- `responses.py`: the other sectors' responses (water valve segments, sewage standby pumps and
  diversion, road closures and signal retiming, hospital backup power and diversion, bank failover).
"""
