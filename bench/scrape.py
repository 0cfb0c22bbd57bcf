"""A scraper for `bench.compare --scrape`: every second, GET /metrics and /api/overview of each broker, as
Prometheus and a dashboard would, for as long as the comparison runs. Its figures (requests, failures,
slowest answer) are printed at the end; the comparison's own figures show what the scraping cost.
"""

from __future__ import annotations

import base64
import threading
import time
import urllib.request

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
