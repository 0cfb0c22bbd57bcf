"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium)
against an embedded broker: it logs in through its form, shows real queues and counts, sorts and filters
them, acts on a queue (publish, get, purge), lists the other objects, and replays dead letters.

One browser for the module (starting Chromium costs about a second); each test opens the page it needs.
Skipped only where chromium or chromedriver is absent.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.request
from typing import Any, Iterator

import pika
import pytest

from leveret.embedded import EmbeddedBroker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium or chromedriver is not installed")

WAIT = 10.0  # seconds any page element may take to appear


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """A broker with queues 'orders' (3 messages), 'invoices' (1) and 'empty'."""
    with EmbeddedBroker() as b:
        conn = pika.BlockingConnection(pika.URLParameters(b.url))
        channel = conn.channel()
        channel.confirm_delivery()
        for name, count in (("orders", 3), ("invoices", 1), ("empty", 0)):
            channel.queue_declare(name)
            for i in range(count):
                channel.basic_publish("", name, f"{name} {i}".encode())
        conn.close()
        yield b


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def base(broker: EmbeddedBroker) -> str:
    return f"http://127.0.0.1:{broker.server.http_port}/"


def wait_for(browser: Any, css: str, text: str | None = None) -> Any:
    """The first element matching `css` (whose text contains `text`, when given), once it is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver: Any) -> Any:
        for element in driver.find_elements(By.CSS_SELECTOR, css):
            try:
                if text is None or text in element.text:
                    return element
            except Exception:  # replaced by a refresh between finding and reading: look again
                return False
        return False

    return WebDriverWait(browser, WAIT).until(found, f"no {css!r} with {text!r}")


def text_of(browser: Any, css: str) -> str:
    """The text of the first element matching `css`, read as it is found (a refresh may replace it after)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def read(driver: Any) -> Any:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            return (found[0].text,) if found else False
        except StaleElementReferenceException:
            return False

    return WebDriverWait(browser, WAIT).until(read, f"no {css!r}")[0]


def cells(row: Any, cell_css: str = "td") -> list[str]:
    from selenium.webdriver.common.by import By

    return [cell.text for cell in row.find_elements(By.CSS_SELECTOR, cell_css)]


def open_page(browser: Any, broker: EmbeddedBroker, fragment: str) -> None:
    """Open a page, logging in through the form when the browser has no credentials yet."""
    from selenium.webdriver.common.by import By

    browser.get(base(broker) + fragment)
    form = browser.find_elements(By.CSS_SELECTOR, "#login")
    if not form:
        wait_for(browser, "#login, main > div")
        form = browser.find_elements(By.CSS_SELECTOR, "#login")
    if form:
        form[0].find_element(By.NAME, "username").send_keys("guest")
        form[0].find_element(By.NAME, "password").send_keys("guest")
        form[0].find_element(By.CSS_SELECTOR, "button").click()


