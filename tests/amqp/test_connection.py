"""ConnectionReader: protocol header, frames to events, content assembly, frame-order errors.

Expected reply codes and texts are the ones RabbitMQ 3.10 sent for the same bytes (see the
table in leveret/amqp/errors.py).
"""

from __future__ import annotations

import struct

import pytest

from leveret.amqp import spec
from leveret.amqp.connection import CLOSING, DEAD, OPEN, ConnectionReader
from leveret.amqp.errors import (
    FRAME_ERROR, NOT_IMPLEMENTED, PRECONDITION_FAILED, UNEXPECTED_FRAME, AMQPChannelError,
    BadProtocolHeader, FrameError, MalformedFrame, UnexpectedFrame, UnknownMethod,
)
from leveret.amqp.events import ChannelFailed, ContentReceived, HeartbeatReceived, MethodReceived
from leveret.amqp.properties import BasicProperties
from leveret.amqp.serializer import HEARTBEAT, PROTOCOL_HEADER, content_frames, method_frame

PUBLISH = spec.BasicPublish(exchange="amq.direct", routing_key="rk", mandatory=True)
PROPS = BasicProperties(content_type="text/plain", delivery_mode=2, headers={"h": 1})


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


def header_payload(body_size: int, class_id: int = 60, weight: int = 0) -> bytes:
    return struct.pack(">HHQ", class_id, weight, body_size) + PROPS.raw


def publish(channel: int, body: bytes, frame_max: int = 131072) -> bytes:
    return b"".join(content_frames(channel, PUBLISH, PROPS.raw, body, frame_max))


def open_reader(**kwargs) -> ConnectionReader:
    reader = ConnectionReader(**kwargs)
    assert reader.receive_data(PROTOCOL_HEADER) == []
    assert reader.state == OPEN
    return reader


def feed_bytewise(reader: ConnectionReader, data: bytes) -> list:
    events = []
    for i in range(len(data)):
        events += reader.receive_data(data[i : i + 1])
    return events


def error_from(reader: ConnectionReader, data: bytes):
    with pytest.raises(Exception) as info:
        reader.receive_data(data)
    return info.value


# A conversation touching every event type and multi-frame, empty and interleaved content.
STREAM = b"".join(
    [
        method_frame(0, spec.ConnectionStartOk(client_properties={"product": "t"}, mechanism="PLAIN", response=b"\0guest\0guest", locale="en_US")),
        method_frame(1, spec.ChannelOpen()),
        publish(1, b"a" * 10000, frame_max=4096),
        HEARTBEAT,
        publish(1, b""),
        frame(1, 2, PUBLISH.encode()),  # channel 2's publish interleaves with channel 3's
        frame(1, 3, PUBLISH.encode()),
        frame(2, 3, header_payload(3)),
        frame(2, 2, header_payload(4)),
        frame(3, 2, b"22"),
        frame(3, 3, b"333"),
        frame(3, 2, b""),  # empty body frames are allowed mid-body
        frame(3, 2, b"22"),
        method_frame(1, spec.BasicAck(delivery_tag=9, multiple=True)),
    ]
)
EXPECTED = [
    MethodReceived(0, spec.ConnectionStartOk(client_properties={"product": "t"}, mechanism="PLAIN", response=b"\0guest\0guest", locale="en_US")),
    MethodReceived(1, spec.ChannelOpen()),
    ContentReceived(1, PUBLISH, PROPS, b"a" * 10000),
    HeartbeatReceived(),
    ContentReceived(1, PUBLISH, PROPS, b""),
    ContentReceived(3, PUBLISH, PROPS, b"333"),
    ContentReceived(2, PUBLISH, PROPS, b"2222"),
    MethodReceived(1, spec.BasicAck(delivery_tag=9, multiple=True)),
]


def test_whole_stream_in_one_read_gives_every_event():
    reader = ConnectionReader()
    assert reader.receive_data(PROTOCOL_HEADER + STREAM) == EXPECTED


