"""A confirming workload that reaches every kind of store write, with a ledger of what the broker promised.

One `run_phase` declares (durable exchange, queue, binding, a delayed-message exchange, a stream, a queue of
its own), publishes persistent messages with confirms to a queue, a stream and the delayed exchange, acks a
message, and commits a transaction. Every outcome goes into a Ledger: confirmed, nacked, or unknown (the
connection closed before the answer). A step that fails with a connection error (541 on a failed declare or
tx.commit) is recorded and the phase carries on over a new connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pika
import pika.exceptions

QUEUE = "fq"
STREAM = "fs"
DELAYED = "fd"
DELAYED_QUEUE = "fdq"
EXCHANGE = "fx"
LONG_DELAY_MS = 3_600_000  # held in the delayed store for the whole test


@dataclass
class Ledger:
    confirmed: dict[str, set[str]] = field(default_factory=lambda: {QUEUE: set(), STREAM: set(), DELAYED: set()})
    nacked: dict[str, set[str]] = field(default_factory=lambda: {QUEUE: set(), STREAM: set(), DELAYED: set()})
    unknown: set[str] = field(default_factory=set)
    unroutable: set[str] = field(default_factory=set)  # returned: its queue was never declared (a 541)
    acked: set[str] = field(default_factory=set)  # taken from QUEUE and acked: may be gone or back
    delivered: set[str] = field(default_factory=set)  # every message a consumer got
    errors: list[str] = field(default_factory=list)  # steps that failed with a channel/connection error

    def failures(self) -> int:
        return sum(len(v) for v in self.nacked.values()) + len(self.unknown) + len(self.errors)


class _Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: pika.BlockingConnection | None = None
        self.ch = None

    def channel(self):
        if self.conn is None or not self.conn.is_open or self.ch is None or not self.ch.is_open:
            self.close()
            self.conn = pika.BlockingConnection(pika.URLParameters(self.url))
            self.ch = self.conn.channel()
            self.ch.confirm_delivery()
        return self.ch

    def close(self) -> None:
        if self.conn is not None and self.conn.is_open:
            try:
                self.conn.close()
            except pika.exceptions.AMQPError:
                pass
        self.conn = None
        self.ch = None


def _persistent(headers: dict | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=2, headers=headers)


def declare(ch, tag: str) -> None:
    ch.exchange_declare(EXCHANGE, "direct", durable=True)
    ch.queue_declare(QUEUE, durable=True)
    ch.queue_bind(QUEUE, EXCHANGE, "k")
    ch.exchange_declare(DELAYED, "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
    ch.queue_declare(DELAYED_QUEUE, durable=True)
    ch.queue_bind(DELAYED_QUEUE, DELAYED, "k")
    ch.queue_declare(STREAM, durable=True, arguments={"x-queue-type": "stream"})
    ch.queue_declare(f"own-{tag}", durable=True)  # a new queue directory each phase


def run_phase(url: str, tag: str, ledger: Ledger, n: int = 3) -> None:
    client = _Client(url)

    def step(name: str, fn) -> bool:
        try:
            fn(client.channel())
            return True
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed) as exc:
            ledger.errors.append(f"{tag} {name}: {exc!r}")
            client.close()
            return False

    def publish(dest: str, exchange: str, routing_key: str, body: str, headers: dict | None = None) -> None:
        try:
            # mandatory: a confirm for a message that reached no queue (its declare failed) promises nothing
            client.channel().basic_publish(exchange, routing_key, body.encode(), _persistent(headers), mandatory=True)
            ledger.confirmed[dest].add(body)
        except pika.exceptions.UnroutableError:
            ledger.unroutable.add(body)
        except pika.exceptions.NackError:
            ledger.nacked[dest].add(body)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed) as exc:
            ledger.unknown.add(body)
            ledger.errors.append(f"{tag} publish {body}: {exc!r}")
            client.close()

    if not step("declare", lambda ch: declare(ch, tag)):
        step("declare again", lambda ch: declare(ch, tag))  # a one-shot fault: the rest of the phase has its queues
    for i in range(n):
        publish(QUEUE, EXCHANGE, "k", f"{tag}-q{i}")
        publish(STREAM, "", STREAM, f"{tag}-s{i}")
        publish(DELAYED, DELAYED, "k", f"{tag}-d{i}", {"x-delay": LONG_DELAY_MS})

    def ack_one(ch) -> None:
        method, _props, body = ch.basic_get(QUEUE)
        if method is not None:
            ch.basic_ack(method.delivery_tag)
            ledger.acked.add(body.decode())
            ledger.delivered.add(body.decode())

    step("ack", ack_one)

    def tx(ch) -> None:
        txc = ch.connection.channel()
        txc.queue_declare(QUEUE, passive=True)  # a commit-ok promises nothing for messages routed nowhere
        txc.tx_select()
        bodies = [f"{tag}-t{i}" for i in range(2)]
        for body in bodies:
            txc.basic_publish(EXCHANGE, "k", body.encode(), _persistent())
        try:
            txc.tx_commit()
        except BaseException:
            ledger.unknown.update(bodies)
            raise
        ledger.confirmed[QUEUE].update(bodies)
        txc.close()

    step("tx", tx)
    client.close()


def drain_queue(url: str, queue: str = QUEUE) -> list[str]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        out = []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body.decode())
    finally:
        conn.close()


def read_stream(url: str, expected: int, queue: str = STREAM, timeout: float = 5.0) -> list[str]:
    """Every message of the stream from its first offset (stops once `expected` arrived, or at the timeout)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1000)
        got: list[str] = []
        ch.basic_consume(queue, lambda c, m, p, b: (got.append(b.decode()), c.basic_ack(m.delivery_tag)),
                         arguments={"x-stream-offset": "first"})
        deadline = timeout
        while len(got) < expected and deadline > 0:
            conn.process_data_events(time_limit=0.05)
            deadline -= 0.05
        conn.process_data_events(time_limit=0.05)  # anything beyond the expected (phantoms) too
        return got
    finally:
        conn.close()
