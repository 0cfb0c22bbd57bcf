"""Hypothesis strategies for AMQP values: field tables, method arguments, properties."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from leveret.amqp.properties import FIELDS as PROPERTY_FIELDS
from leveret.amqp.spec import METHODS
from leveret.amqp.table import Timestamp

# 63 code points are at most 252 UTF-8 bytes: always a valid shortstr.
shortstrs = st.text(max_size=63)
longstrs = st.binary(max_size=300)

decimals = st.builds(
    lambda unscaled, scale: Decimal(unscaled).scaleb(-scale),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 20),
)

scalar_values = st.one_of(
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    decimals,
    st.text(max_size=40),
    st.binary(max_size=40),
    st.builds(Timestamp, st.integers(0, 2**64 - 1)),
    st.none(),
)

field_values = st.recursive(
    scalar_values,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(shortstrs, children, max_size=4),
    ),
    max_leaves=12,
)

tables = st.dictionaries(shortstrs, field_values, max_size=6)

_BY_TYPE = {
    "octet": st.integers(0, 255),
    "short": st.integers(0, 2**16 - 1),
    "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**64 - 1),
    "shortstr": shortstrs,
    "longstr": longstrs,
    "bit": st.booleans(),
    "table": tables,
}


def method_instances(cls) -> st.SearchStrategy:
    """Instances of one method class with every field drawn from its spec type."""
    return st.builds(cls, **{name: _BY_TYPE[ftype] for name, ftype in cls.FIELDS})


any_method = st.sampled_from(sorted(METHODS.values(), key=lambda c: c.INDEX)).flatmap(method_instances)

_PROPERTY_VALUES = {
    "content_type": shortstrs,
    "content_encoding": shortstrs,
    "headers": tables,
    "delivery_mode": st.integers(0, 255),
    "priority": st.integers(0, 255),
    "correlation_id": shortstrs,
    "reply_to": shortstrs,
    "expiration": shortstrs,
    "message_id": shortstrs,
    "timestamp": st.integers(0, 2**64 - 1),
    "type": shortstrs,
    "user_id": shortstrs,
    "app_id": shortstrs,
    "cluster_id": shortstrs,
}

# Each property present or absent independently.
property_fields = st.fixed_dictionaries(
    {}, optional={name: _PROPERTY_VALUES[name] for name in PROPERTY_FIELDS}
)
