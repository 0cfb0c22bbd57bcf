"""The dashboard's Shovels page in a real headless Chromium (as tests/http/test_dashboard.py drives it): every
shovel with its state, ends, messages moved, and the reason of one that stopped. Skipped only where chromium
or chromedriver is absent. The browser is test_dashboard.py's fixture (one Chromium per module)."""

from __future__ import annotations

from typing import Any

import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.test_dashboard import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401 (browser: the fixture)
from tests.shovel.helpers import on_loop, publish, settled, shovel_state, wait_for

pytestmark = [pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium or chromedriver is not installed"),
              pytest.mark.timeout(90)]

PAGE_WAIT = 10.0  # seconds an element may take to appear (the page refreshes every 5 s)


def row_named(browser: Any, name: str, containing: str) -> list[str]:
    """The cells of the shovels table's row for `name`, once one of them contains `containing`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver: Any) -> list[str] | bool:
        for row in driver.find_elements(By.CSS_SELECTOR, "table.data tbody tr"):
            try:
                texts = [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")]
            except Exception:  # the refresh replaced the row while it was read: look again
                return False
            if texts and texts[0] == name and any(containing in text for text in texts):
                return texts
        return False

    return WebDriverWait(browser, PAGE_WAIT).until(found, f"no row {name!r} with {containing!r}")


def test_the_shovels_page_lists_state_ends_moved_and_reason(browser: Any, leveret_broker: EmbeddedBroker) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    broker = leveret_broker
    publish(broker.url, "in", 5)
    set_parameter = broker.server.broker.parameters.set
    on_loop(broker, set_parameter, "/", "shovel", "mover",
            {"src-uri": "amqp://", "src-queue": "in", "dest-uri": "amqp://", "dest-queue": "out"})
    on_loop(broker, set_parameter, "/", "shovel", "broken",
            {"src-uri": "amqp://guest:secret@127.0.0.1:1", "src-queue": "q", "dest-uri": "amqp://",
             "dest-exchange": "amq.topic", "dest-exchange-key": "k", "reconnect-delay": 30})
    settled(broker, 5)
    wait_for(lambda: (row := shovel_state(broker, "/", "broken")) and row["state"] == "terminated", 20,
             "the broken shovel to fail")

    browser.get(f"http://127.0.0.1:{broker.server.http_port}/#/shovels")
    form = WebDriverWait(browser, PAGE_WAIT).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#login"))[0]
    form.find_element(By.NAME, "username").send_keys("guest")
    form.find_element(By.NAME, "password").send_keys("guest")
    form.find_element(By.CSS_SELECTOR, "button").click()

    assert row_named(browser, "mover", "running") == ["mover", "/", "running", "amqp:// queue in",
                                                     "amqp:// queue out", "5", ""]
    broken = row_named(browser, "broken", "terminated")
    assert broken[:3] == ["broken", "/", "terminated"]
    assert "refused" in broken[6].lower() or "connect" in broken[6].lower()
    assert "current" in browser.find_element(By.CSS_SELECTOR, 'nav a[href="#/shovels"]').get_attribute("class")
