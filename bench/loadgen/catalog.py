"""Named scenarios with their full and quick sizes, and the figures that headline them.

One table shared by the ``bench.loadgen`` command line and ``bench/compare.py``
so a name means the same run everywhere.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import partial

from . import scenarios as s
from .userclients import library_scenario


@dataclass(frozen=True)
class Entry:
    """A scenario: how to call it, at full and quick size, and what to show."""

    run: object
    full: dict
    quick: dict
    headline: tuple
    doc: str
    extra: dict = field(default_factory=dict)


def _lib(library: str, kind: str):
    return partial(library_scenario, library=library, kind=kind)


CATALOG: dict[str, Entry] = {
    "a16": Entry(s.publish_only, {"size": 16, "count": 200_000}, {"size": 16, "count": 50_000},
                 ("msgs_per_s", "send_msgs_per_s"), "(a) publish-only, transient, 16 B"),
    "a1k": Entry(s.publish_only, {"size": 1024, "count": 100_000}, {"size": 1024, "count": 20_000},
                 ("msgs_per_s", "mb_per_s", "send_msgs_per_s"), "(a) publish-only, transient, 1 KB"),
    # Two publisher processes: one alone tops out near the fastest broker at 64 KB (docs/benchmarks.md).
    "a64k": Entry(s.publish_only, {"size": 65536, "count": 7_000, "publishers": 2},
                  {"size": 65536, "count": 1_000, "publishers": 2},
                  ("msgs_per_s", "mb_per_s"), "(a) publish-only, transient, 64 KB, two publishers"),
    "b": Entry(s.confirms, {"count": 50_000}, {"count": 5_000},
               ("msgs_per_s", "confirm_latency.p50_ms", "confirm_latency.p99_ms"),
               "(b) confirms, persistent 1 KB, durable queue, window 1000"),
    "c": Entry(s.consume, {"count": 100_000}, {"count": 20_000}, ("msgs_per_s",),
               "(c) consume a pre-filled queue, prefetch 1000, multiple-ack every 500"),
    "d-closed": Entry(s.end_to_end, {"count": 50_000, "window": 1000}, {"count": 5_000, "window": 1000},
                      ("msgs_per_s", "e2e_latency.p50_ms", "e2e_latency.p99_ms"),
                      "(d) 1 publisher + 1 consumer, closed loop, window 1000"),
    "d-open": Entry(s.end_to_end, {"count": 20_000, "rate": 2000.0}, {"count": 2_000, "rate": 2000.0},
                    ("msgs_per_s", "e2e_latency.p50_ms", "e2e_latency.p99_ms"),
                    "(d) 1 publisher + 1 consumer, open loop at 2,000 msgs/s"),
    "e": Entry(s.fanout, {"count": 30_000}, {"count": 10_000}, ("publish_msgs_per_s", "deliveries_per_s"),
               "(e) fanout to 3 queues, 3 consumers"),
    "m": Entry(s.many_queues, {"count": 80_000}, {"count": 16_000},
               ("msgs_per_s", "e2e_latency.p50_ms", "e2e_latency.p99_ms", "generator_cpu_s"),
               "(m) 8 queues, 8 publishers, 8 consumers (a process each), closed loop per queue, window 1000"),
    "f": Entry(s.declares, {"count": 1000}, {"count": 1000}, ("declare_s", "rss_per_queue_kib"),
               "(f) 1,000 queue declares: time and broker RSS"),
    "g": Entry(s.backlog, {"count": 1_000_000}, {"count": 20_000},
               ("fill_msgs_per_s", "drain_msgs_per_s", "rss_full_mib"),
               "(g) backlog (1,000,000 x 256 B full; --count to change): RSS and drain rate"),
    "h": Entry(s.connections, {"count": 1000}, {"count": 200, "idle": 1.0},
               ("connections", "open_s", "rss_per_connection_kib", "rss_idle_mib", "e2e_latency.p50_ms", "e2e_latency.p99_ms"),
               "(h) 1,000 connections, one channel each: idle RSS, then active latency"),
}

for _libname in ("pika", "aiopika"):
    for _kind, _doc, _head in (("a", "publish-only 1 KB", ("msgs_per_s",)),
                               ("b", "confirms, persistent 1 KB", ("msgs_per_s", "confirm_latency.p50_ms",
                                                                   "confirm_latency.p99_ms")),
                               ("c", "consume pre-filled, prefetch 1000, ack every 500", ("msgs_per_s",)),
                               ("d", "e2e closed loop, window 1000", ("msgs_per_s", "e2e_latency.p50_ms",
                                                                      "e2e_latency.p99_ms"))):
        _counts = ({"count": 2_000}, {"count": 500}) if _kind == "b" else ({"count": 10_000}, {"count": 2_000})
        CATALOG[f"{_libname}-{_kind}"] = Entry(_lib(_libname, _kind), _counts[0], _counts[1], _head,
                                               f"({_kind}) through {_libname}: {_doc}")

# What --quick compares: one of each kind of load, about a minute for A B A B A B.
QUICK_SET = ("a1k", "b", "c", "d-closed", "d-open", "f", "m")
# What the generator's capacity is measured with (against the null broker).
CAPACITY_SET = ("a16", "a1k", "a64k", "b", "c", "d-closed", "e")


def flat(metrics: dict, prefix: str = "") -> dict:
    """Flatten nested metric dicts to dotted keys."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def shardable(name: str) -> bool:
    """Whether the scenario can spread its queues over several independent brokers (``shard_urls``)."""
    return "shard_urls" in inspect.signature(CATALOG[name].run).parameters


def run(name: str, url: str, *, quick: bool = False, overrides: dict | None = None,
        pid: int | list[int] | None = None, shard_urls: list[str] | None = None) -> dict:
    """Run one named scenario against ``url``, or against the brokers ``shard_urls`` if it is shardable."""
    entry = CATALOG[name]
    kwargs = dict(entry.quick if quick else entry.full)
    # Apply only the overrides this scenario takes (f has no --size, ...).
    accepted = inspect.signature(entry.run).parameters
    kwargs.update({k: v for k, v in (overrides or {}).items() if k in accepted})
    if shard_urls:
        if not shardable(name):
            raise ValueError(f"scenario {name} cannot spread over shards")
        kwargs["shard_urls"] = shard_urls
    try:
        result = entry.run(url, pid=pid, **kwargs)
    finally:
        s.cleanup(url)
    result["name"] = name
    return result


def headline(result: dict) -> str:
    """One line: the scenario's headline figures, its honesty verdict, broker RSS/CPU."""
    entry = CATALOG.get(result.get("name", ""))
    m = flat(result["metrics"])
    keys = entry.headline if entry else tuple(m)
    figures = "  ".join(f"{k}={m.get(k)}" for k in keys)
    v = result["verdict"]
    honesty = "honest" if v["ok"] else "FAILED: " + "; ".join(v["problems"][:4])
    if v.get("notes"):
        honesty += "; note: " + "; ".join(v["notes"][:2])
    b = result.get("broker", {})
    rss = [val for key, val in b.items() if key.startswith("rss_kib_")]
    extra = f"  broker_cpu_s={b.get('cpu_s')}  broker_rss_mib={round(max(rss) / 1024, 1) if rss and all(rss) else None}"
    return f"{result.get('name', result['scenario']):10s} {figures}{extra}  [{honesty}]"
