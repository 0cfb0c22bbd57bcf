"""A fresh embedded broker per test (its management API on an ephemeral port)."""

from __future__ import annotations

from typing import Iterator

import pytest

from leveret.embedded import EmbeddedBroker


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b
