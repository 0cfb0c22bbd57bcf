"""Malformed and out-of-order input on raw sockets: the broker must answer like RabbitMQ and survive.

Every test opens a healthy pika connection first, then misbehaves on a raw socket, then proves
the healthy connection still publishes and gets a message: one bad client must never hurt others.
Frames are encoded by hand with `struct` (a real client would refuse to send them), and each test
runs against the broker under test and against the local RabbitMQ, so the expectations below are
RabbitMQ's observed answers (taken from RabbitMQ 3.10.8).

Where RabbitMQ's reply text is an Erlang term dump ("type 1, all octets = <<...>>") only the code
and the text's symbolic prefix are required; where RabbitMQ drops the socket without any close
frame (its reader process crashes on unknown method ids and undecodable tables), a broker may
instead send connection.close with a fitting code first, and the test accepts both.
"""

from __future__ import annotations

import socket
import struct
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

import pika
import pytest

TIMEOUT = 5.0
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"
METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8


# --- hand encoding ------------------------------------------------------------------------------

def shortstr(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">B", len(data)) + data


def longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def frame(frame_type: int, channel: int, payload: bytes, end: bytes = FRAME_END) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + end


def method(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    return frame(METHOD, channel, struct.pack(">HH", class_id, method_id) + arguments)


def content_header(channel: int, body_size: int, class_id: int = 60) -> bytes:
    return frame(HEADER, channel, struct.pack(">HHQH", class_id, 0, body_size, 0))


def queue_declare(channel: int, name: str = "", arguments: bytes = b"", exclusive: bool = True) -> bytes:
    bits = 0x04 if exclusive else 0  # passive, durable, exclusive, auto-delete, no-wait
    return method(channel, 50, 10, struct.pack(">H", 0) + shortstr(name) + struct.pack(">B", bits)
                  + longstr(arguments))


def basic_publish(channel: int, routing_key: str) -> bytes:
    return method(channel, 60, 40, struct.pack(">H", 0) + shortstr("") + shortstr(routing_key) + b"\x00")


def channel_open(channel: int) -> bytes:
    return method(channel, 20, 10, shortstr(""))


def channel_close(channel: int) -> bytes:
    return method(channel, 20, 40, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0))


# --- the raw connection -------------------------------------------------------------------------

@dataclass
class Outcome:
    """Everything the broker sent until it hung up (or until the timeout, then `ended` is False)."""

    closes: list[tuple] = field(default_factory=list)  # (channel, code, text, class id, method id)
    methods: list[tuple] = field(default_factory=list)  # (channel, class id, method id) of other methods
    raw: bytes = b""
    ended: bool = False  # the broker hung up (or, with stop_at_close, sent connection.close)


