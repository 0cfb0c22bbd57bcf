"""Scenarios (a)-(h) of the benchmark plan, each runnable against any amqp URL.

Every scenario returns a dict: ``scenario``, ``params``, ``metrics`` (the
figures), ``verdict`` (honesty checks: published == confirmed == delivered,
no duplicates or gaps, the queue empty at the end) and ``broker`` (pid, RSS,
CPU seconds used during the run when the broker process is visible).

Figures are only meaningful when ``verdict.ok`` is true.  Counts and time
limits are parameters; every run stops by itself at its deadline.
"""

from __future__ import annotations

import os
import resource
import time
import uuid
from dataclasses import asdict

from . import procinfo, wire
from .client import BrokerAddress, Connection, Consumer, Publisher
from .ledger import Ledger, Verdict
from .workers import CTX, Team, consumer_worker, publisher_worker


def percentiles(values_us: list) -> dict:
    """p50/p99/max of microsecond samples, in milliseconds."""
    if not values_us:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    v = sorted(values_us)
    n = len(v)
    return {"p50_ms": round(v[n // 2] / 1000, 3), "p99_ms": round(v[min(n - 1, (n * 99) // 100)] / 1000, 3),
            "max_ms": round(v[-1] / 1000, 3), "samples": n}


# Queues and exchanges created and not yet deleted, so that a run that fails
# or is interrupted half-way leaves nothing behind on the broker (``cleanup``).
_LIVE: dict[str, str] = {}
# The broker of each name declared on another broker than the scenario's URL (the shards of ``many_queues``).
_HOME: dict[str, str] = {}


def _name(tag: str, kind: str = "queue", home: str | None = None) -> str:
    name = f"loadgen.{tag}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    _LIVE[name] = kind
    if home is not None:
        _HOME[name] = home
    return name


def _deleted(name: str) -> None:
    _LIVE.pop(name, None)
    _HOME.pop(name, None)


def cleanup(url: str) -> int:
    """Delete whatever the last scenario created and did not delete; never raises."""
    homes = {_HOME.get(name, url) for name in _LIVE}
    return sum(_cleanup_at(home, [n for n in _LIVE if _HOME.get(n, url) == home]) for home in homes)


def _cleanup_at(url: str, names: list[str]) -> int:
    done = 0
    conn = None
    try:
        conn = Connection(url, timeout=10)
        conn.channel_open(1)
        for name in names:
            kind = _LIVE[name]
            try:
                if kind == "exchange":
                    conn.exchange_delete(1, name)
                else:
                    conn.queue_delete(1, name)
                done += 1
            except wire.AMQPClosed:
                conn.channel_open(1)  # e.g. 404 on an already deleted name
            _deleted(name)
    except (OSError, wire.AMQPClosed, wire.ProtocolViolation):
        pass
    finally:
        if conn is not None:
            conn.close()
    return done


class BrokerProbe:
    """RSS and CPU of the broker process, if it can be found (else None).

    ``pid`` may be a list: a broker of several processes (the shards of ``--leveret-shards``), whose RSS
    and CPU are the sums, with each process's CPU in ``cpu_s_per_process``."""

    def __init__(self, url: str, pid: int | list[int] | None = None) -> None:
        self.pids = list(pid) if isinstance(pid, (list, tuple)) else [
            pid or procinfo.pid_listening_on(BrokerAddress.parse(url).port)]
        self.pid = self.pids[0] if len(self.pids) == 1 else self.pids
        self.cpu0 = [procinfo.cpu_seconds(p) for p in self.pids]
        self.marks: dict = {"pid": self.pid}

    def mark(self, label: str) -> int | None:
        sizes = [procinfo.rss_kib(p) for p in self.pids]
        rss = sum(sizes) if None not in sizes else None
        self.marks[f"rss_kib_{label}"] = rss
        return rss

    def finish(self) -> dict:
        used = []
        for p, c0 in zip(self.pids, self.cpu0):
            c1 = procinfo.cpu_seconds(p)
            used.append(round(c1 - c0, 3) if c0 is not None and c1 is not None else None)
        if None not in used:
            self.marks["cpu_s"] = round(sum(used), 3)
            if len(used) > 1:
                self.marks["cpu_s_per_process"] = used
        return self.marks


def _drain_verify(url: str, queue: str, count: int, per_publisher: list[int], verdict: Verdict,
                  label: str, deadline: float) -> dict:
    """Consume everything a publish-only run left behind and check the ledger."""
    conn = Connection(url)
    try:
        ch = conn.channel_open(1)
        res = Consumer(conn, ch, queue).run(count, Ledger(per_publisher), deadline=deadline)
        verdict.ledger(label, res.ledger)
        verdict.expect(f"{label}.extra_after", res.stray_after, 0)
        if res.error:
            verdict.fail(f"{label}: {res.error}")
        return asdict(res)
    finally:
        conn.close()


def _finish_queue(ctl: Connection, queue: str, verdict: Verdict, delete: bool = True) -> None:
    """The queue must be empty at the end; then remove it."""
    verdict.expect("queue_empty_at_end", ctl.message_count(1, queue), 0)
    if delete:
        ctl.queue_delete(1, queue)
        _deleted(queue)


STALL_S = 10.0


def _wait_count(ctl: Connection, queue: str, count: int, deadline: float, poll: float = 0.02,
                stall: float = STALL_S) -> tuple[int, float]:
    """Poll a passive declare until the queue holds ``count`` messages.

    Gives up early when the count has not moved for ``stall`` seconds: a broker that lost messages
    will not find them again, and waiting out the whole run's timeout only delays the verdict."""
    t0 = time.monotonic()
    n = ctl.message_count(1, queue)
    moved = time.monotonic()
    while n < count and time.monotonic() < deadline:
        time.sleep(poll)
        last, n = n, ctl.message_count(1, queue)
        now = time.monotonic()
        if n != last:
            moved = now
        elif now - moved > stall:
            break
    return n, time.monotonic() - t0


def _check_publisher(verdict: Verdict, label: str, r: dict, count: int, confirms: bool) -> None:
    if r.get("error"):
        verdict.fail(f"{label}: {r['error']}")
    verdict.expect(f"{label}.sent", r.get("sent"), count)
    if confirms:
        verdict.expect(f"{label}.confirmed", r.get("confirmed"), count)
        verdict.expect(f"{label}.nacked", r.get("nacked"), 0)
    if r.get("timed_out"):
        verdict.fail(f"{label}: timed out")


def _result(scenario: str, params: dict, metrics: dict, verdict: Verdict, probe: BrokerProbe) -> dict:
    return {"scenario": scenario, "params": params, "metrics": metrics,
            "verdict": verdict.as_dict(), "broker": probe.finish(), "loadavg": procinfo.loadavg()}


# --- (a) -------------------------------------------------------------------
def publish_only(url: str, *, size: int = 1024, count: int = 100_000, publishers: int = 1,
                 timeout: float = 60.0, verify: bool = True, pid: int | None = None) -> dict:
    """(a) Transient publishes, no confirms; timed until the queue holds them all."""
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name("a")
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, queue)
    per = [count // publishers + (1 if i < count % publishers else 0) for i in range(publishers)]
    team = Team()
    for i, n in enumerate(per):
        team.add(publisher_worker, url=url, exchange="", routing_key=queue, body_size=size, count=n,
                 publisher_id=i, deadline=deadline)
    team.start()
    probe.mark("before")
    t0 = time.monotonic()
    team.go()
    # The passive-declare poll doubles as the clock: a publish counts once the
    # broker has enqueued it, not when our socket buffer took it.
    held, _ = _wait_count(ctl, queue, count, deadline)
    elapsed = time.monotonic() - t0
    probe.mark("full")
    results = team.collect(timeout=max(5.0, deadline - time.monotonic()))
    for i, r in enumerate(results):
        _check_publisher(verdict, f"publisher{i}", r, per[i], confirms=False)
    verdict.expect("queue_count_after_publish", held, count)
    send_elapsed = max((r.get("send_elapsed") or 0) for r in results)
    metrics = {"msgs_per_s": round(count / elapsed) if held == count else 0,
               "send_msgs_per_s": round(sum(r.get("sent", 0) for r in results) / send_elapsed) if send_elapsed else 0,
               "mb_per_s": round(count * size / elapsed / 1e6, 1) if held == count else 0,
               "elapsed_s": round(elapsed, 3)}
    if verify:
        # Drain what the queue holds: missing messages show as gaps in the ledger, without waiting for them.
        _drain_verify(url, queue, min(held, count), per, verdict, "verify", time.monotonic() + timeout)
    else:
        verdict.expect("purged", ctl.queue_purge(1, queue), count)
    _finish_queue(ctl, queue, verdict)
    ctl.close()
    return _result(f"a-publish-{size}B", {"size": size, "count": count, "publishers": publishers}, metrics, verdict, probe)


# --- (b) -------------------------------------------------------------------
def confirms(url: str, *, size: int = 1024, count: int = 50_000, window: int = 1000,
             timeout: float = 60.0, verify: bool = True, pid: int | None = None) -> dict:
    """(b) Persistent messages to a durable queue with publisher confirms."""
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name("b")
    conn = Connection(url)
    ch = conn.channel_open(1)
    conn.queue_declare(ch, queue, durable=True)
    pub = Publisher(conn, ch, "", queue, size, persistent=True, confirms=True)
    probe.mark("before")
    r = pub.run(count, window=window, deadline=deadline)
    probe.mark("after")
    _check_publisher(verdict, "publisher", asdict(r), count, confirms=True)
    verdict.expect("queue_count_after_publish", conn.message_count(ch, queue), count)
    metrics = {"msgs_per_s": round(r.confirmed / r.elapsed) if r.elapsed else 0,
               "confirm_latency": percentiles(r.confirm_latencies_us), "elapsed_s": round(r.elapsed, 3)}
    if verify:
        _drain_verify(url, queue, count, [count], verdict, "verify", time.monotonic() + timeout)
    _finish_queue(conn, queue, verdict)
    conn.close()
    return _result("b-confirms-persistent", {"size": size, "count": count, "window": window}, metrics, verdict, probe)


def _fill(url: str, queue: str, count: int, size: int, verdict: Verdict, deadline: float,
          persistent: bool = False) -> dict:
    """Publish ``count`` messages with confirms (window 1000); untimed set-up."""
    conn = Connection(url)
    try:
        ch = conn.channel_open(1)
        pub = Publisher(conn, ch, "", queue, size, persistent=persistent, confirms=True)
        r = pub.run(count, window=1000, deadline=deadline, record_latency=False)
        _check_publisher(verdict, "fill", asdict(r), count, confirms=True)
        return {"fill_msgs_per_s": round(r.confirmed / r.elapsed) if r.elapsed else 0}
    finally:
        conn.close()


# --- (c) -------------------------------------------------------------------
def consume(url: str, *, size: int = 1024, count: int = 100_000, prefetch: int = 1000, ack_every: int = 500,
            timeout: float = 60.0, pid: int | None = None) -> dict:
    """(c) Drain a pre-filled queue: prefetch 1000, multiple-ack every 500."""
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name("c")
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, queue)
    _fill(url, queue, count, size, verdict, deadline)
    verdict.expect("queue_count_after_fill", ctl.message_count(1, queue), count)
    probe.mark("full")
    conn = Connection(url)
    ch = conn.channel_open(1)
    cons = Consumer(conn, ch, queue, prefetch=prefetch, ack_every=ack_every)
    r = cons.run(count, Ledger([count]), deadline=deadline)
    conn.close()
    probe.mark("drained")
    verdict.ledger("consumer", r.ledger)
    verdict.expect("consumer.redelivered", r.redelivered, 0)
    if r.error or r.timed_out:
        verdict.fail(f"consumer: {r.error or 'timed out'}")
    metrics = {"msgs_per_s": round(r.received / r.elapsed) if r.elapsed else 0, "elapsed_s": round(r.elapsed, 3)}
    _finish_queue(ctl, queue, verdict)
    ctl.close()
    return _result("c-consume-prefilled", {"size": size, "count": count, "prefetch": prefetch,
                                           "ack_every": ack_every}, metrics, verdict, probe)


# --- (d) -------------------------------------------------------------------
def end_to_end(url: str, *, size: int = 1024, count: int = 50_000, window: int | None = 1000,
               rate: float | None = None, timeout: float = 60.0, pid: int | None = None) -> dict:
    """(d) One publisher, one consumer, e2e latency from the body timestamp.

    Closed loop: at most ``window`` messages published but not yet consumed.
    Open loop: ``rate`` msgs/s on a fixed schedule regardless of the broker.
    """
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name("d")
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, queue)
    progress = CTX.RawValue("q", 0)
    team = Team()
    team.add(consumer_worker, url=url, queue=queue, expected=count, per_publisher=[count],
             record_latency=True, progress=progress, deadline=deadline)
    team.add(publisher_worker, url=url, exchange="", routing_key=queue, body_size=size, count=count,
             window=None if rate else window, rate=rate, consumed=None if rate else progress, deadline=deadline)
    team.start()
    probe.mark("before")
    team.go()
    cons, pub = team.collect(timeout=timeout + 10)
    probe.mark("after")
    _check_publisher(verdict, "publisher", pub, count, confirms=False)
    if cons.get("error"):
        verdict.fail(f"consumer: {cons['error']}")
    if "ledger" in cons:
        verdict.ledger("consumer", cons["ledger"])
    elapsed = cons.get("elapsed") or 0
    metrics = {"msgs_per_s": round(cons.get("received", 0) / elapsed) if elapsed else 0,
               "e2e_latency": percentiles(cons.get("latencies_us") or []), "elapsed_s": round(elapsed, 3)}
    _finish_queue(ctl, queue, verdict)
    ctl.close()
    mode = f"open{int(rate)}" if rate else f"closed{window}"
    return _result(f"d-e2e-{mode}", {"size": size, "count": count, "window": window, "rate": rate},
                   metrics, verdict, probe)


