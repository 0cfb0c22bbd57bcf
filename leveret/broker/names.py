"""Names RabbitMQ makes up or reserves: server-generated queue and consumer names, direct reply-to's."""

from __future__ import annotations

import base64
import secrets

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_TO_PREFIX = REPLY_TO + "."


def random_name(prefix: str) -> str:
    """prefix + 22 url-safe base64 characters (128 random bits), like RabbitMQ's amq.gen-/amq.ctag- names."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
