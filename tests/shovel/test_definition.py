"""A shovel parameter's value checked as RabbitMQ 3.10 checks it (texts taken from its API's 400 answers)."""

from __future__ import annotations

import pytest

from leveret.broker.errors import PreconditionFailed
from leveret.shovel.definition import parse

BASE = {"src-uri": "amqp://", "src-queue": "a", "dest-uri": "amqp://", "dest-queue": "b"}


def test_defaults() -> None:
    d = parse("s", BASE)
    assert (d.src_uris, d.dest_uris, d.ack_mode, d.src_prefetch_count, d.src_delete_after, d.reconnect_delay) == (
        ("amqp://",), ("amqp://",), "on-confirm", 1000, "never", 5.0)
    assert not d.deletes_itself and d.value is BASE


def test_a_list_of_uris_and_every_option() -> None:
    d = parse("s", {"src-uri": ["amqp://h1", "amqps://h2"], "src-exchange": "x", "src-exchange-key": "k.#",
                    "dest-uri": "amqp://", "dest-exchange": "y", "dest-exchange-key": "z",
                    "ack-mode": "no-ack", "src-delete-after": 5, "reconnect-delay": 0.5,
                    "dest-add-forward-headers": True, "dest-add-timestamp-header": True, "src-prefetch-count": 10})
    assert d.src_uris == ("amqp://h1", "amqps://h2") and d.src_exchange_key == "k.#" and d.dest_exchange_key == "z"
    assert d.deletes_itself and d.add_forward_headers and d.add_timestamp_header and d.reconnect_delay == 0.5


@pytest.mark.parametrize(("change", "text"), [
    ({"dest-uri": None}, 'Key "dest-uri" not found in s'),
    ({"ack-mode": "bogus"},
     'ack-mode should be one of [<<"no-ack">>,<<"on-publish">>,<<"on-confirm">>], actually was <<"bogus">>'),
    ({"src-delete-after": "sometimes"}, 'src-delete-after should be a number greater than or equal to 0, "never" '
                                        'or "queue-length", actually was <<"sometimes">>'),
    ({"src-uri": "http://x"}, '"http://x" not a valid URI: {{unexpected_uri_scheme,"http"},"http://x"}'),
    ({"src-exchange": "x"}, "Cannot specify 'src-exchange' and 'src-queue'"),
    ({"dest-exchange": "x"}, "Cannot specify 'dest-exchange' and 'dest-queue'"),
    ({"src-queue": None}, "Must specify 'src-exchange' or 'src-queue'"),
    ({"src-prefetch-count": -1}, "src-prefetch-count should be a non-negative integer, actually was -1"),
    ({"dest-add-forward-headers": "yes"}, 'dest-add-forward-headers should be boolean, actually was <<"yes">>'),
    ({"src-protocol": "amqp10"}, 'src-protocol should be one of [<<"amqp091">>], actually was <<"amqp10">>'),
])
def test_refusals_carry_rabbitmqs_text(change: dict, text: str) -> None:
    value = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(PreconditionFailed) as refused:
        parse("s", value)
    assert refused.value.text == text