# --- (e) -------------------------------------------------------------------
def fanout(url: str, *, size: int = 1024, count: int = 30_000, queues: int = 3, window: int = 1000,
           timeout: float = 60.0, pid: int | None = None) -> dict:
    """(e) One publisher (confirms, window 1000) into a fanout exchange, 3 queues, 3 consumers."""
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    exchange = _name("e-x", "exchange")
    names = [_name(f"e{i}") for i in range(queues)]
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.exchange_declare(1, exchange, "fanout")
    for q in names:
        ctl.queue_declare(1, q)
        ctl.queue_bind(1, q, exchange)
    team = Team()
    for q in names:
        team.add(consumer_worker, url=url, queue=q, expected=count, per_publisher=[count], deadline=deadline)
    team.add(publisher_worker, url=url, exchange=exchange, routing_key="", body_size=size, count=count,
             confirms=True, window=window, deadline=deadline)
    team.start()
    probe.mark("before")
    t0 = time.monotonic()
    team.go()
    results = team.collect(timeout=timeout + 10)
    elapsed = time.monotonic() - t0
    probe.mark("after")
    *conss, pub = results
    _check_publisher(verdict, "publisher", pub, count, confirms=True)
    delivered = 0
    for i, c in enumerate(conss):
        if c.get("error"):
            verdict.fail(f"consumer{i}: {c['error']}")
        if "ledger" in c:
            verdict.ledger(f"consumer{i}", c["ledger"])
        delivered += c.get("received", 0)
    slowest = max((c.get("elapsed") or 0) for c in conss)
    metrics = {"publish_msgs_per_s": round(count / slowest) if slowest else 0,
               "deliveries_per_s": round(delivered / slowest) if slowest else 0, "elapsed_s": round(elapsed, 3)}
    for q in names:
        _finish_queue(ctl, q, verdict)
    ctl.exchange_delete(1, exchange)
    _deleted(exchange)
    ctl.close()
    return _result("e-fanout-3", {"size": size, "count": count, "queues": queues, "window": window},
                   metrics, verdict, probe)