def test_one_byte_at_a_time_gives_the_same_events():
    reader = ConnectionReader()
    assert feed_bytewise(reader, PROTOCOL_HEADER + STREAM) == EXPECTED


def test_trailing_partial_frame_stays_buffered():
    reader = open_reader()
    tail = publish(5, b"tail")
    assert reader.receive_data(STREAM + tail[:-3]) == EXPECTED
    assert reader.receive_data(tail[-3:]) == [ContentReceived(5, PUBLISH, PROPS, b"tail")]


def test_bodies_are_independent_bytes():
    reader = open_reader()
    (event,) = reader.receive_data(publish(1, b"body"))
    assert type(event.body) is bytes and type(event.properties.raw) is bytes


@pytest.mark.parametrize("header", [b"AMQP\x00\x00\x09\x01", b"AMQP\x01\x01\x00\x09"])
def test_protocol_headers_rabbitmq_takes_as_0_9_1_are_accepted(header):
    reader = ConnectionReader()
    assert reader.receive_data(header + HEARTBEAT) == [HeartbeatReceived()]


@pytest.mark.parametrize(
    "header",
    [b"AMQP\x00\x00\x09\x00", b"AMQP\x00\x00\x08\x00", b"AMQP\x01\x01\x09\x01", b"GET / HTTP/1.1\r\n", b"AMQP\x00\x00\x0a\x00"],
)
def test_other_protocol_headers_are_refused(header):
    reader = ConnectionReader()
    with pytest.raises(BadProtocolHeader) as info:
        feed_bytewise(reader, header)
    assert info.value.header == header[:8]
    assert reader.state == DEAD
    assert reader.receive_data(HEARTBEAT) == []


def test_header_is_awaited_until_eight_bytes_arrive():
    reader = ConnectionReader()
    assert reader.receive_data(b"AMQP\x00") == []
    assert reader.receive_data(b"\x00\x09\x01" + HEARTBEAT[:3]) == []
    assert reader.receive_data(HEARTBEAT[3:]) == [HeartbeatReceived()]


def unexpected(data: bytes, *, reader=None):
    reader = reader or open_reader()
    exc = error_from(reader, data)
    assert isinstance(exc, UnexpectedFrame) and exc.reply_code == UNEXPECTED_FRAME
    return exc


def test_body_frame_without_content_method_is_unexpected():
    exc = unexpected(frame(3, 1, b"abc"))
    assert exc.reply_text == "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
    assert (exc.class_id, exc.method_id) == (0, 0)


def test_header_frame_without_content_method_is_unexpected():
    exc = unexpected(frame(2, 1, header_payload(3)))
    assert exc.reply_text == "UNEXPECTED_FRAME - expected method frame, got non method frame instead"


def test_method_frame_where_header_is_due_is_unexpected():
    exc = unexpected(frame(1, 1, PUBLISH.encode()) * 2)
    assert exc.reply_text == (
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
    )
    assert (exc.class_id, exc.method_id) == (60, 40)


def test_body_frame_where_header_is_due_is_unexpected():
    exc = unexpected(frame(1, 1, PUBLISH.encode()) + frame(3, 1, b"x"))
    assert "expected content header for class 60" in exc.reply_text


def test_method_frame_where_body_is_due_is_unexpected():
    exc = unexpected(frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3)) + method_frame(1, spec.BasicQos()))
    assert exc.reply_text == "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
    assert (exc.class_id, exc.method_id) == (60, 40)


def test_header_for_another_class_is_unexpected():
    exc = unexpected(frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3, class_id=50)))
    assert exc.reply_text == (
        "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"
    )


def test_header_with_nonzero_weight_is_unexpected():
    exc = unexpected(frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3, weight=1)))
    assert "got non content header frame instead" in exc.reply_text


def test_body_longer_than_declared_is_unexpected():
    unexpected(frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3)) + frame(3, 1, b"abcd"))


def test_heartbeat_on_a_channel_other_than_zero_is_unexpected():
    exc = unexpected(frame(8, 1, b""))
    assert exc.reply_text == "UNEXPECTED_FRAME - type 8, all octets = <<>>"


