"""Screenshots of the dashboard's main pages for docs/images/, taken in headless Chromium.

    python tools/dashboard_screenshots.py [docs/images]

Starts an embedded broker with a few queues, a consumer, dead letters and a steady trickle of messages
(so the overview's charts have rates), opens each page, and saves `dashboard-<page>.png`. Needs Debian's
chromium and chromium-driver and selenium (the test extras).
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pika
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from leveret.embedded import EmbeddedBroker

# (file name, page, its heading, what shows it has loaded, window height)
PAGES = (
    ("overview", "#/", "Overview", "svg.chart polyline", 700),
    ("queues", "#/queues", "Queues", "table.data tbody tr", 420),
    ("queue", "#/queues/%2F/orders", "Queue orders", "form.action", 1100),
    ("connections", "#/connections", "Connections and channels", "table.data tbody tr", 440),
    ("dead-letters", "#/dead-letters/%2F/orders.dlq", "Dead letters in orders.dlq", "table.data td", 760),
    ("admin", "#/admin", "Users, virtual hosts and permissions", "table.data tbody tr", 640),
    ("policies", "#/policies", "Policies", "table.data tbody tr", 940),
    ("definitions", "#/definitions", "Definitions", "form.action", 420),
)


def put_policies(http_port: int) -> None:
    """A user policy on the orders queues and an operator policy capping every queue, through the API."""
    for path, body in (
            ("/api/policies/%2F/orders-limits", {"pattern": "^orders$", "apply-to": "queues", "priority": 1,
                                                  "definition": {"max-length": 10000, "message-ttl": 3600000}}),
            ("/api/operator-policies/%2F/cap", {"pattern": ".*", "apply-to": "queues", "priority": 0,
                                                "definition": {"max-length-bytes": 100000000}})):
        request = urllib.request.Request(f"http://127.0.0.1:{http_port}{path}", method="PUT",
                                         data=json.dumps(body).encode())
        request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        request.add_header("Content-Type", "application/json")
        urllib.request.urlopen(request, timeout=10).close()


def populate(url: str, stop: threading.Event) -> None:
    """Queues with messages and a consumer, dead letters in orders.dlq, then a trickle until `stop`."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.exchange_declare("orders.dlx", "fanout")
    channel.queue_declare("orders.dlq")
    channel.queue_bind("orders.dlq", "orders.dlx")
    channel.queue_declare("orders", arguments={"x-dead-letter-exchange": "orders.dlx"})
    for name in ("invoices", "emails", "audit"):
        channel.queue_declare(name, durable=True)
    for i in range(40):
        channel.basic_publish("", "orders", f'{{"order": {i}}}'.encode())
    for _ in range(6):
        method, _, _ = channel.basic_get("orders")
        channel.basic_reject(method.delivery_tag, requeue=False)
    for i in range(120):
        channel.basic_publish("", "invoices", f"invoice {i}".encode(), pika.BasicProperties(delivery_mode=2))
    worker = conn.channel()
    worker.basic_qos(prefetch_count=10)
    worker.basic_consume("emails", lambda ch, method, props, body: ch.basic_ack(method.delivery_tag))
    i = 0
    while not stop.is_set():
        for _ in range(20):
            channel.basic_publish("", "emails", f"email {i}".encode())
            i += 1
        conn.process_data_events(0.2)
    conn.close()


def shown(driver: webdriver.Chrome, heading: str, ready: str) -> bool:
    """The page with `heading` has replaced the previous one and shows `ready`."""
    headings = driver.find_elements(By.CSS_SELECTOR, "main:not([aria-busy]) h1")
    return bool(headings) and headings[0].text == heading and bool(driver.find_elements(By.CSS_SELECTOR, ready))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(argument)
    with EmbeddedBroker() as broker:
        stop = threading.Event()
        traffic = threading.Thread(target=populate, args=(broker.url, stop), daemon=True)
        traffic.start()
        put_policies(broker.server.http_port)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            base = f"http://127.0.0.1:{broker.server.http_port}/"
            driver.get(base)
            form = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "login"))
            form.find_element(By.NAME, "username").send_keys("guest")
            form.find_element(By.NAME, "password").send_keys("guest")
            form.find_element(By.CSS_SELECTOR, "button").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".tiles"))
            time.sleep(31)  # the overview samples every 5 s: let its charts draw a few points of rates
            for name, fragment, heading, ready, height in PAGES:
                driver.set_window_size(1280, height)
                driver.get(base + fragment)
                try:
                    WebDriverWait(driver, 10).until(lambda d: shown(d, heading, ready))
                except TimeoutException:
                    print(f"{name}: not shown (does this broker have its endpoints?)", file=sys.stderr)
                    continue
                driver.save_screenshot(str(out / f"dashboard-{name}.png"))
                print(out / f"dashboard-{name}.png")
        finally:
            driver.quit()
            stop.set()
            traffic.join(timeout=5)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
