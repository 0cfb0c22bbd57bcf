"""Compare leveret with RabbitMQ (and optionally garagemq) on the same scenarios.

    python3 -m bench.compare --quick                 # about a minute
    python3 -m bench.compare --rounds 5 --scenarios a1k,b,c,d-closed,d-open,e,f,h
    python3 -m bench.compare --scenarios g --count 1000000 --rounds 3
    python3 -m bench.compare --garagemq --quick      # third column
    python3 -m bench.compare --quick --scrape        # with /metrics and /api/overview scraped every second
    python3 -m bench.compare --scenarios m --leveret-shards 2 --rounds 5   # sharding's ceiling on m

``--leveret-shards N`` adds a column ``leveret-xN``: N independent ``leveret serve``
processes, and in the scenarios whose queues can be spread (m) queue i with its
publisher and consumer on process i mod N.  Nothing is shared or forwarded
between them, so it is the best a leveret that shards queues over N processes
could do; scenarios with one queue cannot spread and are skipped in that column.

leveret is started here (``leveret serve`` on a free loopback port with a
fresh temp data dir) and stopped at the end; RabbitMQ is the one already
running at 127.0.0.1:5672.  Runs alternate per scenario, A B A B ...
(``--rounds`` of each), so slow drifts in machine load (two shared cores)
hit both brokers alike; the table shows medians over honest runs and the
leveret/RabbitMQ ratio, which is the figure to trust.  /proc/loadavg is
printed before and after; all results go to bench/results/*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

if __package__ in (None, ""):  # allow `python3 bench/compare.py` as well as `-m bench.compare`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.loadgen import procinfo  # noqa: E402
from bench.loadgen.catalog import CATALOG, QUICK_SET, flat, headline, run, shardable  # noqa: E402
from bench.loadgen.client import BrokerAddress  # noqa: E402
from bench.scrape import Scraper  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/"
# Lower is better for these figures; the ratio column says which way is good.
LOWER_IS_BETTER = ("_ms", "_s", "_kib", "_mib")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManagedBroker:
    """A broker process this script starts on a free port and always stops."""

    def __init__(self, label: str, argv_for, ready_text: str | None, startup_timeout: float = 30.0,
                 env: dict | None = None) -> None:
        self.label = label
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix=f"bench-{label}-")
        self.argv = argv_for(self.port, self.tmp)
        self.ready_text = ready_text
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log: list[str] = []
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))

    @property
    def pid(self) -> int | None:
        # The process we started may be a wrapper; trust who holds the port.
        return procinfo.pid_listening_on(self.port) or (self.proc.pid if self.proc else None)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     cwd=self.tmp, env=self.env)
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                if self.ready_text and self.ready_text in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        limit = time.monotonic() + self.startup_timeout
        while time.monotonic() < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: " + " | ".join(self.log[-5:]))
            if (self.ready_text is None or ready.is_set()) and self._accepts():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} not ready after {self.startup_timeout}s: " + " | ".join(self.log[-5:]))

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


class ExternalBroker:
    """A broker already running (RabbitMQ at 5672)."""

    def __init__(self, label: str, url: str) -> None:
        self.label = label
        self.url = url
        self.pid = procinfo.pid_listening_on(BrokerAddress.parse(url).port)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class ShardedBroker:
    """N brokers started alike, each holding a share of a scenario's queues; stopped together."""

    def __init__(self, label: str, shards: list[ManagedBroker]) -> None:
        self.label = label
        self.shards = shards
        self.url = shards[0].url
        self.urls = [b.url for b in shards]

    @property
    def pid(self) -> list[int | None]:
        return [b.pid for b in self.shards]

    def start(self) -> None:
        try:
            for b in self.shards:
                b.start()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        for b in self.shards:
            b.stop()


def leveret_broker(command: str, http_port: int = -1) -> ManagedBroker:
    base = shlex.split(command)
    # The management API is off unless scraped (--scrape): a fixed HTTP port would collide with any other
    # leveret on the machine, so a scraped one gets a free port.
    return ManagedBroker("leveret", lambda port, tmp: base + ["serve", "--host", "127.0.0.1", "--port", str(port),
                                                             "--http-port", str(http_port),
                                                             "--data-dir", os.path.join(tmp, "data")],
                         # No Kafka listener: its fixed port (9092) would collide with a second leveret.
                         "listening on", env={"LEVERET_KAFKA_PORT": "-1"})


