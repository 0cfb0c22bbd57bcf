"""A minimal blocking AMQP 0-9-1 client for differential tests, built on pika's frame codec.

Real clients hide exactly what differential tests must see: they refuse to send invalid requests
(a reused consumer tag, a second channel.open, immediate=true), coalesce confirms, and turn close
frames into exceptions that drop the class and method ids. This client sends whatever method it is
given and returns every frame the broker sends back, so a scenario can record the broker's literal
answers. pika's `spec` and `frame` modules do the encoding; this module only adds the socket, the
handshake and the waiting.
"""

from __future__ import annotations

import socket
import struct
import time
import urllib.parse

import pika.frame
import pika.spec
from pika.spec import Basic, Channel, Connection

WAIT = 10.0  # generous: the machine under test is shared and often loaded


class BrokerClosed(Exception):
    """The broker sent connection.close (or dropped the socket) while we waited for something else."""

    def __init__(self, close: Connection.Close | None) -> None:
        super().__init__(close)
        self.close = close


class WireClient:
    """One AMQP connection over a plain socket; every wait is bounded by `timeout` seconds."""

    def __init__(self, url: str, timeout: float = WAIT) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 5672
        self.username = urllib.parse.unquote(parsed.username or "guest")
        self.password = urllib.parse.unquote(parsed.password or "guest")
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        self.vhost = urllib.parse.unquote(path) if path else "/"
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._buffer = b""
        self.pending: list = []  # frames received while waiting for some other frame
        self.last_header_raw = b""
        self.last_body_frame_sizes: list[int] = []
        self.start = self.tune = None
        self.frame_max = 131072

    # -- connection lifecycle -------------------------------------------------------------------
    def open(self, vhost: str | None = None, password: str | None = None, mechanism: str = "PLAIN",
             frame_max: int | None = None, channel_max: int | None = None) -> pika.frame.Method:
        """Handshake up to connection.open; returns the broker's answer to open (OpenOk or Close).

        `self.start` and `self.tune` keep the broker's offers; `frame_max` and `channel_max`
        lower what the client accepts (default: whatever the broker offers).
        """
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        # Small request/response frames: without NODELAY, Nagle and delayed ACKs add ~40 ms per round trip.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.start = self.wait(0, Connection.Start).method
        secret = (password or self.password).encode()
        if mechanism == "AMQPLAIN":
            # AMQPLAIN's response is a field table without its length prefix: LOGIN and PASSWORD.
            response = b"".join(struct.pack(">B", len(key)) + key + b"S" + struct.pack(">I", len(value)) + value
                                for key, value in ((b"LOGIN", self.username.encode()), (b"PASSWORD", secret)))
        else:
            response = b"\x00" + self.username.encode() + b"\x00" + secret
        self.send(0, Connection.StartOk(
            client_properties={"product": "leveret-diff", "capabilities": {
                "publisher_confirms": True, "consumer_cancel_notify": True, "basic.nack": True,
                "exchange_exchange_bindings": True, "connection.blocked": True,
                "authentication_failure_close": True}},
            mechanism=mechanism, response=response, locale="en_US"))
        tune = self.next_frame()
        if isinstance(tune.method, Connection.Close):
            return tune
        self.tune = tune.method
        self.frame_max = frame_max or tune.method.frame_max
        self.send(0, Connection.TuneOk(channel_max=channel_max or tune.method.channel_max,
                                       frame_max=self.frame_max, heartbeat=0))
        self.send(0, Connection.Open(virtual_host=vhost if vhost is not None else self.vhost))
        return self.next_frame()

    def close(self) -> None:
        """Close politely if the connection is still up, then drop the socket."""
        if self.sock is None:
            return
        try:
            self.send(0, Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                frame = self.next_frame()
                if isinstance(getattr(frame, "method", None), (Connection.CloseOk, Connection.Close)):
                    break
        except (OSError, BrokerClosed, EOFError):
            pass
        finally:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> "WireClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames -------------------------------------------------------------------------------
    def send(self, channel: int, method, properties: pika.spec.BasicProperties | None = None,
             body: bytes | None = None) -> None:
        """Send a method, and its content when `body` is given (split into frame_max-sized bodies)."""
        frame_max = self.frame_max
        parts = [pika.frame.Method(channel, method).marshal()]
        if body is not None:
            parts.append(pika.frame.Header(channel, len(body), properties or pika.spec.BasicProperties()).marshal())
            chunk = frame_max - 8
            for start in range(0, len(body), chunk):
                parts.append(pika.frame.Body(channel, body[start:start + chunk]).marshal())
        self.sock.sendall(b"".join(parts))

    def send_raw(self, channel: int, frame_type: int, payload: bytes) -> None:
        """Send one frame with a payload encoded by the caller (for encodings pika cannot produce)."""
        self.sock.sendall(struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce")

    def next_frame(self):
        """The next frame from the socket (heartbeats skipped); EOFError when the broker hangs up."""
        if self.pending:
            return self.pending.pop(0)
        while True:
            consumed, frame = pika.frame.decode_frame(self._buffer)
            if frame is not None:
                # The undecoded payload stays available, so tests can compare encodings, not just values.
                frame.raw = self._buffer[7:consumed - 1]
                self._buffer = self._buffer[consumed:]
                if isinstance(frame, pika.frame.Heartbeat):
                    continue
                return frame
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("broker closed the socket")
            self._buffer += data

    def wait(self, channel: int, *methods) -> pika.frame.Method:
        """Next method frame on `channel` of one of the given classes, keeping other frames pending.

        A connection.close or channel.close arriving instead is returned as well, so that scenarios
        can record errors where they expected success.
        """
        skipped = []
        try:
            while True:
                frame = self.next_frame()
                method = getattr(frame, "method", None)
                if isinstance(method, Connection.Close):
                    self.send(0, Connection.CloseOk())
                    return frame
                if frame.channel_number == channel and isinstance(method, (*methods, Channel.Close)):
                    if isinstance(method, Channel.Close):
                        self.send(channel, Channel.CloseOk())
                    return frame
                skipped.append(frame)
        finally:
            self.pending[:0] = skipped

    def call(self, channel: int, method, *replies):
        """Send a synchronous method and return its reply method (or the close that replaced it)."""
        self.send(channel, method)
        expected = replies or _REPLIES[type(method)]
        return self.wait(channel, *expected).method

    def channel(self, number: int):
        return self.call(number, Channel.Open(), Channel.OpenOk)

    def read_message(self, channel: int, first: pika.frame.Method) -> tuple:
        """Given a content-bearing method frame, read its header and bodies: (method, properties, body).

        `self.last_header_raw` keeps the header frame's payload as the broker encoded it.
        """
        header = self.next_frame()
        assert isinstance(header, pika.frame.Header) and header.channel_number == channel, header
        self.last_header_raw = header.raw
        body = b""
        self.last_body_frame_sizes = []
        while len(body) < header.body_size:
            frame = self.next_frame()
            assert isinstance(frame, pika.frame.Body), frame
            body += frame.fragment
            self.last_body_frame_sizes.append(len(frame.fragment))
        return first.method, header.properties, body

    def deliveries(self, channel: int, count: int) -> list[tuple]:
        """The next `count` basic.deliver messages on `channel`, as (method, properties, body)."""
        return [self.read_message(channel, self.wait(channel, Basic.Deliver)) for _ in range(count)]

    def get(self, channel: int, queue: str, no_ack: bool = True):
        """basic.get: (GetOk method, properties, body), or (GetEmpty, None, None), or (close, None, None)."""
        self.send(channel, Basic.Get(queue=queue, no_ack=no_ack))
        frame = self.wait(channel, Basic.GetOk, Basic.GetEmpty)
        if isinstance(frame.method, Basic.GetOk):
            return self.read_message(channel, frame)
        return frame.method, None, None


_REPLIES = {
    Channel.Open: (Channel.OpenOk,),
    Channel.Close: (Channel.CloseOk,),
    Channel.Flow: (Channel.FlowOk,),
    pika.spec.Exchange.Declare: (pika.spec.Exchange.DeclareOk,),
    pika.spec.Exchange.Delete: (pika.spec.Exchange.DeleteOk,),
    pika.spec.Exchange.Bind: (pika.spec.Exchange.BindOk,),
    pika.spec.Exchange.Unbind: (pika.spec.Exchange.UnbindOk,),
    pika.spec.Queue.Declare: (pika.spec.Queue.DeclareOk,),
    pika.spec.Queue.Bind: (pika.spec.Queue.BindOk,),
    pika.spec.Queue.Unbind: (pika.spec.Queue.UnbindOk,),
    pika.spec.Queue.Purge: (pika.spec.Queue.PurgeOk,),
    pika.spec.Queue.Delete: (pika.spec.Queue.DeleteOk,),
    Basic.Qos: (Basic.QosOk,),
    Basic.Consume: (Basic.ConsumeOk,),
    Basic.Cancel: (Basic.CancelOk,),
    Basic.Recover: (Basic.RecoverOk,),
    pika.spec.Confirm.Select: (pika.spec.Confirm.SelectOk,),
    pika.spec.Tx.Select: (pika.spec.Tx.SelectOk,),
    pika.spec.Tx.Commit: (pika.spec.Tx.CommitOk,),
    pika.spec.Tx.Rollback: (pika.spec.Tx.RollbackOk,),
}
