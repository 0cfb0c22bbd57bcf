"""Basic content properties, kept as raw bytes and decoded only when someone asks.

Guarded by bench/bench_codec.py ("props").

The broker mostly forwards properties untouched: a delivery re-sends exactly the bytes the
publisher sent (`BasicProperties.raw`). So `BasicProperties.from_raw(raw)` only stores the
bytes (property flags + values) and decodes them on the first attribute access; `raw` of an
unchanged instance is the input itself. `delivery_mode` has a cheap path that skips over the
fields before it without a full decode, because every publish needs it.

Instances are immutable; `replace(**changes)` returns a new one. Values: shortstr fields
are str, delivery_mode/priority int, timestamp int, headers dict (see table.py); an absent
property is None. Malformed raw bytes raise MalformedProperties when first decoded (RabbitMQ
answers a malformed property list with 541 INTERNAL_ERROR when it gets to it).
"""

from __future__ import annotations

import struct

from .errors import MalformedFrame, MalformedProperties
from .table import decode_table, encode_table
from .wire import CONTENT_HEADER, CONTENT_HEADER_PREFIX, UINT16, UINT32, UINT64, encode_shortstr

FIELDS = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority",
    "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
    "user_id", "app_id", "cluster_id",
)
# Wire type per field, in flag order: s = shortstr, F = table, o = octet, T = timestamp.
_KINDS = "ssFoossssTssss"
_FLAG_BITS = tuple(1 << (15 - i) for i in range(14))
_CONTENT_TYPE, _CONTENT_ENCODING, _HEADERS, _DELIVERY_MODE = _FLAG_BITS[:4]
# headers, reply_to, expiration, user_id: the properties a broker must look at when it routes a publish.
_ROUTING_BITS = _HEADERS | _FLAG_BITS[6] | _FLAG_BITS[7] | _FLAG_BITS[11]
_CONTINUATION = 1
_ABSENT = (None,) * 14


