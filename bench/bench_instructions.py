"""Instructions per message of the AMQP session path, counted by valgrind: a figure that does not move with
the machine's load, for before/after comparisons of hot-path changes on a busy machine.

    python3 -m bench.bench_instructions [--small 5000] [--large 15000] [modes...]

Each mode of bench/bench_session.py (publish, confirm, deliver+ack; bytes through AMQPProtocol -> Session
-> broker with a fake transport, 100 B messages, 100 per read), and `e2e` (below), runs twice under
`valgrind --tool=callgrind`, with `small` and with `large` messages; the difference in instructions divided by the difference in
messages is the per-message count, start-up and import costs cancelled. Slow (Python runs ~50x slower under
valgrind): a few minutes for the three modes. Compare trees by running it from each (PYTHONPATH=tree).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys

MODES = ("publish", "confirm", "deliver+ack", "e2e")
E2E_READ = 20  # publishes per read in e2e


async def e2e(n: int, per_read: int = E2E_READ) -> None:
    """Publish, deliver and ack with the consumer attached throughout (as in bench.compare's d-closed): a
    consumer connection (prefetch 1000) on queue q, a publisher connection writing `per_read` publishes per
    read, and after each such read the consumer's one multiple ack for what it was sent."""
    import tempfile

    from bench.bench_session import Transport, handshake
    from leveret.amqp import spec
    from leveret.amqp.properties import BasicProperties
    from leveret.amqp.serializer import content_frames, method_frame
    from leveret.config import Settings
    from leveret.server.app import Server
    from leveret.server.protocol import AMQPProtocol

    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(Settings(port=0, http_port=-1, host="127.0.0.1", data_dir=data_dir,
                                 disk_check_interval=3600.0, memory_monitor_interval=3_600_000))
        await server.start()
        try:
            consumer, publisher = AMQPProtocol(server), AMQPProtocol(server)
            for protocol in (consumer, publisher):
                protocol.connection_made(Transport())
                protocol.data_received(handshake())
            await asyncio.sleep(0)
            consumer.data_received(method_frame(1, spec.BasicQos(prefetch_count=1000))
                                   + method_frame(1, spec.BasicConsume(queue="q", consumer_tag="c")))
            props = BasicProperties(content_type="text/plain").raw
            read = b"".join(content_frames(1, spec.BasicPublish(exchange="", routing_key="q"), props, b"x" * 100,
                                           131072)) * per_read
            delivered = consumer.transport.out
            tag = 0
            for _ in range(n // per_read):
                publisher.data_received(read)
                tag += per_read
                consumer.data_received(method_frame(1, spec.BasicAck(delivery_tag=tag, multiple=True)))
                await asyncio.sleep(0)
            assert consumer.transport.out > delivered, "nothing was delivered"
            for protocol in (consumer, publisher):
                protocol.transport = None
                protocol.connection_lost(None)
            await asyncio.sleep(0)
        finally:
            await server.stop()


def one_mode(mode: str, n: int) -> None:
    """Run `mode` once with n messages (in this process: the one valgrind counts)."""
    if mode == "e2e":
        asyncio.run(e2e(n))
        return
    from bench import bench_session
    results = asyncio.run(bench_session.run(n, 100, modes=(mode,)))
    assert mode in results


def instructions(mode: str, n: int) -> int:
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           "-m", "bench.bench_instructions", "--child", mode, str(n)],
                          capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run of {mode} x {n} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modes", nargs="*", default=list(MODES))
    ap.add_argument("--small", type=int, default=5_000)
    ap.add_argument("--large", type=int, default=15_000)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        one_mode(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed")
        return 2
    for mode in args.modes:
        small, large = instructions(mode, args.small), instructions(mode, args.large)
        print(f"{mode:12} {(large - small) / (args.large - args.small):10,.0f} instructions per message", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
