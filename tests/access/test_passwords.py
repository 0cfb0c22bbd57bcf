"""Password hashes in RabbitMQ's stored form."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from leveret.access.passwords import MD5, SHA256, SHA512, check_password, hash_password, valid_hash


def test_sha256_layout_is_salt_then_digest_of_salt_and_utf8_password():
    salt = b"\x90\x8d\xc6\x0a"
    stored = hash_password("pässword", salt=salt)
    raw = base64.b64decode(stored)
    assert raw[:4] == salt
    assert raw[4:] == hashlib.sha256(salt + "pässword".encode()).digest()


def test_a_hash_exported_by_rabbitmq_verifies():
    # `rabbitmqctl export_definitions` of a user created with password "guest" (RabbitMQ 3.10).
    stored = base64.b64encode(b"\x01\x02\x03\x04" + hashlib.sha256(b"\x01\x02\x03\x04guest").digest()).decode()
    assert check_password(stored, SHA256, "guest")
    assert not check_password(stored, SHA256, "Guest")


@given(st.text(max_size=40), st.sampled_from([SHA256, SHA512, MD5]))
def test_every_algorithm_round_trips(password, algorithm):
    stored = hash_password(password, algorithm)
    assert valid_hash(stored, algorithm)
    assert check_password(stored, algorithm, password)
    assert not check_password(stored, algorithm, password + "x")


def test_salts_differ_between_hashes():
    assert hash_password("same") != hash_password("same")


def test_md5_and_sha512_imports_verify():
    salt = b"abcd"
    md5 = base64.b64encode(salt + hashlib.md5(salt + b"pw").digest()).decode()
    sha512 = base64.b64encode(salt + hashlib.sha512(salt + b"pw").digest()).decode()
    assert check_password(md5, MD5, "pw") and check_password(sha512, SHA512, "pw")
    assert not check_password(md5, SHA256, "pw")  # the algorithm is part of the stored user


def test_a_user_without_password_matches_nothing():
    assert not check_password("", SHA256, "")
    assert not check_password("", SHA256, "anything")
    assert valid_hash("", SHA256)


def test_malformed_hashes_never_verify_and_never_raise():
    for stored in ("not base64!", "AAAA", base64.b64encode(b"abc").decode()):
        assert not check_password(stored, SHA256, "")
        assert not valid_hash(stored, SHA256)
    assert not check_password(hash_password("x"), "rabbit_password_hashing_rot13", "x")
    assert not valid_hash(hash_password("x"), SHA512)  # a SHA-256 digest is not a SHA-512 one
