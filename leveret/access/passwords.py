"""Password hashes as RabbitMQ's internal users store them.

A hash is base64(salt + H(salt + UTF-8 password)) with a 4-byte random salt, where H is SHA-256
(`rabbit_password_hashing_sha256`, what leveret writes), SHA-512 or MD5 (accepted from imported
definitions, as RabbitMQ accepts them). An empty hash is a user without a password: no password matches
it (such a user could only authenticate by certificate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SHA256 = "rabbit_password_hashing_sha256"
SHA512 = "rabbit_password_hashing_sha512"
MD5 = "rabbit_password_hashing_md5"
# RabbitMQ's own default for users stored before hashing algorithms were recorded is MD5; leveret always
# records one, so that default matters only for imports that leave the field out.
ALGORITHMS = {SHA256: hashlib.sha256, SHA512: hashlib.sha512, MD5: hashlib.md5}
SALT_BYTES = 4


def _digest(algorithm: str, salt: bytes, password: str) -> bytes:
    try:
        function = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown password hashing algorithm {algorithm!r}") from None
    return function(salt + password.encode("utf-8")).digest()


def hash_password(password: str, algorithm: str = SHA256, *, salt: bytes | None = None) -> str:
    """The stored form of `password`: base64 of the salt followed by the salted digest."""
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt is {SALT_BYTES} bytes, not {len(salt)}")
    return base64.b64encode(salt + _digest(algorithm, salt, password)).decode("ascii")


def check_password(stored: str, algorithm: str, password: str) -> bool:
    """Whether `password` matches the stored hash (False for an empty or malformed hash, never an error)."""
    if not stored or algorithm not in ALGORITHMS:
        return False
    try:
        raw = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return False
    salt, digest = raw[:SALT_BYTES], raw[SALT_BYTES:]
    if len(salt) != SALT_BYTES or not digest:
        return False
    return hmac.compare_digest(_digest(algorithm, salt, password), digest)


def valid_hash(stored: str, algorithm: str) -> bool:
    """Whether a hash given for import has the shape `algorithm` produces (empty: no password)."""
    if algorithm not in ALGORITHMS:
        return False
    if not stored:
        return True
    try:
        raw = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == SALT_BYTES + ALGORITHMS[algorithm]().digest_size
