"""A scraper for `bench.compare --scrape`: every second, GET /metrics and /api/overview of each broker, as
Prometheus and a dashboard would, for as long as the comparison runs. Its figures (requests, failures,
slowest answer) are printed at the end; the comparison's own figures show what the scraping cost.

    python3 -m bench.scrape [--seconds 30] [--queues 1000]

measures the idle cost alone: a leveret with that many queues, its CPU seconds over a quiet period, then
over as long a period scraped every second.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
import urllib.request

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

INTERVAL = 1.0


class Scraper:
    """A thread fetching `urls` (with guest's basic auth) every INTERVAL seconds until stopped."""

    def __init__(self, urls: list[str], user: str = "guest", password: str = "guest") -> None:
        self.urls = urls
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests = self.failures = 0
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-scraper", daemon=True)

    def start(self) -> "Scraper":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            for url in self.urls:
                started = time.monotonic()
                try:
                    request = urllib.request.Request(url, headers={"Authorization": self.auth})
                    with urllib.request.urlopen(request, timeout=5) as response:
                        response.read()
                except OSError:
                    self.failures += 1
                self.requests += 1
                self.slowest = max(self.slowest, time.monotonic() - started)

    def stop(self) -> str:
        """Stop and say what was done."""
        self._stop.set()
        self._thread.join(timeout=10)
        return (f"scraper: {self.requests} requests to {len(self.urls)} URLs every {INTERVAL:g} s, "
                f"{self.failures} failed, slowest {self.slowest * 1000:.0f} ms")


def idle_cost(seconds: float, queues: int) -> None:
    """Print leveret's CPU seconds idle and scraped, each over `seconds`, with `queues` queues declared."""
    import pika

    from bench.compare import free_port, leveret_broker
    from bench.loadgen import procinfo

    http_port = free_port()
    broker = leveret_broker(f"{sys.executable} -m leveret", http_port)
    broker.start()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = conn.channel()
        for i in range(queues):
            channel.queue_declare(f"idle-{i}")
        conn.close()
        base = f"http://127.0.0.1:{http_port}"
        for label, scraper in (("idle", None), ("scraped", Scraper([base + "/metrics", base + "/api/overview"]))):
            before = procinfo.cpu_seconds(broker.pid)
            if scraper is not None:
                scraper.start()
            time.sleep(seconds)
            note = scraper.stop() if scraper is not None else ""
            used = procinfo.cpu_seconds(broker.pid) - before
            print(f"{label:8s} {queues} queues: {used:.2f} CPU s in {seconds:g} s ({100 * used / seconds:.2f}% of a core)"
                  + (f"; {note}" if note else ""), flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--queues", type=int, default=1000)
    args = parser.parse_args()
    idle_cost(args.seconds, args.queues)
