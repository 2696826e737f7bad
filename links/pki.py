"""A development certificate authority: the KME's server certificate and one client certificate per SAE.

ETSI GS QKD 014 leaves authentication to TLS: the KME knows an SAE by the certificate it presents.
Here a CA made once per data directory (ECDSA P-256, ten years) issues the KME's server certificate
(serverAuth, for 127.0.0.1 and localhost) and each SAE's client certificate (clientAuth, the SAE id
as its common name). The KME accepts only certificates of this CA, so a client without one, or with
one from another CA, cannot even complete the TLS handshake. A site deployment uses its own PKI and
points the same files at it.

Files (private keys 0600, all written atomically)::

    ca.pem ca.key  kme.pem kme.key  sae/<id>.pem sae/<id>.key
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import ConfigError
from links.plan import LinkPlan

__all__ = ["DevPki", "sae_of_certificate"]

VALID = dt.timedelta(days=3650)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def sae_of_certificate(peer: Mapping[str, Any] | None) -> str | None:
    """The SAE id (common name) of a peer certificate as `ssl.SSLSocket.getpeercert()` gives it."""
    if not peer:
        return None
    for rdn in peer.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


class DevPki:
    """The files of the development PKI in `directory`; every ``ensure_*`` makes what is missing, once."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    def server_paths(self) -> tuple[Path, Path]:
        return self.directory / "kme.pem", self.directory / "kme.key"

    def client_paths(self, sae_id: str) -> tuple[Path, Path]:
        cert, key = self.directory / "sae" / f"{sae_id}.pem", self.directory / "sae" / f"{sae_id}.key"
        return cert, key

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
            key = serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(), None)
        except FileNotFoundError:
            raise ConfigError(f"no development CA in {self.directory}: `qeaims up` makes one") from None
        except ValueError as exc:
            raise ConfigError(f"the development CA in {self.directory} is damaged: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"the development CA key in {self.directory} is not an EC key")
        return cert, key

    def ensure_ca(self) -> None:
        if self.ca_path.is_file():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QEAIMS development CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + VALID)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        _write(self.directory / "ca.key", _key_pem(key), private=True)
        _write(self.ca_path, cert.public_bytes(serialization.Encoding.PEM), private=False)

    def _issue(self, cert_path: Path, key_path: Path, common_name: str, usage: x509.ObjectIdentifier,
               hosts: Iterable[str] = ()) -> None:
        if cert_path.is_file() and key_path.is_file():
            return
        ca_cert, ca_key = self._ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(ca_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + VALID)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)

    def ensure_server(self, hosts: Iterable[str] = ("127.0.0.1", "localhost")) -> None:
        self.ensure_ca()
        self._issue(*self.server_paths(), "qeaims-kme", ExtendedKeyUsageOID.SERVER_AUTH, hosts)

    def ensure_client(self, sae_id: str) -> None:
        self.ensure_ca()
        self._issue(*self.client_paths(sae_id), sae_id, ExtendedKeyUsageOID.CLIENT_AUTH)

    def ensure_all(self, plan: LinkPlan) -> None:
        self.ensure_server()
        for sae_id in plan.saes():
            self.ensure_client(sae_id)
