"""Test certificates made per run (never committed): a server CA and certificate for 127.0.0.1,
a client CA with a client certificate, and a certificate of another CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Pki:
    ca: Path  # the server certificate's CA, which clients trust
    server_cert: Path
    server_key: Path
    client_ca: Path  # the CA nginx verifies client certificates against
    client: tuple[Path, Path]  # a certificate of the client CA, with its key
    stranger: tuple[Path, Path]  # a certificate of another CA


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
          *, ca: bool = False, ip: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (directory / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def make_pki(directory: Path) -> Pki:
    directory.mkdir()
    ca_key, client_ca_key, other_key = _key(), _key(), _key()
    ca = _cert("Test server CA", ca_key, None, ca=True)
    client_ca = _cert("Test client CA", client_ca_key, None, ca=True)
    other_ca = ("Another CA", other_key)
    server_key, client_key, stranger_key = _key(), _key(), _key()
    server = _cert("127.0.0.1", server_key, ("Test server CA", ca_key), ip="127.0.0.1")
    client = _cert("billing-service", client_key, ("Test client CA", client_ca_key))
    stranger = _cert("billing-service", stranger_key, other_ca)
    return Pki(
        ca=_write(directory, "ca", ca), server_cert=_write(directory, "server", server, server_key),
        server_key=directory / "server.key", client_ca=_write(directory, "client-ca", client_ca),
        client=(_write(directory, "client", client, client_key), directory / "client.key"),
        stranger=(_write(directory, "stranger", stranger, stranger_key), directory / "stranger.key"),
    )
