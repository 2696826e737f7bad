"""Physics-backed twins of the six sectors: sensors, actuators, fault and attack injection."""
