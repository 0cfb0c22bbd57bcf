"""Run one sequence of AMQP operations against leveret and RabbitMQ in lockstep, comparing each answer.

A sequence is a list of operations, each plain data (`("bind", "q0", "hx", "", [("a", ("I", 1))])`), so a
counterexample prints as a list that `replay` runs again. Each broker gets a fresh vhost for the sequence
(made and deleted through its management API, guest given all permissions), one connection and channel 1
in confirm mode. After every operation both brokers' observations must be equal: the reply method and its
fields, a close's code, text, class and method, returned and fetched messages with their content header
payload byte for byte, confirms. A channel or connection the broker closed is opened again, as a client
would.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import pika.frame
from pika.spec import Basic, Channel, Confirm, Connection, Exchange, Queue

import rawmethods
from wireclient import BrokerClosed, WireClient

RABBITMQ_AMQP = "127.0.0.1:5672"
RABBITMQ_API = "http://127.0.0.1:15672/api"
WAIT = 10.0
VHOST_PREFIX = "difffuzz-"


def vhost_name() -> str:
    """A fresh vhost name carrying this process's id, so a sweep can tell a dead run's vhosts from a live one's."""
    return f"{VHOST_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:10]}"


# Every vhost this process asked a broker to create and has not yet seen deleted: registered before the
# create request (its reply may be lost after the broker made it), so `delete_live_vhosts` can remove what an
# interrupted or failed sequence left behind.
_live_vhosts: dict[tuple[str, str], "Broker"] = {}
_live_lock = threading.Lock()