@pytest.mark.parametrize("frame_type", [2, 3])
def test_content_frames_on_channel_zero_are_unexpected(frame_type):
    exc = unexpected(frame(frame_type, 0, b"a"))
    assert exc.reply_text == f"UNEXPECTED_FRAME - type {frame_type}, all octets = <<97>>"


def test_content_method_on_channel_zero_is_passed_on_for_the_server_to_refuse():
    reader = open_reader()
    assert reader.receive_data(frame(1, 0, PUBLISH.encode())) == [MethodReceived(0, PUBLISH)]


def test_unknown_frame_type_is_a_frame_error():
    reader = open_reader()
    exc = error_from(reader, frame(5, 1, b""))
    assert type(exc) is FrameError
    assert exc.reply_text == "FRAME_ERROR - type 5, all octets = <<>>: unknown_frame"
    assert reader.state == DEAD


def test_oversized_frame_is_a_frame_error_and_stops_parsing():
    reader = open_reader(frame_max=4096)
    exc = error_from(reader, HEARTBEAT + struct.pack(">BHI", 3, 1, 5000))
    assert type(exc) is FrameError and exc.reply_code == FRAME_ERROR
    assert exc.events == [HeartbeatReceived()]
    assert reader.state == DEAD
    assert reader.receive_data(method_frame(0, spec.ConnectionCloseOk())) == []


def test_an_earlier_frame_order_error_wins_over_a_later_broken_frame():
    reader = open_reader()
    exc = error_from(reader, HEARTBEAT + frame(3, 1, b"stray") + frame(8, 0, b"")[:-1] + b"\x00")
    assert isinstance(exc, UnexpectedFrame) and exc.events == [HeartbeatReceived()]
    assert reader.state == DEAD


def test_frame_max_set_after_tune_is_enforced():
    reader = open_reader()
    reader.frame_max = 4096
    assert reader.frame_max == 4096
    assert isinstance(error_from(reader, frame(3, 1, b"x" * 4097)), FrameError)


def test_bad_frame_end_is_a_frame_error():
    reader = open_reader()
    exc = error_from(reader, frame(8, 0, b"")[:-1] + b"\x00")
    assert type(exc) is FrameError and "invalid_frame_end_marker" in exc.reply_text


def test_unknown_method_is_not_implemented():
    exc = error_from(open_reader(), frame(1, 1, b"\x00\x63\x00\x0a"))
    assert isinstance(exc, UnknownMethod) and exc.reply_code == NOT_IMPLEMENTED
    assert (exc.class_id, exc.method_id) == (99, 10)


def test_truncated_method_is_malformed_with_rabbitmq_text():
    exc = error_from(open_reader(), frame(1, 1, b"\x00\x32\x00\x0a\x00\x00\x05ab"))
    assert isinstance(exc, MalformedFrame) and exc.reply_code == FRAME_ERROR
    assert exc.reply_text == "FRAME_ERROR - cannot decode <<0,0,5,97,98>>"


def test_bad_table_tag_in_method_is_malformed():
    payload = b"\x00\x32\x00\x0a\x00\x00\x01q\x00\x00\x00\x00\x06\x02abZ\x00\x00"
    assert isinstance(error_from(open_reader(), frame(1, 1, payload)), MalformedFrame)


def test_events_before_an_error_are_attached_to_it():
    reader = open_reader()
    exc = error_from(reader, HEARTBEAT + publish(1, b"ok") + frame(3, 1, b"stray"))
    assert exc.events == [HeartbeatReceived(), ContentReceived(1, PUBLISH, PROPS, b"ok")]


def test_after_a_connection_error_only_close_and_close_ok_are_reported():
    reader = open_reader()
    error_from(reader, frame(3, 1, b"stray"))
    assert reader.state == CLOSING
    close = spec.ConnectionClose(reply_code=200, reply_text="bye")
    later = publish(1, b"ignored") + HEARTBEAT + method_frame(1, spec.ChannelClose()) + method_frame(0, close)
    assert reader.receive_data(later) == [MethodReceived(0, close)]
    assert reader.receive_data(method_frame(0, spec.ConnectionCloseOk())) == [MethodReceived(0, spec.ConnectionCloseOk())]