# --- (m) -------------------------------------------------------------------
def many_queues(url: str, *, size: int = 1024, count: int = 80_000, queues: int = 8, window: int = 1000,
                timeout: float = 90.0, pid: int | list[int] | None = None,
                shard_urls: list[str] | None = None) -> dict:
    """(m) ``queues`` queues, each with its own publisher and consumer process, closed loop per queue.

    The load that a broker using more than one core could spread: independent queues, no shared state
    between them. Each publisher keeps at most ``window`` messages unconsumed on its queue; the rate is
    every delivery over the slowest consumer's time.

    ``shard_urls``: independent brokers, one per shard; queue i, its publisher and its consumer use
    shard i mod N (``pid`` then lists their pids). The ceiling of a broker that shards queues over
    processes, with no hand-over or forwarding cost."""
    deadline = time.monotonic() + timeout
    shard_urls = list(shard_urls or [url])
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    homes = [shard_urls[i % len(shard_urls)] for i in range(queues)]
    names = [_name(f"m{i}", home=home) for i, home in enumerate(homes)]
    per = [count // queues + (1 if i < count % queues else 0) for i in range(queues)]
    ctls = {}
    for home in shard_urls:
        ctls[home] = Connection(home)
        ctls[home].channel_open(1)
    for q, home in zip(names, homes):
        ctls[home].queue_declare(1, q)
    team = Team()
    for q, n, home in zip(names, per, homes):
        progress = CTX.RawValue("q", 0)
        team.add(consumer_worker, url=home, queue=q, expected=n, per_publisher=[n], record_latency=True,
                 progress=progress, deadline=deadline)
        team.add(publisher_worker, url=home, exchange="", routing_key=q, body_size=size, count=n,
                 window=window, consumed=progress, deadline=deadline)
    generator0 = _children_cpu_s()
    team.start()
    probe.mark("before")
    team.go()
    results = team.collect(timeout=timeout + 10)
    probe.mark("after")
    generator_cpu_s = _children_cpu_s() - generator0
    received = 0
    latencies: list = []
    for i, n in enumerate(per):
        cons, pub = results[2 * i], results[2 * i + 1]
        _check_publisher(verdict, f"publisher{i}", pub, n, confirms=False)
        if cons.get("error"):
            verdict.fail(f"consumer{i}: {cons['error']}")
        if "ledger" in cons:
            verdict.ledger(f"consumer{i}", cons["ledger"])
        received += cons.get("received", 0)
        latencies += cons.get("latencies_us") or []
    slowest = max((r.get("elapsed") or 0) for r in results[0::2])
    metrics = {"msgs_per_s": round(received / slowest) if slowest else 0,
               "e2e_latency": percentiles(latencies), "elapsed_s": round(slowest, 3),
               # What the 16 client processes used (fork to exit): on 2 cores, the CPU left for the broker.
               "generator_cpu_s": round(generator_cpu_s, 3)}
    for q, home in zip(names, homes):
        _finish_queue(ctls[home], q, verdict)
    for ctl in ctls.values():
        ctl.close()
    return _result(f"m-queues-{queues}", {"size": size, "count": count, "queues": queues, "window": window,
                                          "shards": len(shard_urls)}, metrics, verdict, probe)


def _children_cpu_s() -> float:
    """User+system CPU of this process's finished (joined) child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- (f) -------------------------------------------------------------------
def declares(url: str, *, count: int = 1000, timeout: float = 60.0, pid: int | None = None) -> dict:
    """(f) Declare ``count`` queues one RPC at a time; time and broker RSS."""
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    prefix = _name("f")
    _deleted(prefix)  # the queues are prefix.0, prefix.1, ...
    ctl = Connection(url)
    ctl.channel_open(1)
    rss0 = probe.mark("before")
    t0 = time.monotonic()
    made = 0
    for i in range(count):
        if time.monotonic() > deadline:
            verdict.fail("timed out declaring")
            break
        _LIVE[f"{prefix}.{i}"] = "queue"
        ctl.queue_declare(1, f"{prefix}.{i}")
        made += 1
    declare_s = time.monotonic() - t0
    rss1 = probe.mark("declared")
    verdict.expect("declared", made, count)
    t1 = time.monotonic()
    for i in range(made):
        ctl.queue_delete(1, f"{prefix}.{i}")
        _deleted(f"{prefix}.{i}")
    delete_s = time.monotonic() - t1
    probe.mark("deleted")
    # A passive declare of a deleted queue must close the channel with 404.
    try:
        ctl.queue_declare(1, f"{prefix}.0", passive=True)
        verdict.fail("queue still exists after delete")
    except Exception as exc:  # AMQPClosed 404 is the expected answer
        verdict.expect("deleted_queue_is_404", getattr(exc, "code", None), 404)
    ctl.close()
    metrics = {"declares_per_s": round(made / declare_s) if declare_s else 0, "declare_s": round(declare_s, 3),
               "delete_s": round(delete_s, 3),
               "rss_per_queue_kib": round((rss1 - rss0) / made, 2) if (rss0 and rss1 and made) else None}
    return _result("f-declare-1000", {"count": count}, metrics, verdict, probe)


# --- (g) -------------------------------------------------------------------
def backlog(url: str, *, size: int = 256, count: int = 100_000, timeout: float = 300.0,
            pid: int | None = None) -> dict:
    """(g) Build a backlog of ``count`` messages (1,000,000 for the full run), then drain it."""
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name("g")
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, queue)
    probe.mark("before")
    fill = _fill(url, queue, count, size, verdict, deadline)
    verdict.expect("queue_count_after_fill", ctl.message_count(1, queue), count)
    rss_full = probe.mark("full")
    conn = Connection(url)
    ch = conn.channel_open(1)
    r = Consumer(conn, ch, queue).run(count, Ledger([count]), deadline=deadline)
    conn.close()
    probe.mark("drained")
    verdict.ledger("consumer", r.ledger)
    if r.error or r.timed_out:
        verdict.fail(f"consumer: {r.error or 'timed out'}")
    metrics = {"fill_msgs_per_s": fill["fill_msgs_per_s"],
               "drain_msgs_per_s": round(r.received / r.elapsed) if r.elapsed else 0,
               "rss_full_mib": round(rss_full / 1024, 1) if rss_full else None}
    _finish_queue(ctl, queue, verdict)
    ctl.close()
    return _result("g-backlog", {"size": size, "count": count}, metrics, verdict, probe)


# --- (h) -------------------------------------------------------------------
def connections(url: str, *, count: int = 1000, per_connection: int = 5, rate: float = 2000.0, idle: float = 2.0,
                size: int = 256, timeout: float = 120.0, pid: int | None = None) -> dict:
    """(h) ``count`` connections with one channel each: idle RSS, then each publishes.

    Active phase: every connection publishes ``per_connection`` messages, round
    robin, at ``rate`` msgs/s overall (scheduled timestamps), into one queue
    drained by a consumer process that measures end-to-end latency.
    """
    from .client import PublishTemplate

    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name("h")
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, queue)
    # The consumer connects first: a broker near its connection limit must
    # still serve it (RabbitMQ here stops accepting at ~830 connections).
    # It learns how many connections really opened through ``opened``.
    opened = CTX.RawValue("q", 0)
    team = Team()
    team.add(_connections_consumer, url=url, queue=queue, per_connection=per_connection, opened=opened,
             deadline=deadline)
    team.start()
    rss0 = probe.mark("before")
    conns = []
    cons = None
    rss_idle = rss_active = None
    open_s = 0.0
    t0 = time.monotonic()
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                verdict.fail("timed out opening connections")
                break
            try:
                conns.append(Connection(url, timeout=5.0))
            except (OSError, wire.AMQPClosed) as exc:
                # A connection limit is a result (metric "connections"), not
                # dishonesty: keep measuring with the connections we have.
                verdict.note(f"connection {len(conns) + 1} failed: {type(exc).__name__}: {exc}")
                break
        # Pipeline channel.open: send on all, then read the replies.
        for c in conns:
            c.send(wire.method_frame(1, wire.CHANNEL_OPEN, wire.shortstr("")))
        for c in conns:
            c.wait_method(1, wire.CHANNEL_OPEN_OK)
        open_s = time.monotonic() - t0
        opened.value = len(conns)
        time.sleep(idle)
        rss_idle = probe.mark("idle")
        total = len(conns) * per_connection
        team.go()
        tpl = PublishTemplate(1, "", queue, size, False, 131072, 1)
        interval = 1e9 / rate
        start = time.monotonic_ns()
        sent = 0
        for k in range(per_connection):
            for i, c in enumerate(conns):
                due = start + int(sent * interval)
                now = time.monotonic_ns()
                if due > now:
                    time.sleep((due - now) / 1e9)
                c.send(tpl.fill((i << wire.PUBLISHER_SHIFT) + k, 1, due))
                sent += 1
        (cons,) = team.collect(timeout=max(5.0, deadline - time.monotonic()))
        rss_active = probe.mark("active")
        verdict.expect("sent", sent, total)
        if cons.get("error"):
            verdict.fail(f"consumer: {cons['error']}")
        if "ledger" in cons:
            verdict.ledger("consumer", cons["ledger"])
    finally:
        if cons is None:  # failed early: release and reap the consumer process
            team.go()
            (cons,) = team.collect(timeout=5.0)
        t_close = time.monotonic()
        for c in conns:
            c.close()
        close_s = time.monotonic() - t_close
    probe.mark("closed")
    _finish_queue(ctl, queue, verdict)
    ctl.close()
    metrics = {"connections": len(conns), "open_s": round(open_s, 3), "close_s": round(close_s, 3),
               "rss_per_connection_kib": round((rss_idle - rss0) / len(conns), 1) if (rss0 and rss_idle and conns) else None,
               "rss_idle_mib": round(rss_idle / 1024, 1) if rss_idle else None,
               "rss_active_mib": round(rss_active / 1024, 1) if rss_active else None,
               "e2e_latency": percentiles(cons.get("latencies_us") or [])}
    return _result("h-connections", {"count": count, "per_connection": per_connection, "rate": rate,
                                      "idle_s": idle}, metrics, verdict, probe)


def _connections_consumer(url: str, queue: str, per_connection: int, opened, *, deadline: float,
                          ready=None, go=None) -> dict:
    """(h)'s consumer: connects early, learns the connection count at the start signal."""
    conn = Connection(url)
    try:
        ch = conn.channel_open(1)
        cons = Consumer(conn, ch, queue)
        if ready is not None:
            ready.set()
        go.wait()
        n = opened.value
        res = cons.run(n * per_connection, Ledger([per_connection] * n), deadline=deadline, record_latency=True)
        return {"role": "consumer", **asdict(res)}
    finally:
        conn.close()
