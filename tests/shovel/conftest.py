"""Fixtures of the shovel tests."""

from __future__ import annotations

import pytest

from leveret.embedded import EmbeddedBroker


@pytest.fixture
def two_brokers():
    # The destination is entered first so that it stops last: the source's shovel closes its connections
    # before its destination goes away.
    with EmbeddedBroker() as destination, EmbeddedBroker() as source:
        yield source, destination
