"""Protocol-neutral broker errors.

The broker raises these and knows nothing of any wire protocol: which reply code, reply text prefix and
scope (channel or connection) an error becomes is the listener's business (AMQP: server/replies.py). `text`
holds RabbitMQ's wording, which AMQP clients see after the "REPLY_NAME - " prefix.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error a broker operation reports to a client."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


class AccessRefused(BrokerError):
    """The operation is forbidden (reserved names, the default exchange, another user's identity)."""


class NotFound(BrokerError):
    """No such exchange or queue."""


class ResourceLocked(BrokerError):
    """An exclusive queue owned by another connection."""


class PreconditionFailed(BrokerError):
    """Inequivalent redeclaration, unknown delivery tag, queue in use, a delivery acked too late, ..."""


class CommandInvalid(BrokerError):
    """A request that makes no sense for this broker, e.g. an unknown exchange type (fatal to the connection)."""


class NotAllowed(BrokerError):
    """A request the client's session may not make, e.g. a reused consumer tag (fatal to the connection)."""


class NotImplementedByBroker(BrokerError):
    """Features RabbitMQ refuses too (prefetch_size, flow active=false, ...; fatal to the connection)."""


class InternalError(BrokerError):
    """A bug or an internal failure; the listener logs it and closes the connection."""
