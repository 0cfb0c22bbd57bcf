"""Session, the connection dispatcher, driven with bytes and no socket: a recording writer, an in-memory
broker, callbacks run by hand. What a client sees is the frames written, decoded here."""

from __future__ import annotations

import time

from leveret.access import AccessRegistry
from leveret.amqp import spec
from leveret.amqp.parser import FrameParser
from leveret.amqp.properties import BasicProperties
from leveret.amqp.serializer import PROTOCOL_HEADER, content_frames, method_frame
from leveret.broker.vhost import Broker
from leveret.clock import ManualClock
from leveret.config import Settings
from leveret.durable.access import seed_defaults
from leveret.server.alarms import DISK, ResourceAlarms
from leveret.server.errorlog import ErrorLog
from leveret.server.session import Session
from leveret.store.memory import MemoryDefinitionStore


class Writer:
    peer = ("127.0.0.1", 40000)

    def __init__(self) -> None:
        self.data = b""
        self.heartbeat = 0
        self.reading = True
        self.closed_after_flush = False
        self.close_soon_called = False

    def write_frames(self, frames: list[bytes]) -> None:
        self.data += b"".join(frames)

    def write_frame(self, frame: bytes) -> None:
        self.data += frame

    def close_after_flush(self) -> None:
        self.closed_after_flush = True

    def is_loopback(self) -> bool:
        return True

    def start_heartbeat(self, interval: int) -> None:
        self.heartbeat = interval

    def close_soon(self) -> None:
        self.close_soon_called = True

    def set_reading(self, reading: bool) -> None:
        self.reading = reading


class Client:
    """A session and what it wrote, as decoded methods (content frames skipped)."""

    def __init__(self, alarms: set[str] = frozenset()) -> None:
        self.broker = Broker(ManualClock())
        users = AccessRegistry(MemoryDefinitionStore())
        seed_defaults(users, self.broker, user="guest", password="guest", vhost="/")
        self.alarms = ResourceAlarms([])
        self.alarms.active = set(alarms)
        self.soon: list = []
        self.writer = Writer()
        self.session = Session(self.writer, settings=Settings(heartbeat=30), broker=self.broker, users=users,
                               errors=ErrorLog(time.monotonic), durability=None, alarms=self.alarms,
                               call_soon=self.soon.append)
        self._parser = FrameParser(131072)
        self._seen = 0

    def send(self, *frames: bytes) -> list:
        self.session.data_received(b"".join(frames))
        return self.received()

    def end_turn(self) -> list:
        soon = list(self.soon)
        self.soon.clear()
        for callback in soon:
            callback()
        return self.received()

    def received(self) -> list:
        new, self._seen = self.writer.data[self._seen:], len(self.writer.data)
        return [(channel, spec.decode_method(payload)) for kind, channel, payload in self._parser.feed(new)
                if kind == 1]


def start_ok(password: str = "guest") -> bytes:
    return method_frame(0, spec.ConnectionStartOk(
        client_properties={"capabilities": {"connection.blocked": True, "consumer_cancel_notify": True}},
        mechanism="PLAIN", response=f"\0guest\0{password}".encode(), locale="en_US"))


OPEN = b"".join([
    PROTOCOL_HEADER, start_ok(),
    method_frame(0, spec.ConnectionTuneOk(channel_max=0, frame_max=131072, heartbeat=10)),
    method_frame(0, spec.ConnectionOpen(virtual_host="/")),
    method_frame(1, spec.ChannelOpen()),
])


def publish(body: bytes, channel: int = 1) -> bytes:
    method = spec.BasicPublish(exchange="", routing_key="q")
    return b"".join(content_frames(channel, method, BasicProperties().raw, body, 131072))


def kinds(methods: list) -> list:
    return [(channel, type(m).__name__) for channel, m in methods]


def test_a_pipelined_open_is_answered_in_order_and_asks_for_heartbeats():
    client = Client()
    assert kinds(client.send(OPEN)) == [(0, "ConnectionStart"), (0, "ConnectionTune"), (0, "ConnectionOpenOk"),
                                        (1, "ChannelOpenOk")]
    assert client.writer.heartbeat == 10
    assert client.session.vhost is client.broker.vhost("/") and client.session.username == "guest"


