"""The server side of an AMQP connection's own life, sans IO: handshake, tune, open, close.

    handshake = ServerHandshake(frame_max=131072, channel_max=2047, heartbeat=60, server_properties={...})
    handshake.start()                          # the protocol header was good: connection.start goes out
    event = handshake.receive(channel, method) # every method the server does not route to a channel
    frames = handshake.data_to_send()          # bytes out, after each call

The handshake decides everything that is protocol: which method each state expects, SASL framing
(PLAIN and AMQPLAIN responses to a user name and a password), the tune-ok negotiation rules and
RabbitMQ's texts for their violations. It does not decide who may log in or which virtual hosts exist:
those come out as events (`LoginRequested`, `OpenRequested`) that the server answers with `accept_login`
/ `refusal` and `open_ok` (or an `AMQPConnectionError` of its own).

States, in order: AWAIT_HEADER -> AWAIT_START_OK -> AWAIT_TUNE_OK -> AWAIT_OPEN -> RUNNING; CLOSING once
either side sent connection.close (only close / close-ok are still heard), CLOSED once the socket may go.
AWAIT_SECURE_OK is never entered (no mechanism we offer needs a challenge) but has RabbitMQ's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import errors as codes
from .errors import AMQPConnectionError
from .serializer import method_frame
from .spec import (
    FRAME_MIN_SIZE, ConnectionBlocked, ConnectionClose, ConnectionCloseOk, ConnectionOpen, ConnectionOpenOk,
    ConnectionSecureOk, ConnectionStart, ConnectionStartOk, ConnectionTune, ConnectionTuneOk, ConnectionUnblocked,
    ConnectionUpdateSecret, ConnectionUpdateSecretOk,
)
from .table import decode_table

AWAIT_HEADER, AWAIT_START_OK, AWAIT_SECURE_OK, AWAIT_TUNE_OK, AWAIT_OPEN, RUNNING, CLOSING, CLOSED = range(8)
# RabbitMQ's names for these states, which appear in its reply texts.
STATE_NAMES = {AWAIT_START_OK: "starting", AWAIT_SECURE_OK: "securing", AWAIT_TUNE_OK: "tuning",
               AWAIT_OPEN: "opening", RUNNING: "running"}
MECHANISMS = ("PLAIN", "AMQPLAIN")
# SASL EXTERNAL: the identity is the transport's (a verified TLS client certificate), not the response's. The
# server offers it only to connections that have one (`ServerHandshake.offer`).
EXTERNAL = "EXTERNAL"

_EXPECTED = {
    AWAIT_START_OK: ConnectionStartOk,
    AWAIT_SECURE_OK: ConnectionSecureOk,
    AWAIT_TUNE_OK: ConnectionTuneOk,
    AWAIT_OPEN: ConnectionOpen,
}


@dataclass(slots=True)
class LoginRequested:
    """start-ok arrived: check these credentials, then `accept_login()` or close with `refusal(...)`.

    `password` is None when the response did not parse as the mechanism's framing (always refused), and for
    EXTERNAL, whose user the server takes from the client certificate (the response is ignored, as
    RabbitMQ ignores it)."""

    mechanism: str
    username: str
    password: str | None


@dataclass(slots=True)
class Tuned:
    """tune-ok was within the offer: these are the connection's limits from now on (heartbeat 0: none)."""

    frame_max: int
    channel_max: int
    heartbeat: int


@dataclass(slots=True)
class OpenRequested:
    """connection.open: answer `open_ok()` if the virtual host exists (else a 530 of the server's)."""

    virtual_host: str


@dataclass(slots=True)
class ClientClosed:
    """The client sent connection.close: close-ok is queued; release everything, flush and hang up."""


@dataclass(slots=True)
class CloseFinished:
    """We had sent connection.close and the client answered (close-ok, or a crossing close, answered)."""