class RawAMQP:
    """A socket that speaks AMQP only as far as the test says, with every read bounded."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.user = urllib.parse.unquote(parts.username or "guest")
        self.password = urllib.parse.unquote(parts.password or "guest")
        vhost = parts.path[1:] if parts.path.startswith("/") else parts.path
        self.vhost = urllib.parse.unquote(vhost) or "/"
        self.sock = socket.create_connection((parts.hostname, parts.port or 5672), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.frame_max = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> tuple[int, int, bytes]:
        while True:
            if len(self.buffer) >= 7:
                frame_type, channel, size = struct.unpack_from(">BHI", self.buffer)
                if len(self.buffer) >= size + 8:
                    payload = self.buffer[7:7 + size]
                    assert self.buffer[7 + size:8 + size] == FRAME_END
                    self.buffer = self.buffer[8 + size:]
                    return frame_type, channel, payload
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buffer += data

    def read_method(self) -> tuple[int, int, int, bytes]:
        """Next method frame (heartbeats skipped): (channel, class id, method id, arguments)."""
        while True:
            frame_type, channel, payload = self.read_frame()
            if frame_type == METHOD:
                class_id, method_id = struct.unpack_from(">HH", payload)
                return channel, class_id, method_id, payload[4:]

    def expect(self, class_id: int, method_id: int) -> bytes:
        channel, got_class, got_method, arguments = self.read_method()
        assert (got_class, got_method) == (class_id, method_id), (got_class, got_method, arguments)
        return arguments

    def handshake(self, open_connection: bool = True) -> None:
        """Protocol header, start-ok (PLAIN), tune-ok (heartbeats off) and, unless told not to, open."""
        self.send(PROTOCOL_HEADER)
        self.expect(10, 10)  # connection.start
        response = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send(method(0, 10, 11, longstr(b"") + shortstr("PLAIN") + longstr(response) + shortstr("en_US")))
        channel_max, frame_max, _heartbeat = struct.unpack(">HIH", self.expect(10, 30))
        self.frame_max = frame_max
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        if open_connection:
            self.send(method(0, 10, 40, shortstr(self.vhost) + shortstr("") + b"\x00"))
            self.expect(10, 41)

    def open_channel(self, channel: int) -> None:
        self.send(channel_open(channel))
        self.expect(20, 11)

    def outcome(self, stop_at_close: bool = False) -> Outcome:
        """Read until the broker hangs up, answering connection.close with close-ok as a client must.

        With `stop_at_close`, return as soon as connection.close arrives: after a frame error
        RabbitMQ stops reading, never sees the close-ok, and hangs up only after its 3 s close
        timeout, which is not worth waiting for in every test.
        """
        result = Outcome()
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                if len(self.buffer) >= 4 and self.buffer[:4] == b"AMQP":
                    result.raw, self.buffer = self.buffer[:8], self.buffer[8:]
                    continue
                try:
                    channel, class_id, method_id, arguments = self.read_method()
                except AssertionError:
                    result.raw += self.buffer
                    self.buffer = b""
                    continue
                if (class_id, method_id) in ((10, 50), (20, 40)):
                    code, length = struct.unpack_from(">HB", arguments)
                    text = arguments[3:3 + length].decode()
                    failing_class, failing_method = struct.unpack_from(">HH", arguments, 3 + length)
                    result.closes.append((channel, code, text, failing_class, failing_method))
                    try:
                        self.send(method(0, 10, 51) if class_id == 10 else method(channel, 20, 41))
                    except OSError:
                        pass
                    if stop_at_close and class_id == 10:
                        result.ended = True
                        return result
                else:
                    result.methods.append((channel, class_id, method_id))
        except (EOFError, ConnectionResetError, BrokenPipeError):
            result.ended = True
        except socket.timeout:
            pass
        return result

    def read_raw_until_end(self) -> Outcome:
        """For answers that are not frames (the protocol header): every byte until the hang-up."""
        result = Outcome(raw=self.buffer)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    result.ended = True
                    return result
                result.raw += data
        except ConnectionResetError:
            # RabbitMQ closes with SO_LINGER 0: the hang-up arrives as a reset, after the data.
            result.ended = True
        except socket.timeout:
            pass
        return result


# --- fixtures -------------------------------------------------------------------------------------

class Healthy:
    """A well-behaved pika connection opened before the misbehaviour and checked after it."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue

    def check(self) -> None:
        body = uuid.uuid4().bytes
        self.channel.confirm_delivery()
        self.channel.basic_publish("", self.queue, body)
        _method, _props, got = self.channel.basic_get(self.queue, auto_ack=True)
        assert got == body, "the healthy connection stopped working"

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture(params=["broker under test", "rabbitmq"])
def broker_url(request) -> str:
    return request.getfixturevalue("amqp_url" if request.param == "broker under test" else "rabbitmq_url")


@pytest.fixture
def healthy(broker_url):
    connection = Healthy(broker_url)
    yield connection
    connection.close()


@pytest.fixture
def raw(broker_url, healthy):
    client = RawAMQP(broker_url)
    yield client
    client.close()


def connection_close(outcome: Outcome) -> tuple:
    """The single connection.close of an outcome, without its channel: (code, text, class, method)."""
    assert outcome.ended, "the broker must hang up after a connection error"
    assert len(outcome.closes) == 1, outcome
    channel, *rest = outcome.closes[0]
    assert channel == 0
    return tuple(rest)


# --- protocol header ----------------------------------------------------------------------------

