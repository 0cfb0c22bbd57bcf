"""A full disk never costs a confirmed message: fill a small tmpfs at full publish speed, free it, kill -9, restart.

The broker runs as a process (tests/crash/broker_process.py) over a data directory on a tmpfs that a
filler file has mostly used up. A publisher with confirms keeps a ledger of every id it sent and every
id confirmed; after every restart each confirmed id must be in the queue and nothing may be there that
was never sent. (a) with the disk alarm sized to trip: publishers are blocked before the disk fills;
(b) with the alarm off, so writes meet ENOSPC and publishes are nacked; in both, once space returns the
store confirms again without a restart. (b) also restarts the broker on a full disk: it comes up with the
alarm on and serves its confirmed messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pika

from tests.crash.broker_process import BrokerProcess
from tests.faults.diskfull import MiB, fill_until, free_bytes, small_tmpfs

QUEUE = "ledger"
BODY_PAD = b"p" * 4096
PERSISTENT = pika.BasicProperties(delivery_mode=2)


@dataclass
class Ledger:
    sent: set[int] = field(default_factory=set)
    confirmed: set[int] = field(default_factory=set)
    nacked: set[int] = field(default_factory=set)
    next_id: int = 0


def _channel(broker: BrokerProcess, blocked_timeout: float | None = None):
    params = pika.URLParameters(broker.url)
    if blocked_timeout is not None:
        params.blocked_connection_timeout = blocked_timeout
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    ch.confirm_delivery()
    return conn, ch


def publish(ch, ledger: Ledger, count: int | None = None, stop_after_nacks: int | None = None) -> None:
    """Publish with confirms as fast as confirms come back: `count` messages, or until `stop_after_nacks`
    nacks in a row, or until the connection fails (a blocked connection is given up by pika)."""
    nacks_in_a_row = 0
    done = 0
    while count is None or done < count:
        ident = ledger.next_id
        ledger.next_id += 1
        ledger.sent.add(ident)
        try:
            ch.basic_publish("", QUEUE, b"%d:" % ident + BODY_PAD, PERSISTENT)
        except pika.exceptions.NackError:
            ledger.nacked.add(ident)
            nacks_in_a_row += 1
            if stop_after_nacks is not None and nacks_in_a_row >= stop_after_nacks:
                return
        except pika.exceptions.AMQPError:
            return
        else:
            ledger.confirmed.add(ident)
            nacks_in_a_row = 0
        done += 1


def stored_ids(broker: BrokerProcess) -> list[int]:
    """Every id in the queue, read without acking (nothing is written, so this works on a full disk)."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ids = []
    while True:
        method, _props, body = ch.basic_get(QUEUE, auto_ack=False)
        if method is None:
            break
        ids.append(int(body.split(b":", 1)[0]))
    conn.close()
    return ids


def assert_ledger_holds(ids: list[int], ledger: Ledger) -> None:
    assert len(ids) == len(set(ids)), "an id came back twice"
    assert set(ids) <= ledger.sent, f"phantoms: {sorted(set(ids) - ledger.sent)[:10]}"
    lost = ledger.confirmed - set(ids)
    assert not lost, f"{len(lost)} confirmed messages lost: {sorted(lost)[:10]}"


def test_with_the_alarm_publishers_are_blocked_before_the_disk_fills_and_nothing_confirmed_is_lost() -> None:
    with small_tmpfs(16 * MiB) as mount:
        data = os.path.join(mount, "data")
        filler = fill_until(mount, "filler", leave_free=6 * MiB)
        ledger = Ledger()
        settings = {"disk_free_limit": 2 * MiB}
        broker = BrokerProcess(data, settings=settings)
        try:
            conn, ch = _channel(broker, blocked_timeout=1.0)
            publish(ch, ledger)  # ends when the blocked connection is given up
            assert ledger.nacked == set() and len(ledger.confirmed) > 200
            assert free_bytes(mount) > 0
            assert not any("No space left" in line for line in broker.log)

            os.unlink(filler)  # space returns: the same broker confirms again
            conn, ch = _channel(broker)
            before = len(ledger.confirmed)
            publish(ch, ledger, count=50)
            assert len(ledger.confirmed) == before + 50
            conn.close()
            broker.kill()
            broker = BrokerProcess(data, settings=settings)
            assert_ledger_holds(stored_ids(broker), ledger)
        finally:
            broker.kill()


def test_without_the_alarm_enospc_nacks_then_space_returns_and_a_restart_on_a_full_disk_keeps_every_confirm() -> None:
    with small_tmpfs(16 * MiB) as mount:
        data = os.path.join(mount, "data")
        filler = fill_until(mount, "filler", leave_free=4 * MiB)
        ledger = Ledger()
        broker = BrokerProcess(data, settings={"disk_free_limit": 0})  # never trips: writes meet ENOSPC
        try:
            conn, ch = _channel(broker)
            publish(ch, ledger, stop_after_nacks=20)
            assert len(ledger.nacked) >= 20 and len(ledger.confirmed) > 100

            os.unlink(filler)  # space returns: the store writes again without a restart
            before = len(ledger.confirmed)
            publish(ch, ledger, count=50)
            assert len(ledger.confirmed) == before + 50
            conn.close()

            fill_until(mount, "filler", leave_free=0)  # full again, then a crash
            broker.kill()
            assert free_bytes(mount) < 64 * 1024
            # A start on a full disk: recovery needs no free space; the alarm is on; the messages are served.
            broker = BrokerProcess(data, settings={"disk_free_limit": 1 * MiB})
            assert any("disk alarm" in line for line in broker.log)
            assert_ledger_holds(stored_ids(broker), ledger)
        finally:
            broker.kill()