def garagemq_broker() -> ManagedBroker:
    """garagemq with its own config: loopback, free ports, tcp nodelay, temp db."""
    def argv(port: int, tmp: str) -> list[str]:
        config = f"""proto: amqp-rabbit
users:
  - username: guest
    password: 084e0343a0486ff05530df6c705c8bb4
tcp:
  ip: 127.0.0.1
  port: {port}
  nodelay: true
  readBufSize: 196608
  writeBufSize: 196608
admin:
  ip: 127.0.0.1
  port: {free_port()}
queue:
  shardSize: 8192
  maxMessagesInRam: 131072
db:
  defaultPath: {tmp}/db
  engine: badger
vhost:
  defaultPath: /
security:
  passwordCheck: md5
connection:
  channelsMax: 4096
  frameMaxSize: 131072
"""
        path = os.path.join(tmp, "config.yaml")
        with open(path, "w") as f:
            f.write(config)
        return ["garagemq", "--config", path, "--log-level", "error"]
    return ManagedBroker("garagemq", argv, None)


def is_lower_better(metric: str) -> bool:
    return metric.endswith(LOWER_IS_BETTER)


def table(results: list[dict], labels: list[str], scenarios: list[str]) -> list[str]:
    """Medians per scenario/metric/broker over honest runs, and ratios to RabbitMQ."""
    rows = []
    head = f"{'scenario':10s} {'metric':26s}" + "".join(f"{lab:>14s}" for lab in labels)
    others = [lab for lab in labels if lab != "rabbitmq"]
    # A sharded leveret is also compared with the single process of the same run.
    sharded = [lab for lab in labels if lab.startswith("leveret-x") and "leveret" in labels]
    head += "".join(f"{lab.replace('leveret-', 'lev-')[:7] + '/rmq':>12s}" for lab in others)
    head += "".join(f"{lab[8:] + '/lev':>12s}" for lab in sharded) + "   honest runs"
    rows.append(head)
    rows.append("-" * len(head))
    for name in scenarios:
        entry = CATALOG[name]
        keys = list(entry.headline) + ["broker.cpu_s"]
        per = {lab: [r for r in results if r["name"] == name and r["broker_label"] == lab] for lab in labels}
        honest = {lab: [r for r in rs if r["verdict"]["ok"]] for lab, rs in per.items()}
        for i, key in enumerate(keys):
            med = {}
            for lab in labels:
                vals = []
                for r in honest[lab]:
                    m = flat(r["metrics"])
                    v = r["broker"].get("cpu_s") if key == "broker.cpu_s" else m.get(key)
                    if isinstance(v, (int, float)):
                        vals.append(v)
                med[lab] = statistics.median(vals) if vals else None
            line = f"{name if i == 0 else '':10s} {key:26s}"
            line += "".join(f"{_fmt(med[lab]):>14s}" for lab in labels)
            for lab, base in [(lab, "rabbitmq") for lab in others] + [(lab, "leveret") for lab in sharded]:
                a, b = med.get(lab), med.get(base)
                ratio = f"{a / b:.2f}" if (a is not None and b) else "n/a"
                line += f"{ratio:>12s}"
            if i == 0:
                line += "   " + " ".join(f"{lab}:{len(honest[lab])}/{len(per[lab])}" for lab in labels)
            rows.append(line)
    rows.append("ratio = other/RabbitMQ (xN/lev: N leveret shards / one leveret); for *_ms, *_s, *_kib, *_mib "
                "and cpu_s lower is better, otherwise higher.")
    return rows


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and abs(v) < 100:
        return f"{v:.3g}"
    return f"{v:,.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"scenarios {','.join(QUICK_SET)} at quick sizes")
    ap.add_argument("--scenarios", help="comma-separated names (python3 -m bench.loadgen list)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per broker per scenario (>= 3 recommended)")
    ap.add_argument("--count", type=int, help="override every scenario's message count")
    ap.add_argument("--size", type=int, help="override every scenario's body size")
    ap.add_argument("--timeout", type=float, help="per-run deadline, seconds")
    ap.add_argument("--publishers", type=int, help="publisher processes for the (a) scenarios")
    ap.add_argument("--leveret-cmd", default=f"{sys.executable} -m leveret",
                    help="how to invoke leveret (serve --host --port --data-dir are appended)")
    ap.add_argument("--leveret-url", help="use an already running leveret instead of starting one")
    ap.add_argument("--no-leveret", action="store_true", help="RabbitMQ (and garagemq) only")
    ap.add_argument("--leveret-shards", type=int, metavar="N",
                    help="add a column leveret-xN: N leveret processes (started with --leveret-cmd), queue i of a "
                         "many-queue scenario (m) with its clients on process i mod N, nothing shared between them: "
                         "the ceiling of sharding queues over processes; one-queue scenarios are skipped there")
    ap.add_argument("--rabbit-url", default=RABBIT_URL)
    ap.add_argument("--garagemq", action="store_true", help="add garagemq (started here) as a third column")
    ap.add_argument("--out", help="JSON file (default bench/results/compare-<time>.json)")
    ap.add_argument("--scrape", action="store_true",
                    help="GET /metrics and /api/overview of both brokers every second throughout (RabbitMQ's "
                         "on 15692 and 15672)")
    args = ap.parse_args(argv)

    scenarios = args.scenarios.split(",") if args.scenarios else list(QUICK_SET if args.quick else
                                                                      [n for n in CATALOG if n != "g"])
    unknown = [n for n in scenarios if n not in CATALOG]
    if unknown:
        ap.error(f"unknown scenarios {unknown}")
    overrides = {k: getattr(args, k) for k in ("count", "size", "timeout", "publishers") if getattr(args, k) is not None}

    brokers = []
    notes = []
    scrape_urls = ["http://127.0.0.1:15692/metrics", "http://127.0.0.1:15672/api/overview"] if args.scrape else []
    if not args.no_leveret:
        http_port = free_port() if args.scrape and not args.leveret_url else -1
        if http_port > 0:
            scrape_urls += [f"http://127.0.0.1:{http_port}/metrics", f"http://127.0.0.1:{http_port}/api/overview"]
        brokers.append(ExternalBroker("leveret", args.leveret_url) if args.leveret_url
                       else leveret_broker(args.leveret_cmd, http_port))
    if args.leveret_shards is not None:
        if args.leveret_shards < 2:
            ap.error("--leveret-shards needs N >= 2 (the single process is the leveret column)")
        if not any(shardable(n) for n in scenarios):
            ap.error(f"--leveret-shards: none of {scenarios} can spread its queues (try --scenarios m)")
        n = args.leveret_shards
        brokers.append(ShardedBroker(f"leveret-x{n}", [leveret_broker(args.leveret_cmd) for _ in range(n)]))
    scraper = Scraper(scrape_urls) if scrape_urls else None
    brokers.append(ExternalBroker("rabbitmq", args.rabbit_url))
    if args.garagemq:
        if shutil.which("garagemq"):
            brokers.append(garagemq_broker())
        else:
            notes.append("garagemq not installed (apt-get install -y garagemq); column skipped")
    if args.quick and "timeout" not in overrides:
        overrides["timeout"] = 30.0

    def stop_on_signal(signum, _frame):
        # Turn SIGTERM into an exception so `finally` stops the brokers we started.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop_on_signal)
    load_before = procinfo.loadavg()
    started = []
    results: list[dict] = []
    t0 = time.monotonic()
    try:
        for b in brokers:
            try:
                b.start()
                started.append(b)
            except Exception as exc:
                b.stop()  # removes its temp dir
                notes.append(f"{b.label} did not start: {exc}")
                print(f"# {b.label} did not start: {exc}", flush=True)
        shown = [f"{b.label}={getattr(b, 'urls', b.url)} pid={b.pid}" for b in started]
        print(f"# brokers: {', '.join(shown)}")
        print(f"# loadavg before: {load_before}; {os.cpu_count()} cores shared with other work", flush=True)
        if scraper is not None:
            scraper.start()
        for name in scenarios:
            for rnd in range(args.rounds):
                for b in started:
                    shards = getattr(b, "urls", None)
                    if shards and not shardable(name):
                        continue  # one queue cannot spread: the leveret column is this column's figure
                    try:
                        r = run(name, b.url, quick=args.quick, overrides=overrides, pid=b.pid, shard_urls=shards)
                    except Exception as exc:  # a broken broker must not stop the comparison
                        r = {"name": name, "scenario": name, "metrics": {}, "broker": {},
                             "verdict": {"ok": False, "checks": {}, "problems": [f"{type(exc).__name__}: {exc}"]}}
                    r["broker_label"] = b.label
                    r["round"] = rnd
                    results.append(r)
                    print(f"{b.label:9s} r{rnd} {headline(r)}", flush=True)
    finally:
        if scraper is not None:
            notes.append(scraper.stop())
        for b in started:
            b.stop()
    load_after = procinfo.loadavg()
    rows = table(results, [b.label for b in started], scenarios)
    print()
    print("\n".join(rows))
    print(f"\n# loadavg before {load_before}, after {load_after}; {time.monotonic() - t0:.0f} s; "
          f"rounds={args.rounds} quick={args.quick}")
    for n in notes:
        print(f"# note: {n}")
    os.makedirs(RESULTS, exist_ok=True)
    out = args.out or os.path.join(RESULTS, time.strftime("compare-%Y%m%d-%H%M%S.json", time.gmtime()))
    with open(out, "w") as f:
        json.dump({"argv": sys.argv, "loadavg_before": load_before, "loadavg_after": load_after,
                   "cores": os.cpu_count(), "rounds": args.rounds, "quick": args.quick, "notes": notes,
                   "scrape": args.scrape,
                   "brokers": {b.label: getattr(b, "urls", b.url) for b in started}, "table": rows,
                   "results": results}, f, indent=1)
    print(f"# results: {os.path.relpath(out, os.getcwd())}")
    return 0 if all(r["verdict"]["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
