"""Policies against RabbitMQ 3.10: one differential test per precedence rule, each in a fresh vhost on both
brokers, comparing what the queues then do (counts, where dead letters go, which message overflow keeps)
and what the management API shows; plus the endpoints' shapes and refusals.

Skipped when RabbitMQ's management API (127.0.0.1:15672) is not reachable. Waits are bounded polls: RabbitMQ
applies a changed policy to existing queues asynchronously, and expiry happens on its timers.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, call, rabbitmq_api_up

WAIT_S = 10.0

pytestmark = pytest.mark.skipif(not rabbitmq_api_up(), reason="RabbitMQ's management API is not reachable")


@dataclass
class Side:
    """One broker in one fresh vhost: its API, an AMQP channel there, and the vhost's quoted name."""

    api: str
    channel: Any
    vhost: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return call(self.api, method, path.replace("{vh}", self.vhost), body)

    def policy(self, name: str, pattern: str, definition: dict, apply_to: str = "queues", priority: int = 0,
               kind: str = "policies") -> None:
        answer = self.call("PUT", f"/{kind}/{{vh}}/{name}", {"pattern": pattern, "definition": definition,
                                                            "apply-to": apply_to, "priority": priority})
        assert answer.status in (201, 204), answer

    def declare(self, queue: str, **arguments: Any) -> None:
        durable = arguments.get("x-queue-type") in ("quorum", "stream")
        self.channel.queue_declare(queue, durable=durable, arguments=arguments or None)

    def publish(self, queue: str, *bodies: str, exchange: str = "") -> None:
        """Publish and wait for each confirm, so the queue holds (or refused) the message before we look."""
        for body in bodies:
            try:
                self.channel.basic_publish(exchange, queue, body.encode())
            except pika.exceptions.NackError:
                pass  # x-overflow reject-publish: what the queue keeps is what the test compares

    def count(self, queue: str) -> int | None:
        """Ready messages (a passive declare); None once the queue is gone."""
        try:
            return self.channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            self.channel = self.channel.connection.channel()
            self.channel.confirm_delivery()
            return None

    def until(self, check: Callable[[], Any], want: Any) -> Any:
        """Poll `check` until it returns `want` (at most WAIT_S); its last answer."""
        deadline = time.monotonic() + WAIT_S
        while (got := check()) != want and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def queue_policies(self, *queues: str) -> list[tuple]:
        """(policy, operator_policy, effective_policy_definition) of each queue, from one listing (RabbitMQ
        shows them once it has emitted the queues' stats, within its 5 s interval)."""
        columns = "name,policy,operator_policy,effective_policy_definition"
        deadline = time.monotonic() + WAIT_S
        while True:
            rows = {row["name"]: row for row in self.call("GET", f"/queues/{{vh}}?columns={columns}").body}
            if all("effective_policy_definition" in rows.get(q, {}) for q in queues) or time.monotonic() > deadline:
                return [tuple(rows.get(q, {}).get(key) for key in ("policy", "operator_policy",
                                                                     "effective_policy_definition")) for q in queues]
            time.sleep(0.1)


@pytest.fixture(scope="module")
def leveret() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


Scenario = Callable[[Side], Any]