def api_get(broker: EmbeddedBroker, path: str) -> Any:
    request = urllib.request.Request(base(broker).rstrip("/") + path,
                                     headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def table(browser: Any, css: str = "table.data tbody tr", cell_css: str = "td") -> list[list[str]]:
    """The cell texts of every row matching `css`, read in one go. The dashboard refreshes its tables every
    few seconds, replacing the rows: a row replaced between finding and reading it makes the read start over
    (StaleElementReferenceException), so no test reads half an old table."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def read(driver: Any) -> Any:
        try:
            return ([cells(row, cell_css) for row in driver.find_elements(By.CSS_SELECTOR, css)],)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(browser, WAIT).until(read)[0]


def table_becomes(browser: Any, column: int, expected: list[str], css: str = "table.data tbody tr") -> list[str]:
    """Column `column` of the rows matching `css` once it reads `expected` (or what it reads after WAIT)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def column_of(rows: list[list[str]]) -> list[str]:
        return [row[column] for row in rows if len(row) > column]

    try:
        WebDriverWait(browser, WAIT).until(lambda driver: column_of(table(driver, css)) == expected)
    except TimeoutException:
        pass  # the caller's assert shows what the table holds instead
    return column_of(table(browser, css))


def fact(browser: Any, label: str) -> str:
    """The value a page's facts table shows beside `label`, once it shows one."""
    from selenium.webdriver.support.ui import WebDriverWait

    def value(driver: Any) -> Any:
        found = [row[1] for row in table(driver, "table.facts tr", "th, td") if len(row) == 2 and row[0] == label]
        return (found[0],) if found else False

    return WebDriverWait(browser, WAIT).until(value, f"no fact {label!r}")[0]


def table_becomes_containing(browser: Any, css: str, wanted: Any) -> list[list[str]]:
    """The rows matching `css` once one of them satisfies `wanted` (or as they read after WAIT)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, WAIT).until(lambda driver: any(wanted(row) for row in table(driver, css)))
    except TimeoutException:
        pass  # the caller's assert shows what the table holds instead
    return table(browser, css)


def row_of(browser: Any, name: str, css: str = "table.data tbody tr") -> list[str]:
    """The cells of the first row matching `css` whose text contains `name`, once there is one."""
    from selenium.webdriver.support.ui import WebDriverWait

    def first(driver: Any) -> Any:
        rows = [row for row in table(driver, css) if name in " ".join(row)]
        return (rows[0],) if rows else False

    return WebDriverWait(browser, WAIT).until(first, f"no {css!r} row with {name!r}")[0]


def test_files_need_no_login_and_the_api_still_does(broker: EmbeddedBroker) -> None:
    with urllib.request.urlopen(base(broker), timeout=10) as response:
        assert b'<script type="module" src="/static/app.js">' in response.read()
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    with urllib.request.urlopen(base(broker) + "static/app.js", timeout=10) as response:
        assert "javascript" in response.headers["Content-Type"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base(broker) + "api/queues", timeout=10)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base(broker) + "static/..%2Fapp.py", timeout=10)
    assert missing.value.code == 404


def test_a_wrong_password_is_refused_at_the_form(browser: Any, broker: EmbeddedBroker) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base(broker))
    browser.execute_script("sessionStorage.clear()")
    browser.get(base(broker) + "#/queues")
    form = wait_for(browser, "#login")
    form.find_element(By.NAME, "username").send_keys("guest")
    form.find_element(By.NAME, "password").send_keys("not-the-password")
    form.find_element(By.CSS_SELECTOR, "button").click()
    assert text_of(browser, "#login .error") == "Login failed."


def test_overview_shows_the_totals_and_charts(browser: Any, broker: EmbeddedBroker) -> None:
    open_page(browser, broker, "#/")
    assert text_of(browser, '[data-tile="Queues"] .tile-value') == "3"
    assert text_of(browser, '[data-tile="Total messages"] .tile-value') == "4"
    assert len(browser.find_elements("css selector", "svg.chart")) == 2
    assert text_of(browser, 'strong[data-series="Total"]') == "4"


def test_queues_show_real_counts_sort_and_filter(browser: Any, broker: EmbeddedBroker) -> None:
    open_page(browser, broker, "#/queues")
    assert row_of(browser, "orders")[:7] == ["/", "orders", "classic", "running", "3", "0", "3"]
    wait_for(browser, "th", "Total").click()  # ascending, then descending
    wait_for(browser, "th", "Total").click()
    assert table_becomes(browser, 1, ["orders", "invoices", "empty"]) == ["orders", "invoices", "empty"]
    box = wait_for(browser, "input.filter")
    box.send_keys("/^inv/")
    assert table_becomes(browser, 1, ["invoices"]) == ["invoices"]
    assert text_of(browser, ".count") == "1 of 3"


def test_a_queue_page_publishes_gets_and_purges(browser: Any, broker: EmbeddedBroker) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, broker, "#/queues/%2F/empty")
    wait_for(browser, "h1", "Queue empty")
    publish = wait_for(browser, "form.action", "Publish a message")
    publish.find_element(By.NAME, "payload").send_keys("hello from the dashboard")
    publish.find_element(By.CSS_SELECTOR, "button").click()
    assert wait_for(browser, "form.action .ok", "Published").text == "Published."
    wait_for(browser, "table.facts td", "1")  # Ready: 1 once the page refreshed its figures

    get = wait_for(browser, "form.action", "Get messages")
    get.find_element(By.CSS_SELECTOR, "button").click()  # ack_requeue_true: the message stays
    assert "hello from the dashboard" in wait_for(browser, "table.messages td", "hello").text

    purge = wait_for(browser, "form.action", "Purge")
    purge.find_element(By.CSS_SELECTOR, "button").click()
    browser.switch_to.alert.accept()
    wait_for(browser, "form.action .ok", "Purged")
    queue = next(q for q in api_get(broker, "/api/queues/%2F") if q["name"] == "empty")
    assert queue["messages"] == 0


@pytest.mark.parametrize("fragment, heading, shows", [
    ("#/exchanges", "Exchanges", "amq.direct"),
    ("#/connections", "Connections and channels", "Connections"),
    ("#/admin", "Users, virtual hosts and permissions", "guest"),
    ("#/policies", "Policies", "Operator policies"),
    ("#/definitions", "Definitions", "Download definitions"),
    ("#/dead-letters", "Dead letters", "orders"),
])
def test_each_page_loads(browser: Any, broker: EmbeddedBroker, fragment: str, heading: str, shows: str) -> None:
    open_page(browser, broker, fragment)
    wait_for(browser, "h1", heading)
    wait_for(browser, "main", shows)


def dead_letter(broker: EmbeddedBroker, prefix: str, bodies: tuple[bytes, ...]) -> None:
    """Queue PREFIX-work dead-letters through fanout PREFIX-dlx into PREFIX-dlq; each body is published to
    the work queue and rejected there, so it lands in the dead-letter queue with an x-death."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.exchange_declare(f"{prefix}-dlx", "fanout")
        channel.queue_declare(f"{prefix}-dlq")
        channel.queue_bind(f"{prefix}-dlq", f"{prefix}-dlx")
        channel.queue_declare(f"{prefix}-work", arguments={"x-dead-letter-exchange": f"{prefix}-dlx"})
        for body in bodies:
            channel.basic_publish("", f"{prefix}-work", body)
        for _ in bodies:
            method, _, _ = channel.basic_get(f"{prefix}-work")
            channel.basic_reject(method.delivery_tag, requeue=False)
    finally:
        conn.close()


def test_the_dead_letter_view_decodes_each_x_death(browser: Any, broker: EmbeddedBroker) -> None:
    dead_letter(broker, "view", (b"first", b"second"))
    open_page(browser, broker, "#/dead-letters/%2F/view-dlq")
    assert row_of(browser, "first")[:5] == ["rejected", "view-work", "(AMQP default)", "view-work", "1"]
    assert row_of(browser, "second")[-1] == "second"
    summaries = table(browser, ".columns table tbody tr")
    assert summaries == [["rejected", "2"], ["view-work", "2"]]


def test_replay_moves_dead_letters_back_to_their_queue(browser: Any, broker: EmbeddedBroker) -> None:
    dead_letter(broker, "replay", (b"one", b"two"))
    open_page(browser, broker, "#/dead-letters/%2F/replay-dlq")
    assert row_of(browser, "one")[:2] == ["rejected", "replay-work"]
    wait_for(browser, "button.replay").click()
    assert "2 of 2 moved" in text_of(browser, '.task[data-state="finished"]')
    counts = {q["name"]: q["messages"] for q in api_get(broker, "/api/queues/%2F")}
    assert (counts["replay-work"], counts["replay-dlq"]) == (2, 0)
    wait_for(browser, "main", "Nothing here.")  # the view refreshed: the dead-letter queue is empty


def test_move_tasks_are_listed_on_the_dead_letters_page(browser: Any, broker: EmbeddedBroker) -> None:
    dead_letter(broker, "listed", (b"x",))
    open_page(browser, broker, "#/queues/%2F/listed-dlq")
    move = wait_for(browser, "form.action", "Move messages")
    move.find_element("css selector", "button").click()
    wait_for(browser, '.task[data-state="finished"]')
    open_page(browser, broker, "#/dead-letters")
    row = row_of(browser, "listed-dlq")  # the first table lists queues; the move tasks table follows
    assert row[1] == "listed-dlq"
    task = ["listed-dlq", "finished", "1", "1"]
    tasks = table_becomes_containing(browser, "section table.data tbody tr", lambda row: row[1:5] == task)
    assert any(row[1:5] == task for row in tasks), tasks


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own (for pages that change the broker's definitions), with queue 'jobs.a'."""
    with EmbeddedBroker() as b:
        conn = pika.BlockingConnection(pika.URLParameters(b.url))
        conn.channel().queue_declare("jobs.a")
        conn.close()
        yield b


def test_a_policy_set_through_the_form_applies_and_is_deleted(browser: Any, own_broker: EmbeddedBroker) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, own_broker, "#/policies")
    form = wait_for(browser, "form.action", "Add or update a policy")
    form.find_element(By.NAME, "name").send_keys("short-jobs")
    form.find_element(By.NAME, "pattern").send_keys("^jobs\\.")
    Select(form.find_element(By.NAME, "apply-to")).select_by_value("queues")
    form.find_element(By.NAME, "priority").clear()
    form.find_element(By.NAME, "priority").send_keys("3")
    form.find_element(By.NAME, "definition").send_keys('{"max-length": 7, "message-ttl": 60000}')
    form.find_element(By.CSS_SELECTOR, "button").click()
    assert text_of(browser, "form.action .ok") == "Policy short-jobs set."
    assert row_of(browser, "short-jobs")[:6] == ["/", "short-jobs", "^jobs\\.", "queues", "3",
                                                 '{"max-length":7,"message-ttl":60000}']
    (policy,) = api_get(own_broker, "/api/policies/%2F")
    assert (policy["name"], policy["definition"], policy["priority"]) == ("short-jobs", {"max-length": 7,
                                                                                        "message-ttl": 60000}, 3)

    open_page(browser, own_broker, "#/queues/%2F/jobs.a")  # the queue shows the policy it now has
    assert fact(browser, "Policy") == "short-jobs"
    assert fact(browser, "Effective policy") == '{"max-length":7,"message-ttl":60000}'

    open_page(browser, own_broker, "#/policies")
    wait_for(browser, "table.data tr", "short-jobs").find_element(By.CSS_SELECTOR, "button.delete").click()
    wait_for(browser, "section", "Nothing here.")
    assert api_get(own_broker, "/api/policies/%2F") == []
    assert api_get(own_broker, "/api/queues/%2F/jobs.a")["policy"] is None


def test_a_policy_the_broker_refuses_shows_its_reason(browser: Any, own_broker: EmbeddedBroker) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, own_broker, "#/policies")
    form = wait_for(browser, "form.action", "Add or update a policy")
    form.find_element(By.NAME, "name").send_keys("bad")
    form.find_element(By.NAME, "pattern").send_keys(".*")
    form.find_element(By.NAME, "definition").send_keys('{"max-length": "many"}')
    form.find_element(By.CSS_SELECTOR, "button").click()
    assert "Validation failed" in text_of(browser, "form.action .error")
    assert api_get(own_broker, "/api/policies/%2F") == []


