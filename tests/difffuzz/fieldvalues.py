"""Typed AMQP field values for the fuzzer: values that carry their tag, their wire form, and strategies.

A client library picks the tag for you (pika sends every int as `l`, py-amqp as `I`...), so the fuzzer
states each value as `(tag, value)` and encodes it itself: every tag RabbitMQ 3.10 decodes (t b B s u I i
l f d D T S x A F V) reaches the broker exactly as generated. Containers hold typed values: an array is
`("A", [typed, ...])`, a table `("F", [(key, typed), ...])` (a list, so that key order and duplicate keys
are the generator's to choose).

Numbers are drawn from a few small values on purpose: `1` as `t`, `b`, `I`, `l`, `f`, `d`, `D` and `T`
is where Python's `True == 1 == 1.0` would leak into routing, and random 64-bit values never collide.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

INTEGER_RANGES = {
    "b": (-(2**7), 2**7 - 1), "B": (0, 2**8 - 1), "s": (-(2**15), 2**15 - 1), "u": (0, 2**16 - 1),
    "I": (-(2**31), 2**31 - 1), "i": (0, 2**32 - 1), "l": (-(2**63), 2**63 - 1),
}
_FIXED = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q", "f": ">f", "d": ">d",
          "T": ">Q"}


def encode_value(typed) -> bytes:
    """Tag byte and encoding of one typed value (containers included)."""
    tag, value = typed
    head = tag.encode()
    if tag in _FIXED:
        return head + struct.pack(_FIXED[tag], value)
    if tag == "t":
        return head + (b"\x01" if value else b"\x00")
    if tag == "D":
        scale, unscaled = value
        return head + struct.pack(">Bi", scale, unscaled)
    if tag in "Sx":
        raw = value.encode() if isinstance(value, str) else value
        return head + struct.pack(">I", len(raw)) + raw
    if tag == "V":
        return head
    if tag == "A":
        return head + encode_array(value)
    if tag == "F":
        return head + encode_table(value)
    raise ValueError(f"unknown tag {tag!r}")


def encode_table(entries) -> bytes:
    """A field table from [(key, typed), ...], in that order (duplicates kept)."""
    body = b"".join(struct.pack(">B", len(k.encode())) + k.encode() + encode_value(v) for k, v in entries)
    return struct.pack(">I", len(body)) + body


def encode_array(items) -> bytes:
    body = b"".join(encode_value(v) for v in items)
    return struct.pack(">I", len(body)) + body


def decode_value(raw: bytes, offset: int) -> tuple:
    """The typed value (as `encode_value` takes it) at `offset`, and the offset after it."""
    tag = chr(raw[offset])
    offset += 1
    if tag in _FIXED:
        (value,) = struct.unpack_from(_FIXED[tag], raw, offset)
        return (tag, value), offset + struct.calcsize(_FIXED[tag])
    if tag == "t":
        return (tag, bool(raw[offset])), offset + 1
    if tag == "D":
        scale, unscaled = struct.unpack_from(">Bi", raw, offset)
        return (tag, (scale, unscaled)), offset + 5
    if tag in "Sx":
        (size,) = struct.unpack_from(">I", raw, offset)
        return (tag, raw[offset + 4:offset + 4 + size]), offset + 4 + size
    if tag == "V":
        return (tag, None), offset
    if tag == "A":
        items, offset = decode_array(raw, offset)
        return (tag, items), offset
    if tag == "F":
        entries, offset = decode_table(raw, offset)
        return (tag, entries), offset
    raise ValueError(f"unknown tag {tag!r}")


def decode_table(raw: bytes, offset: int = 0) -> tuple:
    """[(key, typed), ...] in wire order (duplicates kept), and the offset after the table."""
    (size,) = struct.unpack_from(">I", raw, offset)
    offset += 4
    end = offset + size
    entries = []
    while offset < end:
        length = raw[offset]
        key = raw[offset + 1:offset + 1 + length].decode(errors="replace")
        value, offset = decode_value(raw, offset + 1 + length)
        entries.append((key, value))
    return entries, end


def decode_array(raw: bytes, offset: int) -> tuple:
    (size,) = struct.unpack_from(">I", raw, offset)
    offset += 4
    end = offset + size
    items = []
    while offset < end:
        value, offset = decode_value(raw, offset)
        items.append(value)
    return items, end


def show(typed) -> str:
    """A compact reading of a typed value for failure messages: I:1, S:'a', A[b:1], F{k=I:1}."""
    tag, value = typed
    if tag == "A":
        return "A[" + ", ".join(show(v) for v in value) + "]"
    if tag == "F":
        return "F{" + ", ".join(f"{k}={show(v)}" for k, v in value) + "}"
    return f"{tag}:{value!r}"


# --- strategies -------------------------------------------------------------------------------------

def _float32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


_SMALL = st.sampled_from([0, 1, -1, 2])


def _numeric(n: int) -> st.SearchStrategy:
    """Every numeric tag that can hold n (and t, T, D for 0/1), so equal-looking values of many types meet."""
    options = [(tag, n) for tag, (low, high) in INTEGER_RANGES.items() if low <= n <= high]
    options += [("f", float(n)), ("d", float(n)), ("D", (0, n)), ("D", (1, n * 10))]
    if n in (0, 1):
        options += [("t", bool(n))]
    if n >= 0:
        options += [("T", n)]
    return st.sampled_from(options)


scalar_values = st.one_of(
    _SMALL.flatmap(_numeric),
    st.sampled_from([("S", "1"), ("S", "a"), ("S", ""), ("S", b"\xff"), ("x", b"1"), ("x", b"a"), ("x", b""),
                     ("x", b"\xff"), ("V", None), ("d", 1.5), ("f", 1.5), ("d", 0.1), ("f", _float32(0.1)),
                     ("D", (2, 100)), ("l", 2**40), ("T", 2**40)]),
)
"""Scalars drawn to collide: the same number as every type, strings and byte arrays with equal bytes."""


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=3).map(lambda items: ("A", items)),
        st.lists(st.tuples(st.sampled_from(["a", "b"]), children), max_size=2).map(lambda entries: ("F", entries)),
    )


field_values = st.recursive(scalar_values, _containers, max_leaves=4)
"""Any typed value: scalars above, arrays and tables of them, a few levels deep."""


def any_scalar() -> st.SearchStrategy:
    """Scalars of every tag over their whole range (for byte-exact forwarding rather than matching)."""
    ints = [st.tuples(st.just(tag), st.integers(low, high)) for tag, (low, high) in INTEGER_RANGES.items()]
    return st.one_of(
        *ints,
        st.tuples(st.just("t"), st.booleans()),
        st.tuples(st.just("f"), st.floats(width=32, allow_nan=False, allow_infinity=False)),
        st.tuples(st.just("d"), st.floats(allow_nan=False, allow_infinity=False)),
        st.tuples(st.just("D"), st.tuples(st.integers(0, 255), st.integers(-(2**31), 2**31 - 1))),
        st.tuples(st.just("T"), st.integers(0, 2**64 - 1)),
        st.tuples(st.just("S"), st.one_of(st.text(max_size=8), st.binary(max_size=8))),
        st.tuples(st.just("x"), st.binary(max_size=8)),
        st.just(("V", None)),
    )
