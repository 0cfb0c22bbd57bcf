"""The three phases: kill -9 rounds, disk-full cycles, memory flood. Each returns a dict of figures."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.loadgen import wire

from . import amqp
from .amqp import Closed, Connection, publish_frames
from .broker import Broker, StartFailed, fill_disk, free_bytes, small_tmpfs
from .ledger import Ledger
from .paths import (Path, Stats, Stream, body_for, confirming_publisher, consumer, declare_all, drain, make_paths,
                    tx_publisher)


@dataclass
class LoadOptions:
    paths: list[str]
    body_size: int = 256
    window: int = 200
    publishers_per_path: int = 1
    seed: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    logs_dir: str | None = None


class Load:
    """All publishers and consumers of every path against one broker incarnation."""

    def __init__(self, opts: LoadOptions, paths: list[Path], ledger: Ledger, round_no: int,
                 body_size: int | None = None) -> None:
        self.opts = opts
        self.paths = paths
        self.ledger = ledger
        self.stop = asyncio.Event()
        self.stats = Stats()
        self.round_no = round_no
        self.body_size = body_size or opts.body_size
        self.tasks: list[asyncio.Task] = []

    def start(self, url: str) -> None:
        seed = self.opts.seed * 100003 + self.round_no * 101
        for p in self.paths:
            for i in range(self.opts.publishers_per_path):
                seed += 1
                if p.name == "tx":
                    coro = tx_publisher(url, p, self.ledger, self.stop, self.stats, self.body_size)
                else:
                    coro = confirming_publisher(url, p, self.ledger, self.stop, self.stats, self.body_size,
                                                self.opts.window, seed)
                self.tasks.append(asyncio.create_task(self._guard(coro)))
            if p.name == "stream":
                continue  # a stream is read once, at the end
            for dest in p.dests:
                seed += 1
                self.tasks.append(asyncio.create_task(self._guard(consumer(url, dest, self.ledger, self.stop, seed))))

    async def _guard(self, coro) -> None:
        try:
            await coro
        except (Closed, OSError, asyncio.TimeoutError) as exc:
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")

    async def finish(self) -> None:
        self.stop.set()
        done, pending = await asyncio.wait(self.tasks, timeout=10) if self.tasks else (set(), set())
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


async def _start(broker: Broker) -> float:
    return await asyncio.to_thread(broker.start)


async def _kill(broker: Broker) -> None:
    await asyncio.to_thread(broker.kill)


async def _final_check(broker: Broker, paths: list[Path], ledger: Ledger) -> tuple[dict, float]:
    """Restart, drain every destination, stop; the ledger's verdict and the drain time."""
    await _start(broker)
    t0 = time.monotonic()
    await drain(broker.url, paths, ledger)
    took = time.monotonic() - t0
    await asyncio.to_thread(broker.stop)
    return ledger.verdict(), took


def _round_figures(broker: Broker) -> dict:
    return {"restarts": len(broker.start_times),
            "max_start_s": round(max(broker.start_times, default=0.0), 3),
            "mean_start_s": round(sum(broker.start_times) / max(1, len(broker.start_times)), 3),
            "error_log_lines": broker.error_lines, "tracebacks": broker.tracebacks,
            "error_samples": broker.error_samples}


async def kill_rounds(opts: LoadOptions, rounds: int, seconds: float, progress, stop_every: int = 0) -> dict:
    """N rounds: start (recover), load for `seconds`, kill -9. Then drain and check the ledger. With
    `stop_every` K, every K-th round ends with SIGTERM instead, and SIGKILL after a random 0-300 ms if the
    clean stop has not finished by then (a crash in the middle of writing the clean-shutdown index)."""
    paths = make_paths(opts.paths)
    ledger = Ledger()
    for p in paths:
        ledger.add_path(p.name, list(p.dests))
    rng = random.Random(opts.seed)
    with tempfile.TemporaryDirectory(prefix="faultrun-kill-") as tmp:
        broker = Broker(os.path.join(tmp, "data"), opts.settings, opts.logs_dir, "kill",
                        on_start=ledger.next_epoch)
        start_failed = ""
        verdict: dict = {}
        drain_s = 0.0
        stops = {"clean": 0, "killed_while_stopping": 0}
        t0 = time.monotonic()
        try:
            for r in range(rounds):
                await _start(broker)
                if r == 0:
                    await declare_all(broker.url, paths)
                load = Load(opts, paths, ledger, r)
                load.start(broker.url)
                # The kill point: somewhere in the last half of the round, never at a predictable moment.
                await asyncio.sleep(seconds * rng.uniform(0.5, 1.0))
                if stop_every and r % stop_every == stop_every - 1:
                    clean = await asyncio.to_thread(broker.stop_then_kill, rng.uniform(0.0, 0.3))
                    stops["clean" if clean else "killed_while_stopping"] += 1
                else:
                    await _kill(broker)
                await load.finish()
                progress(f"kill round {r + 1}/{rounds}: confirmed {len(ledger.confirmed)}")
            verdict, drain_s = await _final_check(broker, paths, ledger)
        except StartFailed as exc:
            start_failed = str(exc)
            verdict = {"totals": {"confirmed": len(ledger.confirmed), "nacked": len(ledger.nacked)}}
            progress(f"the broker did not start after a kill:\n{exc}")
        finally:
            if broker.alive():
                broker.kill()
    return {"phase": "kill", "rounds": rounds, "round_seconds": seconds,
            "seconds": round(time.monotonic() - t0, 1), "drain_seconds": round(drain_s, 2),
            "start_failed": start_failed, "sigterm_rounds": stops, **_round_figures(broker), **verdict}


