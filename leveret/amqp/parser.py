"""FrameParser: bytes in, complete frames out, in one pass per read.

Guarded by bench/bench_codec.py ("parse").

Payload ownership: body-frame payloads (type 3) are `memoryview` slices, free to make
whatever their size; every other payload (method, header, heartbeat: small) is `bytes`,
because the generated method decoders run faster on bytes (bytes.decode beats
str(memoryview)). The views are safe to keep: they look into either the `bytes` passed to
`feed` (immutable; the common case where nothing was left over, no copy at all) or, when a
frame straddled reads, the internal bytearray that held it - which the parser then hands
off and replaces with a fresh one, never writing to it again (a view into a buffer that is
later `del`-ed or cleared would be corrupted). A kept view pins the whole read it came
from, so ConnectionReader copies each body exactly once, into the message's own bytes.

An incomplete trailing frame waits in a bytearray; while it is still incomplete, new data
is only appended (no re-parse, no copy of the whole buffer), so a large frame arriving in
many small reads costs O(size), not O(size^2). The parse itself is one pass of
`unpack_from` at increasing offsets; the consumed prefix is never deleted byte-wise.

Limits: a frame whose declared payload exceeds frame_max (RabbitMQ's actual check, see
the frame_max setter) raises FrameError as soon as its 7-byte header is seen, before any
payload is buffered, so the buffer never holds more than one frame plus one read.
frame_max = 0 means no limit. RabbitMQ enforces FRAME_MIN_SIZE (4096) until tune-ok, so
the server should start with frame_max=4096 and raise it after tune-ok.
"""

from __future__ import annotations

from .errors import FrameError
from .wire import FRAME_HEADER

FRAME_END = 0xCE
_unpack_header = FRAME_HEADER.unpack_from


def _octets(data) -> str:
    """Erlang-style <<1,2,3>> rendering used in RabbitMQ's FRAME_ERROR texts."""
    shown = bytes(data[:32])
    return "<<" + ",".join(map(str, shown)) + (",...>>" if len(data) > 32 else ">>")


class FrameParser:
    """Splits a byte stream into (frame_type, channel, payload) tuples.

    Errors (FrameError, reply 501) carry the frames parsed before them in that same feed
    as `.frames`; after an error the stream is unusable and the parser must be dropped.
    """

    __slots__ = ("_buf", "_need", "_limit", "_frame_max")

    def __init__(self, frame_max: int = 131072) -> None:
        self._buf = bytearray()
        self._need = 0  # bytes the buffered partial frame needs before a parse can progress
        self.frame_max = frame_max

    @property
    def frame_max(self) -> int:
        """The negotiated frame_max (header and frame-end included); 0 is no limit."""
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        self._frame_max = value
        # RabbitMQ 3.10 refuses a payload larger than frame_max itself (not frame_max - 8,
        # which the spec implies and its error text prints): 4096 passes at frame_max 4096,
        # 4097 fails with "{frame_too_large,4097,4088}". We accept exactly what it accepts.
        self._limit = value if value else 0xFFFFFFFF

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their frame."""
        return len(self._buf)

    @property
    def limit(self) -> int:
        """The largest payload accepted (frame_max itself; no limit is 0xFFFFFFFF)."""
        return self._limit

    def feed(self, data: bytes, start: int = 0) -> list[tuple[int, int, bytes | memoryview]]:
        """Parse every complete frame in the buffered bytes plus data[start:].

        Returns (frame_type, channel, payload) tuples; payload is a memoryview for body
        frames and bytes for every other frame type.
        """
        if type(data) is not bytes:
            data = bytes(data)
        frames: list = []
        pos = start
        if self._buf:
            pos = self.finish_partial(data, frames, pos)
            if pos < 0:
                return frames
        self._scan(data, pos, frames)
        return frames

    def finish_partial(self, data: bytes, frames: list, pos: int = 0) -> int:
        """Complete the one frame that straddled reads from data[pos:] and append it to frames.

        Returns the position in data after it, or -1 when data did not complete it (then all of
        it is buffered). Nothing is buffered afterwards: the rest of data is the caller's to
        `feed` (from the returned position) or to read itself. `data` must be bytes.
        """
        buf = self._buf
        # Complete the one frame that straddled reads from the front of data, parse it on its
        # own, then parse the rest of data in place: the read itself is never copied.
        total = len(data)
        while True:
            take = self._need - len(buf)
            if total - pos < take:
                buf += memoryview(data)[pos:]
                return -1
            buf += memoryview(data)[pos : pos + take]
            pos += take
            if len(buf) == 7:  # the header just completed: now the whole frame's size is known
                size = _unpack_header(buf, 0)[2]
                if size > self._limit:
                    self._check_size(buf, 0, frames)
                self._need = 8 + size
                if size + 8 > len(buf):
                    continue
            break
        # `buf` now holds exactly one frame; body views into it stay valid (it is handed off).
        self._buf = bytearray()
        self._scan(bytes(buf) if buf[0] != 3 else buf, 0, frames)
        return pos

    def _check_size(self, data, pos: int, frames: list) -> None:
        frame_type, _channel, size = _unpack_header(data, pos)
        exc = FrameError(
            f"type {frame_type}, all octets = <<>>: "
            f"{{frame_too_large,{size},{self._limit - 8}}}"
        )
        exc.frames = frames
        raise exc

    def _scan(self, data, pos: int, frames: list) -> None:
        """Append every complete frame of data from pos; buffer a trailing partial frame."""
        immutable = type(data) is bytes
        view = memoryview(data)
        append = frames.append
        limit = self._limit
        total = len(data)
        while total - pos >= 7:
            frame_type, channel, size = _unpack_header(data, pos)
            if size > limit:
                self._check_size(data, pos, frames)
            end = pos + 7 + size
            if end >= total:
                break  # the frame-end octet is not here yet
            if data[end] != FRAME_END:
                exc = FrameError(
                    f"type {frame_type}, all octets = {_octets(view[pos + 7:end])}: "
                    f"{{invalid_frame_end_marker,{data[end]}}}"
                )
                exc.frames = frames
                raise exc
            if frame_type == 3:
                append((3, channel, view[pos + 7 : end]))
            elif immutable:
                append((frame_type, channel, data[pos + 7 : end]))
            else:
                append((frame_type, channel, bytes(view[pos + 7 : end])))
            pos = end + 1
        if pos < total:
            buf = self._buf
            buf += view[pos:]
            rest = total - pos
            # Until the header and the whole frame are here, appending is all feed does.
            self._need = 7 if rest < 7 else 8 + _unpack_header(data, pos)[2]