@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"XXXXXXXX",
    b"AMQP\x00\x01\x00\x00",  # AMQP 1.0
    b"AMQP\x00\x00\x09\x02",  # a 0-9-x revision that does not exist
], ids=["http", "junk", "amqp-1.0", "amqp-0-9-2"])
def test_garbage_instead_of_protocol_header_gets_the_0_9_1_header_then_a_hang_up(raw, healthy, garbage):
    raw.send(garbage)
    outcome = raw.read_raw_until_end()
    assert outcome.raw == PROTOCOL_HEADER
    assert outcome.ended
    healthy.check()


# --- framing ------------------------------------------------------------------------------------

def test_frame_larger_than_negotiated_frame_max_is_a_501_frame_error(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(frame(METHOD, 1, b"\x00" * (raw.frame_max + 100)))
    code, text, class_id, method_id = connection_close(raw.outcome(stop_at_close=True))
    assert (code, class_id, method_id) == (501, 0, 0)
    assert text.startswith("FRAME_ERROR - ")
    healthy.check()


def test_oversized_frame_is_refused_from_its_header_alone(raw, healthy):
    # Only the 7-byte frame header is sent: the broker must not wait for (or buffer) 4 x frame_max bytes.
    raw.handshake()
    raw.send(struct.pack(">BHI", METHOD, 1, raw.frame_max * 4))
    code, text, _class, _method = connection_close(raw.outcome(stop_at_close=True))
    assert code == 501 and text.startswith("FRAME_ERROR - ")
    healthy.check()


def test_bad_frame_end_octet_is_a_501_frame_error(raw, healthy):
    raw.handshake()
    raw.send(frame(METHOD, 0, struct.pack(">HH", 10, 51), end=b"\x00"))
    code, text, _class, _method = connection_close(raw.outcome(stop_at_close=True))
    assert code == 501 and text.startswith("FRAME_ERROR - ")
    healthy.check()


def test_unknown_frame_type_is_a_501_frame_error(raw, healthy):
    raw.handshake()
    raw.send(frame(9, 0, b"abc"))
    code, text, _class, _method = connection_close(raw.outcome(stop_at_close=True))
    assert code == 501 and text.startswith("FRAME_ERROR - ")
    healthy.check()


def test_truncated_frame_then_close_leaves_the_broker_healthy(raw, broker_url, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(queue_declare(1)[:9])  # the header promises more than ever comes
    raw.sock.shutdown(socket.SHUT_WR)
    outcome = raw.outcome()
    assert outcome.ended and not outcome.methods
    healthy.check()
    Healthy(broker_url).close()  # and new connections are still accepted


def test_truncated_method_arguments_are_a_501_frame_error(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    # queue.declare whose queue-name shortstr claims 32 bytes but the frame holds 3.
    raw.send(method(1, 50, 10, struct.pack(">H", 0) + b"\x20abc"))
    code, text, class_id, method_id = connection_close(raw.outcome(stop_at_close=True))
    assert (code, class_id, method_id) == (501, 50, 10)
    assert text.startswith("FRAME_ERROR - ")
    healthy.check()


# --- channels -----------------------------------------------------------------------------------

def test_method_on_a_never_opened_channel_is_a_504_channel_error(raw, healthy):
    raw.handshake()
    raw.send(queue_declare(5))
    assert connection_close(raw.outcome()) == (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)
    healthy.check()


def test_method_on_a_closed_channel_is_a_504_channel_error(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(channel_close(1))
    raw.expect(20, 41)
    raw.send(queue_declare(1))
    assert connection_close(raw.outcome()) == (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)
    healthy.check()


def test_channel_class_method_on_channel_zero_is_a_504_channel_error(raw, healthy):
    raw.handshake()
    raw.send(queue_declare(0))
    assert connection_close(raw.outcome()) == (
        504, "CHANNEL_ERROR - unexpected method in connection state running", 50, 10)
    healthy.check()


def test_heartbeat_on_a_non_zero_channel_is_a_505_unexpected_frame(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(frame(HEARTBEAT, 1, b""))
    code, text, _class, _method = connection_close(raw.outcome())
    assert code == 505 and text.startswith("UNEXPECTED_FRAME - ")
    healthy.check()


# --- method order -------------------------------------------------------------------------------

def test_basic_publish_before_connection_open_is_a_505_unexpected_frame(raw, healthy):
    raw.handshake(open_connection=False)
    raw.send(basic_publish(1, "q"))
    code, text, class_id, method_id = connection_close(raw.outcome())
    assert (code, class_id, method_id) == (505, 0, 0)
    assert text.startswith("UNEXPECTED_FRAME - ")
    healthy.check()


def test_body_frame_without_a_header_is_a_505_unexpected_frame(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(frame(BODY, 1, b"hello"))
    assert connection_close(raw.outcome()) == (
        505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)
    healthy.check()


def test_header_frame_without_a_method_is_a_505_unexpected_frame(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(content_header(1, 5))
    assert connection_close(raw.outcome()) == (
        505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)
    healthy.check()


def test_method_where_a_content_header_belongs_is_a_505_unexpected_frame(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(basic_publish(1, "q") + queue_declare(1))
    assert connection_close(raw.outcome()) == (
        505, "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        60, 40)
    healthy.check()


def test_content_header_of_the_wrong_class_is_a_505_unexpected_frame(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(basic_publish(1, "q") + content_header(1, 3, class_id=50))
    assert connection_close(raw.outcome()) == (
        505, "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead", 60, 40)
    healthy.check()


# --- undecodable methods ------------------------------------------------------------------------

@pytest.mark.parametrize("channel,class_id,method_id", [(1, 99, 1), (1, 50, 99), (0, 10, 99)],
                         ids=["unknown-class", "unknown-method", "unknown-connection-method"])
def test_unknown_class_or_method_id_ends_the_connection(raw, healthy, channel, class_id, method_id):
    raw.handshake()
    raw.open_channel(1)
    raw.send(method(channel, class_id, method_id))
    outcome = raw.outcome()
    # RabbitMQ hangs up without a close frame; a close, if sent, must be a connection error.
    assert outcome.ended
    assert all(close[0] == 0 and close[1] in (503, 540) for close in outcome.closes), outcome
    healthy.check()


@pytest.mark.parametrize("table", [
    b"\x05x-bad" + b"Z\x00\x00",  # no such type tag
    b"\x03x-s" + b"S" + struct.pack(">I", 1000) + b"abc",  # string longer than the table
    b"\x03x-n" + b"I\x00",  # integer cut short
], ids=["bad-tag", "overlong-string", "short-integer"])
def test_field_table_that_does_not_decode_ends_the_connection(raw, healthy, table):
    raw.handshake()
    raw.open_channel(1)
    raw.send(queue_declare(1, arguments=table))
    outcome = raw.outcome()
    # RabbitMQ hangs up without a close frame; a close, if sent, must be a syntax or frame error.
    assert outcome.ended
    assert all(close[0] == 0 and close[1] in (501, 502) for close in outcome.closes), outcome
    healthy.check()


@pytest.mark.parametrize("table", [
    b"\x05x-bad" + b"Z\x00\x00",  # no such type tag
    b"\x03x-s" + b"S" + struct.pack(">I", 1000) + b"abc",  # string longer than the table
    b"\x01aF" + struct.pack(">I", 4) + b"\x01bZ\x00",  # a bad tag one table down
], ids=["bad-tag", "overlong-string", "nested-bad-tag"])
def test_headers_table_that_does_not_decode_is_a_541_internal_error(raw, healthy, table):
    # Unlike method arguments, content properties that do not decode get a close: 541, no detail.
    assert_publish_is_541(raw, healthy, struct.pack(">H", 0x2000) + longstr(table))  # flags: headers only


@pytest.mark.parametrize("properties", [
    b"\x80\x00\x09ab",  # content_type cut short
    b"\x80\x00\x02abzz",  # trailing bytes after the last property
    b"\x10\x00",  # delivery_mode flagged, absent
    b"\x00\x04" + b"\x01a" * 3,  # cluster_id "a", then bytes no flag accounts for
], ids=["short-content-type", "trailing-bytes", "missing-delivery-mode", "trailing-after-cluster-id"])
def test_property_list_that_does_not_decode_is_a_541_internal_error(raw, healthy, properties):
    # RabbitMQ decodes every publish's properties, even those it has no use for.
    assert_publish_is_541(raw, healthy, properties)


def assert_publish_is_541(raw: RawAMQP, healthy, properties: bytes) -> None:
    raw.handshake()
    raw.open_channel(1)
    raw.send(basic_publish(1, "nowhere") + frame(HEADER, 1, struct.pack(">HHQ", 60, 0, 2) + properties)
             + frame(BODY, 1, b"hi"))
    assert connection_close(raw.outcome(stop_at_close=True)) == (541, "INTERNAL_ERROR", 0, 0)
    healthy.check()


def test_a_property_flags_continuation_bit_is_ignored(raw, healthy):
    raw.handshake()
    raw.open_channel(1)
    raw.send(queue_declare(1))
    arguments = raw.expect(50, 11)
    queue = arguments[1:1 + arguments[0]].decode()
    raw.send(basic_publish(1, queue) + frame(HEADER, 1, struct.pack(">HHQH", 60, 0, 2, 0x0001)) + frame(BODY, 1, b"hi"))
    raw.send(method(1, 60, 70, struct.pack(">H", 0) + shortstr(queue) + b"\x01"))  # basic.get, no-ack
    raw.expect(60, 71)
    _type, _channel, header = raw.read_frame()
    assert header[12:] == b"\x00\x01"  # forwarded as sent
    healthy.check()


# --- connection negotiation ---------------------------------------------------------------------

def start_ok(raw: RawAMQP, mechanism: str = "PLAIN", response: bytes | None = None) -> None:
    raw.send(PROTOCOL_HEADER)
    raw.expect(10, 10)
    if response is None:
        response = b"\x00" + raw.user.encode() + b"\x00" + raw.password.encode()
    raw.send(method(0, 10, 11, longstr(b"") + shortstr(mechanism) + longstr(response) + shortstr("en_US")))


def assert_hung_up_before_open(outcome: Outcome) -> None:
    # Before connection.open RabbitMQ simply drops the socket; a connection.close first is tolerated.
    assert outcome.ended
    assert all(close[0] == 0 for close in outcome.closes), outcome
    assert not outcome.methods, outcome


def test_tune_ok_with_frame_max_below_the_4096_minimum_ends_the_connection(raw, healthy):
    # RabbitMQ takes 3 s to hang up after any failed negotiation (as after a failed login), so
    # these tests cost 3 s each per broker: only one case per kind of failure is kept.
    start_ok(raw)
    channel_max, offered, _heartbeat = struct.unpack(">HIH", raw.expect(10, 30))
    assert offered >= 4096
    raw.send(method(0, 10, 31, struct.pack(">HIH", channel_max, 1000, 0)))
    assert_hung_up_before_open(raw.outcome())
    healthy.check()


def test_unknown_sasl_mechanism_ends_the_connection(raw, healthy):
    start_ok(raw, mechanism="NO-SUCH-MECHANISM")
    assert_hung_up_before_open(raw.outcome())
    healthy.check()


def test_silent_client_is_disconnected_after_missed_heartbeats(raw, healthy):
    start_ok(raw)
    channel_max, frame_max, _heartbeat = struct.unpack(">HIH", raw.expect(10, 30))
    raw.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 1)))  # 1 s heartbeats
    raw.send(method(0, 10, 40, shortstr(raw.vhost) + shortstr("") + b"\x00"))
    raw.expect(10, 41)
    heartbeats = 0
    deadline = time.monotonic() + 8  # RabbitMQ hangs up after ~3 s: two missed intervals plus slack
    raw.sock.settimeout(1.5)
    try:
        while time.monotonic() < deadline:
            frame_type, channel, _payload = raw.read_frame()
            assert (frame_type, channel) == (HEARTBEAT, 0)
            heartbeats += 1
        pytest.fail("the broker kept a silent connection open")
    except (EOFError, ConnectionResetError):
        pass
    # RabbitMQ sends a heartbeat every half interval while waiting; at least one must have come.
    assert heartbeats >= 1
    healthy.check()
