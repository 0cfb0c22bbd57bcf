"""Every store write that can fail, failing once at each call site a workload reaches: nothing confirmed is lost.

A counting pass runs the workload (workload.py: declares, confirmed publishes to a queue, a stream and a
delayed-message exchange, an ack, a transaction) over a FaultyIO and learns every (kind, call site) the store
reaches and how often. Then, per site, a fresh broker runs the workload with the first (and the last) call at
that site failing; it must

* nack or refuse with 541 what it could not store, and keep the connection of a bystander working;
* confirm every publish of the next round, declare again, commit again: no restart needed;
* after a crash (the loop stops, nothing flushed or closed: what kill -9 leaves) and a restart over the same
  directory, hold every confirmed message (minus those acked), no nacked one, and again after a clean stop.

"truncate" fails the rollback itself (a write fails, then the truncation meant to cut it off fails too);
"disk full" keeps every write failing for a while, then frees the disk.
"""

from __future__ import annotations

import errno

import pika
import pytest

from tests.crash.broker_process import BrokerProcess
from tests.faults.faultyio import FaultyIO
from tests.faults.inprocess import InProcessBroker
from tests.faults.workload import (
    DELAYED,
    QUEUE,
    STREAM,
    Ledger,
    read_stream,
    run_phase,
)

DELAYED_STORE = "amq.delayed-exchange/" + DELAYED


def discover_sites(tmp_path) -> dict[tuple[str, str], int]:
    io = FaultyIO()
    broker = InProcessBroker(str(tmp_path / "count"), io).start()
    try:
        io.calls.clear()
        run_phase(broker.url, "a", Ledger())
        return dict(io.calls)
    finally:
        broker.stop()


class Bystander:
    """A connection that never touches the disk (a transient queue) and must keep working throughout."""

    def __init__(self, url: str) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue

    def round_trip(self) -> None:
        self.ch.basic_publish("", self.queue, b"ping")
        method, _props, body = self.ch.basic_get(self.queue, auto_ack=True)
        assert method is not None and body == b"ping"

    def close(self) -> None:
        self.conn.close()


def stored_delayed(broker: InProcessBroker) -> set[str]:
    def read() -> set[str]:
        store = broker.server.message_store.open_queue("/", DELAYED_STORE)
        return {bytes(m.body).decode() for _offset, m in store.recover()}

    return broker.call(read)


def check_restart(data_dir: str, ledger: Ledger, *, phantoms_allowed: bool, where: str) -> None:
    """Restart after a crash, check; stop cleanly, restart, check again."""
    for _round in range(2):
        broker = InProcessBroker(data_dir).start()
        try:
            queued = drain_queue_keep(broker.url)
            streamed = set(read_stream(broker.url, len(ledger.confirmed[STREAM])))
            delayed = stored_delayed(broker)
        finally:
            broker.stop()
        lost = (ledger.confirmed[QUEUE] - ledger.acked - queued) | (ledger.confirmed[STREAM] - streamed) \
            | (ledger.confirmed[DELAYED] - delayed)
        assert not lost, f"{where}: confirmed messages lost: {sorted(lost)}"
        if not phantoms_allowed:
            phantom = (queued & ledger.nacked[QUEUE]) | (streamed & ledger.nacked[STREAM]) \
                | (delayed & ledger.nacked[DELAYED])
            assert not phantom, f"{where}: nacked messages came back: {sorted(phantom)}"


