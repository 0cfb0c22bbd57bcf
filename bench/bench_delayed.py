"""A million pending delayed messages: memory, the cost of counting them, and recovery (issue 4).

Publishes N persistent messages with an `x-delay` of one hour to a durable `x-delayed-message`
exchange (confirms, window 1000), then reads the broker's RSS and the pending count from the
management API (`delayed_messages`), restarts the broker cleanly and after SIGKILL, and reads both
again. RabbitMQ has no delayed-message plugin on this machine, so there is no second column; the
plugin's own README says it keeps every pending message in a Mnesia table held in RAM.

    python3 bench/bench_delayed.py --count 1000000      # the issue's figure (minutes)
    python3 bench/bench_delayed.py --count 100000

Only leveret's own codec is used to build frames (this is a leveret benchmark, not the load generator).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leveret.amqp import serializer, spec  # noqa: E402
from leveret.amqp.parser import FrameParser  # noqa: E402
from leveret.amqp.properties import BasicProperties  # noqa: E402

_AMQP = re.compile(r"listening on [^:\s]+:(\d+)")
_HTTP = re.compile(r"management API at http://[^:\s]+:(\d+)")


class Broker:
    """`python -m leveret serve` over a data directory kept across restarts."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.port = self.http_port = 0

    def start(self) -> float:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leveret", "serve", "--port", "0", "--http-port", "0",
             "--data-dir", self.data_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stderr:  # type: ignore[union-attr]
                if (m := _HTTP.search(line)) is not None:
                    self.http_port = int(m.group(1))
                if (m := _AMQP.search(line)) is not None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(900) or not self.port:
            raise RuntimeError("leveret did not start")
        return time.monotonic() - started

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:  # type: ignore[union-attr]
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def pending(self, exchange: str) -> tuple[int, float]:
        """The exchange's delayed_messages from the management API, and how long the request took."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/api/exchanges/%2F")
        request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=60) as response:
            rows = json.loads(response.read())
        took = time.monotonic() - started
        return next(r["delayed_messages"] for r in rows if r["name"] == exchange), took

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(300)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)


class Client:
    """Just enough AMQP client, built on leveret's codec, to publish with confirms."""

    def __init__(self, port: int, vhost: str = "/") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.parser = FrameParser(131072)
        self.pending: list = []
        self.sock.sendall(serializer.PROTOCOL_HEADER)
        self.expect(spec.ConnectionStart)
        self.send(0, spec.ConnectionStartOk(client_properties={}, mechanism="PLAIN",
                                            response=b"\x00guest\x00guest", locale="en_US"))
        tune = self.expect(spec.ConnectionTune)
        self.frame_max = tune.frame_max
        self.send(0, spec.ConnectionTuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0))
        self.send(0, spec.ConnectionOpen(virtual_host=vhost))
        self.expect(spec.ConnectionOpenOk)
        self.send(1, spec.ChannelOpen())
        self.expect(spec.ChannelOpenOk)

    def send(self, channel: int, method) -> None:
        self.sock.sendall(serializer.method_frame(channel, method))

    def methods(self):
        while True:
            while self.pending:
                yield self.pending.pop(0)
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("broker closed the connection")
            for frame_type, _channel, payload in self.parser.feed(data):
                if frame_type == 1:
                    self.pending.append(spec.decode_method(bytes(payload)))

    def expect(self, kind):
        for method in self.methods():
            if isinstance(method, spec.ConnectionClose) or isinstance(method, spec.ChannelClose):
                raise RuntimeError(f"closed: {method.reply_code} {method.reply_text}")
            if isinstance(method, kind):
                return method

    def publish_confirmed(self, exchange: str, routing_key: str, count: int, headers: dict, body: Any) -> float:
        """Publish `count` persistent messages with confirms (window 1000); `body` is bytes, or a function of the
        message's number (0, 1, ...) giving its bytes. Returns the seconds until the last confirm."""
        self.send(1, spec.ConfirmSelect())
        self.expect(spec.ConfirmSelectOk)
        props = BasicProperties(delivery_mode=2, headers=headers).raw
        publish = spec.BasicPublish(exchange=exchange, routing_key=routing_key)

        def frames(i: int) -> bytes:
            return b"".join(serializer.content_frames(1, publish, props, body(i) if callable(body) else body,
                                                      self.frame_max))

        one = frames(0)
        started = time.monotonic()
        sent = acked = 0
        window = 1000
        while acked < count:
            if sent - acked < window and sent < count:
                n = min(window - (sent - acked), count - sent, 500)
                self.sock.sendall(b"".join(map(frames, range(sent, sent + n))) if callable(body) else one * n)
                sent += n
                continue
            method = self.expect((spec.BasicAck, spec.BasicNack))
            if isinstance(method, spec.BasicNack):
                raise RuntimeError("a publish was nacked")
            acked = method.delivery_tag if method.multiple else acked + 1
        return time.monotonic() - started

    def close(self) -> None:
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    data_dir = tempfile.mkdtemp(prefix="leveret-bench-delayed-")
    broker = Broker(data_dir)
    out: dict = {"count": args.count, "body_bytes": args.size}
    with open("/proc/loadavg") as f:
        out["loadavg_before"] = f.read().split()[:3]
    try:
        broker.start()
        out["rss_empty_mib"] = broker.rss_mib()
        client = Client(broker.port)
        client.send(1, spec.ExchangeDeclare(exchange="later", type="x-delayed-message", durable=True,
                                            arguments={"x-delayed-type": "direct"}))
        client.expect(spec.ExchangeDeclareOk)
        client.send(1, spec.QueueDeclare(queue="due", durable=True))
        client.expect(spec.QueueDeclareOk)
        client.send(1, spec.QueueBind(queue="due", exchange="later", routing_key="k"))
        client.expect(spec.QueueBindOk)
        elapsed = client.publish_confirmed("later", "k", args.count, {"x-delay": 3_600_000}, b"d" * args.size)
        client.close()
        out["publish_confirmed_msgs_per_s"] = round(args.count / elapsed)
        out["rss_pending_mib"] = broker.rss_mib()
        out["pending"], took = broker.pending("later")
        out["count_request_ms"] = round(took * 1000, 1)
        broker.stop()
        out["restart_clean_s"] = round(broker.start(), 2)
        out["pending_after_restart"], _ = broker.pending("later")
        out["rss_after_restart_mib"] = broker.rss_mib()
        broker.kill()
        out["restart_after_kill_s"] = round(broker.start(), 2)
        out["pending_after_kill"], _ = broker.pending("later")
        out["rss_after_kill_restart_mib"] = broker.rss_mib()
    finally:
        broker.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    with open("/proc/loadavg") as f:
        out["loadavg_after"] = f.read().split()[:3]
    for key, value in out.items():
        print(f"{key:32s} {value}")
    ok = out.get("pending") == out.get("pending_after_restart") == out.get("pending_after_kill") == args.count
    print("honest" if ok else "FAILED: pending counts differ from what was published")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
