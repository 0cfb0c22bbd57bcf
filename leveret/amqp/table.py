"""Field tables and field arrays, with every type tag RabbitMQ accepts.

Decoding (tag -> Python):

====  ==========================  ======================================
tag   wire                        Python
====  ==========================  ======================================
t     octet                       bool
b/B   int8 / uint8                int
s     int16 (RabbitMQ's meaning,  int
      not the spec's shortstr)
u     uint16                      int
I/i   int32 / uint32              int
l     int64                       int
f/d   float32 / float64           float
D     scale octet + int32         decimal.Decimal
T     uint64 seconds              Timestamp (an int subclass)
S     longstr                     str when valid UTF-8, else bytes
x     byte array                  bytes
A     array                       list
F     table                       dict
V     void                        None
====  ==========================  ======================================

Encoding (Python -> tag): bool->t, int->I when it fits int32 else l, float->d,
Decimal->D, str->S, bytes/bytearray/memoryview->x, Timestamp or datetime->T, dict->F,
list/tuple->A, None->V. So a decoded table re-encodes to equal values, though not always to
the same bytes (b/B/s/u/i become I, f becomes d); code that must forward a table byte for
byte keeps the raw bytes (see properties.py).

Decoders take bytes or bytearray (keys are decoded with bytes.decode). Any unknown tag or
truncated input raises MalformedFrame.
"""

from __future__ import annotations

import calendar
import datetime
import struct
from decimal import Decimal

from .errors import MalformedFrame
from .wire import (
    DECIMAL, FLOAT32, FLOAT64, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64,
)

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EMPTY_TABLE = b"\x00\x00\x00\x00"


