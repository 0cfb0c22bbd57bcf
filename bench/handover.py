"""What handing a client connection to another process costs (issue 16, "more than one core").

    python3 -m bench.handover [--connections 2000] [--rounds 3] [--state-bytes 512] [--loop uvloop|asyncio]

A sharded leveret would accept a connection in one process, and once it knows which queue the connection
uses (after connection.open and the first queue.declare or basic.publish), pass the socket to the
process owning that queue: the file descriptor over a Unix socket (SCM_RIGHTS, ``socket.send_fds``) with
the session's state and the bytes already read, and the owner resumes reading it in its event loop.
This measures that step, between two real processes, over real TCP connections:

  client    one process, blocking sockets: connect, send a 64-byte request, read the 16-byte reply,
            send a second request, read its reply, close; one connection after another.
  acceptor  an event loop (``--loop``) that accepts. ``direct``: it answers both requests itself.
            ``handover``: on the first request it dups the socket, sends fd + state blob (the bytes
            read + ``--state-bytes`` of session state, pickled) over a SOCK_SEQPACKET pair, and drops
            its transport.
  owner     an event loop that receives fd + blob (``socket.recv_fds``), unpickles the state, adopts
            the socket (``loop.connect_accepted_socket``), answers the first request from the blob and
            the second one from the socket: reads resumed in the other process.

Printed per mode (medians over ``--rounds``): the client's time per connection (connect to close), CPU
per connection of acceptor and owner (their whole processes), and the CPU of the hand-over code alone on
each side (``time.process_time_ns`` around the send and the adopt). The hand-over's cost is handover
minus direct.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import pickle
import socket
import statistics
import sys
import time

if __package__ in (None, ""):  # allow `python3 bench/handover.py` as well as `-m bench.handover`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.loadgen import procinfo  # noqa: E402

REQUEST = 64
REPLY = b"r" * 16


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class _Answering(asyncio.Protocol):
    """Answers each complete 64-byte request with REPLY; ``on_first`` may take the connection away."""

    def __init__(self, on_first=None, pending: bytes = b"", answered: int = 0) -> None:
        self.on_first = on_first
        self.buf = bytearray(pending)
        self.answered = answered
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._answer()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._answer()

    def _answer(self) -> None:
        while len(self.buf) >= REQUEST and self.transport is not None:
            if self.answered == 0 and self.on_first is not None:
                self.on_first(self)
                return
            del self.buf[:REQUEST]
            self.transport.write(REPLY)
            self.answered += 1


async def _measure(loop, report, spent: list) -> None:
    """Between the parent's "start" and "done": this process's CPU and the hand-over code's, in ns."""
    await loop.run_in_executor(None, report.recv)
    spent[0] = 0
    cpu0 = time.process_time_ns()
    await loop.run_in_executor(None, report.recv)
    report.send((time.process_time_ns() - cpu0, spent[0]))


def _acceptor(mode: str, loop_kind: str, state_bytes: int, lsock: socket.socket, channel: socket.socket,
              report) -> None:
    loop = _new_loop(loop_kind)
    asyncio.set_event_loop(loop)
    spent = [0]
    state = os.urandom(state_bytes)

    def hand_over(proto: _Answering) -> None:
        t0 = time.process_time_ns()
        sock = proto.transport.get_extra_info("socket")
        fd = os.dup(sock.fileno())
        blob = pickle.dumps({"vhost": "/", "user": "guest", "frame_max": 131072, "channel_max": 2047,
                             "channels": {1: {"prefetch": 1000, "next_tag": 1}}, "session": state,
                             "pending": bytes(proto.buf)})
        socket.send_fds(channel, [blob], [fd])
        os.close(fd)
        proto.transport.abort()  # closes this process's descriptor only: the owner's copy keeps the connection
        proto.transport = None
        spent[0] += time.process_time_ns() - t0

    factory = (lambda: _Answering(hand_over)) if mode == "handover" else _Answering

    async def main() -> None:
        server = await loop.create_server(factory, sock=lsock)
        await _measure(loop, report, spent)
        server.close()

    loop.run_until_complete(main())


