"""Fault campaigns: many randomized runs against the real contracts on a dev chain of their own.

`common` holds what every campaign shares (seeds, run records, the JSON report); `devchain` the
campaign's own Anvil; `byzantine` the Byzantine-oracle campaign (docs/campaigns.md).
"""