class Timestamp(int):
    """Seconds since the epoch, as field-table tag T; an int that remembers its tag."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Timestamp({int(self)})"


# --------------------------------------------------------------------------- decoding


def decode_table(buf, offset: int) -> tuple[dict, int]:
    """Decode the field table at offset; return (dict, offset after the table)."""
    try:
        (size,) = UINT32.unpack_from(buf, offset)
        offset += 4
        end = offset + size
        if end > len(buf):
            raise MalformedFrame("field table longer than its payload")
        result = {}
        while offset < end:
            n = buf[offset]
            offset += 1
            key = buf[offset : offset + n].decode("utf-8", "surrogateescape")
            offset += n
            tag = buf[offset]
            result[key], offset = _decode_value(buf, offset + 1, tag)
        if offset != end:
            raise MalformedFrame("field table size does not match its contents")
        return result, end
    except (struct.error, IndexError, ValueError) as exc:
        raise MalformedFrame(f"cannot decode field table: {exc}") from None


def decode_array(buf, offset: int) -> tuple[list, int]:
    """Decode the field array at offset; return (list, offset after the array)."""
    try:
        (size,) = UINT32.unpack_from(buf, offset)
        offset += 4
        end = offset + size
        if end > len(buf):
            raise MalformedFrame("field array longer than its payload")
        result = []
        append = result.append
        while offset < end:
            value, offset = _decode_value(buf, offset + 1, buf[offset])
            append(value)
        if offset != end:
            raise MalformedFrame("field array size does not match its contents")
        return result, end
    except (struct.error, IndexError, ValueError) as exc:
        raise MalformedFrame(f"cannot decode field array: {exc}") from None


def _decode_value(buf, offset: int, tag: int):
    """Decode one value of type tag at offset; return (value, new offset)."""
    # Ordered by how often each tag shows up in real headers and arguments.
    if tag == 83:  # S
        (n,) = UINT32.unpack_from(buf, offset)
        offset += 4
        end = offset + n
        if end > len(buf):
            raise MalformedFrame("longstr longer than its payload")
        raw = buf[offset:end]
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            return bytes(raw), end
    if tag == 73:  # I
        return INT32.unpack_from(buf, offset)[0], offset + 4
    if tag == 108:  # l
        return INT64.unpack_from(buf, offset)[0], offset + 8
    if tag == 116:  # t
        return buf[offset] != 0, offset + 1
    if tag == 70:  # F
        return decode_table(buf, offset)
    if tag == 65:  # A
        return decode_array(buf, offset)
    if tag == 84:  # T
        return Timestamp(UINT64.unpack_from(buf, offset)[0]), offset + 8
    if tag == 100:  # d
        return FLOAT64.unpack_from(buf, offset)[0], offset + 8
    if tag == 86:  # V
        return None, offset
    if tag == 120:  # x
        (n,) = UINT32.unpack_from(buf, offset)
        offset += 4
        end = offset + n
        if end > len(buf):
            raise MalformedFrame("byte array longer than its payload")
        return bytes(buf[offset:end]), end
    if tag == 98:  # b
        return INT8.unpack_from(buf, offset)[0], offset + 1
    if tag == 66:  # B
        return UINT8.unpack_from(buf, offset)[0], offset + 1
    if tag == 115:  # s
        return INT16.unpack_from(buf, offset)[0], offset + 2
    if tag == 117:  # u
        return UINT16.unpack_from(buf, offset)[0], offset + 2
    if tag == 105:  # i
        return UINT32.unpack_from(buf, offset)[0], offset + 4
    if tag == 102:  # f
        return FLOAT32.unpack_from(buf, offset)[0], offset + 4
    if tag == 68:  # D
        scale, value = DECIMAL.unpack_from(buf, offset)
        return Decimal(value).scaleb(-scale), offset + 5
    raise MalformedFrame(f"unknown field table type tag {tag!r}")


# --------------------------------------------------------------------------- encoding


def encode_table(table: dict | None) -> bytes:
    """Return the wire form (uint32 size + entries) of table; None is the empty table."""
    if not table:
        return _EMPTY_TABLE
    parts: list[bytes] = []
    append = parts.append
    for key, value in table.items():
        raw_key = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        if len(raw_key) > 255:
            raise ValueError(f"field table key too long: {key!r}")
        append(bytes((len(raw_key),)))
        append(raw_key)
        _encode_value(value, append)
    body = b"".join(parts)
    return UINT32.pack(len(body)) + body


def encode_array(array: list | tuple) -> bytes:
    """Return the wire form (uint32 size + tagged values) of a field array."""
    parts: list[bytes] = []
    append = parts.append
    for value in array:
        _encode_value(value, append)
    body = b"".join(parts)
    return UINT32.pack(len(body)) + body


def _encode_value(value, append) -> None:
    """Append the tag and encoding of value to a parts list (via its append)."""
    # bool before int (bool is an int), Timestamp before int (it is one too).
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        append(b"S" + UINT32.pack(len(raw)))
        append(raw)
    elif isinstance(value, bool):
        append(b"t\x01" if value else b"t\x00")
    elif isinstance(value, Timestamp):
        append(b"T" + UINT64.pack(value))
    elif isinstance(value, int):
        if _INT32_MIN <= value <= _INT32_MAX:
            append(b"I" + INT32.pack(value))
        elif _INT64_MIN <= value <= _INT64_MAX:
            append(b"l" + INT64.pack(value))
        else:
            raise ValueError(f"integer out of int64 range: {value}")
    elif isinstance(value, dict):
        append(b"F")
        append(encode_table(value))
    elif isinstance(value, (list, tuple)):
        append(b"A")
        append(encode_array(value))
    elif value is None:
        append(b"V")
    elif isinstance(value, float):
        append(b"d" + FLOAT64.pack(value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        append(b"x" + UINT32.pack(len(raw)))
        append(raw)
    elif isinstance(value, Decimal):
        append(b"D" + _encode_decimal(value))
    elif isinstance(value, datetime.datetime):
        # A naive datetime is taken as UTC, as RabbitMQ's timestamps are.
        if value.tzinfo is None:
            seconds = calendar.timegm(value.timetuple())
        else:
            seconds = int(value.timestamp())
        append(b"T" + UINT64.pack(seconds))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in a field table")


def _encode_decimal(value: Decimal) -> bytes:
    """Return scale octet + int32 for value; ValueError when it does not fit."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"cannot encode {value} as an AMQP decimal")
    unscaled = int("".join(map(str, digits)) or "0")
    if exponent > 0:
        unscaled *= 10**exponent
        exponent = 0
    if sign:
        unscaled = -unscaled
    scale = -exponent
    if scale > 255 or not _INT32_MIN <= unscaled <= _INT32_MAX:
        raise ValueError(f"decimal {value} does not fit scale octet + int32")
    return DECIMAL.pack(scale, unscaled)
