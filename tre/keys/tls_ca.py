"""The home's certificate authority for the key gateway (issue 25).

On a cluster, a job's processes on a compute node reach the key service over the
network, through the key gateway (`tre.keyservice.gateway`), with mutual TLS:

- the home has one CA (an EC P-256 key, 0600, the TRE's own: `TRE_HOME/tls/`), made
  once, valid for ten years;
- the gateway has a server certificate from it, naming the addresses it listens on;
- each job gets a client certificate from it at dispatch, naming the job
  (`tre-job-<id>`) and expiring with the job's key grant. The gateway serves a request
  only if the grant it carries was made for the job its certificate names, so a token
  copied out of one job is of no use on another connection, and a certificate is of no
  use without its job's grant.

Only public certificates and the job's own key leave this module; the CA key never
does.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
CA_DAYS = 3650
JOB_PREFIX = "tre-job-"
_JOB_NAME = re.compile(r"^tre-job-([1-9][0-9]{0,11})$")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert: bytes
    key: bytes


def ensure_ca(folder: Path, name: str = "tre home") -> Path:
    """The CA certificate in `folder`, made (with its key, 0600) if there is none."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} key gateway CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _private_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path


def issue_server(folder: Path, addresses: list[str], days: int = 365) -> Issued:
    """A server certificate for the gateway, valid for `addresses` (IPs or names)."""
    names: list[x509.GeneralName] = []
    for address in addresses:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    return _issue(
        folder,
        "tre key gateway",
        _now() + datetime.timedelta(days=days),
        ExtendedKeyUsageOID.SERVER_AUTH,
        names,
    )


def issue_job(folder: Path, job_id: int, not_after: datetime.datetime) -> Issued:
    """A client certificate naming job `job_id`, valid until `not_after` (the end of its
    grant): what the job's processes show the gateway."""
    if job_id <= 0:
        raise ValueError(f"a job certificate needs a job id, not {job_id}")
    return _issue(folder, f"{JOB_PREFIX}{job_id}", not_after, ExtendedKeyUsageOID.CLIENT_AUTH)


def job_of(subject_cn: str) -> int | None:
    """The job a client certificate's common name names, or None."""
    found = _JOB_NAME.fullmatch(subject_cn)
    return int(found[1]) if found else None


def _issue(
    folder: Path,
    common_name: str,
    not_after: datetime.datetime,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName] | None = None,
) -> Issued:
    ca_cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _private_pem(key))


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
