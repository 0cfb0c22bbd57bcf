"""The fuzzer's fixtures: one embedded leveret per module (each sequence gets a fresh vhost on it), and
the raw-frame client of the differential suite on the import path."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "diff"))

from leveret.embedded import EmbeddedBroker  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_leveret() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def brokers(fuzz_leveret: EmbeddedBroker, rabbitmq_url: str) -> tuple:
    """(RabbitMQ, leveret): the reference first; skipped without a RabbitMQ."""
    import lockstep

    return lockstep.rabbitmq(), lockstep.leveret(fuzz_leveret)
