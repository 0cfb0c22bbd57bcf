"""AMQP reply codes and the exceptions that carry them.

Every exception here knows the reply RabbitMQ would send for it: the reply code, the
reply text (formatted as RabbitMQ formats it, "NAME - detail") and the class/method id of
the offending method (0/0 when no method is to blame). `AMQPConnectionError` means
"send connection.close and close the connection"; `AMQPChannelError` means "send
channel.close on `.channel` and keep the connection".

What RabbitMQ 3.10 answers, measured with a raw socket against the local broker:

=========================================  ===========================================
input                                      RabbitMQ's answer
=========================================  ===========================================
unknown protocol header                    writes b"AMQP\\x00\\x00\\x09\\x01", closes
frame payload > frame_max (the limit is    501 "FRAME_ERROR - type 3, all octets = <<>>:
frame_max itself, though the text prints   {frame_too_large,4097,4088}"
frame_max - 8); 4096 until tune-ok         (before tune-ok: dropped, no close frame)
frame-end octet not 0xCE                   501 "FRAME_ERROR - type 1, all octets = <<..>>:
                                           {invalid_frame_end_marker,0}"
unknown frame type                         501 "FRAME_ERROR - type 5, all octets = <<>>:
                                           unknown_frame"
truncated method arguments, or trailing    501 "FRAME_ERROR - cannot decode <<..>>" with
bytes after them                           the method's class/method id
header or body frame with no pending       505 "UNEXPECTED_FRAME - expected method frame,
content method                             got non method frame instead"
method frame where a header is expected    505 "UNEXPECTED_FRAME - expected content header
                                           for class 60, got non content header frame
                                           instead" (also for a header with weight != 0)
header for another class                   505 "... got one for class 50 instead"
method frame where a body is expected      505 "UNEXPECTED_FRAME - expected content body,
                                           got non content body frame instead"
heartbeat / header / body on the wrong     505 "UNEXPECTED_FRAME - type 8, all octets =
channel (heartbeat != 0, content == 0)     <<>>"
unknown class or method id                 no close frame: the reader process crashes
                                           and the TCP connection is dropped
bad field-table type tag in a method       same: connection dropped, no close frame
shortstr argument that is not UTF-8        501 "FRAME_ERROR - Malformed UTF-8 in
                                           shortstr", class/method 0/0
non-UTF-8 property values / table keys     accepted and delivered byte for byte
tables nested thousands of levels deep     accepted and forwarded byte for byte, in
(as many as the frame holds)               headers and in method arguments alike
any content property that does not decode  541 "INTERNAL_ERROR", class/method 0/0, at the
(a bad headers table, a cut-short field,    publish (it decodes every publish's
trailing bytes)                            properties); the continuation flag is ignored
body longer than the declared body size    nothing at once; the channel waits forever
                                           and the next method frame gets 505
body size over max_message_size            nothing until the whole body is in (swallowed),
                                           then 406 "PRECONDITION_FAILED - message size N
                                           is larger than configured max size M"
handshake pipelined with channel.open,     processed frame by frame, in order; tune-ok's
declares, publishes in one write           frame_max applies to the frames after it
channel.close-ok while a body announced    505 "UNEXPECTED_FRAME - expected content body,
on that channel is incomplete              got non content body frame instead" (60/40)
=========================================  ===========================================

Where RabbitMQ drops the connection without a reply we send a proper connection.close
instead: `UnknownMethod` carries 540 NOT_IMPLEMENTED and a bad table tag is a
`MalformedFrame` (501 FRAME_ERROR, like any other undecodable method). A body longer than
declared is reported at once as 505 UNEXPECTED_FRAME.
"""

from __future__ import annotations

REPLY_SUCCESS = 200
CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
NO_CONSUMERS = 313
CONNECTION_FORCED = 320
INVALID_PATH = 402
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541

REPLY_NAMES: dict[int, str] = {
    REPLY_SUCCESS: "REPLY_SUCCESS",
    CONTENT_TOO_LARGE: "CONTENT_TOO_LARGE",
    NO_ROUTE: "NO_ROUTE",
    NO_CONSUMERS: "NO_CONSUMERS",
    CONNECTION_FORCED: "CONNECTION_FORCED",
    INVALID_PATH: "INVALID_PATH",
    ACCESS_REFUSED: "ACCESS_REFUSED",
    NOT_FOUND: "NOT_FOUND",
    RESOURCE_LOCKED: "RESOURCE_LOCKED",
    PRECONDITION_FAILED: "PRECONDITION_FAILED",
    FRAME_ERROR: "FRAME_ERROR",
    SYNTAX_ERROR: "SYNTAX_ERROR",
    COMMAND_INVALID: "COMMAND_INVALID",
    CHANNEL_ERROR: "CHANNEL_ERROR",
    UNEXPECTED_FRAME: "UNEXPECTED_FRAME",
    RESOURCE_ERROR: "RESOURCE_ERROR",
    NOT_ALLOWED: "NOT_ALLOWED",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    INTERNAL_ERROR: "INTERNAL_ERROR",
}

