"""What the delayed-message plugin does to the message it finally routes, pinned on leveret alone.

The local RabbitMQ has no delayed-message plugin, so these tests follow its source instead: the plugin's
repository (github.com/rabbitmq/rabbitmq-delayed-message-exchange) at commit 6686798 ("Update README to
reflect 3.10.x support", its RabbitMQ 3.10 release). Each test names the file it follows. Messages are
published with typed headers (every tag as the test states it) and read back byte for byte.
"""

from __future__ import annotations

import time
import uuid

import pytest

import lockstep
import rawmethods


@pytest.fixture
def session(fuzz_leveret):
    opened = lockstep.Session(lockstep.leveret(fuzz_leveret), f"plugin-{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


def fetched(observed) -> bool:
    """Whether a basic.get observation is a message (GetOk) rather than GetEmpty."""
    return observed[0][0] == "Basic.GetOk"


def fetch_within(session, queue: str, seconds: float = 5.0):
    """basic.get until a message comes (a held message is due within milliseconds here), or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = session.run(("get", queue))
        if fetched(got):
            return got
    return None


def test_the_consumer_gets_the_header_bytes_as_published(session):
    """rabbit_delayed_message_utils.erl, swap_delay_header/set_delivery_headers: the plugin negates x-delay in
    the decoded properties only and leaves the encoded ones, which are what RabbitMQ forwards; so an AMQP
    consumer sees x-delay positive and of the type it was published with (the plugin's issue #64)."""
    headers = [("x-delay", ("l", 5)), ("n", ("b", -1)), ("s", ("S", "a"))]
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "direct"))]))
    session.run(("declare_queue", "q", []))
    session.run(("bind", "q", "dx", "k", []))
    assert session.run(("publish", "dx", "k", {"headers": headers}, b"later", True))[0] == "Basic.Ack"
    got = fetch_within(session, "q")
    assert got is not None and got[2] == b"later"
    assert got[1] == rawmethods.content_header(len(b"later"), {"headers": headers})


def test_routing_after_the_delay_sees_x_delay_negated(session):
    """rabbit_delayed_message.erl, route/3: a due message goes through swap_delay_header
    (rabbit_delayed_message_utils.erl: x-delay set to -Delay, signedint) before rabbit_exchange:route, so a
    headers binding on x-delay matches the negated value, never the published one."""
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "headers"))]))
    for queue, value in (("negated", -5), ("published", 5)):
        session.run(("declare_queue", queue, []))
        session.run(("bind", queue, "dx", "", [("x-match", ("S", "all-with-x")), ("x-delay", ("I", value))]))
    session.run(("publish", "dx", "", {"headers": [("x-delay", ("I", 5))]}, b"m", False))
    got = fetch_within(session, "negated")
    assert got is not None and got[2] == b"m"
    assert not fetched(session.run(("get", "published")))
    assert got[1] == rawmethods.content_header(1, {"headers": [("x-delay", ("I", 5))]})  # and delivered as published


HELD = [("I", 60000), ("l", 60000), ("s", 30000), ("u", 60000), ("i", 60000), ("S", "60000"), ("S", "+60000"),
        ("d", 60000.9), ("f", 60000.0)]
ROUTED_AT_ONCE = [("T", 60000), ("t", True), ("x", b"60000"), ("V", None), ("S", " 60000"), ("S", "6e4"),
                  ("f", 0.5), ("d", -1.5), ("I", 0), ("l", 2**32), ("A", [("I", 60000)]), ("D", (0, 60000)),
                  ("S", "soon")]


@pytest.mark.parametrize("x_delay", HELD + ROUTED_AT_ONCE, ids=repr)
def test_x_delay_is_read_as_the_plugin_reads_it(session, x_delay):
    """rabbit_delayed_message_utils.erl, get_delay_header: the integer types as they are, a longstr through
    binary_to_integer, float and double truncated (0.5 is 0: not delayed); timestamp, bool, byte array, void
    and containers are no delay; rabbit_exchange_type_delayed_message.erl, delay_message: held only when
    0 < Delay =< 2^32-1. (A decimal or a longstr that is not an integer makes the plugin itself fail; leveret
    routes at once, docs/compatibility.md.)"""
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "fanout"))]))
    session.run(("declare_queue", "q", []))
    session.run(("bind", "q", "dx", "", []))
    session.run(("publish", "dx", "", {"headers": [("x-delay", x_delay)]}, b"m", False))
    assert fetched(session.run(("get", "q"))) is (x_delay not in HELD)
