"""SASL/PLAIN on the Kafka listener, sans-IO: the handshake and the PLAIN token, checked against leveret's users.

With `kafka_sasl` on, a connection must authenticate before anything but ApiVersions, as on a Kafka
SASL_PLAINTEXT (or SASL_SSL) listener: SaslHandshake v1 names the mechanism (PLAIN only), SaslAuthenticate
carries the token `authzid NUL user NUL password` (RFC 4616). The user must exist with that password (the
`loopback_users` rule applies, as for AMQP) and have a permission row in the listener's vhost; Kafka clients
then act with full rights there (no per-topic ACLs). A failed attempt is answered with
SASL_AUTHENTICATION_FAILED and the connection closed, as Kafka does; a request other than the handshake
before authentication closes it at once. Without `kafka_sasl`, a SaslHandshake gets ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from leveret.kafka import errors

MECHANISM = "PLAIN"
FAILED_TEXT = "Authentication failed: Invalid username or password"


class Credentials(NamedTuple):
    authzid: str
    user: str
    password: str


def plain_credentials(token: bytes) -> Credentials | None:
    """The three fields of a PLAIN token, or None when it is not one."""
    fields = bytes(token).split(b"\0")
    if len(fields) != 3 or not fields[1]:
        return None
    try:
        authzid, user, password = (field.decode("utf-8") for field in fields)
    except UnicodeDecodeError:
        return None
    return Credentials(authzid, user, password)


class SaslState:
    """One connection's SASL exchange: `handshake`, then `authenticate`; `done` once the user is known."""

    def __init__(self, required: bool, check: Callable[[str, str], bool]) -> None:
        self.required = required
        self.done = not required
        self.user: str | None = None
        self._mechanism_chosen = False
        self._check = check  # (user, password) -> may this user in

    def allows(self, api_key: int, sasl_keys: frozenset[int]) -> bool:
        """Whether a request of this key may be handled now (before authentication only the SASL ones)."""
        return self.done or api_key in sasl_keys

    def handshake(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.required or self.user is not None:
            return {"error_code": errors.ILLEGAL_SASL_STATE, "mechanisms": [MECHANISM] if self.required else []}
        if request["mechanism"] != MECHANISM:
            return {"error_code": errors.UNSUPPORTED_SASL_MECHANISM, "mechanisms": [MECHANISM]}
        self._mechanism_chosen = True
        return {"error_code": errors.NONE, "mechanisms": [MECHANISM]}

    def authenticate(self, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(response, whether the connection stays open)."""
        if not self._mechanism_chosen or self.done:
            return {"error_code": errors.ILLEGAL_SASL_STATE, "error_message": "SaslAuthenticate out of turn",
                    "auth_bytes": b"", "session_lifetime_ms": 0}, False
        credentials = plain_credentials(request["auth_bytes"])
        if credentials is None or (credentials.authzid and credentials.authzid != credentials.user) \
                or not self._check(credentials.user, credentials.password):
            return {"error_code": errors.SASL_AUTHENTICATION_FAILED, "error_message": FAILED_TEXT,
                    "auth_bytes": b"", "session_lifetime_ms": 0}, False
        self.user = credentials.user
        self.done = True
        return {"error_code": errors.NONE, "error_message": None, "auth_bytes": b"", "session_lifetime_ms": 0}, True
