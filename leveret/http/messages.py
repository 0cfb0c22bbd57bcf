"""Messages in the management API's JSON: properties, payloads and their encodings, both ways.

What POST /api/exchanges/.../publish takes (`properties`, `payload`, `payload_encoding` "string" or
"base64") and what POST /api/queues/.../get answers (`payload_bytes`, `redelivered`, `exchange`,
`routing_key`, `message_count`, `properties`, `payload`, `payload_encoding`), with RabbitMQ 3.10's
refusals (`["not_int","delivery_mode"]`, `["unsupported_encoding","x"]`, ...).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from leveret.amqp.properties import FIELDS, BasicProperties
from leveret.http.encoding import jsonable
from leveret.http.responses import BadRequest

INTEGER_PROPERTIES = ("delivery_mode", "priority", "timestamp")


def flag(body: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean field as RabbitMQ reads it: true/false, or the strings "true"/"false" (rabbitmqadmin's)."""
    value = body.get(key, default)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise BadRequest(["not_boolean", value])


def integer(body: dict[str, Any], key: str, default: int | None = None) -> int:
    """An integer field, given as a number or a string of one (rabbitmqadmin sends "count": "1")."""
    value = body.get(key, default)
    if isinstance(value, bool):
        raise BadRequest(["not_int", key])
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(["not_int", key]) from None


def properties_from_json(raw: Any) -> BasicProperties:
    """The `properties` object of a publish as AMQP basic properties."""
    if not isinstance(raw, dict):
        raise BadRequest("properties must be an object")
    values: dict[str, Any] = {}
    for name in FIELDS:
        if name not in raw:
            continue
        value = raw[name]
        if name in INTEGER_PROPERTIES:
            value = integer(raw, name)
        elif name == "headers":
            if not isinstance(value, dict):
                raise BadRequest(["not_table", "headers"])
        elif not isinstance(value, str):
            raise BadRequest(["not_string", name])
        values[name] = value
    return BasicProperties(**values)


def payload_from_json(body: dict[str, Any]) -> bytes:
    """The payload of a publish, decoded from its `payload_encoding`."""
    encoding = body["payload_encoding"]
    payload = body.get("payload", "")
    if not isinstance(payload, str):
        raise BadRequest("payload must be a string")
    if encoding == "string":
        return payload.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(["invalid_base64", payload]) from None
    raise BadRequest(["unsupported_encoding", encoding])


def properties_to_json(properties: Any) -> dict[str, Any]:
    """The properties a message carries, as the `properties` of a get answer (absent ones left out)."""
    decoded = properties if isinstance(properties, BasicProperties) else BasicProperties.from_raw(properties.raw)
    return jsonable(decoded.as_dict())


def payload_to_json(body: bytes, encoding: str, truncate: int | None) -> tuple[str, str]:
    """(payload, payload_encoding) of a get answer: "auto" gives text when the bytes are UTF-8."""
    if truncate is not None:
        body = body[:truncate]
    if encoding == "auto":
        try:
            return body.decode("utf-8"), "string"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "base64"


def got_message(message: Any, redelivered: bool, remaining: int, encoding: str, truncate: int | None) -> dict:
    """One message of a get answer."""
    body = bytes(message.body)
    payload, payload_encoding = payload_to_json(body, encoding, truncate)
    return {
        "payload_bytes": len(body),
        "redelivered": redelivered,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "message_count": remaining,
        "properties": properties_to_json(message.properties),
        "payload": payload,
        "payload_encoding": payload_encoding,
    }
