"""The one table from protocol-neutral broker errors to AMQP replies: reply code and scope.

A channel-level reply closes only the channel that made the request (channel.close); a connection-level one
closes the whole connection (connection.close), as RabbitMQ scopes the same codes. The reply text is the
code's spec name, a dash and the broker's RabbitMQ-worded text ("NOT_FOUND - no queue 'q' in vhost '/'").
Another protocol listener maps the same errors to its own codes in its own table.
"""

from __future__ import annotations

from typing import NamedTuple

from leveret.amqp import errors as codes
from leveret.broker.errors import (
    AccessRefused,
    BrokerError,
    CommandInvalid,
    InternalError,
    NotAllowed,
    NotFound,
    NotImplementedByBroker,
    PreconditionFailed,
    ResourceLocked,
)


class Reply(NamedTuple):
    """What a broker error becomes on an AMQP connection."""

    code: int
    text: str
    closes_connection: bool


# error class -> (reply code, closes the connection rather than the channel)
REPLIES: dict[type[BrokerError], tuple[int, bool]] = {
    AccessRefused: (codes.ACCESS_REFUSED, False),
    NotFound: (codes.NOT_FOUND, False),
    ResourceLocked: (codes.RESOURCE_LOCKED, False),
    PreconditionFailed: (codes.PRECONDITION_FAILED, False),
    CommandInvalid: (codes.COMMAND_INVALID, True),
    NotAllowed: (codes.NOT_ALLOWED, True),
    NotImplementedByBroker: (codes.NOT_IMPLEMENTED, True),
    InternalError: (codes.INTERNAL_ERROR, True),
}


def reply_for(error: BrokerError) -> Reply:
    """The AMQP reply for `error`; an error class without an entry (a subclass) takes its nearest base's."""
    for cls in type(error).__mro__:
        entry = REPLIES.get(cls)  # type: ignore[arg-type]
        if entry is not None:
            code, closes_connection = entry
            return Reply(code, codes.format_reply_text(code, error.text), closes_connection)
    return Reply(codes.INTERNAL_ERROR, codes.format_reply_text(codes.INTERNAL_ERROR, error.text), True)
