"""The reference broker: the mock cluster inside confluent-kafka's bundled librdkafka (`test.mock.num.brokers`),
reached at the address its metadata names, for running the same librdkafka scenarios against it and leveret
(a client quirk shows on both; a leveret bug only on leveret). kafka-python cannot bootstrap from it (the mock
answers ApiVersions v3 in a form kafka-python cannot read), so only librdkafka clients use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def reference_bootstrap() -> Iterator[str]:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    holder = confluent_kafka.Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "", "log_level": 3})
    broker = next(iter(holder.list_topics(timeout=10).brokers.values()))
    yield f"{broker.host}:{broker.port}"
    holder.flush(5)
    del holder  # the mock cluster lives as long as the client that made it


@pytest.fixture(params=["leveret", "reference"])
def any_bootstrap(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: against leveret and against the reference broker."""
    if request.param == "leveret":
        return request.getfixturevalue("kafka_bootstrap")
    return request.getfixturevalue("reference_bootstrap")
