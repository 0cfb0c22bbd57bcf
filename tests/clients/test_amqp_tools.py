"""Debian's amqp-tools (rabbitmq-c command line programs) against the broker.

rabbitmq-c is a C client with its own codec, so it catches framing and negotiation details the
Python clients forgive. Every program runs as a subprocess with a timeout; the whole module is
skipped when the tools are not installed.
"""

from __future__ import annotations

import shutil
import subprocess

import pika
import pytest

TOOLS = ("amqp-publish", "amqp-consume", "amqp-declare-queue", "amqp-get", "amqp-delete-queue")
pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason="amqp-tools (rabbitmq-c) is not installed")
TIMEOUT = 10


def tool(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(list(args), input=stdin, capture_output=True, timeout=TIMEOUT, check=False)


def test_declare_publish_and_consume_one_message(amqp_url, unique, cleanup):
    queue = cleanup.queue(amqp_url, unique("tools"))
    declared = tool("amqp-declare-queue", "-u", amqp_url, "-q", queue)
    assert declared.returncode == 0, declared.stderr
    assert declared.stdout.decode().strip() == queue
    for body in ("first", "second"):
        published = tool("amqp-publish", "-u", amqp_url, "-r", queue, "-b", body)
        assert published.returncode == 0, published.stderr
    consumed = tool("amqp-consume", "-u", amqp_url, "-q", queue, "-c", "1", "cat")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout == b"first"
    got = tool("amqp-get", "-u", amqp_url, "-q", queue)
    assert (got.returncode, got.stdout) == (0, b"second")
    empty = tool("amqp-get", "-u", amqp_url, "-q", queue)
    # amqp-get reports basic.get-empty by its exit status alone.
    assert (empty.returncode, empty.stdout) == (2, b"")


def test_declare_with_empty_name_returns_a_server_generated_name(amqp_url):
    declared = tool("amqp-declare-queue", "-u", amqp_url, "-q", "")
    assert declared.returncode == 0, declared.stderr
    name = declared.stdout.decode().strip()
    assert name.startswith("amq.gen-")
    # The queue is not exclusive: clean it up explicitly.
    assert tool("amqp-delete-queue", "-u", amqp_url, "-q", name).returncode == 0


def test_published_properties_and_headers_reach_a_python_consumer(amqp_url, connect, unique, cleanup):
    queue = cleanup.queue(amqp_url, unique("props"))
    channel = connect(amqp_url).channel()
    channel.queue_declare(queue)
    published = tool("amqp-publish", "-u", amqp_url, "-r", queue, "-p", "-C", "text/plain", "-E", "utf-8",
                     "-t", "replies", "-H", "trace: abc", "-H", "tenant: 7", stdin=b"from stdin")
    assert published.returncode == 0, published.stderr
    method, props, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"from stdin"
    assert (props.content_type, props.content_encoding, props.reply_to, props.delivery_mode) == (
        "text/plain", "utf-8", "replies", 2)
    assert props.headers == {"trace": "abc", "tenant": "7"}


def test_consume_from_a_server_named_queue_bound_to_an_exchange(amqp_url, connect, unique, cleanup):
    exchange = cleanup.exchange(amqp_url, unique("tools-x"))
    channel = connect(amqp_url).channel()
    channel.exchange_declare(exchange, "fanout")
    # rabbitmq-c 0.11's amqp-consume crashes (SIGSEGV) binding with -e but no -r, on any broker: pass -r.
    consumer = subprocess.Popen(["amqp-consume", "-u", amqp_url, "-e", exchange, "-r", "any", "-x", "-c", "1", "cat"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The consumer declares and binds its own queue; publish (mandatory) until the binding exists.
        channel.confirm_delivery()
        for _attempt in range(200):
            try:
                channel.basic_publish(exchange, "", b"hello tools", mandatory=True)
                break
            except pika.exceptions.UnroutableError:
                assert consumer.poll() is None, consumer.stderr.read()
                channel.connection.process_data_events(time_limit=0.05)
        out, err = consumer.communicate(timeout=TIMEOUT)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(timeout=TIMEOUT)
    assert consumer.returncode == 0, err
    assert out == b"hello tools"


def test_publish_to_a_missing_exchange_fails_with_not_found(amqp_url, unique):
    name = unique("absent")
    published = tool("amqp-publish", "-u", amqp_url, "-e", name, "-r", "k", "-b", "x")
    # amqp-publish learns of the channel error only when it closes; it must report it, not hang.
    assert published.returncode != 0
    assert f"NOT_FOUND - no exchange '{name}' in vhost '/'".encode() in published.stderr
