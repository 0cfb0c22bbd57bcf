"""Throwaway certificates for the TLS tests, made with the openssl CLI at test time.

One CA signs the server's certificate (for localhost and 127.0.0.1) and client certificates whose
subject CN names a user; a second CA, which the broker does not trust, signs one more client
certificate. EC P-256 keys: quick to make, and every client library here accepts them.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Identity:
    cert: str
    key: str


@dataclass(frozen=True)
class PKI:
    ca: str  # the CA bundle the broker verifies clients with, and clients verify the broker with
    server: Identity
    clients: dict[str, Identity]  # by common name, signed by the trusted CA
    untrusted: Identity  # CN "alice", signed by a CA the broker does not know
    expired: Identity  # CN "alice", signed by the trusted CA, valid until a day ago


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[str, str]:
    _openssl("req", "-x509", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return str(directory / f"{name}.pem"), str(directory / f"{name}.key")


def _signed(directory: Path, name: str, subject: str, ca: tuple[str, str], extensions: str,
            days: int = 2, options: tuple[str, ...] = ()) -> Identity:
    """A key and a certificate for `subject` signed by `ca`; `options` go to `openssl req` (-utf8...)."""
    _openssl("req", *_KEY, *options, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
             cwd=directory)
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
             str(secrets.randbits(63)), "-out", f"{name}.pem", "-days", str(days), "-extfile", f"{name}.ext",
             cwd=directory)
    return Identity(str(directory / f"{name}.pem"), str(directory / f"{name}.key"))


def make_pki(directory: Path, client_names: tuple[str, ...]) -> PKI:
    ca = _ca(directory, "leveret-test-ca")
    server = _signed(directory, "server", "/CN=localhost", ca,
                     "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    client_ext = "extendedKeyUsage=clientAuth\n"
    clients = {name: _signed(directory, f"client-{name}", f"/O=leveret tests/CN={name}", ca, client_ext)
               for name in client_names}
    stranger_ca = _ca(directory, "stranger-ca")
    untrusted = _signed(directory, "untrusted", "/CN=alice", stranger_ca, client_ext)
    # -days -1: its notAfter is a day before now (and before its notBefore): expired however it is read.
    expired = _signed(directory, "expired", "/CN=alice", ca, client_ext, days=-1)
    return PKI(ca[0], server, clients, untrusted, expired)
