"""Runs every example of docs/patterns.md against a broker and checks what it prints.

Each ```python block in the page is a complete aio-pika program whose first lines define
`AMQP_URL = "amqp://guest:guest@localhost/"`; the test puts the broker's URL there, runs the program
in a thread (bounded by TIMEOUT) and compares its output with the "Prints:" block that follows it in
the page. Lines must match exactly, except decimal numbers (timings), which may be up to SLACK
seconds later than documented but never earlier.

With `--amqp-url` pointing at RabbitMQ 3.10 the examples that use leveret extensions (delayed
messages need a plugin, x-requeue-delay is leveret's) are skipped, and what the others declared is
deleted afterwards, since the names in the page are fixed.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "patterns.md"
PLACEHOLDER = 'AMQP_URL = "amqp://guest:guest@localhost/"'
TIMEOUT = 15.0  # seconds per example; each takes about one
SLACK = 0.3  # seconds a printed timing may exceed the documented one
LEVERET_ONLY = ("x-delayed-message", "x-requeue-delay")

_BLOCK = re.compile(r"^## (?P<title>.+?)$|^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.M | re.S)
_DECIMAL = re.compile(r"-?\d+\.\d+")


def load_examples(text: str) -> list[tuple[str, str, str]]:
    """(section title, code, expected output) for every python block, in page order."""
    examples: list[tuple[str, str, str]] = []
    title = ""
    code: str | None = None
    for match in _BLOCK.finditer(text):
        if match["title"] is not None:
            title = match["title"]
        elif match["lang"] == "python":
            assert code is None, f"section {title!r}: a python block without its Prints block"
            code = match["body"]
        elif code is not None:
            examples.append((title, code, match["body"]))
            code = None
    assert code is None, f"section {title!r}: the last python block has no Prints block"
    return examples


EXAMPLES = load_examples(PAGE.read_text(encoding="utf-8"))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]


def declared_names(code: str) -> tuple[list[str], list[str]]:
    """Queue and exchange names an example declares (f-string `{i}` expanded for 0..9)."""

    def expand(names: list[str]) -> list[str]:
        out: list[str] = []
        for name in names:
            out += [name.replace("{i}", str(i)) for i in range(10)] if "{i}" in name else [name]
        return out

    queues = re.findall(r'declare_queue\(\s*f?"([^"]+)"', code)
    exchanges = re.findall(r'declare_exchange\(\s*f?"([^"]+)"', code)
    exchanges += [f"demo.{kind}" for kind in re.findall(r'await demo\("(\w+)"', code)]
    return expand(queues), expand(exchanges)


def run_example(code: str, url: str, timeout: float = TIMEOUT) -> str:
    """Run one example with AMQP_URL set to `url`; return what it printed (raise what it raised)."""
    assert code.count(PLACEHOLDER) == 1, "an example must define AMQP_URL exactly once"
    program = compile(code.replace(PLACEHOLDER, f"AMQP_URL = {url!r}"), "<docs/patterns.md>", "exec")
    output = io.StringIO()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            with contextlib.redirect_stdout(output):
                exec(program, {"__name__": "__main__"})
        except BaseException as e:  # noqa: BLE001 - handed to the test
            failure.append(e)

    thread = threading.Thread(target=target, name="docs-example", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"example still running after {timeout} s; printed so far:\n{output.getvalue()}")
    if failure:
        raise failure[0]
    return output.getvalue()


def same_output(expected: str, actual: str) -> bool:
    """Line by line equal, decimals allowed to be up to SLACK larger (never smaller)."""
    expected_lines, actual_lines = expected.strip().splitlines(), actual.strip().splitlines()
    if len(expected_lines) != len(actual_lines):
        return False
    for want, got in zip(expected_lines, actual_lines):
        if _DECIMAL.sub("#", want) != _DECIMAL.sub("#", got):
            return False
        for w, g in zip(map(float, _DECIMAL.findall(want)), map(float, _DECIMAL.findall(got))):
            if not (w - 0.05 <= g <= w + SLACK):
                return False
    return True


def _product(url: str) -> str:
    import pika

    from tests.conftest import pika_parameters

    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        product = connection._impl.server_properties.get("product")
    finally:
        connection.close()
    return product.decode() if isinstance(product, bytes) else str(product)


def test_the_page_has_an_example_per_pattern():
    titles = [title for title, _, _ in EXAMPLES]
    assert len(EXAMPLES) >= 11, titles
    assert len(set(titles)) == len(titles), "one example per section"
    for title, code, expected in EXAMPLES:
        assert code.count(PLACEHOLDER) == 1, title
        assert "asyncio.run(" in code and expected.strip(), title


def test_output_comparison_tolerates_later_timings_only():
    assert same_output("now: after 0.2 s\n", "now: after 0.3 s")
    assert not same_output("now: after 0.2 s", "now: after 0.1 s")
    assert not same_output("a ['x', 'y']", "a ['y', 'x']")
    assert not same_output("one\ntwo", "one")


@pytest.mark.parametrize(("title", "code", "expected"), EXAMPLES, ids=[_slug(t) for t, _, _ in EXAMPLES])
def test_example(amqp_url, request, cleanup, title, code, expected):
    if request.config.getoption("--amqp-url"):
        if any(marker in code for marker in LEVERET_ONLY) and _product(amqp_url) != "leveret":
            pytest.skip("uses a leveret extension")
        queues, exchanges = declared_names(code)
        for name in queues:
            cleanup.queue(amqp_url, name)
        for name in exchanges:
            cleanup.exchange(amqp_url, name)
    printed = run_example(code, amqp_url)
    assert same_output(expected, printed), f"{title}: expected\n{expected}\ngot\n{printed}"
