"""ConnectionReader: the server side's inbound AMQP state machine, sans IO.

Guarded by bench/bench_codec.py ("reader").

    reader = ConnectionReader(frame_max=131072)
    events = reader.receive_data(data)       # on every read

States and rules:

* AWAITING_HEADER: collect 8 bytes. b"AMQP\\x00\\x00\\x09\\x01" and the older 0-9-1 form
  b"AMQP\\x01\\x01\\x00\\x09" (RabbitMQ accepts both as 0-9-1) go on to OPEN; anything
  else raises BadProtocolHeader - the server writes PROTOCOL_HEADER and closes. RabbitMQ
  also speaks 0-8 (b"AMQP\\x01\\x01\\x09\\x01"); we do not.
* Handshake (OPEN, but `channels_open` still False): a client may pipeline start-ok, tune-ok,
  connection.open and whatever follows in one write, and every frame must be read under the
  settings the frames before it made (tune-ok raises frame_max; connection.open lets channels
  speak). So until the server sets `channels_open`, `receive_data` returns the events of ONE
  frame and holds the rest of the bytes back; while `pending` is true the server handles those
  events and calls `receive_data(b"")` again. Afterwards the held bytes go through the normal
  path. (RabbitMQ's reader works frame by frame too, so it processes such a write in order.)
* OPEN: frames become events. Per channel, content assembly runs
  method (HAS_CONTENT) -> header frame -> body frames until body_size; the result is one
  ContentReceived (a body_size of 0 completes at the header). Channels interleave freely.
  Whole publishes at the front of a read take the fused path (`_fused_publishes`: same events,
  no frame tuples); at the first frame it does not take, the general path reads the rest.
  Any frame out of that order is 505 UNEXPECTED_FRAME, with RabbitMQ's texts. A header
  declaring more than max_body_size makes the reader swallow that body without keeping it,
  and yields a ChannelFailed event (406) once the last body frame is in: RabbitMQ too answers
  only after the whole body, so until then the channel stays open (a method frame for it in
  the meantime is the usual 505). Heartbeats must come on channel 0, content frames on others (505).
  Content-bearing methods on channel 0 are passed on as MethodReceived for the server to
  reject (RabbitMQ: 504 CHANNEL_ERROR).
* CLOSING: after a connection error. The server has sent connection.close and waits for
  close-ok; only connection.close / connection.close-ok on channel 0 are still reported,
  every other frame is dropped unseen.
* DEAD: after a FrameError that breaks framing (oversized frame, bad frame end, unknown
  frame type): nothing more is parsed.

Errors: a connection-level problem raises AMQPConnectionError (or a subclass) carrying
the reply code/text/class/method RabbitMQ would send; the events the same call produced
before the error are attached as `exc.events` and must be handled first. Frames after the
bad one in that read are dropped (the connection is closing anyway).
"""

from __future__ import annotations

from struct import Struct

from .errors import (
    PRECONDITION_FAILED, AMQPChannelError, AMQPConnectionError, BadProtocolHeader, FrameError,
    MalformedFrame, UnexpectedFrame,
)
from .events import ChannelFailed, ContentReceived, HeartbeatReceived, MethodReceived
from .parser import FRAME_END, FrameParser, _octets
from .properties import BasicProperties
from .spec import BasicPublish, ConnectionClose, ConnectionCloseOk, decode_method
from .wire import CONTENT_HEADER_PREFIX, FRAME_HEADER, METHOD_INDEX, UINT32

PROTOCOL_HEADERS = frozenset({b"AMQP\x00\x00\x09\x01", b"AMQP\x01\x01\x00\x09"})

AWAITING_HEADER = "awaiting-header"
OPEN = "open"
CLOSING = "closing"
DEAD = "dead"

_EXPECTED_METHOD = "expected method frame, got non method frame instead"
_EXPECTED_BODY = "expected content body, got non content body frame instead"
_CLOSING_METHODS = frozenset({ConnectionClose.INDEX, ConnectionCloseOk.INDEX})
_BASIC_PUBLISH = BasicPublish.INDEX
# Distinct basic.publish payloads remembered per connection (cleared when full: a publisher cycling
# through more routing keys than this just decodes as before).
_PUBLISH_CACHE_SIZE = 256
_unpack_header_prefix = CONTENT_HEADER_PREFIX.unpack_from
_unpack_header = FRAME_HEADER.unpack_from
# A content header frame's frame header and its fixed start (class, weight, body size) in one unpack.
_unpack_header_frame = Struct(">BHIHHQ").unpack_from
_from_raw = BasicProperties.from_raw


