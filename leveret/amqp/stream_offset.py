"""The `x-stream-offset` header a stream delivery carries, spliced into the stored property bytes.

The broker never decodes properties on the delivery path, so the header is added to the raw bytes a
stream stored: this is codec knowledge (the property flags, short strings and the field-table layout),
kept here beside the codec. The broker is handed `delivery_properties` through `PropertiesCodec`
(broker/message.py) by whoever builds it.
"""

from __future__ import annotations

import struct

from .properties import BasicProperties

OFFSET_HEADER = "x-stream-offset"

# The header entry appended to each delivery's properties: name, type tag 'l', then the offset.
_HEADER_ENTRY = b"\x0f" + OFFSET_HEADER.encode() + b"l"
_OFFSET = struct.Struct(">q")
_U32 = struct.Struct(">I")
_ENTRY_SIZE = len(_HEADER_ENTRY) + 8
_CONTENT_TYPE, _CONTENT_ENCODING, _HEADERS = 0x8000, 0x4000, 0x2000


def with_offset_header(props_raw: bytes, offset: int) -> bytes:
    """The raw property bytes with `x-stream-offset = offset` appended to the headers table.

    Done on bytes because the broker never decodes properties on the delivery path: flags, then
    content-type and content-encoding (shortstrs) are skipped to reach the headers table, whose
    length grows by one entry; without headers the flag is set and a one-entry table inserted.
    """
    if len(props_raw) < 2:
        props_raw = b"\x00\x00"
    flags = (props_raw[0] << 8) | props_raw[1]
    pos = 2
    if flags & _CONTENT_TYPE:
        pos += 1 + props_raw[pos]
    if flags & _CONTENT_ENCODING:
        pos += 1 + props_raw[pos]
    entry = _HEADER_ENTRY + _OFFSET.pack(offset)
    if flags & _HEADERS:
        (length,) = _U32.unpack_from(props_raw, pos)
        end = pos + 4 + length
        return b"".join(
            (props_raw[:pos], _U32.pack(length + _ENTRY_SIZE), props_raw[pos + 4 : end], entry, props_raw[end:])
        )
    flags |= _HEADERS
    return b"".join(
        (bytes(((flags >> 8) & 0xFF, flags & 0xFF)), props_raw[2:pos], _U32.pack(_ENTRY_SIZE), entry, props_raw[pos:])
    )


def delivery_properties(props_raw: bytes, offset: int) -> BasicProperties:
    """The properties of a stream delivery: the stored ones with the offset header appended."""
    return BasicProperties.from_raw(with_offset_header(props_raw, offset))
