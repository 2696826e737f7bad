"""The development PKI: one CA, the KME's server certificate, a client certificate per SAE."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import ConfigError
from links.pki import DevPki, sae_of_certificate
from links.plan import city_plan


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_and_client_certificates(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    pki.ensure_server()
    pki.ensure_client("twin-water")
    ca = _cert(pki.ca_path)
    server_cert, server_key = pki.server_paths()
    client_cert, client_key = pki.client_paths("twin-water")
    assert client_cert == tmp_path / "pki" / "sae" / "twin-water.pem"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    server = _cert(server_cert)
    assert server.issuer == ca.subject
    assert server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)

    client = _cert(client_cert)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "twin-water"
    assert client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert isinstance(client.public_key(), ec.EllipticCurvePublicKey)
    assert client.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    client.verify_directly_issued_by(ca)

    for key in (tmp_path / "pki" / "ca.key", server_key, client_key):
        assert _mode(key) == 0o600
    assert not list((tmp_path / "pki").rglob("*.tmp"))


def test_idempotent_and_one_client_per_sae(tmp_path: Path) -> None:
    pki = DevPki(tmp_path)
    plan = city_plan(["water"], oracles_per_sector=2)
    pki.ensure_all(plan)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.pem")}
    pki.ensure_all(plan)
    pki.ensure_ca()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.pem")} == before
    assert sorted(p.stem for p in (tmp_path / "sae").glob("*.pem")) == plan.saes()


def test_common_name_of_a_peer_certificate() -> None:
    peer = {"subject": ((("organizationName", "x"),), (("commonName", "oracle-water-1"),))}
    assert sae_of_certificate(peer) == "oracle-water-1"
    assert sae_of_certificate(None) is None
    assert sae_of_certificate({}) is None


def test_damaged_ca_is_a_plain_error(tmp_path: Path) -> None:
    pki = DevPki(tmp_path)
    pki.ensure_ca()
    (tmp_path / "ca.key").write_text("not a key")
    with pytest.raises(ConfigError, match="damaged"):
        pki.ensure_client("twin-water")
