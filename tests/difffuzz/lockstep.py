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
import re
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import pika.frame
from pika.spec import Basic, Channel, Confirm, Connection, Exchange, Queue, Tx

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
    """One broker's side of a sequence: a vhost of its own, a connection, channel 1 (in confirm mode unless
    `confirm` is false, as a channel that will use transactions must be)."""

    def __init__(self, broker: Broker, vhost: str, confirm: bool = True) -> None:
        self.broker = broker
        self.vhost = vhost
        self.confirm = confirm
        self.client: WireClient | None = None
        self.closed = None  # the close (or lost connection) that ended the current operation
        self.events: list = []  # deliveries, returns, cancels and stray confirms, in the order they came
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
        if self.confirm:
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
        """The observation of one operation; a broker-closed channel or connection is opened again.

        What the broker sent on its own meanwhile (deliveries, returns, server cancels) is part of it:
        `(reply, "events", (event, ...))`.
        """
        name, *args = operation
        self.events = []
        self.closed = None
        try:
            observed = getattr(self, "op_" + name)(*args)
        except (BrokerClosed, EOFError, OSError) as exc:
            observed = self.closed = ("connection lost", type(exc).__name__)
        if self.events:
            observed = (observed, "events", tuple(self.events))
            self.events = []
        if self.closed is not None:
            self._recover(self.closed)
        return observed

    def _recover(self, closed) -> None:
        if closed[0] == "Channel.Close":
            self._open_channel()
        else:
            try:
                self.client.sock.close()
            except OSError:
                pass
            self._connect()

    def _await(self, *replies):
        """The next frame on channel 1 that is one of `replies` (or a close); what the broker sends on its
        own before it goes to `events`, each message read whole."""
        client = self.client
        while True:
            frame = client.next_frame()
            method = getattr(frame, "method", None)
            if isinstance(method, Connection.Close):
                client.send(0, Connection.CloseOk())
                self.closed = observe(method)
                return frame
            if isinstance(method, Channel.Close):
                client.send(frame.channel_number, Channel.CloseOk())
                self.closed = observe(method)
                return frame
            if isinstance(method, replies):
                return frame
            if isinstance(method, (Basic.Deliver, Basic.Return)):
                self.events.append(message(client, frame))
            elif method is not None:
                self.events.append(observe(method))
            else:
                self.events.append(("unexpected frame", type(frame).__name__))

    def _call(self, method, *replies):
        self.client.send(1, method)
        return observe(self._await(*(replies or _REPLIES[type(method)])).method)

    def _sync(self, payload: bytes, *replies):
        """Send a method frame we encoded; its reply, or the close that replaced it."""
        self.client.send_raw(1, 1, payload)
        return observe(self._await(*replies).method)

    def op_declare_exchange(self, name, kind, arguments, passive=False, durable=False, auto_delete=False,
                            internal=False):
        payload = rawmethods.exchange_declare(name, kind, arguments, passive, durable, auto_delete, internal)
        return self._sync(payload, Exchange.DeclareOk)

    def op_delete_exchange(self, name, if_unused=False):
        return self._call(Exchange.Delete(exchange=name, if_unused=if_unused))

    def op_declare_queue(self, name, arguments, passive=False, durable=False, exclusive=False, auto_delete=False):
        payload = rawmethods.queue_declare(name, arguments, passive, durable, exclusive, auto_delete)
        return self._sync(payload, Queue.DeclareOk)

    def op_delete_queue(self, name, if_unused=False, if_empty=False):
        return self._call(Queue.Delete(queue=name, if_unused=if_unused, if_empty=if_empty))

    def op_purge(self, name):
        return self._call(Queue.Purge(queue=name))

    def op_bind(self, queue, exchange, routing_key, arguments):
        return self._sync(rawmethods.queue_bind(queue, exchange, routing_key, arguments), Queue.BindOk)

    def op_unbind(self, queue, exchange, routing_key, arguments):
        return self._sync(rawmethods.queue_unbind(queue, exchange, routing_key, arguments), Queue.UnbindOk)

    def op_bind_exchange(self, destination, source, routing_key, arguments):
        payload = rawmethods.exchange_bind(destination, source, routing_key, arguments)
        return self._sync(payload, Exchange.BindOk)

    def op_unbind_exchange(self, destination, source, routing_key, arguments):
        payload = rawmethods.exchange_unbind(destination, source, routing_key, arguments)
        return self._sync(payload, Exchange.UnbindOk)

    def op_publish(self, exchange, routing_key, properties, body, mandatory=False):
        """Publish; in confirm mode wait for its confirm: (returned message, ack or nack) or the ack alone.

        Without confirms nothing answers a publish: a `settled` operation around it shows its effects."""
        method = pika.frame.Method(1, Basic.Publish(exchange=exchange, routing_key=routing_key,
                                                    mandatory=mandatory)).marshal()
        header = rawmethods.content_header(len(body), properties)
        frames = [method, _frame(2, 1, header)]
        if body:
            frames.append(_frame(3, 1, body))
        self.client.sock.sendall(b"".join(frames))
        if not self.confirm:
            return ("sent",)
        reply = observe(self._await(Basic.Ack, Basic.Nack).method)
        # A return comes before the confirm (RabbitMQ's channel sends both itself); a delivery of the same
        # message may come on either side of it in RabbitMQ (its channel coalesces confirms, and with a
        # channel prefetch the queue asks the limiter before delivering: docs/compatibility.md, "Confirms
        # and deliveries"), so deliveries stay events of the operation, unordered against the confirm.
        returned = [event for event in self.events if event[0][0] == "Basic.Return"]
        self.events = [event for event in self.events if event[0][0] != "Basic.Return"]
        return (*returned, reply) if returned else reply

    def op_get(self, queue, no_ack=True):
        client = self.client
        client.send(1, Basic.Get(queue=queue, no_ack=no_ack))
        frame = self._await(Basic.GetOk, Basic.GetEmpty)
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
        return self._call(Basic.Recover(requeue=requeue))

    def op_qos(self, prefetch_count, global_qos=False):
        return self._call(Basic.Qos(prefetch_count=prefetch_count, global_qos=global_qos))

    def op_consume(self, queue, consumer_tag, no_ack=False, exclusive=False, arguments=()):
        payload = rawmethods.basic_consume(queue, consumer_tag, no_ack, exclusive, arguments)
        return self._sync(payload, Basic.ConsumeOk)

    def op_cancel(self, consumer_tag):
        return self._call(Basic.Cancel(consumer_tag=consumer_tag))

    def op_tx_select(self):
        return self._call(Tx.Select())

    def op_tx_commit(self):
        return self._call(Tx.Commit())

    def op_tx_rollback(self):
        return self._call(Tx.Rollback())

    def op_confirm_select(self):
        return self._call(Confirm.Select())

    def op_settled(self, operation, queues):
        """`operation`, then a passive declare of each of `queues`: (its reply, their replies).

        Deliveries, returns and confirms an operation causes come asynchronously; in RabbitMQ each comes
        from the queue's process, and a passive declare asks that same process for its counts, so the
        declare-ok comes after everything the queue sent for the operation; but the channel process takes
        that reply out of turn (it waits for it), so a delivery the queue sent just before it can still
        follow the declare-ok on the wire. One more round trip through the channel (a passive declare of
        amq.direct, which no queue answers) comes after such a delivery: the events before its reply are
        this operation's, on both brokers alike; the counts are compared too (each queue's last)."""
        name, *args = operation
        reply = getattr(self, "op_" + name)(*args)
        if _is_close(reply):
            return reply
        counts = []
        for queue in queues:
            counted = self._sync(rawmethods.queue_declare(queue, (), passive=True), Queue.DeclareOk)
            counts.append(counted)
            if _is_close(counted):
                return (reply, tuple(counts))
        self._call(Exchange.Declare(exchange="amq.direct", passive=True))
        # A queue named more than once is compared by its last count only: the earlier declares are the wait
        # (RabbitMQ moves a dead letter to the next queue asynchronously, so a first count of that queue can
        # come before it arrives: seen in the hour run, DeadLetterChains seed 1800094, not again in 3 replays).
        last = {queue: i for i, queue in enumerate(queues)}
        return (reply, tuple(count for i, count in enumerate(counts) if last[queues[i]] == i))

    def _after(self, method):
        """An asynchronous method: what a passive declare of amq.direct answers after it (an error shows)."""
        self.client.send(1, method)
        return self._call(Exchange.Declare(exchange="amq.direct", passive=True))