def test_confirms_of_one_read_leave_as_one_multiple_ack_after_the_turn():
    client = Client()
    client.send(OPEN)
    got = client.send(method_frame(1, spec.QueueDeclare(queue="q")), method_frame(1, spec.ConfirmSelect()),
                      publish(b"a"), publish(b"b"), publish(b"c"))
    assert kinds(got) == [(1, "QueueDeclareOk"), (1, "ConfirmSelectOk")]
    ((channel, ack),) = client.end_turn()
    assert channel == 1 and (ack.delivery_tag, ack.multiple) == (3, True)
    assert client.broker.vhost("/").queues["q"].message_count == 3


def test_a_transaction_routes_at_commit_and_rollback_forgets():
    client = Client()
    client.send(OPEN)
    client.send(method_frame(1, spec.QueueDeclare(queue="q")), method_frame(1, spec.TxSelect()), publish(b"x"))
    queue = client.broker.vhost("/").queues["q"]
    assert queue.message_count == 0
    assert kinds(client.send(method_frame(1, spec.TxCommit()))) == [(1, "TxCommitOk")]
    assert queue.message_count == 1
    assert kinds(client.send(publish(b"y"), method_frame(1, spec.TxRollback()))) == [(1, "TxRollbackOk")]
    assert queue.message_count == 1


def test_a_channel_error_closes_only_the_channel_and_drops_what_follows_until_close_ok():
    client = Client()
    client.send(OPEN)
    got = client.send(method_frame(1, spec.QueueDeclare(queue="nope", passive=True)),
                      method_frame(1, spec.QueueDeclare(queue="q")))
    ((channel, close),) = got
    assert channel == 1 and close.reply_code == 404
    assert kinds(client.send(method_frame(1, spec.ChannelCloseOk()), method_frame(2, spec.ChannelOpen()))) == \
        [(2, "ChannelOpenOk")]


def test_refused_credentials_close_with_403_and_close_ok_hangs_up():
    client = Client()
    got = client.send(PROTOCOL_HEADER, start_ok("wrong"))
    assert kinds(got) == [(0, "ConnectionStart"), (0, "ConnectionClose")]
    assert got[1][1].reply_code == 403 and client.writer.close_soon_called
    client.send(method_frame(0, spec.ConnectionCloseOk()))
    assert client.writer.closed_after_flush and client.session.closed


def test_a_publish_during_an_alarm_blocks_the_connection_and_the_alarm_clearing_unblocks_it():
    client = Client(alarms={DISK})
    client.send(OPEN, method_frame(1, spec.QueueDeclare(queue="q")))
    assert client.writer.reading
    got = client.send(publish(b"x"))
    assert kinds(got) == [(0, "ConnectionBlocked")] and got[0][1].reason == "low on disk"
    assert not client.writer.reading
    client.session.set_alarm(DISK, False)
    assert kinds(client.received()) == [(0, "ConnectionUnblocked")] and client.writer.reading


def test_the_clients_close_releases_channels_and_hangs_up():
    client = Client()
    client.send(OPEN, method_frame(1, spec.QueueDeclare(queue="", exclusive=True)))
    vhost = client.broker.vhost("/")
    assert len(vhost.queues) == 1
    got = client.send(method_frame(0, spec.ConnectionClose(reply_code=200, reply_text="", class_id=0,
                                                           method_id=0)))
    assert kinds(got) == [(0, "ConnectionCloseOk")]
    assert client.session.channels == {} and client.writer.closed_after_flush
    assert len(vhost.queues) == 0  # the exclusive queue went with the connection


# A conversation through every state the session keeps: the handshake, two channels, confirms over a
# multi-frame publish, a transaction, a heartbeat, a channel closed by each side. Small frames (tune-ok's
# frame_max 4096) keep it short enough to split at every offset.
def small_publish(body: bytes, channel: int = 1) -> bytes:
    method = spec.BasicPublish(exchange="", routing_key="q")
    return b"".join(content_frames(channel, method, BasicProperties().raw, body, 4096))