def connection_error(code: int, detail: str, class_id: int = 0, method_id: int = 0) -> AMQPConnectionError:
    """A connection exception with RabbitMQ's reply text for `code`."""
    return AMQPConnectionError(detail, class_id, method_id, reply_code=code)


def frame_before_open(method: Any) -> AMQPConnectionError:
    """A frame on a channel before connection.open-ok: RabbitMQ's 505 quoting the frame's octets."""
    octets = ",".join(str(b) for b in method.encode())  # error path only
    return connection_error(codes.UNEXPECTED_FRAME, f"type 1, all octets = <<{octets}>>")


def sasl_credentials(mechanism: str, response: bytes) -> tuple[str, str] | None:
    """(username, password) from a start-ok response, or None when it is malformed.

    PLAIN is "authzid NUL authcid NUL password"; AMQPLAIN is a field table without its length prefix holding
    LOGIN and PASSWORD."""
    if mechanism == "PLAIN":
        parts = bytes(response).split(b"\x00")
        if len(parts) != 3:
            return None
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
    if mechanism == "AMQPLAIN":
        raw = bytes(response)
        try:
            table, _ = decode_table(len(raw).to_bytes(4, "big") + raw, 0)
        except Exception:  # any malformed table is a refused login, never an error of ours
            return None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        if login is None or password is None:
            return None
        return _as_text(login), _as_text(password)
    return None


def _as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