def test_body_larger_than_max_body_size_fails_the_channel_and_is_swallowed():
    reader = open_reader(max_body_size=10)
    events = reader.receive_data(publish(1, b"x" * 11) + publish(1, b"small") + publish(2, b"y"))
    failed, small, other = events
    assert isinstance(failed, ChannelFailed) and failed.channel == 1
    assert isinstance(failed.error, AMQPChannelError)
    assert failed.error.reply_code == PRECONDITION_FAILED and failed.error.channel == 1
    assert failed.error.reply_text == "PRECONDITION_FAILED - message size 11 is larger than configured max size 10"
    assert (failed.error.class_id, failed.error.method_id) == (60, 40)
    assert small == ContentReceived(1, PUBLISH, PROPS, b"small")
    assert other == ContentReceived(2, PUBLISH, PROPS, b"y")


def test_a_server_reader_refuses_channel_frames_before_the_connection_is_open():
    from leveret.amqp import spec
    from leveret.amqp.errors import UnexpectedFrame
    from leveret.amqp.serializer import PROTOCOL_HEADER, method_frame

    reader = ConnectionReader(channels_open=False)
    reader.receive_data(PROTOCOL_HEADER)
    start_ok = method_frame(0, spec.ConnectionStartOk(mechanism="PLAIN", response=b"\x00guest\x00guest"))
    declare = method_frame(1, spec.QueueDeclare(queue="q"))
    # The handshake is read one frame at a time: start-ok first, the rest held back.
    assert [type(e).__name__ for e in reader.receive_data(start_ok + declare)] == ["MethodReceived"]
    assert reader.pending
    with pytest.raises(UnexpectedFrame) as error:
        reader.receive_data(b"")  # the server did not open the connection: channel 1 may not speak
    assert error.value.reply_text.startswith("UNEXPECTED_FRAME - type 1, all octets = <<0,50,0,10,")


def test_a_pipelined_handshake_is_read_frame_by_frame_under_the_settings_each_frame_made():
    from leveret.amqp import spec
    from leveret.amqp.serializer import PROTOCOL_HEADER, method_frame

    reader = ConnectionReader(frame_max=spec.FRAME_MIN_SIZE, channels_open=False)
    start_ok = spec.ConnectionStartOk(mechanism="PLAIN", response=b"\x00guest\x00guest")
    tune_ok = spec.ConnectionTuneOk(channel_max=10, frame_max=131072, heartbeat=0)
    open_ = spec.ConnectionOpen(virtual_host="/")
    big = b"b" * 10_000  # one body frame larger than the 4096 allowed before tune-ok
    data = (PROTOCOL_HEADER + method_frame(0, start_ok) + method_frame(0, tune_ok) + method_frame(0, open_)
            + method_frame(1, spec.ChannelOpen()) + publish(1, big))
    for chunks in ([data], [data[i:i + 7] for i in range(0, len(data), 7)]):
        reader = ConnectionReader(frame_max=spec.FRAME_MIN_SIZE, channels_open=False)
        seen = []
        for chunk in chunks:
            events = reader.receive_data(chunk)
            while True:
                for event in events:
                    seen.append(event)
                    # What the server does on each handshake method, before the next frame is read.
                    if event == MethodReceived(0, tune_ok):
                        reader.frame_max = 131072
                    elif event == MethodReceived(0, open_):
                        reader.channels_open = True
                if not reader.pending:
                    break
                events = reader.receive_data(b"")
        assert seen == [MethodReceived(0, start_ok), MethodReceived(0, tune_ok), MethodReceived(0, open_),
                        MethodReceived(1, spec.ChannelOpen()), ContentReceived(1, PUBLISH, PROPS, big)]
        assert not reader.pending