class BasicProperties:
    """The 14 basic properties, raw bytes and decoded values each computed at most once."""

    __slots__ = ("_raw", "_values")

    def __init__(
        self,
        *,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: dict | None = None,
        delivery_mode: int | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        type: str | None = None,  # noqa: A002 - the spec's name
        user_id: str | None = None,
        app_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self._raw: bytes | None = None
        self._values: tuple | None = (
            content_type, content_encoding, headers, delivery_mode, priority, correlation_id,
            reply_to, expiration, message_id, timestamp, type, user_id, app_id, cluster_id,
        )

    @classmethod
    def from_raw(cls, raw: bytes) -> BasicProperties:
        """Wrap raw property bytes (flags + values) without decoding them."""
        self = cls.__new__(cls)
        self._raw = raw
        self._values = None
        return self

    @property
    def raw(self) -> bytes:
        """The wire form: property flags then the present values (cached)."""
        raw = self._raw
        if raw is None:
            raw = self._raw = _encode(self._values)
        return raw

    @property
    def delivery_mode(self) -> int | None:
        """delivery_mode, read straight from the raw bytes when nothing is decoded yet."""
        values = self._values
        if values is not None:
            return values[3]
        raw = self._raw
        try:
            (flags,) = UINT16.unpack_from(raw, 0)
            if not flags & _DELIVERY_MODE:
                return None
            offset = 2
            if flags & _CONTENT_TYPE:
                offset += 1 + raw[offset]
            if flags & _CONTENT_ENCODING:
                offset += 1 + raw[offset]
            if flags & _HEADERS:
                offset += 4 + UINT32.unpack_from(raw, offset)[0]
            return raw[offset]
        except (struct.error, IndexError):
            raise MalformedProperties("cannot decode content properties") from None

    def check(self) -> None:
        """Raise MalformedProperties unless the raw bytes are a well-formed property list.

        RabbitMQ decodes every publish's properties and answers 541 when they do not decode; leveret
        decodes them only on demand, so a publish is checked here instead: lengths are walked, nothing
        is decoded (a headers table is skipped by its size; routing decodes it when present). Without
        this a malformed property would surface later, when dead-lettering rewrites the message.
        Guarded by bench/bench_codec.py ("props: check").
        """
        if self._values is not None:
            return
        raw = self._raw
        try:
            flags = (raw[0] << 8) | raw[1]
            # What most publishes carry, checked without the general walk: nothing, delivery_mode,
            # content_type + delivery_mode.
            if flags == 0:
                if len(raw) == 2:
                    return
            elif flags == _DELIVERY_MODE:
                if len(raw) == 3:
                    return
            elif flags == _CONTENT_TYPE | _DELIVERY_MODE:
                if len(raw) == 4 + raw[2]:
                    return
            kinds = _PRESENT.get(flags)
            if kinds is None:
                kinds = _PRESENT[flags] = _present_kinds(flags)
            offset = 2
            for kind in kinds:
                if kind == "s":
                    offset += 1 + raw[offset]
                elif kind == "o":
                    offset += 1
                elif kind == "T":
                    offset += 8
                else:  # F
                    offset += 4 + UINT32.unpack_from(raw, offset)[0]
        except (struct.error, IndexError):
            raise MalformedProperties("cannot decode content properties: cut short") from None
        if offset != len(raw):
            raise MalformedProperties("cannot decode content properties: they do not match their flags")

    @property
    def routing_plain(self) -> bool:
        """True when none of headers, reply_to, expiration and user_id is set: one test of the flag bits
        lets a publish skip every check those properties call for (guarded by bench a16/a1k)."""
        values = self._values
        if values is None:
            raw = self._raw
            return not ((raw[0] << 8) | raw[1]) & _ROUTING_BITS
        return values[2] is None and values[6] is None and values[7] is None and values[11] is None

    def _decode(self) -> tuple:
        values = self._values = _decode(self._raw)
        return values

    def replace(self, **changes) -> BasicProperties:
        """Return a copy with the given fields changed (None removes a property)."""
        values = self._values if self._values is not None else self._decode()
        fields = dict(zip(FIELDS, values))
        unknown = changes.keys() - fields.keys()
        if unknown:
            raise TypeError(f"unknown properties: {sorted(unknown)}")
        fields.update(changes)
        return BasicProperties(**fields)

    def as_dict(self) -> dict:
        """The present properties as a dict (absent ones left out)."""
        values = self._values if self._values is not None else self._decode()
        return {name: value for name, value in zip(FIELDS, values) if value is not None}

    def __eq__(self, other):
        if not isinstance(other, BasicProperties):
            return NotImplemented
        if self._raw is not None and self._raw == other._raw:
            return True
        mine = self._values if self._values is not None else self._decode()
        theirs = other._values if other._values is not None else other._decode()
        return mine == theirs

    __hash__ = None  # equality is by value, and headers are dicts

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"BasicProperties({fields})"


def _field(index: int) -> property:
    """A read-only property for field index that decodes on first use.

    An absent field is answered from the flag bits alone, without decoding: the broker asks every
    publish for `headers`, `expiration` and `user_id`, which most messages do not carry.
    """
    bit = _FLAG_BITS[index]

    def get(self):
        values = self._values
        if values is None:
            raw = self._raw
            if not ((raw[0] << 8) | raw[1]) & bit:
                return None
            values = self._decode()
        return values[index]

    get.__name__ = FIELDS[index]
    return property(get, doc=f"The {FIELDS[index]} property, None when absent.")


for _index, _name in enumerate(FIELDS):
    if _name != "delivery_mode":
        setattr(BasicProperties, _name, _field(_index))
del _index, _name


# flags -> the wire kinds of the properties present, in order (filled as flag combinations show up;
# the continuation bit is ignored, as RabbitMQ ignores it).
_PRESENT: dict[int, str] = {}


def _present_kinds(flags: int) -> str:
    return "".join(kind for bit, kind in zip(_FLAG_BITS, _KINDS) if flags & bit)


def _decode(raw) -> tuple:
    """Decode raw property bytes into a 14-tuple of values (None when absent)."""
    try:
        (flags,) = UINT16.unpack_from(raw, 0)
        # No 0-9-1 class has more than 15 properties: RabbitMQ ignores a continuation bit (it accepts and
        # forwards flags 0x0001 with nothing after them), and so do we.
        flags &= ~_CONTINUATION
        if not flags:
            if len(raw) != 2:
                raise MalformedFrame("trailing bytes after content properties")
            return _ABSENT
        values = []
        append = values.append
        offset = 2
        for bit, kind in zip(_FLAG_BITS, _KINDS):
            if not flags & bit:
                append(None)
            elif kind == "s":
                n = raw[offset]
                offset += 1
                append(raw[offset : offset + n].decode("utf-8", "surrogateescape"))
                offset += n
            elif kind == "o":
                append(raw[offset])
                offset += 1
            elif kind == "F":
                value, offset = decode_table(raw, offset)
                append(value)
            else:  # T
                append(UINT64.unpack_from(raw, offset)[0])
                offset += 8
        if offset != len(raw):
            raise MalformedFrame("content properties do not match their flags")
        return tuple(values)
    except (struct.error, IndexError) as exc:
        raise MalformedProperties(f"cannot decode content properties: {exc}") from None
    except MalformedFrame as exc:  # from decode_table, or one of the checks above
        raise MalformedProperties(f"cannot decode content properties: {exc.reply_text}") from None


def _encode(values: tuple) -> bytes:
    """Encode a 14-tuple of values (None when absent) into flags + values."""
    flags = 0
    parts = [b""]
    append = parts.append
    for value, bit, kind in zip(values, _FLAG_BITS, _KINDS):
        if value is None:
            continue
        flags |= bit
        if kind == "s":
            append(encode_shortstr(value))
        elif kind == "o":
            append(bytes((value,)))
        elif kind == "F":
            append(encode_table(value))
        else:
            append(UINT64.pack(value))
    parts[0] = UINT16.pack(flags)
    return b"".join(parts)


def decode_content_header(payload) -> tuple[int, int, BasicProperties]:
    """Decode a content-header frame payload into (class_id, body_size, properties).

    The property bytes are copied out of payload (it may be a view of a read buffer).
    """
    try:
        class_id, _weight, body_size = CONTENT_HEADER_PREFIX.unpack_from(payload, 0)
    except struct.error:
        raise MalformedFrame("content header too short") from None
    if len(payload) < CONTENT_HEADER.size:
        raise MalformedFrame("content header without property flags")
    return class_id, body_size, BasicProperties.from_raw(bytes(payload[12:]))


def encode_content_header(class_id: int, body_size: int, props_raw: bytes) -> bytes:
    """Return the content-header frame payload for class_id, body_size and raw properties."""
    return CONTENT_HEADER_PREFIX.pack(class_id, 0, body_size) + props_raw
