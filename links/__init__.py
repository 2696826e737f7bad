"""The city's secure links: simulated decoy-state BB84 QKD, an ETSI GS QKD 014 key service, and hybrid
QKD ⊕ ML-KEM-768 ⊕ X25519 channels.

Packages and modules, one job each (imports flow downward: `kme` and `channel` use `qkd` and `plan`):

- :mod:`links.plan` — which SAEs (secure application entities) are linked, over how much fibre,
  and which MQTT topics each direction of a link carries.
- :mod:`links.qkd` — the physics: a weak coherent source with decoys, fibre, detectors, sifting,
  decoy-state estimation, error correction, privacy amplification, attacks, and the analytic key rate.
- :mod:`links.pki` — a development CA and the TLS certificates of the KME and of every SAE.
- :mod:`links.kme` — the key management entity: ETSI GS QKD 014 v1.1.1 over HTTPS, fed by the
  simulated QKD pairs, and its client.
- :mod:`links.endpoint` / :mod:`links.channel` — an SAE's long-term keys and the hybrid session:
  handshake, HKDF-SHA256 over the three secrets, AES-256-GCM with counters, rotation.

This package sits below `bus` (which carries its ciphertexts) and above `keys`; it knows nothing of
the chain: whoever records a link's events on-chain (the controller) does so from above.
"""
