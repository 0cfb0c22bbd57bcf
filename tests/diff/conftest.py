"""Differential testing: run one scenario against leveret and against RabbitMQ, demand equal results.

`differential(scenario)` runs a scenario (see `differential.py`) against `amqp_url` and
`rabbitmq_url` and asserts the two normalised results are equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from differential import Names


@pytest.fixture
def differential(amqp_url: str, rabbitmq_url: str) -> Callable[[Callable[[str, Names], Any]], Any]:
    """`differential(scenario)`: assert leveret and RabbitMQ agree; returns RabbitMQ's result.

    When the suite itself runs with `--amqp-url` pointing at RabbitMQ, both runs hit RabbitMQ:
    that proves the scenario is deterministic, which is what a differential test needs first.
    """

    def run(scenario: Callable[[str, Names], Any]) -> Any:
        results = {}
        for label, url in (("rabbitmq", rabbitmq_url), ("broker under test", amqp_url)):
            names = Names()
            results[label] = names.normalise(scenario(url, names))
        assert results["broker under test"] == results["rabbitmq"]
        return results["rabbitmq"]

    return run