def test_a_body_over_max_body_size_fails_its_channel_only_once_the_whole_body_is_in():
    reader = open_reader(max_body_size=10)
    whole = publish(1, b"x" * 11)
    assert reader.receive_data(whole[:-5]) == []  # header and part of the body: no answer yet, as RabbitMQ
    (failed,) = reader.receive_data(whole[-5:])
    assert isinstance(failed, ChannelFailed) and failed.error.reply_code == PRECONDITION_FAILED


# A basic.publish payload seen before takes a fast path when its header and single body frame follow in the
# same read; everything that path does not accept must fall back to, and fail exactly like, the general one.
WARM = publish(1, b"warm-up")
BAD_CONTENT = [
    frame(1, 1, PUBLISH.encode()) * 2,
    frame(1, 1, PUBLISH.encode()) + frame(3, 1, b"x"),
    frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3)) + method_frame(1, spec.BasicQos()),
    frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3, class_id=50)) + frame(3, 1, b"abc"),
    frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3, weight=1)) + frame(3, 1, b"abc"),
    frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(3)) + frame(3, 1, b"abcd"),
    frame(1, 1, PUBLISH.encode()) + frame(2, 2, header_payload(3)) + frame(3, 1, b"abc"),
    frame(1, 1, PUBLISH.encode()) + frame(2, 1, b"\x00\x3c\x00") + frame(3, 1, b"abc"),
]


@pytest.mark.parametrize("bad", BAD_CONTENT)
def test_a_repeated_publish_fails_exactly_like_a_first_one(bad):
    cold = error_from(open_reader(), bad)
    warm_reader = open_reader()
    warm = error_from(warm_reader, WARM + bad)
    assert (type(warm), warm.reply_code, warm.reply_text, warm.class_id, warm.method_id) == (
        type(cold), cold.reply_code, cold.reply_text, cold.class_id, cold.method_id)
    assert [type(e) for e in warm.events] == [ContentReceived]  # the warm-up publish itself still counts


def test_repeated_publishes_in_every_shape_give_the_same_events():
    shapes = (
        publish(1, b"a" * 10)
        + publish(1, b"b" * 300, frame_max=108)  # body in several frames
        + frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(0))  # empty body: no body frame
        + frame(1, 1, PUBLISH.encode()) + frame(1, 2, PUBLISH.encode())  # two channels interleaved
        + frame(2, 2, header_payload(2)) + frame(2, 1, header_payload(1)) + frame(3, 2, b"yy") + frame(3, 1, b"x")
        + publish(1, b"c" * 10)
    )
    stream = WARM + shapes
    whole = open_reader().receive_data(stream)
    bytewise = feed_bytewise(open_reader(), stream)
    expected = [b"warm-up", b"a" * 10, b"b" * 300, b"", b"yy", b"x", b"c" * 10]
    for events in (whole, bytewise):
        assert [type(e) for e in events] == [ContentReceived] * len(expected)
        assert [e.body for e in events] == expected
        assert [e.channel for e in events] == [1, 1, 1, 1, 2, 1, 1]
        assert all(type(e.body) is bytes and e.properties == PROPS for e in events)


def test_a_repeated_publish_over_max_body_size_still_fails_its_channel():
    reader = open_reader(max_body_size=10)
    events = reader.receive_data(publish(1, b"small") + publish(1, b"x" * 11) + publish(1, b"again"))
    assert [type(e) for e in events] == [ContentReceived, ChannelFailed, ContentReceived]
    assert events[1].error.reply_code == 406


def test_a_body_over_max_body_size_is_not_kept_while_it_streams_in():
    import tracemalloc

    reader = open_reader(max_body_size=1000)
    reader.receive_data(frame(1, 1, PUBLISH.encode()) + frame(2, 1, header_payload(2**40)))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(200):  # 26 MB of a body announced as 1 TiB, each read a new buffer
            assert reader.receive_data(frame(3, 1, bytes((n,)) * 131_064)) == []
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 64 * 1024