class _Assembly:
    """A content-bearing method waiting for its header and body frames."""

    __slots__ = ("method", "properties", "body_size", "received", "parts", "discard")

    def __init__(self, method) -> None:
        self.method = method
        self.properties: BasicProperties | None = None  # None until the header frame
        self.body_size = 0
        self.received = 0
        self.parts: list = []
        self.discard = False


class ConnectionReader:
    """Turns the client's bytes into MethodReceived / ContentReceived / HeartbeatReceived."""

    def __init__(self, frame_max: int = 131072, max_body_size: int = 134217728, *, channels_open: bool = True) -> None:
        self.state = AWAITING_HEADER
        self.max_body_size = max_body_size
        self._parser = FrameParser(frame_max)
        self._header = b""
        self._held = b""  # bytes after the frame being handled, during the handshake only
        self._assemblies: dict[int, _Assembly] = {}
        self._publish_cache: dict[bytes, BasicPublish] = {}
        # A server sets this False until it has answered connection.open: before that a frame on any
        # channel but 0 is 505 UNEXPECTED_FRAME (RabbitMQ quotes its octets).
        self.channels_open = channels_open

    @property
    def frame_max(self) -> int:
        """frame_max enforced on incoming frames; set it after connection.tune-ok."""
        return self._parser.frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        self._parser.frame_max = value

    @property
    def pending(self) -> bool:
        """Held-back handshake bytes are ready to be read: call `receive_data(b"")` (see the module doc)."""
        held = self._held
        if not held or self.state is not OPEN:
            return False
        if self.channels_open or len(held) < 7:
            return self.channels_open
        size = UINT32.unpack_from(held, 3)[0]
        # An oversized frame counts as ready: reading it is what reports it.
        return len(held) >= size + 8 or size > (self._parser.frame_max or 0xFFFFFFFF)

    def receive_data(self, data: bytes) -> list:
        """Feed bytes read from the socket; return the events they complete."""
        state = self.state
        if state is not OPEN:
            if state is AWAITING_HEADER:
                data = self._take_protocol_header(data)
                if data is None:
                    return []
            elif state is CLOSING:
                self._held = b""
                return self._receive_while_closing(data)
            else:
                return []
        if not self.channels_open:
            data = self._next_handshake_frame(data)
            if data is None:
                return []
        elif self._held:
            data, self._held = self._held + data, b""
        if type(data) is not bytes:
            data = bytes(data)
        events: list = []
        parse_error = None
        head: list = []  # the frame that straddled reads, when the fused path did not take it
        try:
            pos = 0
            if self.channels_open:
                pos = self._fused_publishes(data, head, events)
            frames = self._parser.feed(data, pos) if pos >= 0 else []
        except FrameError as exc:
            # The frames before the broken one still count, and come first.
            frames = exc.frames
            parse_error = exc
        if head:
            frames[:0] = head
        if not self.channels_open:
            frames, early = self._split_before_open(frames)
            if early is not None:
                parse_error = early
        try:
            self._frames_to_events(frames, events)
        except AMQPConnectionError as exc:
            broken = parse_error is not None or type(exc) is FrameError
            self.state = DEAD if broken else CLOSING
            exc.events = events
            raise
        if parse_error is not None:
            self.state = DEAD
            parse_error.events = events
            raise parse_error
        return events

    def _take_protocol_header(self, data):
        """Collect the protocol header; return the bytes after it, or None while incomplete."""
        header = self._header + bytes(data)
        if len(header) < 8:
            self._header = header
            return None
        self._header = b""
        if header[:8] not in PROTOCOL_HEADERS:
            self.state = DEAD
            raise BadProtocolHeader(header[:8])
        self.state = OPEN
        return header[8:]

    def _next_handshake_frame(self, data):
        """The next whole frame of held bytes plus data (the rest is held back), or None while incomplete."""
        held = self._held + data if self._held else bytes(data)
        if len(held) < 7:
            self._held = held
            return None
        size = UINT32.unpack_from(held, 3)[0]
        if size > (self._parser.frame_max or 0xFFFFFFFF):
            self._held = b""
            return held  # the parser rejects it from its header alone
        end = size + 8
        if len(held) < end:
            self._held = held  # at most one frame under the handshake's frame_max, plus one read
            return None
        self._held = held[end:]
        return held[:end]

    @staticmethod
    def _split_before_open(frames):
        """Before connection.open-ok only channel 0 may speak: frames up to the first other one, and the error."""
        for i, (frame_type, channel, payload) in enumerate(frames):
            if channel:
                octets = ",".join(str(b) for b in bytes(payload))  # error path only
                error = UnexpectedFrame(f"type {frame_type}, all octets = <<{octets}>>")
                return frames[:i], error
        return frames, None

    def _fused_publishes(self, data: bytes, head: list, events: list) -> int:
        """The fused publish path: whole publishes at the front of data straight to events.

        A publisher's reads are mostly runs of basic.publish + content header + one body frame. Where
        such a run starts the read (or follows the body frame that completes a content begun in an
        earlier read) and its basic.publish payload is in the publish cache, each publish becomes one
        ContentReceived here, in one pass over the bytes, without the frame tuples and body views of
        the general path (parsing was a third of a publish's cost). Nothing here can raise: at the
        first frame that is anything else (another method, a partial or oversized frame, a bad frame
        end, a multi-frame body, an unknown header) it stops and returns that frame's position, and
        the general path reads the rest of data from there, so every error still comes from one place
        with the events before it. The checks are the general path's, which would accept each of
        these publishes as the same event.

        A frame that straddled reads is completed first and appended to `head` unless it could be
        handled here (a body frame that ends its content). Returns -1 when data did not complete it.
        """
        parser = self._parser
        assemblies = self._assemblies
        pos = 0
        if parser.buffered:
            pos = parser.finish_partial(data, head)
            if pos < 0:
                return -1
            frame_type, channel, payload = head[0]
            assembly = assemblies.get(channel)
            if frame_type != 3 or assembly is None or assembly.properties is None \
                    or assembly.received + len(payload) > assembly.body_size:
                return pos  # the general path takes it (and whatever it raises), and the rest of the read
            self._frames_to_events(head, events)  # a body frame within its declared size: cannot raise
            head.clear()
        cache = self._publish_cache
        if assemblies or not cache:
            return pos
        limit = parser.limit
        max_body_size = self.max_body_size
        append = events.append
        total = len(data)
        while total - pos >= 7:
            frame_type, channel, size = _unpack_header(data, pos)
            end = pos + 7 + size  # where the method frame's end octet is
            if frame_type != 1 or not channel or size > limit or end + 20 > total or data[end] != FRAME_END:
                break
            method = cache.get(data[pos + 7 : end])
            if method is None:
                break
            header_type, header_channel, size, class_id, weight, body_size = _unpack_header_frame(data, end + 1)
            header_start = end + 8
            header_end = header_start + size
            if header_type != 2 or header_channel != channel or not 14 <= size <= limit or class_id != 60 \
                    or weight or not 0 < body_size <= max_body_size or header_end + 8 > total \
                    or data[header_end] != FRAME_END:
                break
            body_type, body_channel, size = _unpack_header(data, header_end + 1)
            body_start = header_end + 8
            body_end = body_start + size
            if body_type != 3 or body_channel != channel or size != body_size or size > limit \
                    or body_end >= total or data[body_end] != FRAME_END:
                break
            # The body's one copy, out of the read.
            append(ContentReceived(channel, method, _from_raw(data[header_start + 12 : header_end]),
                                   data[body_start:body_end]))
            pos = body_end + 1
        return pos

    def _frames_to_events(self, frames, events: list) -> None:
        """Turn frames into events appended to events (the hot loop)."""
        append = events.append
        assemblies = self._assemblies
        publish_cache = self._publish_cache
        count = len(frames)
        index = 0
        while index < count:
            frame_type, channel, payload = frames[index]
            index += 1
            if frame_type == 1:
                if channel in assemblies:
                    self._raise_method_during_content(assemblies[channel])
                # A publisher repeats the same basic.publish payload (exchange, routing key, flags) for
                # message after message: decode it once. Method objects are never mutated after decoding.
                method = publish_cache.get(payload)
                if method is not None and index + 1 < count:
                    # The common publish, whole in this read: its header and its one body frame follow on
                    # the same channel. Checked exactly as the general path below would, then done at once.
                    header_type, header_channel, header = frames[index]
                    body_type, body_channel, body = frames[index + 1]
                    if header_type == 2 and body_type == 3 and header_channel == channel == body_channel \
                            and channel and len(header) >= 14:
                        class_id, weight, body_size = _unpack_header_prefix(header, 0)
                        if class_id == 60 and not weight and body_size == len(body) \
                                and 0 < body_size <= self.max_body_size:
                            append(ContentReceived(channel, method, _from_raw(header[12:]), bytes(body)))
                            index += 2
                            continue
                if method is None:
                    method = decode_method(payload)
                    if method.INDEX == _BASIC_PUBLISH:
                        if len(publish_cache) >= _PUBLISH_CACHE_SIZE:
                            publish_cache.clear()
                        publish_cache[bytes(payload)] = method
                if method.HAS_CONTENT and channel:
                    assemblies[channel] = _Assembly(method)
                else:
                    append(MethodReceived(channel, method))
            elif frame_type == 3:
                assembly = assemblies.get(channel)
                if assembly is None or assembly.properties is None:
                    self._raise_misplaced(frame_type, channel, payload, assembly)
                received = assembly.received + len(payload)
                if received > assembly.body_size:
                    method = assembly.method
                    raise UnexpectedFrame(
                        f"content body of {received} octets, {assembly.body_size} declared",
                        method.CLASS_ID, method.METHOD_ID,
                    )
                assembly.received = received
                if not assembly.discard:
                    assembly.parts.append(payload)
                if received == assembly.body_size:
                    del assemblies[channel]
                    if not assembly.discard:
                        parts = assembly.parts
                        # The one copy of the body: out of the read buffer views.
                        body = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
                        append(ContentReceived(channel, assembly.method, assembly.properties, body))
                    else:
                        append(self._too_large(channel, assembly.method, assembly.body_size))
            elif frame_type == 2:
                assembly = assemblies.get(channel)
                if assembly is None or assembly.properties is not None:
                    self._raise_misplaced(frame_type, channel, payload, assembly)
                method = assembly.method
                if len(payload) < 14:
                    raise MalformedFrame("content header too short", method.CLASS_ID, method.METHOD_ID)
                class_id, weight, body_size = _unpack_header_prefix(payload, 0)
                if weight or class_id != method.CLASS_ID:
                    self._raise_bad_header(method, class_id, weight)
                properties = _from_raw(payload[12:])  # bytes: see parser.py
                if body_size == 0:
                    del assemblies[channel]
                    append(ContentReceived(channel, method, properties, b""))
                else:
                    assembly.properties = properties
                    assembly.body_size = body_size
                    if body_size > self.max_body_size:
                        assembly.discard = True  # swallowed as it comes; 406 when it is all in
            elif frame_type == 8:
                if channel:
                    raise UnexpectedFrame(f"type 8, all octets = {_octets(payload)}")
                append(HeartbeatReceived())
            else:
                raise FrameError(f"type {frame_type}, all octets = {_octets(payload)}: unknown_frame")

    def _raise_bad_header(self, method, class_id: int, weight: int):
        """A header frame for another class, or with a weight (which must be 0)."""
        got = "non content header frame" if weight else f"one for class {class_id}"
        raise UnexpectedFrame(
            f"expected content header for class {method.CLASS_ID}, got {got} instead",
            method.CLASS_ID, method.METHOD_ID,
        )

    def _too_large(self, channel: int, method, body_size: int) -> ChannelFailed:
        """The event for a body over max_body_size (RabbitMQ's 406 text)."""
        error = AMQPChannelError(
            channel,
            f"message size {body_size} is larger than configured max size {self.max_body_size}",
            method.CLASS_ID, method.METHOD_ID, PRECONDITION_FAILED,
        )
        return ChannelFailed(channel, error)

    def _raise_method_during_content(self, assembly: _Assembly):
        """A method frame arrived where a content header or body was due."""
        method = assembly.method
        if assembly.properties is None:
            detail = (
                f"expected content header for class {method.CLASS_ID}, "
                "got non content header frame instead"
            )
        else:
            detail = _EXPECTED_BODY
        raise UnexpectedFrame(detail, method.CLASS_ID, method.METHOD_ID)

    def _raise_misplaced(self, frame_type: int, channel: int, payload, assembly):
        """A header or body frame arrived with no content method or in the wrong place."""
        if channel == 0:
            raise UnexpectedFrame(f"type {frame_type}, all octets = {_octets(payload)}")
        if assembly is None:
            raise UnexpectedFrame(_EXPECTED_METHOD)
        method = assembly.method
        if frame_type == 2:  # a second header while the body is due
            raise UnexpectedFrame(_EXPECTED_BODY, method.CLASS_ID, method.METHOD_ID)
        raise UnexpectedFrame(
            f"expected content header for class {method.CLASS_ID}, got non content header frame instead",
            method.CLASS_ID, method.METHOD_ID,
        )

    def _receive_while_closing(self, data) -> list:
        """After a connection error only connection.close(-ok) on channel 0 still matters."""
        try:
            frames = self._parser.feed(data)
        except FrameError:
            self.state = DEAD
            return []
        events = []
        for frame_type, channel, payload in frames:
            if frame_type != 1 or channel or len(payload) < 4:
                continue
            if METHOD_INDEX.unpack_from(payload, 0)[0] in _CLOSING_METHODS:
                try:
                    events.append(MethodReceived(0, decode_method(payload)))
                except AMQPConnectionError:
                    self.state = DEAD
                    break
        return events
