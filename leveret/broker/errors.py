"""Protocol-neutral broker errors.

The broker raises these; the server maps each to a channel.close or connection.close carrying
`reply_code` and the text "<REPLY_NAME> - <text>" plus the class/method ids of the failing method.
`text` holds RabbitMQ's wording after the "CODE - " prefix so clients see the same messages.
"""

from __future__ import annotations

from typing import ClassVar


class BrokerError(Exception):
    """Base of every error a broker operation reports to a client."""

    reply_code: ClassVar[int] = 541
    reply_name: ClassVar[str] = "INTERNAL_ERROR"
    connection_level: ClassVar[bool] = True

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


class AccessRefused(BrokerError):
    """403: the operation is forbidden (reserved names, default exchange, exclusive use)."""

    reply_code = 403
    reply_name = "ACCESS_REFUSED"
    connection_level = False


class NotFound(BrokerError):
    """404: no such exchange or queue."""

    reply_code = 404
    reply_name = "NOT_FOUND"
    connection_level = False


class ResourceLocked(BrokerError):
    """405: an exclusive queue owned by another connection."""

    reply_code = 405
    reply_name = "RESOURCE_LOCKED"
    connection_level = False


class PreconditionFailed(BrokerError):
    """406: inequivalent redeclaration, unknown delivery tag, queue in use, ..."""

    reply_code = 406
    reply_name = "PRECONDITION_FAILED"
    connection_level = False


class CommandInvalid(BrokerError):
    """503 (connection): e.g. an unknown exchange type."""

    reply_code = 503
    reply_name = "COMMAND_INVALID"
    connection_level = True


class NotAllowed(BrokerError):
    """530 (connection): e.g. a reused consumer tag."""

    reply_code = 530
    reply_name = "NOT_ALLOWED"
    connection_level = True


class NotImplementedByBroker(BrokerError):
    """540 (connection): features RabbitMQ refuses too (prefetch_size, flow active=false, ...)."""

    reply_code = 540
    reply_name = "NOT_IMPLEMENTED"
    connection_level = True


class InternalError(BrokerError):
    """541 (connection): a bug; the server logs it and closes the connection."""

    reply_code = 541
    reply_name = "INTERNAL_ERROR"
    connection_level = True
