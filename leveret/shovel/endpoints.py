"""Where a shovel connects: its URIs resolved (no host = this broker), connections opened, queues declared.

Each shovel end is an AMQP 0-9-1 client connection made with aiormq on leveret's own event loop (why
aiormq rather than leveret's server-side codec: docs/architecture.md, "shovel/").
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import aiormq

from leveret.shovel.tls import ClientTLS, tls_end
from leveret.shovel.transport import CoalescingTransport

CONNECT_TIMEOUT = 15.0  # seconds for a whole connection handshake: a silent peer fails the attempt
HEARTBEAT = 10  # seconds: a peer that went away without a FIN is noticed within about twice that


class _WithoutTraceback(logging.Filter):
    """aiormq logs a far end that went away with a traceback; the shovel reports each failure itself in
    one line (worker.py), as the broker logs client errors, so aiormq's line is kept and its traceback
    dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


_QUIET = _WithoutTraceback()
for _name in ("aiormq.connection", "aiormq.channel"):
    logging.getLogger(_name).addFilter(_QUIET)


@dataclass(frozen=True)
class LocalBroker:
    """How a shovel reaches the broker it runs in, for URIs without a host (`amqp://`, `amqp:///vhost`).

    RabbitMQ opens a direct (in-VM) connection there as an internal user with every right; leveret connects
    to its own listener over loopback as its internal identity (leveret/access/internal.py: a password made
    at start that only this process knows), so deleting guest or changing its password breaks no shovel. A
    URI that names a user (`amqp://alice:secret@/vhost`) connects as that user instead.
    """

    host: str
    port: int
    user: str
    password: str


def connection_url(uri: str, local: LocalBroker | None) -> str:
    """The URL aiormq connects to: `uri` itself, or for a URI without a host this broker's listener.

    As in RabbitMQ, `amqp://` means the default vhost "/" and `amqp:///name` the vhost `name`.
    """
    parts = urlsplit(uri)
    if parts.hostname:
        return uri
    if local is None:
        raise ValueError(f"{uri!r} names the local broker, which is not listening for AMQP")
    user = unquote(parts.username) if parts.username is not None else local.user
    password = unquote(parts.password) if parts.password is not None else local.password
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    query = f"?{parts.query}" if parts.query else ""
    return (f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{local.host}:{local.port}/"
            f"{quote(vhost, safe='')}{query}")


def without_password(uri: str) -> str:
    """A URI as listings and forward headers show it: RabbitMQ hides the password."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
    return parts._replace(netloc=netloc).geturl()


async def connect(uris: tuple[str, ...], local: LocalBroker | None,
                  tls: ClientTLS = ClientTLS()) -> aiormq.abc.AbstractConnection:
    """One connection to one of `uris` (chosen at random, as RabbitMQ chooses), bounded in time; an amqps
    URI with leveret's TLS settings and its own query parameters (tls.py)."""
    uri = random.choice(uris)
    url = connection_url(uri, local)
    if "heartbeat=" not in url:
        url += ("&" if "?" in url else "?") + f"heartbeat={HEARTBEAT}"
    async with asyncio.timeout(CONNECT_TIMEOUT):
        end = await asyncio.to_thread(tls_end, uri, tls)  # it reads certificate files: off the loop
        options: dict = {"transport_factory": CoalescingTransport()}
        if end is not None:
            options["context"] = end.context
            if end.server_hostname is not None:
                options["server_hostname"] = end.server_hostname
        return await aiormq.connect(url, **options)


async def declare_queue(connection: aiormq.abc.AbstractConnection, channel: aiormq.abc.AbstractChannel,
                        queue: str) -> tuple[aiormq.abc.AbstractChannel, int]:
    """Make sure `queue` exists as RabbitMQ's shovel does: a passive declare, and when that finds nothing
    a durable declare without arguments (the 404 closed the channel, so a new one is opened for it).
    Returns the channel to go on with and the queue's message count."""
    try:
        ok = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        channel = await connection.channel()
        ok = await channel.queue_declare(queue, durable=True)
    return channel, ok.message_count or 0
