"""Where a message's microseconds go in the broker: py-spy samples of a leveret under one load scenario,
each sample charged to a stage of the message's road (docs/architecture.md), scaled by the broker's CPU
time per message.

    python3 -m bench.profile_breakdown a1k c d-closed [--count N] [--rate 250]

For each scenario it starts `leveret serve` (a free port, a temporary data directory, no HTTP listener),
runs `python3 -m bench.loadgen run SCENARIO` against it while `py-spy record --nonblocking` samples the
broker, and reads the broker's CPU time from /proc before and after. A sample is charged to the innermost
leveret frame's stage (a sample inside asyncio, uvloop or a builtin goes to the leveret frame that called
it; one with no leveret frame at all is the event loop's). The figures are shares of the broker's CPU and
that CPU per message: both hold on a busy machine better than throughput does, but they are samples.
Needs py-spy (`pip install py-spy`; it reads another process's memory, so root or ptrace rights).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The stages of a message's road, by module (the first prefix that matches a frame's file wins).
STAGES = [
    ("parse", ("leveret/amqp/parser.py", "leveret/amqp/connection.py", "leveret/amqp/properties.py",
               "leveret/amqp/table.py", "leveret/amqp/wire.py", "leveret/amqp/events.py")),
    ("encode", ("leveret/amqp/serializer.py", "leveret/amqp/spec.py", "leveret/amqp/stream_offset.py")),
    ("session", ("leveret/server/session.py", "leveret/server/handlers.py", "leveret/amqp/channels.py",
                 "leveret/server/permissions.py", "leveret/amqp/handshake.py")),
    ("confirms", ("leveret/server/confirms.py", "leveret/server/durability.py", "leveret/server/transactions.py")),
    ("route", ("leveret/broker/routing.py", "leveret/broker/exchanges/", "leveret/broker/vhost.py",
               "leveret/broker/message.py", "leveret/broker/route_result.py", "leveret/broker/stats.py")),
    ("queue", ("leveret/broker/queue", "leveret/broker/ready.py", "leveret/broker/entry.py",
               "leveret/broker/rotation.py", "leveret/broker/paging.py", "leveret/broker/timers.py")),
    ("deliver", ("leveret/broker/channel.py", "leveret/broker/consumer.py", "leveret/server/channel_session.py",
                 "leveret/broker/ack_deadlines.py")),
    ("write", ("leveret/server/protocol.py",)),
    ("store", ("leveret/store/", "leveret/durable/")),
    # The loop's own C code (uvloop: reading sockets, running callbacks) shows under Server.run.
    ("event loop", ("leveret/server/app.py", "leveret/__main__.py", "leveret/cli.py")),
]
OTHER_LEVERET = "other leveret"
EVENT_LOOP = "event loop"  # a sample with no leveret frame at all


def stage_of(path: str) -> str | None:
    path = path.replace(os.sep, "/")
    for stage, prefixes in STAGES:
        if any(prefix in path for prefix in prefixes):
            return stage
    return OTHER_LEVERET if "leveret/" in path and "/bench/" not in path else None


def charge(raw: str) -> tuple[collections.Counter, collections.Counter]:
    """Samples per stage, and per charged leveret function, from py-spy's raw output ("frame;frame;...
    count", outermost frame first)."""
    stages: collections.Counter = collections.Counter()
    functions: collections.Counter = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        chosen, function = EVENT_LOOP, EVENT_LOOP
        for frame in reversed(stack.split(";")):
            # "function (path/to/file.py:line)"
            path = frame[frame.rfind("(") + 1:frame.rfind(":")] if "(" in frame else ""
            stage = stage_of(path)
            if stage is not None:
                chosen = stage
                function = f"{frame[:frame.find(' (')]} ({path.rsplit('leveret/', 1)[-1]})"
                break
        stages[chosen] += int(count)
        functions[function] += int(count)
    return stages, functions


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def await_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a port the broker opens, bounded


def profile(scenario: str, count: int | None, rate: int, py_spy: str) -> dict:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="leveret-profile-")
    broker = subprocess.Popen([sys.executable, "-m", "leveret", "serve", "--port", str(port), "--http-port", "-1",
                               "--data-dir", data_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await_port(port)
        raw_file = Path(data_dir) / "profile.txt"
        sampler = subprocess.Popen([py_spy, "record", "--nonblocking", "-r", str(rate), "-f", "raw", "-o",
                                    str(raw_file), "-p", str(broker.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches before the load starts
        cpu_before = cpu_seconds(broker.pid)
        command = [sys.executable, "-m", "bench.loadgen", "run", scenario, "--url",
                   f"amqp://guest:guest@127.0.0.1:{port}/%2F", "--pid", str(broker.pid)]
        if count:
            command += ["--count", str(count)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        cpu = cpu_seconds(broker.pid) - cpu_before
        sampler.send_signal(2)  # SIGINT: py-spy writes its file and exits
        sampler.wait(timeout=60)
        stages, functions = charge(raw_file.read_text()) if raw_file.exists() else (collections.Counter(),) * 2
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"scenario": scenario, "cpu_s": cpu, "stages": stages, "functions": functions,
            "output": run.stdout + run.stderr}


def messages_of(scenario: str, count: int | None) -> int:
    from bench.loadgen.catalog import CATALOG  # the scenario's default count, when none was given
    if count:
        return count
    return CATALOG[scenario].full["count"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="+")
    ap.add_argument("--count", type=int, help="messages per scenario (default: the scenario's full count)")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=15, help="functions to list per scenario")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = ap.parse_args(argv)
    for scenario in args.scenarios:
        result = profile(scenario, args.count, args.rate, args.py_spy)
        messages = messages_of(scenario, args.count)
        total = sum(result["stages"].values()) or 1
        us_per_message = result["cpu_s"] / messages * 1e6
        print(f"\n## {scenario}: {messages:,} messages, broker CPU {result['cpu_s']:.2f} s = "
              f"{us_per_message:.2f} us per message, {total:,} samples")
        for line in result["output"].splitlines():
            if line.startswith(scenario) or "msgs/s" in line:
                print(f"#   {line.strip()}")
        print(f"{'stage':34} {'share':>7} {'us/msg':>8}")
        for stage, samples in result["stages"].most_common():
            share = samples / total
            print(f"{stage:34} {share:7.1%} {share * us_per_message:8.2f}")
        print(f"{'top functions (self and callees outside leveret)':60} {'share':>7} {'us/msg':>8}")
        for function, samples in result["functions"].most_common(args.top):
            share = samples / total
            print(f"{function[:60]:60} {share:7.1%} {share * us_per_message:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
