"""pytest plugin (registered by entry point): fixtures that give a test a running leveret.

- `leveret_broker`: a fresh in-process broker on an ephemeral port for the test, stopped afterwards.
- `kafka_bootstrap`: its Kafka listener's host:port (bootstrap servers for Kafka clients).
- `amqp_url`: its URL; with `--amqp-url URL` the fixture returns that URL instead and starts nothing,
  which lets the same tests run against another broker (RabbitMQ, to validate the tests themselves).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leveret.embedded import EmbeddedBroker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--amqp-url",
        default=None,
        help="run tests that use the amqp_url fixture against this broker instead of an embedded leveret",
    )


@pytest.fixture
def leveret_broker() -> Iterator[EmbeddedBroker]:
    """A running embedded broker, stopped (and its temporary data removed) when the test ends."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def amqp_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of the broker under test: an embedded leveret, or the one given with --amqp-url."""
    external = request.config.getoption("--amqp-url")
    if external:
        yield external
        return
    broker = request.getfixturevalue("leveret_broker")
    yield broker.url


@pytest.fixture
def kafka_bootstrap(leveret_broker: EmbeddedBroker) -> str:
    """host:port of the test's embedded broker's Kafka listener."""
    return leveret_broker.kafka_bootstrap
