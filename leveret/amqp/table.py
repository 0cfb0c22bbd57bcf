"""Field tables and field arrays, with every type tag RabbitMQ accepts, each value keeping its tag.

Decoding (tag -> Python):

====  ==========================  ======================================
tag   wire                        Python
====  ==========================  ======================================
t     octet                       bool
b/B   int8 / uint8                Int8 / UInt8 (int subclasses)
s     int16 (RabbitMQ's meaning,  Int16
      not the spec's shortstr)
u     uint16                      UInt16
I     int32                       int
i     uint32                      UInt32
l     int64                       Long
f/d   float32 / float64           Float32 (a float subclass) / float
D     scale octet + int32         decimal.Decimal (its exponent is -scale)
T     uint64 seconds              Timestamp (an int subclass)
S     longstr                     str when valid UTF-8, else LongBytes (a bytes subclass)
x     byte array                  bytes
A     array                       list
F     table                       dict
V     void                        None
====  ==========================  ======================================

Encoding (Python -> tag): each subclass above goes back to its own tag; otherwise bool->t, int->I when
it fits int32 else l, float->d, Decimal->D, str->S, bytes/bytearray/memoryview->x, datetime->T,
dict->F, list/tuple->A, None->V. So a decoded table re-encodes to the same bytes, as RabbitMQ
re-encodes the tables it rewrites (dead-lettering, the delayed exchange), and the broker can tell
every AMQP type apart where RabbitMQ does (headers matching, argument equivalence, error texts): each
subclass names its type as RabbitMQ does in `field_type`, its tag in `field_tag`.

A key that appears twice keeps its first value (RabbitMQ reads the first). Decoders take bytes or bytearray
(keys are decoded with bytes.decode). Any unknown tag or
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
    field_tag = b"T"
    field_type = "timestamp"

    def __repr__(self) -> str:
        return f"Timestamp({int(self)})"


def _tagged(name: str, base: type, tag: bytes, type_name: str) -> type:
    """A subclass of int, float or bytes for values of one field type: decoded values keep their tag."""
    return type(name, (base,), {"__slots__": (), "field_tag": tag, "field_type": type_name,
                                "__doc__": f"A field value of tag {tag.decode()} ({type_name})."})


Int8 = _tagged("Int8", int, b"b", "byte")
UInt8 = _tagged("UInt8", int, b"B", "unsignedbyte")
Int16 = _tagged("Int16", int, b"s", "short")
UInt16 = _tagged("UInt16", int, b"u", "unsignedshort")
UInt32 = _tagged("UInt32", int, b"i", "unsignedint")
Long = _tagged("Long", int, b"l", "long")
Float32 = _tagged("Float32", float, b"f", "float")
# A longstr (tag S) whose bytes are not UTF-8: kept apart from a byte array (tag x, plain bytes).
LongBytes = _tagged("LongBytes", bytes, b"S", "longstr")


# How each tagged subclass packs its value after the tag.
_PACK = {
    b"T": UINT64.pack, b"b": INT8.pack, b"B": UINT8.pack, b"s": INT16.pack, b"u": UINT16.pack,
    b"i": UINT32.pack, b"l": INT64.pack, b"f": FLOAT32.pack,
    b"S": lambda raw: UINT32.pack(len(raw)) + raw,
}


# --------------------------------------------------------------------------- decoding
#
# Tables and arrays nest to any depth a frame can hold (about 22,000 levels in a 128 KiB frame), so both
# directions walk them with an explicit stack instead of recursing: Python's recursion limit must not
# decide which client input is valid. One loop serves tables (key + tagged value) and arrays (tagged
# values); a flat table, the common case, never touches the stack.


def decode_table(buf, offset: int) -> tuple[dict, int]:
    """Decode the field table at offset; return (dict, offset after the table)."""
    return _decode(buf, offset, True)


def decode_array(buf, offset: int) -> tuple[list, int]:
    """Decode the field array at offset; return (list, offset after the array)."""
    return _decode(buf, offset, False)


def _decode(buf, offset: int, is_table: bool):
    """Decode the table (is_table) or array at offset; return (value, offset after it).

    Guarded by bench/bench_codec.py ("table").
    """
    try:
        (size,) = UINT32.unpack_from(buf, offset)
        offset += 4
        end = offset + size
        if end > len(buf):
            raise MalformedFrame(f"field {'table' if is_table else 'array'} longer than its payload")
        root = container = {} if is_table else []
        # Open containers around the current one: (container, its end, is it a table).
        stack: list = []
        key = None
        while True:
            if offset >= end:
                if offset != end:
                    kind = "table" if is_table else "array"
                    raise MalformedFrame(f"field {kind} size does not match its contents")
                if not stack:
                    return root, end
                container, end, is_table = stack.pop()
                continue
            if is_table:
                n = buf[offset]
                offset += 1
                key = buf[offset : offset + n].decode("utf-8", "surrogateescape")
                offset += n
            tag = buf[offset]
            offset += 1
            # Ordered by how often each tag shows up in real headers and arguments.
            if tag == 83:  # S
                (n,) = UINT32.unpack_from(buf, offset)
                offset += 4
                value_end = offset + n
                if value_end > end:
                    raise MalformedFrame("longstr longer than its payload")
                raw = buf[offset:value_end]
                offset = value_end
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    value = LongBytes(raw)
            elif tag == 73:  # I
                value = INT32.unpack_from(buf, offset)[0]
                offset += 4
            elif tag == 70 or tag == 65:  # F, A: descend
                (n,) = UINT32.unpack_from(buf, offset)
                offset += 4
                child_end = offset + n
                if child_end > end:
                    raise MalformedFrame(f"field {'table' if tag == 70 else 'array'} longer than its payload")
                child = {} if tag == 70 else []
                if is_table:
                    container.setdefault(key, child)
                else:
                    container.append(child)
                stack.append((container, end, is_table))
                container, end, is_table = child, child_end, tag == 70
                continue
            elif tag == 108:  # l
                value = Long(INT64.unpack_from(buf, offset)[0])
                offset += 8
            elif tag == 116:  # t
                value = buf[offset] != 0
                offset += 1
            elif tag == 84:  # T
                value = Timestamp(UINT64.unpack_from(buf, offset)[0])
                offset += 8
            elif tag == 100:  # d
                value = FLOAT64.unpack_from(buf, offset)[0]
                offset += 8
            elif tag == 86:  # V
                value = None
            elif tag == 120:  # x
                (n,) = UINT32.unpack_from(buf, offset)
                offset += 4
                value_end = offset + n
                if value_end > end:
                    raise MalformedFrame("byte array longer than its payload")
                value = bytes(buf[offset:value_end])
                offset = value_end
            elif tag == 98:  # b
                value = Int8(INT8.unpack_from(buf, offset)[0])
                offset += 1
            elif tag == 66:  # B
                value = UInt8(UINT8.unpack_from(buf, offset)[0])
                offset += 1
            elif tag == 115:  # s
                value = Int16(INT16.unpack_from(buf, offset)[0])
                offset += 2
            elif tag == 117:  # u
                value = UInt16(UINT16.unpack_from(buf, offset)[0])
                offset += 2
            elif tag == 105:  # i
                value = UInt32(UINT32.unpack_from(buf, offset)[0])
                offset += 4
            elif tag == 102:  # f
                value = Float32(FLOAT32.unpack_from(buf, offset)[0])
                offset += 4
            elif tag == 68:  # D
                scale, unscaled = DECIMAL.unpack_from(buf, offset)
                value = Decimal(unscaled).scaleb(-scale)
                offset += 5
            else:
                raise MalformedFrame(f"unknown field table type tag {tag!r}")
            if is_table:
                # A key twice: the first one counts, as RabbitMQ's table_lookup and headers matching read it.
                container.setdefault(key, value)
            else:
                container.append(value)
    except (struct.error, IndexError, ValueError) as exc:
        raise MalformedFrame(f"cannot decode field {'table' if is_table else 'array'}: {exc}") from None


# --------------------------------------------------------------------------- encoding


def encode_table(table: dict | None) -> bytes:
    """Return the wire form (uint32 size + entries) of table; None is the empty table."""
    if not table:
        return _EMPTY_TABLE
    return _encode(table, True)


def encode_array(array: list | tuple) -> bytes:
    """Return the wire form (uint32 size + tagged values) of a field array."""
    return _encode(array, False)


def _encode(root, is_table: bool) -> bytes:
    """The wire form of a table (is_table) or array, nested values included, without recursion.

    Everything goes into one parts list. Each container's size is unknown until its last value, so it
    gets a placeholder part, filled from the running byte count when the container is done.
    Guarded by bench/bench_codec.py ("table").
    """
    parts: list = [None]
    append = parts.append
    total = 4  # bytes in parts so far, placeholders counted as their 4 bytes
    size_at = 0  # index of the current container's size placeholder
    start = 4  # `total` just after that placeholder
    items = iter(root.items()) if is_table else iter(root)
    # Containers waiting for the current one: (items iterator, is table, size_at, start).
    stack: list = []
    while True:
        for value in items:
            if is_table:
                key, value = value
                raw_key = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
                n = len(raw_key)
                if n > 255:
                    raise ValueError(f"field table key too long: {key!r}")
                append(bytes((n,)) + raw_key)
                total += 1 + n
            # bool before int (bool is an int); the int subclasses (Timestamp, Long...) keep their tags below.
            kind = type(value)
            if kind is str:
                raw = value.encode("utf-8", "surrogateescape")
                append(b"S" + UINT32.pack(len(raw)))
                append(raw)
                total += 5 + len(raw)
            elif kind is bool:
                append(b"t\x01" if value else b"t\x00")
                total += 2
            elif kind is int:
                if _INT32_MIN <= value <= _INT32_MAX:
                    append(b"I" + INT32.pack(value))
                    total += 5
                elif _INT64_MIN <= value <= _INT64_MAX:
                    append(b"l" + INT64.pack(value))
                    total += 9
                else:
                    raise ValueError(f"integer out of int64 range: {value}")
            elif isinstance(value, (dict, list, tuple)):
                child_is_table = isinstance(value, dict)
                append(b"F" if child_is_table else b"A")
                stack.append((items, is_table, size_at, start))
                size_at = len(parts)
                append(None)
                total += 5
                start = total
                is_table = child_is_table
                items = iter(value.items()) if is_table else iter(value)
                break
            else:
                piece = _encode_scalar(value)
                append(piece)
                total += len(piece)
        else:
            parts[size_at] = UINT32.pack(total - start)
            if not stack:
                return b"".join(parts)
            items, is_table, size_at, start = stack.pop()


def _encode_scalar(value) -> bytes:
    """Tag and encoding of a value that is not a container (and not a plain str, bool or int)."""
    tag = getattr(type(value), "field_tag", None)
    if tag is not None:
        return tag + _PACK[tag](value)
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        return b"S" + UINT32.pack(len(raw)) + raw
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, int):
        if _INT32_MIN <= value <= _INT32_MAX:
            return b"I" + INT32.pack(value)
        if _INT64_MIN <= value <= _INT64_MAX:
            return b"l" + INT64.pack(value)
        raise ValueError(f"integer out of int64 range: {value}")
    if value is None:
        return b"V"
    if isinstance(value, float):
        return b"d" + FLOAT64.pack(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return b"x" + UINT32.pack(len(raw)) + raw
    if isinstance(value, Decimal):
        return b"D" + _encode_decimal(value)
    if isinstance(value, datetime.datetime):
        # A naive datetime is taken as UTC, as RabbitMQ's timestamps are.
        if value.tzinfo is None:
            seconds = calendar.timegm(value.timetuple())
        else:
            seconds = int(value.timestamp())
        return b"T" + UINT64.pack(seconds)
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