# Codes the spec marks as hard errors: they close the whole connection.
HARD_ERRORS = frozenset(
    {
        CONNECTION_FORCED, INVALID_PATH, FRAME_ERROR, SYNTAX_ERROR, COMMAND_INVALID,
        CHANNEL_ERROR, UNEXPECTED_FRAME, RESOURCE_ERROR, NOT_ALLOWED, NOT_IMPLEMENTED,
        INTERNAL_ERROR,
    }
)

# reply-text is a shortstr on the wire.
_MAX_REPLY_TEXT = 255


def format_reply_text(reply_code: int, detail: str = "") -> str:
    """Return RabbitMQ's reply text "NAME - detail" (just "NAME" without detail), cut to 255 bytes."""
    name = REPLY_NAMES.get(reply_code, str(reply_code))
    text = f"{name} - {detail}" if detail else name
    # A name or value that came as bytes that are not UTF-8 is carried as surrogate escapes: it goes out as
    # those bytes, as RabbitMQ prints a binary into its texts.
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > _MAX_REPLY_TEXT:
        end = _MAX_REPLY_TEXT
        while end and raw[end] & 0xC0 == 0x80:  # back to a character boundary (not a continuation byte)
            end -= 1
        text = raw[:end].decode("utf-8", "surrogateescape")
    return text


class AMQPError(Exception):
    """An error with the AMQP reply it implies.

    `reply_text` is the full text sent on the wire ("NOT_FOUND - no queue 'q' in vhost '/'").
    `events` holds the events a `ConnectionReader.receive_data` call produced before it
    raised (empty otherwise): the caller handles them first, then the error.
    """

    reply_code: int = INTERNAL_ERROR

    def __init__(
        self,
        detail: str = "",
        class_id: int = 0,
        method_id: int = 0,
        reply_code: int | None = None,
    ) -> None:
        if reply_code is not None:
            self.reply_code = reply_code
        self.reply_text = format_reply_text(self.reply_code, detail)
        self.class_id = class_id
        self.method_id = method_id
        self.events: list = []
        super().__init__(self.reply_text)


class AMQPConnectionError(AMQPError):
    """A hard error: reply with connection.close and close the connection."""


class AMQPChannelError(AMQPError):
    """A soft error: reply with channel.close on `channel`; the connection stays open."""

    def __init__(
        self,
        channel: int,
        detail: str = "",
        class_id: int = 0,
        method_id: int = 0,
        reply_code: int | None = None,
    ) -> None:
        self.channel = channel
        super().__init__(detail, class_id, method_id, reply_code)


class FrameError(AMQPConnectionError):
    """The frame layer is broken (oversized frame, bad frame end, unknown frame type): 501.

    After this the byte stream cannot be trusted, so nothing more is parsed.
    """

    reply_code = FRAME_ERROR


class MalformedFrame(FrameError):
    """A payload that cannot be decoded (truncated, trailing bytes, bad table tag): 501.

    RabbitMQ answers undecodable method arguments with 501 FRAME_ERROR "cannot decode",
    not 502 SYNTAX_ERROR, so this is a FrameError; the framing itself is still intact.
    """


class MalformedProperties(AMQPConnectionError):
    """Content properties that cannot be decoded (a bad table in headers, a truncated field): 541.

    RabbitMQ answers them with 541 "INTERNAL_ERROR" and class/method 0/0, no detail on the wire;
    `detail` keeps what was wrong, for the log.
    """

    reply_code = INTERNAL_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__()
        self.detail = detail


class UnexpectedFrame(AMQPConnectionError):
    """A frame that is valid but not allowed here (body without header, ...): 505."""

    reply_code = UNEXPECTED_FRAME


class UnknownMethod(AMQPConnectionError):
    """A method frame with a class/method id the spec does not define: 540.

    RabbitMQ 3.10 drops the TCP connection without any reply here; we close properly.
    """

    reply_code = NOT_IMPLEMENTED


class BadProtocolHeader(AMQPConnectionError):
    """The first 8 bytes are not a protocol header we speak.

    The server answers by writing the 0-9-1 protocol header and closing the socket (no
    connection.close: there is no connection yet). `header` holds the bytes received.
    """

    reply_code = CONNECTION_FORCED

    def __init__(self, header: bytes) -> None:
        self.header = bytes(header)
        super().__init__(f"bad protocol header {self.header!r}")