CONVERSATION = b"".join([
    PROTOCOL_HEADER, start_ok(),
    method_frame(0, spec.ConnectionTuneOk(channel_max=0, frame_max=4096, heartbeat=0)),
    method_frame(0, spec.ConnectionOpen(virtual_host="/")),
    method_frame(1, spec.ChannelOpen()),
    method_frame(1, spec.QueueDeclare(queue="q")),
    method_frame(1, spec.ConfirmSelect()),
    small_publish(b"a" * 10_000),  # three body frames
    small_publish(b"b"),
    b"\x08\x00\x00\x00\x00\x00\x00\xce",  # a heartbeat
    method_frame(2, spec.ChannelOpen()),
    method_frame(2, spec.TxSelect()),
    small_publish(b"t", channel=2),
    method_frame(2, spec.TxCommit()),
    method_frame(2, spec.QueueDeclare(queue="missing", passive=True)),  # 404 closes channel 2
    small_publish(b"dropped", channel=2),  # after our close: dropped unseen
    method_frame(2, spec.ChannelCloseOk()),
    method_frame(3, spec.ChannelOpen()),
    method_frame(3, spec.ChannelClose(reply_code=200, reply_text="", class_id=0, method_id=0)),
])


def converse(chunks: list[bytes]) -> tuple[list, int]:
    client = Client()
    got = []
    for chunk in chunks:
        got += client.send(chunk)
    got += client.end_turn()  # one turn for the whole conversation: its confirms leave as one ack
    return [(channel, type(m).__name__, getattr(m, "reply_code", None), getattr(m, "delivery_tag", None))
            for channel, m in got], client.broker.vhost("/").queues["q"].message_count


EXPECTED_CONVERSATION = ([
    (0, "ConnectionStart", None, None), (0, "ConnectionTune", None, None), (0, "ConnectionOpenOk", None, None),
    (1, "ChannelOpenOk", None, None), (1, "QueueDeclareOk", None, None), (1, "ConfirmSelectOk", None, None),
    (2, "ChannelOpenOk", None, None), (2, "TxSelectOk", None, None), (2, "TxCommitOk", None, None),
    (2, "ChannelClose", 404, None), (3, "ChannelOpenOk", None, None), (3, "ChannelCloseOk", None, None),
    (1, "BasicAck", None, 2),
], 3)


def test_the_conversation_whole():
    assert converse([CONVERSATION]) == EXPECTED_CONVERSATION


# Inside a body frame's payload the parser only counts bytes, so a cut there behaves like its neighbours; cutting
# at each of its ~10,000 offsets made this test 10,000 sessions, minutes of CPU on a loaded machine (it hit the
# 120 s timeout). A payload is cut near its edges and in its middle; everything else at every offset.
PAYLOAD_EDGE = 8


def cuts_worth_trying(data: bytes) -> list[int]:
    """Every offset of `data` (a protocol header, then frames) except the inner ones of body payloads."""
    cuts = list(range(1, len(PROTOCOL_HEADER) + 1))
    pos = len(PROTOCOL_HEADER)
    while pos < len(data):
        kind, size = data[pos], int.from_bytes(data[pos + 3:pos + 7], "big")
        end = pos + 7 + size + 1
        if kind == 3 and size > 3 * PAYLOAD_EDGE:  # a body frame
            payload = pos + 7
            middle = payload + size // 2
            cuts += range(pos + 1, payload + PAYLOAD_EDGE)
            cuts += range(middle - PAYLOAD_EDGE, middle + PAYLOAD_EDGE)
            cuts += range(payload + size - PAYLOAD_EDGE, end + 1)
        else:
            cuts += range(pos + 1, end + 1)
        pos = end
    return [cut for cut in cuts if cut < len(data)]


def test_the_cuts_cover_every_frame_boundary_and_skip_only_body_payload():
    cuts = cuts_worth_trying(CONVERSATION)
    assert len(cuts) == len(set(cuts)) and cuts == sorted(cuts)
    assert len(cuts) < len(CONVERSATION) // 5
    skipped = set(range(1, len(CONVERSATION))) - set(cuts)
    assert skipped and all(CONVERSATION[cut - 1:cut + 1] in (b"aa", b"bb") for cut in skipped)


def test_the_conversation_split_at_every_framing_offset_gives_the_same_frames():
    for cut in cuts_worth_trying(CONVERSATION):
        assert converse([CONVERSATION[:cut], CONVERSATION[cut:]]) == EXPECTED_CONVERSATION, cut


def test_the_conversation_one_byte_at_a_time_gives_the_same_frames():
    assert converse([CONVERSATION[i:i + 1] for i in range(len(CONVERSATION))]) == EXPECTED_CONVERSATION
