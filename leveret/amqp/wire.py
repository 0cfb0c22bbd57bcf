"""Wire primitives: named, precompiled Structs and short/long string coding.

All integers on the AMQP wire are big-endian. Strings:

* shortstr: octet length + bytes (at most 255). In method arguments RabbitMQ insists on
  UTF-8 (malformed: 501 "FRAME_ERROR - Malformed UTF-8 in shortstr"), so
  `decode_shortstr` is strict. Encoding uses the "surrogateescape" handler, so strings
  decoded leniently elsewhere (property values, table keys, which RabbitMQ passes through
  unchecked) go back out byte for byte.
* longstr: uint32 length + bytes. In method arguments these are `bytes` (SASL responses,
  secrets), because they are opaque. (Field tables decide differently, see table.py.)

Decoders take `(buf, offset)` where buf is bytes or bytearray (not memoryview: slices are
decoded with bytes.decode, the fastest way), and return
`(value, new_offset)`. They do not check bounds beyond what slicing does; callers check
that the final offset equals the payload length (a truncated string shows up as an
offset past the end).
"""

from __future__ import annotations

from struct import Struct

# Frame layer.
FRAME_HEADER = Struct(">BHI")  # type, channel, payload size
METHOD_INDEX = Struct(">I")  # class_id << 16 | method_id read in one go
CONTENT_HEADER = Struct(">HHQH")  # class_id, weight, body_size, first property flags word
CONTENT_HEADER_PREFIX = Struct(">HHQ")

# Scalars.
INT8 = Struct(">b")
UINT8 = Struct(">B")
INT16 = Struct(">h")
UINT16 = Struct(">H")
INT32 = Struct(">i")
UINT32 = Struct(">I")
INT64 = Struct(">q")
UINT64 = Struct(">Q")
FLOAT32 = Struct(">f")
FLOAT64 = Struct(">d")
DECIMAL = Struct(">Bi")  # scale, unscaled value

SHORTSTR_MAX = 255


def encode_shortstr(value: str | bytes) -> bytes:
    """Return the length-prefixed shortstr for value; ValueError when it exceeds 255 bytes."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    n = len(raw)
    if n > SHORTSTR_MAX:
        raise ValueError(f"shortstr too long ({n} bytes, max 255)")
    return bytes((n,)) + raw


def decode_shortstr(buf, offset: int) -> tuple[str, int]:
    """Decode a shortstr at offset; return (str, offset after it). Raises UnicodeDecodeError."""
    n = buf[offset]
    offset += 1
    end = offset + n
    return buf[offset:end].decode(), end


def encode_longstr(value: str | bytes) -> bytes:
    """Return the uint32-length-prefixed longstr for value (str is encoded as UTF-8)."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    return UINT32.pack(len(raw)) + raw