def test_definitions_download_and_upload(browser: Any, own_broker: EmbeddedBroker, tmp_path: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    open_page(browser, own_broker, "#/definitions")
    wait_for(browser, "form.action", "Download definitions").find_element(By.CSS_SELECTOR, "button").click()
    assert "Downloaded 1 queues" in text_of(browser, "form.action .ok")
    saved = WebDriverWait(browser, WAIT).until(
        lambda _: [p for p in downloads.glob("leveret-definitions-*.json")], "no definitions file downloaded")
    downloaded = json.loads(saved[0].read_text())
    assert downloaded == api_get(own_broker, "/api/definitions")
    assert [q["name"] for q in downloaded["queues"]] == ["jobs.a"]

    # Upload an edited copy: a new queue, exchange, binding and policy appear in the broker.
    downloaded["queues"].append({"name": "uploaded", "vhost": "/", "durable": True, "auto_delete": False,
                                 "arguments": {"x-max-length": 9}})
    downloaded["exchanges"].append({"name": "up-x", "vhost": "/", "type": "direct", "durable": True,
                                    "auto_delete": False, "internal": False, "arguments": {}})
    downloaded["bindings"].append({"source": "up-x", "vhost": "/", "destination": "uploaded",
                                   "destination_type": "queue", "routing_key": "k", "arguments": {}})
    downloaded["policies"].append({"vhost": "/", "name": "up-p", "pattern": "^uploaded$", "apply-to": "queues",
                                   "definition": {"message-ttl": 1000}, "priority": 0})
    upload = tmp_path / "edited.json"
    upload.write_text(json.dumps(downloaded))
    form = wait_for(browser, "form.action", "Upload definitions")
    form.find_element(By.NAME, "file").send_keys(str(upload))
    form.find_element(By.CSS_SELECTOR, "button").click()
    assert wait_for(browser, "form.action .ok", "Imported").text == "Imported edited.json."
    queue = api_get(own_broker, "/api/queues/%2F/uploaded")
    assert (queue["arguments"], queue["policy"]) == ({"x-max-length": 9}, "up-p")
    assert [(b["source"], b["routing_key"]) for b in api_get(own_broker, "/api/queues/%2F/uploaded/bindings")
            if b["source"]] == [("up-x", "k")]

    # A file that is not definitions: the broker's reason, nothing imported.
    upload.write_text('{"queues": [{"name": "broken", "vhost": "no-such-vhost", "durable": true}]}')
    form.find_element(By.NAME, "file").send_keys(str(upload))
    form.find_element(By.CSS_SELECTOR, "button").click()
    assert "HTTP 400" in text_of(browser, "form.action .error")
    assert "broken" not in [q["name"] for q in api_get(own_broker, "/api/queues")]


def test_a_move_task_resumed_after_a_restart_is_listed_so(browser: Any, tmp_path: Any) -> None:
    """A durable move task paused by a clean stop goes on at the next start, and the page says so (at 2
    messages a second the task is still running when the page is read, however slow the restart)."""
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as first:
        conn = pika.BlockingConnection(pika.URLParameters(first.url))
        channel = conn.channel()
        channel.confirm_delivery()
        channel.queue_declare("slow-work", durable=True)
        channel.queue_declare("slow-dlq", durable=True)
        death = {"count": 1, "reason": "rejected", "queue": "slow-work", "exchange": "", "routing-keys": ["slow-work"]}
        for i in range(40):
            channel.basic_publish("", "slow-dlq", str(i).encode(),
                                  pika.BasicProperties(delivery_mode=2, headers={"x-death": [death]}))
        conn.close()
        request = urllib.request.Request(base(first) + "api/move-tasks", method="POST",
                                         data=json.dumps({"source": "slow-dlq", "max_rate": 2}).encode(),
                                         headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(),
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            task = json.loads(response.read())
    with EmbeddedBroker(data_dir=data_dir) as second:
        (resumed,) = api_get(second, "/api/move-tasks")
        assert (resumed["id"], resumed["state"], resumed["resumed"]) == (task["id"], "running", 1)
        open_page(browser, second, "#/dead-letters")
        row = row_of(browser, task["id"])
        assert row[1:3] == ["slow-dlq", "running"] and row[5] == "after 1 restart"