def drain_queue_keep(url: str) -> set[str]:
    """The queue's messages, read and given back (the second restart must see them again)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        seen: set[str] = set()
        while True:
            method, _props, body = ch.basic_get(QUEUE)
            if method is None:
                break
            seen.add(body.decode())
        return seen  # unacked: requeued when the connection closes
    finally:
        conn.close()


def run_case(data_dir: str, arm, where: str, *, phantoms_allowed: bool = False) -> FaultyIO:
    io = FaultyIO()
    broker = InProcessBroker(data_dir, io).start()
    ledger = Ledger()
    try:
        bystander = Bystander(broker.url)
        arm(io)
        run_phase(broker.url, "a", ledger)
        bystander.round_trip()
        io.disarm()
        after = Ledger()
        run_phase(broker.url, "b", after)
        assert after.failures() == 0, f"{where}: the store did not recover: {after.errors} {after.nacked}"
        bystander.round_trip()
        bystander.close()
    finally:
        broker.crash()
    for dest, ids in after.confirmed.items():
        ledger.confirmed[dest] |= ids
    ledger.acked |= after.acked
    if not phantoms_allowed:
        nacked = set().union(*ledger.nacked.values())
        assert not (ledger.delivered | after.delivered) & nacked, f"{where}: a nacked message was delivered"
    check_restart(data_dir, ledger, phantoms_allowed=phantoms_allowed, where=where)
    return io


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[tuple[str, str], int]:
    return discover_sites(tmp_path_factory.mktemp("sites"))


@pytest.mark.parametrize("kind", ["open", "write", "fsync", "rename"])
def test_a_failure_at_any_call_site_loses_nothing_confirmed_and_the_store_writes_again(tmp_path, sites, kind):
    found = sorted((site, count) for (k, site), count in sites.items() if k == kind)
    assert found, f"the workload reaches no {kind} call"
    for n, (site, count) in enumerate(found):
        for k in sorted({1, count}):
            error = errno.EIO if (n + k) % 2 else errno.ENOSPC

            def arm(io, site=site, k=k, error=error):
                io.arm(kind, site, error, skip=k - 1)

            where = f"{kind} #{k} at {site} ({errno.errorcode[error]})"
            io = run_case(str(tmp_path / f"{n}-{k}"), arm, where)
            assert io.fired, f"{where}: never reached"


def test_a_failed_rollback_truncation_is_survived_too(tmp_path, sites):
    writes = sorted(site for (k, site) in sites if k == "write")
    for n, site in enumerate(writes):
        def arm(io, site=site):
            io.arm("write", site)
            io.arm("truncate")

        # The records a rollback could not cut off may come back after a restart: never confirmed, so allowed.
        run_case(str(tmp_path / str(n)), arm, f"write at {site}, then truncate", phantoms_allowed=True)


def test_a_disk_that_stays_full_for_a_while_then_frees_up(tmp_path):
    def arm(io):
        io.arm("write", stay=True)
        io.arm("open", stay=True)

    run_case(str(tmp_path / "d"), arm, "disk full")


def test_kill_9_after_faults_keeps_every_confirmed_message(tmp_path, sites):
    """The crash-recovered directory, served by a real broker process that is then killed with SIGKILL."""
    data_dir = str(tmp_path / "k")
    site = next(site for (k, site) in sorted(sites) if k == "fsync" and site.endswith("commit.py:run"))
    ledger = Ledger()
    io = FaultyIO()
    broker = InProcessBroker(data_dir, io).start()
    try:
        io.arm("fsync", site, errno.EIO)
        run_phase(broker.url, "a", ledger)
        assert io.fired
        run_phase(broker.url, "b", ledger)
    finally:
        broker.crash()
    assert ledger.nacked[QUEUE] or ledger.nacked[STREAM] or ledger.nacked[DELAYED]
    process = BrokerProcess(data_dir)
    try:
        run_phase(process.url, "c", ledger)
        queued = drain_queue_keep(process.url)
    finally:
        process.kill()
    assert ledger.confirmed[QUEUE] - ledger.acked <= queued
    check_restart(data_dir, ledger, phantoms_allowed=False, where="after kill -9")


def test_a_clean_stop_on_a_full_disk_keeps_every_confirmed_message(tmp_path):
    data_dir = str(tmp_path / "s")
    io = FaultyIO()
    ledger = Ledger()
    broker = InProcessBroker(data_dir, io).start()
    try:
        run_phase(broker.url, "a", ledger)
        assert ledger.failures() == 0
        io.arm("write", stay=True)
        io.arm("open", stay=True)
        io.arm("rename", stay=True)
        run_phase(broker.url, "b", ledger)  # nacks and 541s
        assert ledger.failures()
    finally:
        broker.stop()  # with the disk still full: nothing to flush may stop the stop
    io.disarm()
    check_restart(data_dir, ledger, phantoms_allowed=False, where="stop on a full disk")