def _owner(loop_kind: str, channel: socket.socket, report) -> None:
    loop = _new_loop(loop_kind)
    asyncio.set_event_loop(loop)
    spent = [0]
    channel.setblocking(False)

    def adopt() -> None:
        while True:
            t0 = time.process_time_ns()
            try:
                blob, fds, _flags, _addr = socket.recv_fds(channel, 65536, 1)
            except BlockingIOError:
                return
            state = pickle.loads(blob)
            sock = socket.socket(fileno=fds[0])
            loop.create_task(loop.connect_accepted_socket(lambda: _Answering(pending=state["pending"]), sock))
            spent[0] += time.process_time_ns() - t0

    loop.add_reader(channel.fileno(), adopt)
    loop.run_until_complete(_measure(loop, report, spent))


def _client(port: int, connections: int) -> float:
    """Seconds of wall time for ``connections`` connections, each with two requests."""
    request = b"q" * REQUEST
    t0 = time.perf_counter()
    for _ in range(connections):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # a lost hand-over must not hang
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(2):
                s.sendall(request)
                got = b""
                while len(got) < len(REPLY):
                    chunk = s.recv(len(REPLY) - len(got))
                    if not chunk:
                        raise RuntimeError("connection closed before its reply: the hand-over lost it")
                    got += chunk
    return time.perf_counter() - t0


def run_mode(mode: str, connections: int, state_bytes: int = 512, loop_kind: str = "uvloop") -> dict:
    """One run of ``connections`` connections in ``mode`` (direct or handover); microseconds per connection."""
    ctx = multiprocessing.get_context("fork")
    lsock = socket.create_server(("127.0.0.1", 0), backlog=512)
    port = lsock.getsockname()[1]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    reports = {"acceptor": ctx.Pipe()}
    procs = [ctx.Process(target=_acceptor, daemon=True,
                         args=(mode, loop_kind, state_bytes, lsock, ours, reports["acceptor"][1]))]
    if mode == "handover":
        reports["owner"] = ctx.Pipe()
        procs.append(ctx.Process(target=_owner, args=(loop_kind, theirs, reports["owner"][1]), daemon=True))
    for p in procs:
        p.start()
    lsock.close()
    try:
        _client(port, min(100, connections))  # warm-up: imports, first allocations, the executor threads
        for mine, _ in reports.values():
            mine.send("start")
        wall = _client(port, connections)
        for mine, _ in reports.values():
            mine.send("done")
        out = {"mode": mode, "connections": connections, "client_us": round(wall * 1e6 / connections, 2)}
        for role, (mine, _) in reports.items():
            if not mine.poll(30):
                raise RuntimeError(f"{role} did not report")
            cpu_ns, spent_ns = mine.recv()
            out[f"{role}_cpu_us"] = round(cpu_ns / 1000 / connections, 2)
            if mode == "handover":
                out[f"{role}_handover_code_us"] = round(spent_ns / 1000 / connections, 2)
        return out
    finally:
        for p in procs:
            p.kill()
            p.join(5)
        ours.close()
        theirs.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.handover", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=2000, help="connections per run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per mode, alternated (medians are printed)")
    ap.add_argument("--state-bytes", type=int, default=512, help="session state sent with each connection")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args(argv)
    print(f"# {args.connections} connections x {args.rounds} rounds, state {args.state_bytes} B, {args.loop}; "
          f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, loadavg before {procinfo.loadavg()}", flush=True)
    runs: dict[str, list[dict]] = {"direct": [], "handover": []}
    for rnd in range(args.rounds):
        for mode in runs:
            r = run_mode(mode, args.connections, args.state_bytes, args.loop)
            runs[mode].append(r)
            print(f"r{rnd} {r}", flush=True)
    med = {mode: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k.endswith("_us")}
           for mode, rs in runs.items()}
    for mode, figures in med.items():
        print(f"median {mode:8s} " + "  ".join(f"{k}={v:.2f}" for k, v in figures.items()))
    d, h = med["direct"], med["handover"]
    print(f"hand-over per connection: client wall +{h['client_us'] - d['client_us']:.1f} us, CPU "
          f"+{h['acceptor_cpu_us'] + h['owner_cpu_us'] - d['acceptor_cpu_us']:.1f} us over both processes "
          f"(the hand-over code itself: send {h['acceptor_handover_code_us']:.1f} us, "
          f"adopt {h['owner_handover_code_us']:.1f} us)")
    print(f"# loadavg after {procinfo.loadavg()}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
