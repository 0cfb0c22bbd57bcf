"""Helpers of the differential suite: names that differ per run, and how to hide them again.

A scenario is a function `scenario(url, names) -> result` that drives a broker and returns what a
client could observe (bodies, properties, flags, counts, reply codes and texts) as plain data.
The only things normalised away are names the test generated (unique per run) and names the
broker generated (amq.gen-*, amq.ctag-*, direct reply-to addresses).
"""

from __future__ import annotations

import datetime
import re
import time
import uuid
from typing import Any

import pika
import pika.amqp_object

_GENERATED = [
    (re.compile(r"amq\.gen-[A-Za-z0-9_-]+"), "<amq.gen>"),
    (re.compile(r"amq\.ctag-[A-Za-z0-9_-]+"), "<amq.ctag>"),
    (re.compile(r"amq\.rabbitmq\.reply-to\.[A-Za-z0-9_.=+/-]+"), "<reply-to>"),
]


class Names:
    """Unique names for one run of one scenario, and the normaliser that hides them again."""

    def __init__(self) -> None:
        self._run = uuid.uuid4().hex[:10]
        self._placeholders: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        name = f"diff.{label}.{self._run}"
        self._placeholders[name] = f"<{label}>"
        return name

    def normalise(self, value: Any) -> Any:
        if isinstance(value, str):
            # Longest first, so that "diff.q.x" does not eat the prefix of "diff.q2.x".
            for name in sorted(self._placeholders, key=len, reverse=True):
                value = value.replace(name, self._placeholders[name])
            for pattern, placeholder in _GENERATED:
                value = pattern.sub(placeholder, value)
            return value
        if isinstance(value, bytes):
            try:
                return self.normalise(value.decode()).encode()
            except UnicodeDecodeError:
                return value
        if isinstance(value, dict):
            return {self.normalise(k): self.normalise(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.normalise(v) for v in value)
        if isinstance(value, pika.amqp_object.AMQPObject):
            return self.normalise(describe(value))
        return value


def describe(obj: Any) -> Any:
    """A pika method or properties object as ("Class.Method", {field: value}) for comparison."""
    if obj is None:
        return None
    fields = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return (obj.NAME, fields)


def close_of(method) -> tuple | None:
    """(reply code, reply text, class id, method id) of a Channel.Close / Connection.Close."""
    if method is None or not hasattr(method, "reply_code"):
        return None
    return (type(method).NAME, method.reply_code, method.reply_text, method.class_id, method.method_id)


# --- pika helpers shared by the pattern scenarios -------------------------------------------------
WAIT = 5.0


def connection_for(url: str) -> pika.BlockingConnection:
    """A blocking connection with short, bounded timeouts: a hung broker fails the test, not stalls it."""
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.stack_timeout = 10
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


def hide_times(value):
    """x-death times differ per run: keep only that they are timestamps."""
    if isinstance(value, dict):
        return {k: ("<timestamp>" if k == "time" and isinstance(v, datetime.datetime) else hide_times(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [hide_times(v) for v in value]
    return value


def get_within(channel, queue: str, ack: bool = True, timeout: float = WAIT):
    """basic.get until a message arrives or `timeout` passes (None then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=ack)
        if method is not None:
            return method, properties, body
        channel.connection.process_data_events(time_limit=0.01)
    return None
