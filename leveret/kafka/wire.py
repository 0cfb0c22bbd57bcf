"""Kafka's primitive types and a schema-driven reader and writer for its non-flexible messages.

A message body is described by a schema: a tuple of fields `(name, kind, first_version, last_version)`,
where kind is one of the primitive names below, a schema tuple for an array of structs, `[kind]` for an
array of primitives, or `Nullable(kind)` for a nullable array. Decoding gives a dict per struct (absent
fields keep no key); encoding reads the dict's keys, with a default for fields it does not hold. One
generic pass per message is slower than hand-written code but keeps each API a few lines of data that
can be checked against the clients' own schemas (apis.py); the per-record paths (record batches) are
hand-written in records.py.

Malformed input (too short, a negative length where none is allowed) raises `KafkaDecodeError`; the
connection that sent it is closed and nothing else is touched.
"""

from __future__ import annotations

import struct
from typing import Any

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT32 = struct.Struct(">I")


class KafkaDecodeError(Exception):
    """The bytes are not the message they claim to be."""


class Nullable:
    """A nullable array (its count may be -1) of `kind`."""

    __slots__ = ("kind",)

    def __init__(self, kind: Any) -> None:
        self.kind = kind


Field = tuple[str, Any, int, int]
Schema = tuple[Field, ...]
ANY = 1 << 15  # "every later version" as a field's last version


class Reader:
    """Reads primitives from `data` starting at `pos`."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def _take(self, s: struct.Struct) -> Any:
        pos = self.pos
        try:
            (value,) = s.unpack_from(self.data, pos)
        except struct.error:
            raise KafkaDecodeError(f"truncated at byte {pos}") from None
        self.pos = pos + s.size
        return value

    def int8(self) -> int:
        return self._take(INT8)

    def int16(self) -> int:
        return self._take(INT16)

    def int32(self) -> int:
        return self._take(INT32)

    def int64(self) -> int:
        return self._take(INT64)

    def boolean(self) -> bool:
        return self._take(INT8) != 0

    def raw(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise KafkaDecodeError(f"truncated at byte {self.pos}")
        value = bytes(self.data[self.pos:end])
        self.pos = end
        return value

    def string(self) -> str:
        n = self.int16()
        if n < 0:
            raise KafkaDecodeError("null where a string is required")
        return self.raw(n).decode("utf-8", "replace")

    def nstring(self) -> str | None:
        n = self.int16()
        return None if n < 0 else self.raw(n).decode("utf-8", "replace")

    def bytes_(self) -> bytes:
        n = self.int32()
        if n < 0:
            raise KafkaDecodeError("null where bytes are required")
        return self.raw(n)

    def nbytes(self) -> bytearray | memoryview | None:
        """Nullable bytes (only a produce's record batches are), writable, so the broker writes each batch's
        base offset into it and keeps the batch without copying it again (data.py): a view of the request
        when it came in a buffer of its own (frames.FrameReader), else a copy."""
        n = self.int32()
        if n < 0:
            return None
        end = self.pos + n
        if end > len(self.data):
            raise KafkaDecodeError(f"truncated at byte {self.pos}")
        data = self.data
        value = memoryview(data)[self.pos:end] if type(data) is bytearray else bytearray(memoryview(data)[self.pos:end])
        self.pos = end
        return value

    def uvarint(self) -> int:
        data, pos, shift, value = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data) or shift > 63:
                raise KafkaDecodeError("bad varint")
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                self.pos = pos
                return value
            shift += 7

    def compact_nstring(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.raw(n).decode("utf-8", "replace")

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.raw(self.uvarint())

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


_READ = {
    "int8": Reader.int8, "int16": Reader.int16, "int32": Reader.int32, "int64": Reader.int64,
    "bool": Reader.boolean, "string": Reader.string, "nstring": Reader.nstring, "bytes": Reader.bytes_,
    "nbytes": Reader.nbytes,
}


def decode(schema: Schema, version: int, reader: Reader) -> dict[str, Any]:
    """One struct of `schema` at `version`."""
    out: dict[str, Any] = {}
    for name, kind, first, last in schema:
        if first <= version <= last:
            out[name] = _decode_kind(kind, version, reader)
    return out


def _decode_kind(kind: Any, version: int, reader: Reader) -> Any:
    if type(kind) is str:
        return _READ[kind](reader)
    nullable = type(kind) is Nullable
    if nullable:
        kind = kind.kind
    count = reader.int32()
    if count < 0:
        if nullable:
            return None
        raise KafkaDecodeError("null where an array is required")
    if count > len(reader.data) - reader.pos:  # every element is at least one byte: a lie about the count
        raise KafkaDecodeError(f"array of {count} in {len(reader.data) - reader.pos} bytes")
    if type(kind) is list:
        read = _READ[kind[0]]
        return [read(reader) for _ in range(count)]
    return [decode(kind, version, reader) for _ in range(count)]


_DEFAULTS = {"int8": 0, "int16": 0, "int32": 0, "int64": 0, "bool": False, "string": "", "nstring": None,
             "bytes": b"", "nbytes": None}


def encode(schema: Schema, version: int, values: dict[str, Any], out: list[bytes]) -> None:
    """Append the wire form of one struct of `schema` at `version` to `out`."""
    for name, kind, first, last in schema:
        if first <= version <= last:
            _encode_kind(kind, version, values.get(name, _DEFAULTS.get(kind) if type(kind) is str else []), out)


def _encode_kind(kind: Any, version: int, value: Any, out: list[bytes]) -> None:
    if type(kind) is str:
        if kind == "int32":
            out.append(INT32.pack(value))
        elif kind == "int16":
            out.append(INT16.pack(value))
        elif kind == "int64":
            out.append(INT64.pack(value))
        elif kind in ("int8", "bool"):
            out.append(INT8.pack(int(value)))
        elif kind in ("string", "nstring"):
            if value is None:
                out.append(INT16.pack(-1))
            else:
                raw = value.encode()
                out.append(INT16.pack(len(raw)))
                out.append(raw)
        elif value is None:  # bytes, nbytes
            out.append(INT32.pack(-1))
        else:
            out.append(INT32.pack(len(value)))
            out.append(value)
        return
    if type(kind) is Nullable:
        kind = kind.kind
        if value is None:
            out.append(INT32.pack(-1))
            return
    out.append(INT32.pack(len(value)))
    if type(kind) is list:
        for item in value:
            _encode_kind(kind[0], version, item, out)
    else:
        for item in value:
            encode(kind, version, item, out)


def write_uvarint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
