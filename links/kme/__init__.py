"""The key management entity: ETSI GS QKD 014 v1.1.1 over HTTPS, fed by the simulated QKD pairs.

- :mod:`links.kme.models` — the standard's JSON containers;
- :mod:`links.kme.store` — per link, the pool and the keys delivered to one end only;
- :mod:`links.kme.supply` — the QKD pairs running block after block, and the links' secure/compromised state;
- :mod:`links.kme.app` — the HTTP interface (FastAPI);
- :mod:`links.kme.server` — uvicorn with TLS client certificates;
- :mod:`links.kme.client` — an SAE's client (httpx);
- :mod:`links.kme.bench` — keys per second through the KME over HTTPS.

docs/kme.md describes the endpoints, the lifecycle of a key and what a real deployment replaces.
"""
