"""Differential tests of protocol edges at the frame level: what RabbitMQ does with a pipelined
handshake and with content that is announced but not (yet) sent, and leveret the same.

Measured against RabbitMQ 3.10 with raw sockets:
* A client may send the protocol header, start-ok, tune-ok, connection.open, channel.open and more
  (a declare, a publish, a get) in ONE write, before any reply: RabbitMQ reads frame by frame and
  answers everything in order. Its frame_max from tune-ok applies to the frames after it.
* A header announcing a body over the maximum message size gets no answer until the whole body is
  in (RabbitMQ swallows it); then channel.close 406, and after close-ok the channel number opens again.
* channel.close-ok while a content body announced on that channel is incomplete is, in RabbitMQ
  3.10, a connection error (505: the body is still expected), also when the channel is closing
  because of an earlier publish. Leveret gives the same answer.
* A frame header announcing more than frame_max is refused at once (501 with the frame_too_large
  term), before any of its payload arrives.
"""

from __future__ import annotations

import socket
import struct

import pika.frame
import pytest
from pika.spec import Basic, Channel, Connection, Queue

from differential import close_of
from wireclient import WireClient

MAX_MESSAGE_SIZE = 134_217_728  # RabbitMQ's default max_message_size, and leveret's


def method(channel: int, m) -> bytes:
    return pika.frame.Method(channel, m).marshal()


def content(channel: int, body_size: int, body: bytes, frame_max: int = 131072) -> bytes:
    """A content header announcing body_size, then `body` (which may be shorter) in body frames."""
    parts = [pika.frame.Header(channel, body_size, pika.spec.BasicProperties()).marshal()]
    step = frame_max - 8
    parts += [pika.frame.Body(channel, body[i:i + step]).marshal() for i in range(0, len(body), step)]
    return b"".join(parts)


def answers(client: WireClient, until) -> list:
    """Frames until `until(frame)` is true (inclusive), as names and close fields."""
    seen = []
    while True:
        frame = client.next_frame()
        m = getattr(frame, "method", None)
        if m is None:
            seen.append((frame.channel_number, type(frame).__name__, getattr(frame, "fragment", None)))
        else:
            seen.append((frame.channel_number, close_of(m) or type(m).NAME))
        if until(frame):
            return seen


def is_method(*kinds):
    return lambda frame: isinstance(getattr(frame, "method", None), kinds)


def test_a_handshake_pipelined_with_channel_open_declare_publish_and_get_in_one_write(differential):
    def scenario(url, names):
        client = WireClient(url)
        client.sock = socket.create_connection((client.host, client.port), timeout=client.timeout)
        queue = names("pipelined")
        write = (b"AMQP\x00\x00\x09\x01"
                 + method(0, Connection.StartOk(client_properties={"product": "pipelined"}, mechanism="PLAIN",
                                                response=b"\x00guest\x00guest", locale="en_US"))
                 + method(0, Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0))
                 + method(0, Connection.Open(virtual_host="/"))
                 + method(1, Channel.Open())
                 + method(1, Queue.Declare(queue=queue, exclusive=True))
                 + method(1, Basic.Publish(exchange="", routing_key=queue))
                 # 10,000 bytes in one body frame: more than the 4096 allowed before tune-ok.
                 + content(1, 10_000, b"p" * 10_000)
                 + method(1, Basic.Get(queue=queue, no_ack=True)))
        try:
            client.sock.sendall(write)
            seen = answers(client, lambda f: getattr(f, "fragment", None) is not None)
            return [entry if entry[1] != "Body" else (entry[0], "Body", len(entry[2])) for entry in seen]
        finally:
            client.close()

    assert differential(scenario) == [
        (0, "Connection.Start"), (0, "Connection.Tune"), (0, "Connection.OpenOk"), (1, "Channel.OpenOk"),
        (1, "Queue.DeclareOk"), (1, "Basic.GetOk"), (1, "Header", None), (1, "Body", 10_000),
    ]


def test_a_body_over_the_maximum_size_is_refused_only_once_it_is_all_in_and_the_channel_reopens(differential):
    def scenario(url, names):
        with WireClient(url) as client:
            client.open()
            client.channel(1)
            client.channel(2)
            announced = MAX_MESSAGE_SIZE + 1
            client.sock.sendall(method(1, Basic.Publish(exchange="", routing_key=names("nowhere")))
                                + content(1, announced, b"x" * 100_000))
            # Channel 2 is served meanwhile, and channel 1 has not been closed before its reply.
            client.sock.sendall(method(2, Queue.Declare(queue="", exclusive=True)))
            before = answers(client, is_method(Queue.DeclareOk))
            client.sock.sendall(content(1, announced, b"x" * (announced - 100_000))[len(content(1, announced, b"")):])
            closed = answers(client, is_method(Channel.Close, Connection.Close))
            client.send(1, Channel.CloseOk())
            reopened = type(client.channel(1)).NAME
            return before, closed, reopened

    before, closed, reopened = differential(scenario)
    assert before == [(2, "Queue.DeclareOk")]
    assert closed == [(1, ("Channel.Close", 406, "PRECONDITION_FAILED - message size 134217729 is larger than "
                                                 "configured max size 134217728", 60, 40))]
    assert reopened == "Channel.OpenOk"


@pytest.mark.parametrize("sent", [0, 5], ids=["header-only", "half-body"])
def test_close_ok_while_an_announced_body_is_incomplete(differential, sent):
    def scenario(url, names):
        with WireClient(url) as client:
            client.open()
            client.channel(1)
            client.sock.sendall(method(1, Basic.Publish(exchange=names("missing"), routing_key="k"))
                                + content(1, 5, b"12345"))
            closed = answers(client, is_method(Channel.Close))
            # Another publish announcing 10 bytes, only partly sent, then the close-ok.
            client.sock.sendall(method(1, Basic.Publish(exchange=names("missing"), routing_key="k"))
                                + content(1, 10, b"12345"[:sent]) + method(1, Channel.CloseOk()))
            client.sock.sendall(method(1, Channel.Open()))
            reply = answers(client, is_method(Channel.OpenOk, Connection.Close))
            client.send(0, Connection.CloseOk())
            return closed, reply

    closed, reply = differential(scenario)
    assert closed == [(1, ("Channel.Close", 404, "NOT_FOUND - no exchange '<missing>' in vhost '/'", 60, 40))]
    assert reply == [(0, ("Connection.Close", 505, "UNEXPECTED_FRAME - expected content body, got non content "
                                                   "body frame instead", 60, 40))]


@pytest.mark.parametrize("frame_type", [1, 2, 3], ids=["method", "header", "body"])
def test_a_frame_over_frame_max_is_refused_from_its_header_with_rabbitmqs_exact_text(differential, frame_type):
    def scenario(url, _names):
        client = WireClient(url)
        try:
            client.open()
            client.channel(1)
            # Only the 7-byte header of a frame one octet over the limit: nothing of it is waited for.
            client.sock.sendall(struct.pack(">BHI", frame_type, 1, client.frame_max + 1))
            return answers(client, is_method(Connection.Close))
        finally:
            # RabbitMQ reads nothing more after a frame error (it would wait 3 s for a close-ok): just hang up.
            client.sock.close()

    assert differential(scenario) == [(0, ("Connection.Close", 501, f"FRAME_ERROR - type {frame_type}, all octets = "
                                           "<<>>: {frame_too_large,131073,131064}", 0, 0))]
