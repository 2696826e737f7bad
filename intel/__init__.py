"""Threat intelligence shared across sectors: indicators of compromise, their STIX 2.1 export and their enforcement (docs/cyber.md)."""
