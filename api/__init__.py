"""The audit and operations API and the dashboard it serves (FastAPI; docs/api.md).

It reads the chain through the indexer and acts only through the council and the ledger: it never
imports the controller or a running oracle (pyproject.toml: the import contracts).
"""