@pytest.fixture
def differential(leveret: EmbeddedBroker) -> Callable[[Scenario], Any]:
    """`differential(scenario)`: run it on both brokers in a fresh vhost each; the results must be equal."""

    def run(scenario: Scenario) -> Any:
        results = {}
        sides = (("rabbitmq", RABBITMQ_API, 5672), ("leveret", f"http://127.0.0.1:{leveret.server.http_port}/api",
                                                     leveret.port))
        vhost = f"pol-{uuid.uuid4().hex[:8]}"  # the same name on both: the API's answers carry it
        for label, api, port in sides:
            quoted = urllib.parse.quote(vhost, safe="")
            assert call(api, "PUT", f"/vhosts/{quoted}").status == 201
            try:
                call(api, "PUT", f"/permissions/{quoted}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
                connection = pika.BlockingConnection(pika.URLParameters(
                    f"amqp://guest:guest@127.0.0.1:{port}/{quoted}"))
                try:
                    channel = connection.channel()
                    channel.confirm_delivery()
                    results[label] = scenario(Side(api, channel, quoted))
                finally:
                    connection.close()
            finally:
                call(api, "DELETE", f"/vhosts/{quoted}")
        assert results["leveret"] == results["rabbitmq"]
        return results["rabbitmq"]

    return run


def test_the_highest_priority_applicable_policy_wins_without_merging(differential) -> None:
    def scenario(side: Side) -> Any:
        side.policy("low", "^q", {"max-length": 5, "message-ttl": 600000}, priority=0)
        side.policy("high", "q", {"max-length": 2}, priority=1)
        # delivery-limit is a quorum queue's: the policy holding it does not apply to a classic queue
        side.policy("quorum-only", "^d", {"delivery-limit": 3, "message-ttl": 100}, priority=1)
        side.policy("any", "^d", {"message-ttl": 200})
        side.declare("q1")
        side.declare("d-classic")
        side.publish("q1", "a", "b", "c", "d")
        return side.queue_policies("q1", "d-classic"), side.count("q1")

    assert differential(scenario) == ([("high", None, {"max-length": 2}), ("any", None, {"message-ttl": 200})], 2)


def test_an_operator_policy_takes_the_lower_value(differential) -> None:
    def scenario(side: Side) -> Any:
        side.policy("p", "^a", {"max-length": 5, "expires": 600000})
        side.policy("p2", "^b", {"max-length": 2})
        side.policy("o", ".*", {"max-length": 3, "expires": 900000, "message-ttl": 600000}, kind="operator-policies")
        side.declare("a1")
        side.declare("b1")
        side.publish("a1", *"abcdef")
        side.publish("b1", *"abcdef")
        return side.queue_policies("a1", "b1"), side.count("a1"), side.count("b1")

    assert differential(scenario)[1:] == (3, 2)


def test_the_lower_of_argument_and_policy_wins_for_max_length_ttl_and_expires(differential) -> None:
    def scenario(side: Side) -> Any:
        side.policy("lengths", "^len", {"max-length": 3})
        side.policy("ttl", "^ttl", {"message-ttl": 600000})
        side.policy("ttl-low", "^ttl-p", {"message-ttl": 1}, priority=1)
        side.policy("expiry", "^exp", {"expires": 600000})
        side.policy("expiry-low", "^exp-p", {"expires": 300}, priority=1)
        side.declare("len-a", **{"x-max-length": 1})
        side.declare("len-p", **{"x-max-length": 5})
        side.declare("ttl-a", **{"x-message-ttl": 1})
        side.declare("ttl-p", **{"x-message-ttl": 600000})
        side.declare("exp-a", **{"x-expires": 300})
        side.declare("exp-p", **{"x-expires": 600000})
        for queue in ("len-a", "len-p", "ttl-a", "ttl-p"):
            side.publish(queue, *"abcdef")
        lengths = side.count("len-a"), side.count("len-p")
        ttls = side.until(lambda: (side.count("ttl-a"), side.count("ttl-p")), (0, 0))
        # Through the API: a passive declare would count as a use and renew x-expires.
        expired = side.until(lambda: tuple(side.call("GET", f"/queues/{{vh}}/{queue}").status
                                           for queue in ("exp-a", "exp-p")), (404, 404))
        return lengths, ttls, expired

    assert differential(scenario) == ((1, 3), (0, 0), (404, 404))


def test_the_argument_wins_for_dead_lettering_and_overflow(differential) -> None:
    def scenario(side: Side) -> Any:
        for dlx in ("dlx-arg", "dlx-pol"):
            side.channel.exchange_declare(dlx, "direct")
            for key in ("rk-arg", "rk-pol"):
                side.declare(f"{dlx}.{key}")
                side.channel.queue_bind(f"{dlx}.{key}", dlx, key)
        side.policy("dead", "^d", {"dead-letter-exchange": "dlx-pol", "dead-letter-routing-key": "rk-pol"})
        side.policy("over", "^o", {"overflow": "reject-publish", "max-length": 1})
        side.declare("d-both", **{"x-dead-letter-exchange": "dlx-arg", "x-dead-letter-routing-key": "rk-arg"})
        side.declare("d-exchange", **{"x-dead-letter-exchange": "dlx-arg"})
        side.declare("d-none")
        side.declare("o-arg", **{"x-overflow": "drop-head"})
        side.declare("o-none")
        for queue in ("d-both", "d-exchange", "d-none"):
            side.publish(queue, queue)
            method, _, _ = side.channel.basic_get(queue)
            side.channel.basic_reject(method.delivery_tag, requeue=False)
        targets = [f"{dlx}.{key}" for dlx in ("dlx-arg", "dlx-pol") for key in ("rk-arg", "rk-pol")]
        side.until(lambda: sum(side.count(queue) or 0 for queue in targets), 3)
        where = {}
        for queue in targets:
            while (got := side.channel.basic_get(queue, auto_ack=True))[0] is not None:
                where[got[2].decode()] = queue
        kept = []
        for queue in ("o-arg", "o-none"):
            side.publish(queue, "first", "second")
            kept.append(side.channel.basic_get(queue, auto_ack=True)[2].decode())
        return where, kept

    assert differential(scenario) == (
        {"d-both": "dlx-arg.rk-arg", "d-exchange": "dlx-arg.rk-pol", "d-none": "dlx-pol.rk-pol"},
        ["second", "first"])


def test_a_policy_change_applies_to_existing_queues(differential) -> None:
    def scenario(side: Side) -> Any:
        side.declare("q1")
        side.publish("q1", *"abcde")
        side.policy("p", "^q1$", {"max-length": 2})
        trimmed = side.until(lambda: side.count("q1"), 2)
        assert side.call("DELETE", "/policies/{vh}/p").status == 204

        def grows() -> bool:  # RabbitMQ drops the limit asynchronously: publish until the queue holds more
            side.publish("q1", "x")
            return side.count("q1") == 3

        return trimmed, side.until(grows, True)

    assert differential(scenario) == (2, True)


def test_an_alternate_exchange_argument_wins_over_the_policys(differential) -> None:
    def scenario(side: Side) -> Any:
        for name in ("ae-arg", "ae-pol"):
            side.channel.exchange_declare(name, "fanout")
            side.declare(f"caught-{name}")
            side.channel.queue_bind(f"caught-{name}", name)
        side.policy("ae", "^x", {"alternate-exchange": "ae-pol"}, apply_to="exchanges")
        side.channel.exchange_declare("x-own", "direct", arguments={"alternate-exchange": "ae-arg"})
        side.channel.exchange_declare("x-plain", "direct")
        side.publish("nowhere", "own", exchange="x-own")
        side.publish("nowhere", "plain", exchange="x-plain")
        policy = side.call("GET", "/exchanges/{vh}/x-plain").body.get("policy")
        return policy, side.until(lambda: (side.count("caught-ae-arg"), side.count("caught-ae-pol")), (1, 1))

    assert differential(scenario) == ("ae", (1, 1))


def test_the_endpoints_answer_alike(differential) -> None:
    def scenario(side: Side) -> Any:
        good = {"pattern": "^q", "definition": {"max-length": 2}, "apply-to": "queues", "priority": 1}
        steps = [
            ("PUT", "/policies/{vh}/p", good),
            ("PUT", "/policies/{vh}/p", {**good, "priority": 2.5}),
            ("PUT", "/policies/{vh}/a", {"pattern": ".*", "definition": {"expires": 9000}}),
            ("GET", "/policies/{vh}/p", None),
            ("GET", "/policies/{vh}", None),
            ("GET", "/policies/{vh}/nope", None),
            ("PUT", "/policies/{vh}/b", {"definition": {"expires": 1}}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x"}),
            ("PUT", "/policies/{vh}/b", {"pattern": 1, "definition": {"expires": 1}}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {}}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {"expires": 1}, "apply-to": "foo"}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {"expires": 1}, "priority": "x"}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {"message-ttl": -1, "expires": 0}}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {"bogus": 1, "zz": [1, "b"]}}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {"overflow": "x", "queue-mode": "y"}}),
            ("PUT", "/policies/{vh}/b", {"pattern": "x", "definition": {"max-age": "1Q"}}),
            ("PUT", "/operator-policies/{vh}/o", {"pattern": "x", "definition": {"overflow": "drop-head"}}),
            ("PUT", "/operator-policies/{vh}/o", {"pattern": "x", "definition": {"max-length": "x"}}),
            ("PUT", "/operator-policies/{vh}/o", {"pattern": "x", "definition": {"max-length": 3}}),
            ("GET", "/operator-policies/{vh}", None),
            ("GET", "/parameters/operator_policy/{vh}", None),
            ("DELETE", "/operator-policies/{vh}/o", None),
            ("DELETE", "/policies/{vh}/a", None),
            ("DELETE", "/policies/{vh}/a", None),
            ("GET", "/policies/{vh}", None),
        ]
        results = []
        for method, path, body in steps:
            answer = side.call(method, path, body)
            results.append((answer.status, answer.body))
        return results

    results = differential(scenario)
    assert [status for status, _ in results][:3] == [201, 204, 201]