class ServerHandshake:
    """One connection's own state (channel 0): what it expects next, what it agreed, what it owes the peer."""

    def __init__(self, *, frame_max: int, channel_max: int, heartbeat: int, server_properties: dict,
                 mechanisms: tuple[str, ...] = MECHANISMS) -> None:
        self.state = AWAIT_HEADER
        self.offer_frame_max = frame_max
        self.offer_channel_max = channel_max
        self.offer_heartbeat = heartbeat
        self.server_properties = server_properties
        self.mechanisms = mechanisms
        # Agreed by tune-ok; the offer until then (incoming frames are held to FRAME_MIN_SIZE meanwhile).
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = 0
        self.client_properties: dict = {}
        self.client_capabilities: dict = {}
        self.name = ""  # the client's connection_name, for the log
        self._out: list[bytes] = []

    def data_to_send(self) -> list[bytes]:
        """The frames queued by the calls so far, in order (and forgets them)."""
        out, self._out = self._out, []
        return out

    # --- server's moves -------------------------------------------------------------------------
    def offer(self, mechanism: str) -> None:
        """Offer one more mechanism in connection.start (before `start`): EXTERNAL on a connection with a
        verified client certificate."""
        if mechanism not in self.mechanisms:
            self.mechanisms = (*self.mechanisms, mechanism)

    def start(self) -> None:
        """The protocol header was accepted: offer connection.start."""
        self.state = AWAIT_START_OK
        self._out.append(method_frame(0, ConnectionStart(
            version_major=0, version_minor=9, server_properties=self.server_properties,
            mechanisms=" ".join(self.mechanisms).encode(), locales=b"en_US",
        )))

    def accept_login(self) -> None:
        """The credentials of LoginRequested are good: offer connection.tune."""
        self.state = AWAIT_TUNE_OK
        self._out.append(method_frame(0, ConnectionTune(
            channel_max=self.offer_channel_max, frame_max=self.offer_frame_max, heartbeat=self.offer_heartbeat,
        )))

    @staticmethod
    def refusal(mechanism: str) -> str:
        """RabbitMQ's 403 reply text for refused credentials (close with it: `close(ACCESS_REFUSED, ...)`)."""
        return codes.format_reply_text(codes.ACCESS_REFUSED, f"Login was refused using authentication mechanism "
                                       f"{mechanism}. For details see the broker logfile.")

    def open_ok(self) -> None:
        """The virtual host of OpenRequested exists: the connection runs and channels may open."""
        self.state = RUNNING
        self._out.append(method_frame(0, ConnectionOpenOk()))

    def close(self, code: int, text: str, class_id: int = 0, method_id: int = 0) -> bool:
        """Server-initiated connection.close; False (and nothing queued) when already closing."""
        if self.state >= CLOSING:
            return False
        self.state = CLOSING
        self._out.append(method_frame(0, ConnectionClose(reply_code=code, reply_text=text, class_id=class_id,
                                                         method_id=method_id)))
        return True

    def closed(self) -> None:
        """The socket is done with (hung up, or lost)."""
        self.state = CLOSED

    # --- client's moves -------------------------------------------------------------------------
    def receive(self, channel: int, method: Any) -> Any:
        """A method for the connection (channel 0, or any channel before RUNNING): its event, or None.

        Raises AMQPConnectionError with RabbitMQ's reply for a method out of place or out of bounds."""
        kind = type(method)
        state = self.state
        if state >= CLOSING:
            if state == CLOSING and (kind is ConnectionCloseOk or kind is ConnectionClose):
                if kind is ConnectionClose:
                    self._out.append(method_frame(0, ConnectionCloseOk()))
                self.state = CLOSED
                return CloseFinished()
            return None  # after our close only its answer counts; RabbitMQ drops the rest
        if channel != 0:
            raise frame_before_open(method)
        if kind is ConnectionClose:
            self.state = CLOSED
            self._out.append(method_frame(0, ConnectionCloseOk()))
            return ClientClosed()
        if kind is _EXPECTED.get(state):
            if kind is ConnectionStartOk:
                return self._start_ok(method)
            if kind is ConnectionTuneOk:
                return self._tune_ok(method)
            if kind is ConnectionOpen:
                return OpenRequested(method.virtual_host)
        if state == RUNNING:
            if kind is ConnectionBlocked or kind is ConnectionUnblocked:
                return None  # a client's own flow notices mean nothing to a server
            if kind is ConnectionUpdateSecret:
                self._out.append(method_frame(0, ConnectionUpdateSecretOk()))
                return None
        raise connection_error(
            codes.CHANNEL_ERROR, f"unexpected method in connection state {STATE_NAMES.get(state, 'running')}",
            method.CLASS_ID, method.METHOD_ID,
        )

    def _start_ok(self, m: Any) -> LoginRequested:
        self.client_properties = m.client_properties or {}
        caps = self.client_properties.get("capabilities")
        self.client_capabilities = caps if isinstance(caps, dict) else {}
        self.name = str(self.client_properties.get("connection_name", ""))
        mechanism = m.mechanism
        if mechanism not in self.mechanisms:
            raise connection_error(codes.COMMAND_INVALID, f"unknown authentication mechanism '{mechanism}'",
                                   m.CLASS_ID, m.METHOD_ID)
        creds = sasl_credentials(mechanism, m.response)
        if creds is None:
            return LoginRequested(mechanism, "", None)
        return LoginRequested(mechanism, creds[0], creds[1])

    def _tune_ok(self, m: Any) -> Tuned:
        offer = self.offer_frame_max
        if m.frame_max and m.frame_max < FRAME_MIN_SIZE:
            raise connection_error(codes.NOT_ALLOWED, f"frame_max={m.frame_max} < {FRAME_MIN_SIZE} min size",
                                   m.CLASS_ID, m.METHOD_ID)
        if m.frame_max > offer:
            raise connection_error(codes.NOT_ALLOWED, f"frame_max={m.frame_max} > {offer} max size",
                                   m.CLASS_ID, m.METHOD_ID)
        if m.channel_max > self.offer_channel_max:
            raise connection_error(codes.NOT_ALLOWED, f"channel_max={m.channel_max} > {self.offer_channel_max} "
                                   "max size", m.CLASS_ID, m.METHOD_ID)
        # 0 means "no limit of the client's": the server's offer holds.
        self.frame_max = m.frame_max or offer
        self.channel_max = m.channel_max or self.offer_channel_max
        self.heartbeat = m.heartbeat
        self.state = AWAIT_OPEN
        return Tuned(self.frame_max, self.channel_max, self.heartbeat)
