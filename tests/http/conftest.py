"""A fresh embedded broker per test (its management API on an ephemeral port), and a pika channel to it."""

from __future__ import annotations

from typing import Any, Iterator

import pika
import pytest

from leveret.embedded import EmbeddedBroker


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def channel(broker: EmbeddedBroker) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        yield conn.channel()
    finally:
        conn.close()