_REPLIES = {
    Exchange.Delete: (Exchange.DeleteOk,), Exchange.Declare: (Exchange.DeclareOk,), Queue.Delete: (Queue.DeleteOk,),
    Queue.Purge: (Queue.PurgeOk,), Basic.Recover: (Basic.RecoverOk,), Basic.Qos: (Basic.QosOk,),
    Basic.Cancel: (Basic.CancelOk,), Tx.Select: (Tx.SelectOk,), Tx.Commit: (Tx.CommitOk,),
    Tx.Rollback: (Tx.RollbackOk,), Confirm.Select: (Confirm.SelectOk,),
}


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
    return describe(method), comparable_header(client.last_header_raw), body


def comparable_header(raw: bytes):
    """The content header as compared: its bytes, unless it carries `x-death`; then its decoded properties
    with each x-death `time` reduced to its type (the moment a message died is not the same on two
    brokers run one after the other) and `count` to its value (leveret writes `I` where RabbitMQ writes
    `l`: docs/compatibility.md, "Field-table types are kept")."""
    if b"x-death" not in raw:
        return raw
    decoded = rawmethods.decode_content_header(raw)
    headers = decoded.get("headers")
    if headers is not None:
        decoded["headers"] = [(key, _comparable_deaths(value) if key == "x-death" else value)
                              for key, value in headers]
    return ("decoded", tuple(sorted(decoded.items())))


