"""Per-sector data vaults: sensitive records encrypted at rest, every write and read accountable on-chain.

The layer sits between the sectors (whose systems hold the records: admissions, payments, operator
credentials) and the chain (where each write's commitment and each read's access event go).
"""