async def _probe_confirm(url: str, ledger: Ledger, path: Path, timeout: float) -> tuple[float | None, int]:
    """Publish one message at a time on a fresh confirming channel until one is acked; (seconds, nacks)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    nacks = 0
    while loop.time() - t0 < timeout:
        try:
            conn = await Connection.open(url, "faultrun-probe", timeout=max(0.5, timeout - (loop.time() - t0)))
        except (Closed, OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)
            continue
        try:
            ch = await conn.channel()
            await ch.confirm_select()
            tag = 0
            while loop.time() - t0 < timeout:
                result: asyncio.Future = loop.create_future()
                ch.on_confirm = lambda t, m, ack, f=result: f.done() or f.set_result(ack)
                ident = ledger.new_id(path.name)
                tag += 1
                ch.send(publish_frames(ch.number, path.exchange, path.routing_key, body_for(ident, 64)))
                try:
                    ack = await asyncio.wait_for(asyncio.shield(result), max(0.01, timeout - (loop.time() - t0)))
                except asyncio.TimeoutError:
                    return None, nacks
                if ack:
                    ledger.confirm(ident)
                    return loop.time() - t0, nacks
                ledger.nack(ident)
                nacks += 1
                await asyncio.sleep(0.02)
        except Closed:
            await asyncio.sleep(0.05)
        finally:
            conn.abort()
    return None, nacks


async def disk_cycles(opts: LoadOptions, cycles: int, size_mib: int, progress) -> dict:
    """Fill a small tmpfs under load past the alarm and past ENOSPC, free it, time until a publish is confirmed
    again (same broker, no restart), kill -9, restart; after the last cycle drain and check the ledger.
    Even cycles: the filler alone runs the disk full at once (faster than any alarm); every other one of them
    also kills the broker while the disk is full and restarts it there before freeing space. Odd cycles: the
    filler stops a little above the alarm and the publishers themselves cross it (the alarm should block them
    before ENOSPC), then the filler takes the rest."""
    paths = make_paths(opts.paths)
    ledger = Ledger()
    ledger.failed_commits_expected = True
    for p in paths:
        ledger.add_path(p.name, list(p.dests))
        if isinstance(p, Stream):
            p.max_bytes = size_mib * 1024 * 1024 // 8
            ledger.queues[p.dests[0]].retention = True
    probe_path = paths[0]
    settings = {"disk_free_limit": max(1, size_mib // 8) * 1024 * 1024, **opts.settings}
    limit = int(settings["disk_free_limit"])
    figures: dict[str, Any] = {"phase": "disk", "cycles": cycles, "tmpfs_mib": size_mib, "disk_free_limit": limit}
    with small_tmpfs(size_mib) as mnt:
        if mnt is None:
            return {**figures, "skipped": "cannot mount a tmpfs here (needs root)"}
        broker = Broker(os.path.join(mnt, "data"), settings, opts.logs_dir, "disk",
                        on_start=ledger.next_epoch)
        filler = os.path.join(mnt, "filler")
        recoveries: list[float] = []
        stuck = 0
        probe_nacks = 0
        alarm_cycles = 0
        alarm_tripped = 0
        enospc_reached = 0
        per_cycle: list[dict] = []
        start_failed = ""
        verdict: dict = {}
        drain_s = 0.0
        try:
            await _start(broker)
            await declare_all(broker.url, paths)
            for c in range(cycles):
                confirmed_before = len(ledger.confirmed)
                load = Load(opts, paths, ledger, c, body_size=max(opts.body_size, 4096))
                load.start(broker.url)
                await asyncio.sleep(0.3)
                # The consumers work off what earlier cycles left (bounded), so every cycle starts from room.
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline and free_bytes(mnt) < size_mib * 1024 * 1024 // 2:
                    await asyncio.sleep(0.05)
                cycle = {"cycle": c + 1, "free_at_start_mib": round(free_bytes(mnt) / 2**20, 1),
                         "mode": "alarm" if c % 2 else "instant"}
                tripped = False
                if c % 2:
                    alarm_cycles += 1
                    await asyncio.to_thread(fill_disk, filler, limit + 2 * 1024 * 1024)
                    deadline = time.monotonic() + 3.0
                    while time.monotonic() < deadline and free_bytes(mnt) >= limit:
                        await asyncio.sleep(0.02)
                    cycle["free_after_publishers_mib"] = round(free_bytes(mnt) / 2**20, 2)
                    crossed = time.monotonic()
                    while time.monotonic() - crossed < 2.0 and not load.stats.blocked_seen:
                        await asyncio.sleep(0.01)
                    if load.stats.blocked_seen:
                        alarm_tripped += 1
                        tripped = True
                        cycle["alarm_reaction_s"] = round(time.monotonic() - crossed, 3)
                _, full = await asyncio.to_thread(fill_disk, filler, 0)
                enospc_reached += full
                await asyncio.sleep(0.5)  # publishes and commits meet a full disk
                if c % 4 == 2:
                    # kill -9 while the disk is still full: recovery must come up on a full disk (it cannot
                    # count on writing anything), then serve the load again once space returns.
                    cycle["mode"] = "kill while full"
                    await _kill(broker)
                    await load.finish()
                    cycle["start_on_full_disk_s"] = round(await _start(broker), 3)
                    load = Load(opts, paths, ledger, c + 1000, body_size=max(opts.body_size, 4096))
                    load.start(broker.url)
                    await asyncio.sleep(0.3)
                os.unlink(filler)
                took, nacks = await _probe_confirm(broker.url, ledger, probe_path, timeout=15.0)
                probe_nacks += nacks
                if took is None:
                    stuck += 1
                    progress(f"disk cycle {c + 1}: NO confirm within 15 s after space returned")
                else:
                    recoveries.append(took)
                await asyncio.sleep(0.3)  # confirms again under load
                await _kill(broker)
                await load.finish()
                if os.path.exists(filler):
                    os.unlink(filler)
                start_s = await _start(broker)
                per_cycle.append({**cycle, "alarm_tripped": tripped, "enospc": full,
                                  "confirm_again_s": None if took is None else round(took, 3),
                                  "confirmed": len(ledger.confirmed) - confirmed_before,
                                  "restart_s": round(start_s, 3)})
                progress(f"disk cycle {c + 1}/{cycles}: confirmed {len(ledger.confirmed)}, "
                         f"confirm again after {'-' if took is None else f'{took:.2f}'} s")
            await asyncio.to_thread(broker.kill)
            verdict, drain_s = await _final_check(broker, paths, ledger)
        except StartFailed as exc:
            start_failed = str(exc)
            verdict = {"totals": {"confirmed": len(ledger.confirmed), "nacked": len(ledger.nacked)}}
            progress(f"the broker did not start after a disk cycle:\n{exc}")
        finally:
            if broker.alive():
                broker.kill()
    full_starts = [c["start_on_full_disk_s"] for c in per_cycle if "start_on_full_disk_s" in c]
    return {**figures, "enospc_reached": enospc_reached, "alarm_cycles": alarm_cycles,
            "kills_while_full": len(full_starts), "max_start_on_full_disk_s": max(full_starts, default=None),
            "alarm_tripped_before_full": alarm_tripped, "stuck_after_free": stuck, "probe_nacks": probe_nacks,
            "max_confirm_again_s": round(max(recoveries, default=0.0), 3),
            "mean_confirm_again_s": round(sum(recoveries) / max(1, len(recoveries)), 3),
            "drain_seconds": round(drain_s, 2), "start_failed": start_failed, "per_cycle": per_cycle,
            **_round_figures(broker), **verdict}


# -- memory flood ------------------------------------------------------------------------------------------------

def _raw_connect(port: int) -> socket.socket:
    """A blocking raw connection through the handshake, channel 1 open; the caller never reads again."""
    from bench.loadgen.client import Connection as BlockingConnection
    conn = BlockingConnection(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=10, name="faultrun-flood")
    conn.channel_open(1)
    conn.sock.setblocking(True)
    conn.sock.settimeout(1.0)
    return conn.sock, conn


def _never_reading_writer(port: int, payload_for, sent: list[int], stop: threading.Event,
                          setup=None) -> None:
    """Write `payload_for()` batches until stopped (or only wait, without a payload); never read a byte (the
    broker's output to us piles up)."""
    try:
        sock, conn = _raw_connect(port)
        if setup:
            setup(conn)
        sock.settimeout(0.5)
        if payload_for is None:
            stop.wait()
            return
        while not stop.is_set():
            data = payload_for()
            try:
                sock.sendall(data)
                sent[0] += 1
            except socket.timeout:
                continue  # the broker stopped reading us: exactly the back-pressure we want
    except (OSError, wire.AMQPClosed, wire.ProtocolViolation):
        return


FLOOD_CLIENTS = ("sink", "sink2", "feed", "consumer", "unroutable", "confirming", "reader")


async def flood(opts: LoadOptions, seconds: float, progress, clients: list[str] | None = None) -> dict:
    """Fast transient publishers into a queue nobody drains, a consumer that never reads its socket, a publisher
    of unroutable mandatory messages and a confirming publisher that never read their returns and confirms.
    Samples the broker's RSS every 20 ms; afterwards a bystander must publish and consume within 10 s."""
    settings = {"memory_high_watermark": 128 * 1024 * 1024, "memory_budget": 64 * 1024 * 1024, **opts.settings}
    unknown = set(clients or ()) - set(FLOOD_CLIENTS)
    if unknown:
        raise ValueError(f"unknown flood clients {sorted(unknown)}; choose from {', '.join(FLOOD_CLIENTS)}")
    figures: dict[str, Any] = {"phase": "flood", "seconds": seconds, "clients": clients or list(FLOOD_CLIENTS),
                               "memory_high_watermark": settings.get("memory_high_watermark"),
                               "memory_budget": settings.get("memory_budget")}
    body = bytes(16 * 1024)
    with tempfile.TemporaryDirectory(prefix="faultrun-flood-") as tmp:
        broker = Broker(os.path.join(tmp, "data"), settings, opts.logs_dir, "flood")
        try:
            await _start(broker)
            port = broker.proc.port
            baseline = broker.rss()
            conn = await Connection.open(broker.url, "faultrun-flood-setup")
            ch = await conn.channel()
            await ch.queue_declare("fr.flood.sink", durable=False)
            await ch.queue_declare("fr.flood.consumed", durable=False)
            await conn.close()
            stop = threading.Event()
            counters = {name: [0] for name in ("sink", "consumed_feed", "unroutable", "confirming")}
            batch = 16
            sink = b"".join(publish_frames(1, "", "fr.flood.sink", body, persistent=False) for _ in range(batch))
            feed = b"".join(publish_frames(1, "", "fr.flood.consumed", body, persistent=False) for _ in range(batch))
            unroutable = b"".join(publish_frames(1, "", "fr.nowhere", bytes(1024), persistent=False, mandatory=True)
                                  for _ in range(64))
            confirming = b"".join(publish_frames(1, "", "fr.flood.sink", bytes(1024), persistent=False)
                                  for _ in range(64))

            def consume_setup(c) -> None:
                c.basic_qos(1, 0)
                c.send(wire.method_frame(1, wire.BASIC_CONSUME, wire.U16.pack(0) + wire.shortstr("fr.flood.consumed")
                                         + wire.shortstr("") + wire.bits(False, False, False, False)
                                         + wire.table(None)))

            def confirm_setup(c) -> None:
                c.confirm_select(1)

            flooders = {
                "sink": (lambda: sink, counters["sink"], None),
                "sink2": (lambda: sink, counters["sink"], None),
                "feed": (lambda: feed, counters["consumed_feed"], None),
                "consumer": (None, [0], consume_setup),
                "unroutable": (lambda: unroutable, counters["unroutable"], None),
                "confirming": (lambda: confirming, counters["confirming"], confirm_setup),
            }
            chosen = [name for name in (clients or [*flooders, "reader"]) if name != "reader"]
            threads = [threading.Thread(target=_never_reading_writer, args=(port, *flooders[name][:2], stop),
                                        kwargs={"setup": flooders[name][2]}, daemon=True) for name in chosen]
            for t in threads:
                t.start()
            # One more fast publisher that does read: it hears connection.blocked when the memory alarm trips.
            watcher_stop = asyncio.Event()
            watcher_conn = await Connection.open(broker.url, "faultrun-flood-watcher")
            watcher = asyncio.create_task(_reading_flooder(watcher_conn, body, watcher_stop)
                                          if clients is None or "reader" in clients else watcher_stop.wait())
            peak = baseline
            samples = 0
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end and broker.alive():
                peak = max(peak, broker.rss())
                samples += 1
                await asyncio.sleep(0.02)
            during_alive = broker.alive()
            # A bystander while the flood is still connected (a fresh connection to a fresh queue).
            bystander = await _bystander(broker.url, timeout=10.0) if during_alive else None
            stop.set()
            watcher_stop.set()
            blocked_seen = watcher_conn.blocked_seen
            watcher_conn.abort()
            await asyncio.wait([watcher], timeout=5)
            for t in threads:
                await asyncio.to_thread(t.join, 5)
            await asyncio.sleep(1.0)
            after = broker.rss() if broker.alive() else 0
            error_lines_before = broker.error_lines
            if broker.alive():
                await asyncio.to_thread(broker.stop)
            else:
                broker.kill()
        finally:
            if broker.alive():
                broker.kill()
    mib = 1024 * 1024
    return {**figures, "baseline_rss_mib": round(baseline / mib, 1), "peak_rss_mib": round(peak / mib, 1),
            "rss_after_mib": round(after / mib, 1), "samples": samples, "broker_survived": during_alive,
            "bystander_roundtrip_s": bystander if not isinstance(bystander, tuple) else round(bystander[0], 3),
            "bystander_rtt_median_ms": round(bystander[1] * 1000, 1) if isinstance(bystander, tuple) else None,
            "bystander_rtt_max_ms": round(bystander[2] * 1000, 1) if isinstance(bystander, tuple) else None,
            "blocked_seen": blocked_seen,
            "batches_sent": {k: v[0] for k, v in counters.items()}, "error_lines_before_stop": error_lines_before,
            **_round_figures(broker)}


async def _reading_flooder(conn: Connection, body: bytes, stop: asyncio.Event) -> None:
    """Transient publishes as fast as the broker reads them, on a connection whose input is read."""
    try:
        ch = await conn.channel()
        batch = b"".join(publish_frames(ch.number, "", "fr.flood.sink", body, persistent=False) for _ in range(16))
        while not stop.is_set():
            ch.send(batch)
            await conn.drain()
    except Closed:
        pass


async def _bystander(url: str, timeout: float) -> tuple[float, float, float] | str | None:
    """(seconds to connect, declare, consume, publish and receive; median and max of ten round trips);
    "blocked" if its publish was held by a resource alarm; None if it failed."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        conn = await Connection.open(url, "faultrun-bystander", timeout=timeout)
    except (Closed, OSError, asyncio.TimeoutError):
        return None
    try:
        ch = await asyncio.wait_for(conn.channel(), timeout)
        await asyncio.wait_for(ch.queue_declare("fr.bystander", durable=False), timeout)
        got: asyncio.Future = loop.create_future()
        ch.on_deliver = lambda d: got.done() or got.set_result(d)
        await asyncio.wait_for(ch.consume("fr.bystander"), timeout)
        ch.send(publish_frames(ch.number, "", "fr.bystander", body_for_probe(), persistent=False))
        try:
            d = await asyncio.wait_for(got, max(0.01, timeout - (loop.time() - t0)))
        except asyncio.TimeoutError:
            if conn.blocked_seen:
                return "blocked"  # a resource alarm holds every publisher, the bystander too: as RabbitMQ
            raise
        ch.ack(d.tag)
        took = loop.time() - t0
        # Then ten single round trips (a passive declare each): how long one request waits in the broker.
        rtts = []
        for _ in range(10):
            t1 = loop.time()
            await asyncio.wait_for(ch.queue_declare("fr.bystander", durable=False, passive=True), timeout)
            rtts.append(loop.time() - t1)
        rtts.sort()
        return took, rtts[len(rtts) // 2], rtts[-1]
    except (Closed, asyncio.TimeoutError):
        return None
    finally:
        conn.abort()


def body_for_probe() -> bytes:
    return amqp.ID.pack(0) + b"bystander"
