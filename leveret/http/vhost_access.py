"""The vhost a request names, the user's permissions in it, and broker errors as the management API's answers.

RabbitMQ's management plugin changes the model as the user would over AMQP: declaring a queue needs the
configure permission on its name, publishing write on the exchange, a get read on the queue. A user who
may not see the vhost is answered 401, an unknown vhost or object 404 `Object Not Found`, and a broker
refusal (an inequivalent redeclaration, a queue in use) 400 with the broker's text, as RabbitMQ answers.
"""

from __future__ import annotations

from aiohttp import web

from leveret.broker.errors import AccessRefused, BrokerError, NotFound
from leveret.broker.vhost import VHost
from leveret.http.responses import USER, Refusal, bad_request, not_authorised, not_found
from leveret.http.target import target_of
from leveret.http.vhosts import selected_vhosts


class ObjectNotFound(Refusal):
    """RabbitMQ's 404 `Object Not Found`."""

    def response(self) -> web.Response:
        return not_found()


class NotAuthorised(Refusal):
    """RabbitMQ's 401 `not_authorised` with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def response(self) -> web.Response:
        return not_authorised(self.reason)


class BrokerRefusal(Refusal):
    """A broker error from a change: 404 `not_found` for a missing object, 401 for a refused name, else 400."""

    def __init__(self, error: BrokerError) -> None:
        super().__init__(error.text)
        self.error = error

    def response(self) -> web.Response:
        if isinstance(self.error, NotFound):
            return web.json_response({"error": "not_found", "reason": self.error.text}, status=404)
        if isinstance(self.error, AccessRefused):
            return not_authorised("Access refused.")
        return bad_request(self.error.text)


def named_vhost(request: web.Request) -> VHost:
    """The vhost in the path (ObjectNotFound when unknown, 401 when the user may not see it)."""
    vhosts = selected_vhosts(request)
    if not vhosts:
        raise ObjectNotFound()
    return vhosts[0]


def require(request: web.Request, vhost: str, kind: str, name: str, permission: str,
            reason: str = "Access refused.") -> None:
    """The user's `permission` (configure, write, read) on `kind` `name` in `vhost`, or RabbitMQ's 401 with
    `reason` (the aliveness test says which resource instead)."""
    user = request[USER]
    grants = target_of(request).users.grants(user.name, vhost)
    if grants is None:
        raise NotAuthorised("User not authorised to access virtual host")
    if not grants.allows(kind, name, permission):
        raise NotAuthorised(reason)


def reserved(name: str) -> bool:
    """Names only the broker may declare or delete (RabbitMQ's 401 "Access refused.")."""
    return name.startswith("amq.")


def commit_soon(request: web.Request) -> None:
    """Start a group commit for what a change left in the message store's buffers (acks, purges, appends),
    as the AMQP server does after each read."""
    durability = getattr(target_of(request), "durability", None)
    if durability is not None:
        durability.kick()
