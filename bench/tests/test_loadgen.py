"""The generator's scenarios and honesty checks, against the in-process null broker.

Small counts: these check that every scenario runs, finishes by itself and
reports honest results when the broker is honest, and that the checks fire
when it is not.
"""

from __future__ import annotations

import socket
import threading

import pytest

from bench.loadgen import scenarios, wire
from bench.loadgen.client import Connection, Publisher, PublishResult
from bench.loadgen.ledger import Ledger
from bench.loadgen.nullbroker import NullSession, NullState


def _null_broker():
    """A null broker on a free loopback port, in threads of this process: (url, state, listening socket)."""
    state = NullState()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(256)
    port = lsock.getsockname()[1]

    def accept() -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            NullSession(conn, state).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"amqp://guest:guest@127.0.0.1:{port}/", state, lsock


@pytest.fixture(scope="module")
def null_url():
    url, state, lsock = _null_broker()
    yield url, state
    lsock.close()


@pytest.fixture(scope="module")
def two_null_brokers():
    """Two independent null brokers: the shards of a sharded run."""
    first, second = _null_broker(), _null_broker()
    yield [first[:2], second[:2]]
    first[2].close()
    second[2].close()


@pytest.mark.parametrize("run", [
    lambda u: scenarios.publish_only(u, size=16, count=3000, timeout=20),
    lambda u: scenarios.publish_only(u, size=65536, count=200, timeout=20),
    lambda u: scenarios.confirms(u, count=3000, timeout=20),
    lambda u: scenarios.consume(u, count=3000, timeout=20),
    lambda u: scenarios.end_to_end(u, count=3000, timeout=20),
    lambda u: scenarios.end_to_end(u, count=200, rate=1000.0, timeout=20),
    lambda u: scenarios.fanout(u, count=1000, timeout=20),
    lambda u: scenarios.many_queues(u, count=1600, timeout=20),
    lambda u: scenarios.declares(u, count=50, timeout=20),
    lambda u: scenarios.backlog(u, count=3000, timeout=20),
    lambda u: scenarios.connections(u, count=20, idle=0.1, per_connection=3, timeout=20),
])
def test_scenario_is_honest_against_an_honest_broker(null_url, run):
    result = run(null_url[0])
    assert result["verdict"]["ok"], result["verdict"]["problems"]


def test_ledger_counts_duplicates_gaps_and_strangers():
    ledger = Ledger([3, 2])
    ledger.seen[0][0] = 1
    ledger.seen[0][2] = 1
    ledger.seen[1][1] = 1
    ledger.duplicates = 1
    summary = ledger.summary()
    assert summary == {"expected": 5, "unique": 3, "gaps": 2, "duplicates": 1, "unknown": 0}


def test_a_lost_message_fails_the_verdict(null_url):
    url, state = null_url
    conn = Connection(url)
    conn.channel_open(1)
    conn.queue_declare(1, "lossy")
    Publisher(conn, 1, "", "lossy", 64, confirms=True).run(100, window=10)
    # The "broker" loses message 7: the ledger must notice the gap.
    q = state.queues["lossy"]
    del q.stamps[7 * wire.STAMP_SIZE:8 * wire.STAMP_SIZE]
    from bench.loadgen.ledger import Verdict
    verdict = Verdict()
    scenarios._drain_verify(url, "lossy", 99, [100], verdict, "verify", deadline=__import__("time").monotonic() + 10)
    conn.close()
    assert not verdict.ok
    assert verdict.checks["verify.gaps"] == 1


class _FakeSock:
    def __init__(self, chunks):
        self.chunks = list(chunks)

    def recv(self, _n, _flags=0):
        return self.chunks.pop(0)

    def settimeout(self, _t):
        pass


def _ack(tag: int, multiple: bool, nack: bool = False) -> bytes:
    pair = wire.BASIC_NACK if nack else wire.BASIC_ACK
    return wire.method_frame(1, pair, wire.U64.pack(tag) + wire.bits(multiple))


def test_out_of_order_and_multiple_confirms_are_counted_exactly():
    pub = Publisher.__new__(Publisher)
    pub.conn = type("C", (), {})()
    pub.conn.sock = _FakeSock([_ack(2, False) + _ack(1, False), _ack(5, True) + _ack(3, False),
                               _ack(7, False) + _ack(6, False, nack=True)])
    pub._rest = b""
    pub._confirmed_upto = 0
    pub._sparse = set()
    res = PublishResult()
    lat: list = []
    sent_at = [0] * 7
    for _ in range(3):
        pub._read_confirms(res, sent_at, lat, block=True)
    assert (res.confirmed, res.nacked) == (6, 1)
    assert len(lat) == 7
    assert pub._confirmed_upto == 7 and not pub._sparse


def _declare_and_leave(url: str, name: str) -> None:
    """What a scenario interrupted after its declare leaves behind."""
    conn = Connection(url)
    conn.channel_open(1)
    conn.queue_declare(1, name)
    conn.close()


def test_cleanup_deletes_what_an_interrupted_scenario_left(null_url):
    url, state = null_url
    name = scenarios._name("interrupted")
    _declare_and_leave(url, name)
    assert name in state.queues
    assert scenarios.cleanup(url) == 1
    assert name not in state.queues and not scenarios._LIVE


def test_many_queues_spreads_its_queues_over_shards(two_null_brokers):
    (url0, state0), (url1, state1) = two_null_brokers
    declared: list[tuple[int, str]] = []

    class Recording(dict):
        def __init__(self, shard: int) -> None:
            super().__init__()
            self.shard = shard

        def __setitem__(self, name, queue) -> None:
            declared.append((self.shard, name))
            super().__setitem__(name, queue)

    state0.queues, state1.queues = Recording(0), Recording(1)
    result = scenarios.many_queues(url0, count=1600, timeout=20, shard_urls=[url0, url1])
    assert result["verdict"]["ok"], result["verdict"]["problems"]
    assert result["params"]["shards"] == 2
    # Queue i lives on shard i mod 2, its publisher and consumer with it (else the ledger would miss messages).
    assert [shard for shard, name in declared if ".m" in name] == [0, 1] * 4
    assert not state0.queues and not state1.queues
    assert result["metrics"]["generator_cpu_s"] > 0


def test_cleanup_deletes_on_the_shard_that_holds_the_name(two_null_brokers):
    (url0, state0), (url1, state1) = two_null_brokers
    name = scenarios._name("interrupted-shard", home=url1)
    _declare_and_leave(url1, name)
    assert name in state1.queues
    assert scenarios.cleanup(url0) == 1
    assert name not in state1.queues and not scenarios._LIVE and not scenarios._HOME
