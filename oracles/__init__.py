"""Per-sector oracle nodes: ingest, detect, attest (hybrid-signed), vote."""
