"""The reader's fused publish path against its general path, on the same bytes split every way.

ConnectionReader reads runs of whole basic.publish + header + body frames in one pass once a publish
payload is in its cache (amqp/connection.py `_fused_publishes`). It must give exactly the events, errors
and states the general path gives: here a reader whose cache never fills (so only the general path runs)
is the reference, and each stream is read warm (its publish seen in an earlier read) as one read, as two
reads split at every byte, and a byte at a time.
"""

from __future__ import annotations

import pytest

from leveret.amqp import spec
from leveret.amqp.connection import ConnectionReader
from leveret.amqp.events import ChannelFailed
from leveret.amqp.serializer import HEARTBEAT, PROTOCOL_HEADER, method_frame

from test_connection import BAD_CONTENT, PUBLISH, WARM, frame, header_payload, publish


class _NeverCached(dict):
    """A publish cache that keeps nothing: the reader then takes its general path only."""

    def __setitem__(self, key, value) -> None:
        pass


def _reader(general_only: bool, **kwargs) -> ConnectionReader:
    reader = ConnectionReader(**kwargs)
    if general_only:
        reader._publish_cache = _NeverCached()
    reader.receive_data(PROTOCOL_HEADER)
    reader.receive_data(WARM)  # the publish payload is now cached (unless general_only)
    return reader


def _outcome(general_only: bool, reads: list[bytes], **kwargs):
    """Events, then the error's facts and the reader's state after it (or None), for reads in order."""
    reader = _reader(general_only, **kwargs)
    events: list = []
    for data in reads:
        try:
            events += reader.receive_data(data)
        except Exception as exc:
            events += exc.events
            code = getattr(exc, "reply_code", None)
            return _facts(events), (type(exc), code, getattr(exc, "reply_text", None), getattr(exc, "class_id", None),
                            getattr(exc, "method_id", None), reader.state)
    return _facts(events), (None, reader.state, reader._parser.buffered)


def _facts(events: list) -> list:
    """Events as comparable values (a ChannelFailed's error by its reply, not its identity)."""
    return [(type(e), e.channel, e.error.reply_code, e.error.reply_text, e.error.class_id, e.error.method_id)
            if type(e) is ChannelFailed else e for e in events]


GOOD = publish(1, b"a" * 20) + publish(2, b"b" * 5) + publish(1, b"z")
STREAMS = [
    GOOD,
    GOOD + method_frame(1, spec.BasicAck(delivery_tag=3)) + publish(1, b"after an ack"),
    GOOD + publish(1, b"c" * 300, frame_max=108) + publish(1, b"d"),  # a body in several frames
    GOOD + HEARTBEAT + publish(3, b"e"),
    GOOD + publish(1, b"") + publish(1, b"i"),  # an empty body (no body frame)
    GOOD + frame(1, 0, PUBLISH.encode()) + publish(1, b"f"),  # a content method on channel 0
    GOOD + frame(1, 1, PUBLISH.encode()) + frame(1, 2, PUBLISH.encode()) + frame(2, 2, header_payload(2))
    + frame(2, 1, header_payload(1)) + frame(3, 2, b"yy") + frame(3, 1, b"x") + publish(1, b"g"),
    GOOD + publish(1, b"h" * 40) + GOOD,  # over max_body_size 30 below
    GOOD + GOOD[:-1] + b"\x00",  # a bad frame end
    GOOD + frame(9, 1, b"??"),  # an unknown frame type
    GOOD + frame(3, 1, b"x" * 300),  # oversized for frame_max 256 below
] + [GOOD + bad + GOOD for bad in BAD_CONTENT]


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("settings", [{}, {"max_body_size": 30}, {"frame_max": 256}])
def test_the_fused_path_reads_every_split_exactly_as_the_general_path(stream, settings):
    splits = [[stream], [stream[i : i + 1] for i in range(len(stream))]]
    splits += [[stream[:i], stream[i:]] for i in range(1, len(stream))]
    for reads in splits:
        assert _outcome(False, reads, **settings) == _outcome(True, reads, **settings), (
            f"reads of {[len(r) for r in reads][:3]}... bytes differ")


def test_whole_publishes_take_the_fused_path():
    reader = _reader(False)
    general: list = []
    reader._frames_to_events = lambda frames, events: general.extend(frames)
    events = reader.receive_data(GOOD * 3)
    assert [(e.channel, e.body) for e in events] == [(1, b"a" * 20), (2, b"b" * 5), (1, b"z")] * 3
    assert all(type(e.body) is bytes and e.method is reader._publish_cache[PUBLISH.encode()] for e in events)
    assert general == []  # not one frame for the general path