def _comparable_deaths(typed):
    tag, deaths = typed
    if tag != "A":
        return typed
    comparable = []
    for death in deaths:
        if death[0] != "F":
            comparable.append(death)
            continue
        entries = []
        for key, value in death[1]:
            if key == "time":
                value = (value[0], "a time")
            elif key == "count" and value[0] in ("I", "l"):
                value = ("integer", value[1])
            entries.append((key, value))
        comparable.append(("F", entries))
    return ("A", comparable)


@dataclass
class Lockstep:
    """Both brokers' sessions for one sequence, and the sequence so far (for the failure message)."""

    brokers: tuple
    confirm: bool = True
    sessions: list = field(default_factory=list)
    done: list = field(default_factory=list)
    stopped: bool = False  # the reference crashed: the rest of the sequence is not compared

    def __post_init__(self) -> None:
        vhost = vhost_name()
        try:
            for broker in self.brokers:
                self.sessions.append(Session(broker, vhost, self.confirm))
        except BaseException:
            self.close()
            raise

    def step(self, operation: tuple):
        """Run one operation on every broker; fail with the sequence if their observations differ.

        Where the reference answers 541 INTERNAL_ERROR and the other broker does not, the reference crashed
        (its bug, not a behaviour to copy: docs/compatibility.md lists the known ones with leveret's
        answer); nothing after it can be compared, so the sequence stops there (later steps are not run)
        and the crash is counted in REFERENCE_CRASHES, which the long run reports."""
        if self.stopped:
            return None
        self.done.append(operation)
        observed = [session.run(operation) for session in self.sessions]
        reference = observed[0]
        for session, other in zip(self.sessions[1:], observed[1:]):
            if other == reference:
                continue
            if _internal_error(reference):
                answer = re.sub(VHOST_PREFIX + r"\d+-[0-9a-f]{10}", "<vhost>", str(other))
                key = f"{operation[0]}: {session.broker.label} answered {answer[:200]}"
                REFERENCE_CRASHES[key] = REFERENCE_CRASHES.get(key, 0) + 1
                self.stopped = True
                return reference
            difference = Difference(self.done, self.sessions[0].broker.label, reference, session.broker.label, other)
            if len(DIFFERENCES_SEEN) < 20:
                DIFFERENCES_SEEN.append(difference)
            raise difference
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


REFERENCE_CRASHES: dict[str, int] = {}
# The first differences raised (the long run clears it per run): when hypothesis reports a failure that did
# not happen again on replay (Flaky...), these say what it was.
DIFFERENCES_SEEN: list = []


def _internal_error(observed) -> bool:
    while isinstance(observed, tuple) and observed and isinstance(observed[0], tuple):
        observed = observed[0]
    return isinstance(observed, tuple) and len(observed) > 1 and observed[1] == 541


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
