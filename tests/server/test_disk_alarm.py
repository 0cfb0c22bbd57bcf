"""The disk alarm looks at free space by bytes written, not only by time, so it trips before the disk is full."""

from __future__ import annotations

import logging
import os
import threading

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from leveret.server.flow import DiskAlarm
from leveret.store.diskspace import MIN_CHECK_BYTES, WriteMeter, check_every

from tests.faults.diskfull import MiB, fill_until, free_bytes, small_tmpfs

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def test_the_meter_calls_each_subscriber_once_per_slice_written_from_any_thread() -> None:
    meter = WriteMeter()
    calls: list[int] = []
    lock = threading.Lock()

    def called() -> None:
        with lock:
            calls.append(1)

    handle = meter.subscribe(called, 10_000)

    def writer() -> None:
        for _ in range(1000):
            meter.add(100)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert meter.total == 400_000
    assert len(calls) == 40
    meter.unsubscribe(handle)
    meter.add(50_000)
    assert len(calls) == 40


def test_checks_come_every_quarter_of_the_limit_but_never_more_often_than_64_kib() -> None:
    assert check_every(50 * MiB) == 50 * MiB // 4
    assert check_every(1) == MIN_CHECK_BYTES == 64 * 1024


def test_a_publisher_at_full_speed_is_blocked_before_the_disk_fills_and_resumes_when_space_returns(caplog) -> None:
    limit = 3 * MiB
    with small_tmpfs(16 * MiB) as mount:
        data_dir = os.path.join(mount, "data")
        os.mkdir(data_dir)
        filler = fill_until(mount, "filler", leave_free=9 * MiB)
        # The timer would look again only in an hour: every check here is one the bytes written asked for.
        with caplog.at_level(logging.WARNING), EmbeddedBroker(
            data_dir=data_dir, disk_free_limit=limit, disk_check_interval=3600.0,
        ) as broker:
            params = pika.URLParameters(broker.url)
            params.blocked_connection_timeout = 1.0  # pika gives up on a blocked connection after this
            conn = pika.BlockingConnection(params)
            ch = conn.channel()
            ch.queue_declare("fill", durable=True)
            ch.confirm_delivery()
            body = b"b" * (32 * 1024)
            confirmed = nacked = 0
            with pytest.raises(pika.exceptions.AMQPError):
                for _ in range(2000):  # 64 MiB: four times what the whole tmpfs holds
                    try:
                        ch.basic_publish("", "fill", body, PERSISTENT)
                        confirmed += 1
                    except pika.exceptions.NackError:
                        nacked += 1
            # pika gave up because the broker blocked the connection (connection.blocked) and stopped reading it.
            assert broker.server.disk_alarm.active
            assert nacked == 0
            # Blocked with room to spare: at least the limit less one check's slice (and one read's worth).
            assert free_bytes(mount) > limit - check_every(limit) - 512 * 1024
            assert confirmed * len(body) > 4 * MiB
            assert not [r for r in caplog.records if "No space left" in r.getMessage()]

            os.unlink(filler)  # space returns: the alarm clears without a restart
            conn = pika.BlockingConnection(pika.URLParameters(broker.url))
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("", "fill", b"after", PERSISTENT)  # blocked until the alarm clears, then confirmed
            # The publish that was in flight when the first connection was blocked may have gone in too.
            assert ch.queue_declare("fill", passive=True).method.message_count - confirmed in (1, 2)
            assert not broker.server.disk_alarm.active
            conn.close()


class _Loop:
    """The two loop calls the alarm makes, recorded instead of scheduled."""

    def __init__(self) -> None:
        self.later: list[tuple[float, object]] = []

    def call_later(self, delay: float, callback):
        self.later.append((delay, callback))
        return _Handle()

    def call_soon_threadsafe(self, callback) -> None:
        callback()


class _Handle:
    def cancel(self) -> None:
        pass


def test_the_alarm_says_on_and_off_to_its_callback_once_per_crossing() -> None:
    free = {"bytes": 10 * MiB}
    changes: list[bool] = []
    loop = _Loop()
    alarm = DiskAlarm(loop, "/data", MiB, changes.append, interval=5.0, measure=lambda path: free["bytes"],
                      meter=WriteMeter())
    alarm.start()
    assert changes == [] and loop.later[-1][0] == 5.0
    free["bytes"] = MiB - 1
    alarm.check()
    alarm.check()
    assert changes == [True] and alarm.active and loop.later[-1][0] == DiskAlarm.ACTIVE_INTERVAL
    free["bytes"] = 2 * MiB
    alarm.check()
    assert changes == [True, False] and not alarm.active and alarm.free == 2 * MiB
    alarm.stop()


def test_a_check_run_out_of_turn_replaces_the_pending_timer_instead_of_starting_a_second_chain() -> None:
    interval = 0.1
    with EmbeddedBroker(disk_check_interval=interval) as broker:
        alarm = broker.server.disk_alarm
        done = threading.Event()

        def five_checks() -> None:
            for _ in range(5):
                alarm.check()
            done.set()

        broker._loop.call_soon_threadsafe(five_checks)
        assert done.wait(5)
        before = alarm.checks
        window = threading.Event()
        window.wait(1.0)  # a measured window, not synchronisation: count the timer's checks in it
        taken = alarm.checks - before
        # One chain: about 10 checks a second. Six chains (each out-of-turn check starting its own): about
        # 60. A loaded machine only makes fewer.
        assert 1 <= taken <= 20, f"{taken} checks in one second at a {interval} s interval"
