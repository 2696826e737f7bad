"""Secure-link endpoints whose long-term keys a quorum's indicator names: what an operator must re-key by hand.

A ``key-fingerprint`` indicator names a key by SHA-256; for a link endpoint (an SAE: a field gateway, an
oracle's link, the controller) that is `links.endpoint.EndpointPublic.fingerprint`, the hash of its
long-term public keys (ML-KEM-768, X25519, ML-DSA-65, Ed25519) as the shared directory lists them.

Why this only *finds* them and rotates nothing. The links re-key their sessions on their own
(`bus.secure.SecureLinks.rotate_now`: a new handshake, fresh ML-KEM and X25519 secrets, a new epoch),
but a session re-key is encapsulated to, and signed with, the same long-term keys: whoever holds the
named private keys decapsulates the new session as easily as the old one (unless a QKD key from the KME
is mixed in, which the thief does not have) and can still start sessions in the endpoint's name. Retiring the long-term keys means a new key file for that SAE and a new entry in
the directory that *every* peer loads at start (`links.endpoint.ensure_endpoints` never replaces a key
file, on purpose: a silent regeneration would cut the SAE off from every peer holding the old
directory), compared out of band between operators by this same fingerprint. There is no on-chain or
in-band path to distribute a new directory entry today, so an automatic re-key would either cut the
link or be unauthenticated. What is automatic is knowing: `named_endpoints` lists them, from the
chain's recounted publications (expired ones included, withdrawn ones not, as for oracle keys:
`chain.rotation.named_in`).
"""

from __future__ import annotations

from chain.indicators import IndicatorRecord
from chain.rotation import named_in
from links.endpoint import Directory

__all__ = ["named_endpoints"]


def named_endpoints(directory: Directory, records: list[IndicatorRecord]) -> dict[str, IndicatorRecord]:
    """SAE id → the quorum's publication naming its long-term link keys (not withdrawn), for each such SAE."""
    out: dict[str, IndicatorRecord] = {}
    for entry in directory:
        record = named_in(records, entry.fingerprint())
        if record is not None:
            out[entry.sae_id] = record
    return out
