"""Kafka's framing: size-prefixed requests in, size-prefixed responses out, and the request header.

Every request is `size int32 | api_key int16 | api_version int16 | correlation_id int32 | client_id nullable
string | body`; a flexible version (here only ApiVersions 3) adds tagged fields after the client id. Every
response is `size int32 | correlation_id int32 | body` (ApiVersions keeps this v0 header even when flexible,
so a client that does not know the broker's versions yet can read it).

ApiVersions is answered here: it must work before anything is negotiated, and a version newer than leveret's
gets UNSUPPORTED_VERSION with a v0 body listing the ranges, as Kafka does, so every client retries lower.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

from leveret.kafka import apis
from leveret.kafka.errors import NONE, UNSUPPORTED_VERSION
from leveret.kafka.wire import INT16, INT32, KafkaDecodeError, Reader, encode, write_uvarint

# Kafka's socket.request.max.bytes: a larger size prefix closes the connection before anything is buffered.
MAX_REQUEST = 100 * 1024 * 1024


# A request at least this large is read into a buffer of its own (FrameReader); those buffers are kept per
# connection for reuse up to this many bytes (a stream's in-memory tail holds 4 MB of them alive, so the rest
# is what can be reused).
TAKE_WHOLE = 64 * 1024
SPARE_BYTES = 16 * 1024 * 1024
# The reader's own buffer, for small requests and the first bytes of large ones: room for any small request
# (under TAKE_WHOLE) after the bytes before it are moved down, and each read is offered at most READ_AHEAD of it,
# so little of a large request lands here (to be copied again) before its size is known.
OWN_BUFFER = 2 * TAKE_WHOLE
READ_AHEAD = TAKE_WHOLE


class RequestHeader(NamedTuple):
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


class FrameReader:
    """Splits a byte stream into request payloads (without their size prefix).

    The transport reads into the buffer `get_buffer` offers and reports how much with `filled` (asyncio's
    BufferedProtocol). A large request (a produce of a big batch) is read into a buffer of its own, allocated
    once at its full size when its size prefix arrives, so after its first read the socket fills it directly;
    it is handed over as it is and the produce keeps its batches as views of it (wire.Reader.nbytes): its bytes
    are copied once from the socket, and once into the segment."""

    def __init__(self, limit: int = MAX_REQUEST) -> None:
        self._buffer = bytearray(OWN_BUFFER)
        self._start = 0  # the first byte of _buffer not yet split off
        self._end = 0  # the end of what was read into _buffer
        self._limit = limit
        self._large: bytearray | None = None  # a large request being read into its own buffer
        self._filled = 0
        self._spare: list[bytearray] = []  # large request buffers handed out, reused once nothing refers to them

    def get_buffer(self) -> memoryview:
        """Where the next read goes."""
        large = self._large
        if large is not None:
            return memoryview(large)[self._filled :]
        buffer = self._buffer
        end = self._end
        if len(buffer) - end < READ_AHEAD and self._start:
            # A small request's first bytes sit near the end: move them down, making room for all of it.
            start = self._start
            buffer[: end - start] = buffer[start:end]
            self._start, self._end = 0, end - start
            end = self._end
        return memoryview(buffer)[end : end + READ_AHEAD]

    def filled(self, nbytes: int) -> list[bytes | bytearray]:
        """`nbytes` were read into the last buffer given out: every request now whole; KafkaDecodeError for a
        size no broker would read."""
        frames: list[bytes | bytearray] = []
        large = self._large
        if large is not None:
            self._filled += nbytes
            if self._filled == len(large):
                frames.append(large)
                self._large = None
            return frames
        self._end += nbytes
        buffer = self._buffer
        pos, end = self._start, self._end
        while end - pos >= 4:
            (size,) = INT32.unpack_from(buffer, pos)
            if size < 8 or size > self._limit:
                raise KafkaDecodeError(f"request size {size}")
            whole = end - pos - 4 >= size
            if not whole and size < TAKE_WHOLE:
                break  # the rest comes into this buffer
            if size < TAKE_WHOLE:
                frames.append(bytes(memoryview(buffer)[pos + 4 : pos + 4 + size]))
            else:
                # A request large enough for a buffer of its own: writable, as wire.Reader.nbytes wants.
                frame = self._buffer_of(size)
                have = min(end - pos - 4, size)
                frame[:have] = memoryview(buffer)[pos + 4 : pos + 4 + have]
                if not whole:
                    self._large, self._filled = frame, have
                    pos = end
                    break
                frames.append(frame)
            pos += 4 + size
        if pos == end:
            self._start = self._end = 0
        else:
            self._start = pos
        return frames

    def feed(self, data: bytes) -> list[bytes | bytearray]:
        """Every request made whole by `data` (for callers that are handed bytes)."""
        frames: list[bytes | bytearray] = []
        view = memoryview(data)
        while len(view):
            into = self.get_buffer()
            take = min(len(into), len(view))
            into[:take] = view[:take]
            view = view[take:]
            frames += self.filled(take)
        return frames

    def _buffer_of(self, size: int) -> bytearray:
        """A buffer for a large request: one handed out before that nothing refers to any more (its batches
        left the stream's in-memory tail and every response), resized, or a new one. Fresh memory costs a page
        fault per page on first touch, and on this kind of machine that is most of a produce's cost."""
        spare = self._spare
        for i in range(len(spare)):
            # Referenced by the list and the call only: no view of it (data.py's batches) is alive.
            if sys.getrefcount(spare[i]) <= 2:
                buffer = spare[i]
                if len(buffer) != size:
                    buffer[size:] = b""  # cut (or, below, grown) in place: nothing can see it now
                    if len(buffer) < size:
                        buffer += bytes(size - len(buffer))
                del spare[i]
                spare.append(buffer)
                return buffer
        buffer = bytearray(size)
        spare.append(buffer)
        while len(spare) > 1 and sum(map(len, spare)) > SPARE_BYTES:
            del spare[0]  # the oldest: most likely the next to be let go by the stream's tail, but bounded
        return buffer


def read_header(payload: bytes) -> tuple[RequestHeader, Reader]:
    """The header, and a reader positioned at the body."""
    reader = Reader(payload)
    header = RequestHeader(reader.int16(), reader.int16(), reader.int32(), reader.nstring())
    if header.api_key == apis.API_VERSIONS and header.api_version >= 3:
        reader.skip_tagged_fields()  # request header v2
    return header, reader


def response(correlation_id: int, parts: list[bytes]) -> list[bytes]:
    """A response frame: size, correlation id, then the body's parts (not joined: the transport writes a list)."""
    size = 4 + sum(len(part) for part in parts)
    return [INT32.pack(size) + INT32.pack(correlation_id), *parts]


def api_versions(header: RequestHeader) -> list[bytes]:
    """The whole ApiVersions response frame for this request."""
    version = header.api_version
    low, high = apis.VERSIONS[apis.API_VERSIONS]
    ranges = [{"api_key": key, "min_version": lo, "max_version": hi} for key, (lo, hi) in sorted(apis.VERSIONS.items())]
    if version > high or version < low:
        out: list[bytes] = []
        encode(apis.API_VERSIONS_RESPONSE, 0, {"error_code": UNSUPPORTED_VERSION, "api_keys": ranges}, out)
        return response(header.correlation_id, out)
    if version < 3:
        out = []
        encode(apis.API_VERSIONS_RESPONSE, version, {"error_code": NONE, "api_keys": ranges}, out)
        return response(header.correlation_id, out)
    # v3 is flexible: compact array (count + 1), tagged fields after each entry and after the body.
    body = bytearray(INT16.pack(NONE))
    write_uvarint(len(ranges) + 1, body)
    for entry in ranges:
        body += INT16.pack(entry["api_key"]) + INT16.pack(entry["min_version"]) + INT16.pack(entry["max_version"])
        body.append(0)
    body += INT32.pack(0)  # throttle_time_ms
    body.append(0)
    return response(header.correlation_id, [bytes(body)])


def check_version(header: RequestHeader) -> bool:
    """Whether leveret speaks this API at this version (anything else closes the connection, as Kafka does)."""
    supported = apis.VERSIONS.get(header.api_key)
    return supported is not None and supported[0] <= header.api_version <= supported[1]
