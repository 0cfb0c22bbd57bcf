"""`leveret serve` as a process: SIGTERM/SIGINT close clients with 320 CONNECTION_FORCED and exit 0."""

from __future__ import annotations

import signal
import threading

import pika
import pytest

from tests.crash.broker_process import BrokerProcess


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_closes_every_connection_with_320_and_exits_0(tmp_path, sig) -> None:
    with BrokerProcess(str(tmp_path / "data")) as broker:
        connections = [pika.BlockingConnection(pika.URLParameters(broker.url)) for _ in range(2)]
        closed: list[tuple[int, str]] = []
        lock = threading.Lock()
        for conn in connections:
            conn.channel()
        broker.proc.send_signal(sig)
        for conn in connections:
            with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as exc:
                # process frames until the broker's connection.close arrives (bounded)
                for _ in range(200):
                    conn.process_data_events(0.05)
            with lock:
                closed.append((exc.value.reply_code, exc.value.reply_text))
        assert broker.proc.wait(20) == 0
    assert closed == [(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")] * 2
    assert "listening on 127.0.0.1:" in "".join(broker.log)
