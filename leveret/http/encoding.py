"""AMQP field-table values made JSON-serialisable, the way RabbitMQ's management API shows them.

Tables decode to bytes (non-UTF-8 longstr, byte arrays), Decimal and Timestamp/datetime values that
`json` cannot write; the management API shows strings, numbers and integer seconds instead.
"""

from __future__ import annotations

import calendar
import datetime
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` with every nested table value turned into something json.dumps accepts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value  # Timestamp is an int subclass: seconds, as RabbitMQ shows timestamps
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return calendar.timegm(value.utctimetuple())
    return str(value)
