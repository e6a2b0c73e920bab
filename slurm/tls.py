"""Per-job TLS between a job's Dask scheduler, workers and engine.

Decrypted data crosses the network between nodes, so every job gets its own
self-signed certificate and key (0600, in its job folder on the shared filesystem),
used by all of the job's processes and trusted by nothing else. A process that is not
part of the job cannot join its cluster or read its traffic.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from distributed.security import Security

CERT = "tls-cert.pem"
KEY = "tls-key.pem"
#: What a job on another node shows the key gateway, and trusts (tre/keyservice/
#: gateway.py): the home CA's certificate, the job's own certificate and its key. The
#: job's folder holds them beside its input; its sandbox sees them under /job.
GATEWAY_CA = "gateway-ca.pem"
GATEWAY_CERT = "gateway-cert.pem"
GATEWAY_KEY = "gateway-key.pem"
GATEWAY_FILES = (GATEWAY_CA, GATEWAY_CERT, GATEWAY_KEY)


def write_job_certificate(folder: Path, job_id: int, valid_days: int = 14) -> None:
    """Create the job's certificate and key in `folder` (idempotent)."""
    if (folder / CERT).exists() and (folder / KEY).exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tre-job-{job_id}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        folder / KEY,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write_private(folder / CERT, cert.public_bytes(serialization.Encoding.PEM))


def job_security(folder: Path) -> Security:
    """Dask Security for one of the job's processes: TLS required, the job's cert only."""
    cert, key = str(folder / CERT), str(folder / KEY)
    return Security(
        tls_ca_file=cert,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        require_encryption=True,
    )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