@dataclass
class Broker:
    """One broker the fuzzer drives: where its AMQP and management API listen (guest/guest on both)."""

    label: str
    amqp: str
    api: str

    def _call(self, method: str, path: str, body=None) -> None:
        request = urllib.request.Request(self.api + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            response.read()

    def _get(self, path: str):
        request = urllib.request.Request(self.api + path)
        request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return json.loads(response.read())

    def create_vhost(self, vhost: str) -> None:
        with _live_lock:
            _live_vhosts[(self.api, vhost)] = self
        quoted = urllib.parse.quote(vhost, safe="")
        self._call("PUT", f"/vhosts/{quoted}")
        self._call("PUT", f"/permissions/{quoted}/guest", {"configure": ".*", "write": ".*", "read": ".*"})

    def delete_vhost(self, vhost: str) -> None:
        try:
            self._call("DELETE", f"/vhosts/{urllib.parse.quote(vhost, safe='')}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        with _live_lock:
            _live_vhosts.pop((self.api, vhost), None)

    def vhosts(self) -> list[str]:
        return [entry["name"] for entry in self._get("/vhosts")]

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@{self.amqp}/{urllib.parse.quote(vhost, safe='')}"


def delete_live_vhosts() -> list[str]:
    """Delete every vhost this process created and has not deleted (after an interrupt or a failed close)."""
    with _live_lock:
        left = list(_live_vhosts.items())
    deleted = []
    for (_api, vhost), broker in left:
        try:
            broker.delete_vhost(vhost)
            deleted.append(vhost)
        except (OSError, urllib.error.URLError):
            pass  # that broker is gone (an embedded leveret already stopped): its vhosts went with it
    return deleted


def delete_orphaned_vhosts(broker: Broker) -> list[str]:
    """Delete the fuzzer's vhosts on `broker` whose process is gone (a run killed with SIGKILL leaves them).

    Only names this module makes (`difffuzz-<pid>-<hex>`) with a pid that no longer runs here: vhosts of a
    fuzzer or test suite still running, in this process or another, are left alone.
    """
    deleted = []
    for vhost in broker.vhosts():
        if not vhost.startswith(VHOST_PREFIX):
            continue
        pid, _, suffix = vhost[len(VHOST_PREFIX):].partition("-")
        if not (pid.isdigit() and len(suffix) == 10) or _running(int(pid)):
            continue
        broker.delete_vhost(vhost)
        deleted.append(vhost)
    return deleted


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rabbitmq() -> Broker:
    return Broker("rabbitmq", RABBITMQ_AMQP, RABBITMQ_API)


def leveret(embedded) -> Broker:
    """The broker under test, from a running leveret.embedded.EmbeddedBroker."""
    return Broker("leveret", f"127.0.0.1:{embedded.port}", f"http://127.0.0.1:{embedded.server.http_port}/api")


class RawHeaderClient(WireClient):
    """A WireClient that leaves content headers undecoded: pika turns a `T` value into a datetime and fails
    on years past 9999, while the fuzzer compares the header payload as bytes anyway."""

    def next_frame(self):
        if self.pending:
            return self.pending.pop(0)
        while True:
            buffer = self._buffer
            if len(buffer) >= 7:
                kind, channel, size = struct.unpack_from(">BHI", buffer)
                if len(buffer) < size + 8:
                    pass
                elif kind != 2:
                    return super().next_frame()
                else:
                    header = pika.frame.Header(channel, struct.unpack_from(">Q", buffer, 11)[0], None)
                    header.raw = buffer[7:7 + size]
                    self._buffer = buffer[size + 8:]
                    return header
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("broker closed the socket")
            self._buffer += data


def describe(method) -> tuple:
    """A method as (name, fields): what a client can read of it."""
    fields = {k: v for k, v in vars(method).items() if not k.startswith("_")}
    return (method.NAME, fields)


class Session:
    """One broker's side of a sequence: a vhost of its own, a connection, channel 1 in confirm mode."""

    def __init__(self, broker: Broker, vhost: str) -> None:
        self.broker = broker
        self.vhost = vhost
        self.client: WireClient | None = None
        try:
            broker.create_vhost(vhost)
            self._connect()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        self.client = RawHeaderClient(self.broker.url(self.vhost), timeout=WAIT)
        opened = self.client.open()
        assert isinstance(opened.method, Connection.OpenOk), (self.broker.label, opened.method)
        self._open_channel()

    def _open_channel(self) -> None:
        assert isinstance(self.client.channel(1), Channel.OpenOk)
        assert isinstance(self.client.call(1, Confirm.Select()), Confirm.SelectOk)

    def close(self) -> None:
        """Close the connection and delete the vhost; the vhost goes even when the connection is broken."""
        try:
            if self.client is not None:
                self.client.close()
        finally:
            self.client = None
            self.broker.delete_vhost(self.vhost)

    # -- running one operation --------------------------------------------------------------------
    def run(self, operation: tuple):
        """The observation of one operation; a broker-closed channel or connection is opened again."""
        name, *args = operation
        try:
            observed = getattr(self, "op_" + name)(*args)
        except (BrokerClosed, EOFError, OSError) as exc:
            observed = ("connection lost", type(exc).__name__)
        if _is_close(observed):
            self._recover(observed)
        return observed

    def _recover(self, observed) -> None:
        if observed[0] == "Channel.Close":
            self._open_channel()
        else:
            try:
                self.client.sock.close()
            except OSError:
                pass
            self._connect()

    def _sync(self, payload: bytes, *replies):
        """Send a method frame we encoded; its reply, or the close that replaced it."""
        self.client.send_raw(1, 1, payload)
        return observe(self.client.wait(1, *replies).method)

    def op_declare_exchange(self, name, kind, arguments, passive=False, durable=False, auto_delete=False,
                            internal=False):
        payload = rawmethods.exchange_declare(name, kind, arguments, passive, durable, auto_delete, internal)
        return self._sync(payload, Exchange.DeclareOk)

    def op_delete_exchange(self, name, if_unused=False):
        return observe(self.client.call(1, Exchange.Delete(exchange=name, if_unused=if_unused)))

    def op_declare_queue(self, name, arguments, passive=False, durable=False, exclusive=False, auto_delete=False):
        payload = rawmethods.queue_declare(name, arguments, passive, durable, exclusive, auto_delete)
        return self._sync(payload, Queue.DeclareOk)

    def op_delete_queue(self, name, if_unused=False, if_empty=False):
        return observe(self.client.call(1, Queue.Delete(queue=name, if_unused=if_unused, if_empty=if_empty)))

    def op_purge(self, name):
        return observe(self.client.call(1, Queue.Purge(queue=name)))

    def op_bind(self, queue, exchange, routing_key, arguments):
        return self._sync(rawmethods.queue_bind(queue, exchange, routing_key, arguments), Queue.BindOk)

    def op_unbind(self, queue, exchange, routing_key, arguments):
        return self._sync(rawmethods.queue_unbind(queue, exchange, routing_key, arguments), Queue.UnbindOk)

    def op_bind_exchange(self, destination, source, routing_key, arguments):
        payload = rawmethods.exchange_bind(destination, source, routing_key, arguments)
        return self._sync(payload, Exchange.BindOk)

    def op_publish(self, exchange, routing_key, properties, body, mandatory=False):
        """Publish and wait for its confirm: the returned message (if any) and the ack or nack."""
        client = self.client
        method = pika.frame.Method(1, Basic.Publish(exchange=exchange, routing_key=routing_key,
                                                    mandatory=mandatory)).marshal()
        header = rawmethods.content_header(len(body), properties)
        frames = [method, _frame(2, 1, header)]
        if body:
            frames.append(_frame(3, 1, body))
        client.sock.sendall(b"".join(frames))
        observed = []
        while True:
            frame = client.wait(1, Basic.Ack, Basic.Nack, Basic.Return)
            if isinstance(frame.method, Basic.Return):
                observed.append(message(client, frame))
                continue
            observed.append(observe(frame.method))
            return observed[0] if len(observed) == 1 else tuple(observed)

    def op_get(self, queue, no_ack=True):
        client = self.client
        client.send(1, Basic.Get(queue=queue, no_ack=no_ack))
        frame = client.wait(1, Basic.GetOk, Basic.GetEmpty)
        if isinstance(frame.method, Basic.GetOk):
            return message(client, frame)
        return observe(frame.method)

    def op_ack(self, delivery_tag, multiple=False):
        return self._after(Basic.Ack(delivery_tag=delivery_tag, multiple=multiple))

    def op_nack(self, delivery_tag, multiple=False, requeue=True):
        return self._after(Basic.Nack(delivery_tag=delivery_tag, multiple=multiple, requeue=requeue))

    def op_reject(self, delivery_tag, requeue=True):
        return self._after(Basic.Reject(delivery_tag=delivery_tag, requeue=requeue))

    def op_recover(self, requeue=True):
        return observe(self.client.call(1, Basic.Recover(requeue=requeue)))

    def _after(self, method):
        """An asynchronous method: what a passive declare of amq.direct answers after it (an error shows)."""
        self.client.send(1, method)
        return observe(self.client.call(1, Exchange.Declare(exchange="amq.direct", passive=True)))


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return bytes([kind]) + channel.to_bytes(2, "big") + len(payload).to_bytes(4, "big") + payload + b"\xce"


def _is_close(observed) -> bool:
    return isinstance(observed, tuple) and observed[0] in ("Channel.Close", "Connection.Close", "connection lost")


def observe(method):
    """A reply as a client sees it; a close as (name, code, text, class id, method id)."""
    if isinstance(method, (Channel.Close, Connection.Close)):
        return (method.NAME, method.reply_code, method.reply_text, method.class_id, method.method_id)
    return describe(method)


def message(client: WireClient, frame) -> tuple:
    """A returned or fetched message: its method, content header payload (bytes, exact) and body."""
    method, _properties, body = client.read_message(1, frame)
    return describe(method), client.last_header_raw, body


@dataclass
class Lockstep:
    """Both brokers' sessions for one sequence, and the sequence so far (for the failure message)."""

    brokers: tuple
    sessions: list = field(default_factory=list)
    done: list = field(default_factory=list)

    def __post_init__(self) -> None:
        vhost = vhost_name()
        try:
            for broker in self.brokers:
                self.sessions.append(Session(broker, vhost))
        except BaseException:
            self.close()
            raise

    def step(self, operation: tuple):
        """Run one operation on every broker; fail with the sequence if their observations differ."""
        self.done.append(operation)
        observed = [session.run(operation) for session in self.sessions]
        reference = observed[0]
        for session, other in zip(self.sessions[1:], observed[1:]):
            if other != reference:
                raise Difference(self.done, self.sessions[0].broker.label, reference, session.broker.label, other)
        return reference

    def close(self) -> None:
        """Close every session, each even when another's close fails; the first failure is raised after."""
        failure = None
        for session in self.sessions:
            try:
                session.close()
            except BaseException as exc:  # an interrupt mid-close still lets the others delete their vhost
                failure = failure or exc
        self.sessions.clear()
        if failure is not None:
            raise failure


class Difference(AssertionError):
    """Two brokers answered one operation differently; the message is a ready-to-paste reproduction."""

    def __init__(self, sequence, label_a, seen_a, label_b, seen_b) -> None:
        self.sequence = list(sequence)
        lines = [f"{label_a} and {label_b} differ after {len(sequence)} operation(s):",
                 f"  {label_a}: {seen_a!r}", f"  {label_b}: {seen_b!r}", "replay(", "    ["]
        lines += [f"        {op!r}," for op in sequence]
        lines += ["    ]", ")"]
        super().__init__("\n".join(lines))


def replay(brokers: tuple, sequence: list) -> None:
    """Run a recorded sequence in lockstep (a counterexample, as a regression test)."""
    lockstep = Lockstep(brokers)
    try:
        for operation in sequence:
            lockstep.step(operation)
    finally:
        lockstep.close()
