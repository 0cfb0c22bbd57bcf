"""Command line: ``python3 -m bench.loadgen {list,run,capacity,null}``.

  list                      the scenarios and what they do
  run NAME... [--url U]     run scenarios against a broker, print headlines (+ JSON)
  capacity                  start the null broker and measure the generator itself
  null --port P             run the null broker in the foreground
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from . import procinfo
from .catalog import CAPACITY_SET, CATALOG, headline, run

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _overrides(args) -> dict:
    out = {}
    for key in ("count", "size", "timeout", "publishers"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    return out


def cmd_list(_args) -> int:
    for name, e in CATALOG.items():
        print(f"{name:12s} {e.doc}   full={e.full} quick={e.quick}")
    return 0


def cmd_run(args) -> int:
    names = args.scenarios or list(CATALOG)
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        print(f"unknown scenarios: {unknown}; see `python3 -m bench.loadgen list`", file=sys.stderr)
        return 2
    results = []
    print(f"# {args.url}  loadavg before: {procinfo.loadavg()}", flush=True)
    for name in names:
        r = run(name, args.url, quick=args.quick, overrides=_overrides(args), pid=args.pid)
        results.append(r)
        print(headline(r), flush=True)
    print(f"# loadavg after: {procinfo.loadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if all(r["verdict"]["ok"] for r in results) else 1


def start_null_broker() -> tuple[subprocess.Popen, int]:
    """Start the null broker in its own process; return it and its port."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen.nullbroker", "--port", "0"],
                            stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"null broker did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def cmd_capacity(args) -> int:
    """The generator against the null broker: a lower bound on its capacity."""
    proc, port = start_null_broker()
    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    results = []
    try:
        print(f"# generator capacity vs null broker on port {port}; loadavg before: {procinfo.loadavg()}", flush=True)
        for name in args.scenarios or CAPACITY_SET:
            r = run(name, url, quick=args.quick, overrides=_overrides(args), pid=proc.pid)
            results.append(r)
            print(headline(r), flush=True)
        print(f"# loadavg after: {procinfo.loadavg()}")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    from .nullbroker import measure_send_path
    print("# publish path alone (pre-encoded batches into a discarding socket; no broker, no checks):")
    for size, count in ((16, 200_000 if args.quick else 1_000_000), (1024, 100_000 if args.quick else 500_000),
                        (65536, 5_000 if args.quick else 20_000)):
        sp = measure_send_path(size, count)
        results.append({"name": f"send-path-{size}B", "metrics": sp})
        print(f"send-path  {size:5d} B: {sp['msgs_per_s']:,} msgs/s, {sp['mb_per_s']} MB/s, "
              f"{sp['cpu_us_per_msg']} us CPU per message", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if all(r.get("verdict", {"ok": True})["ok"] for r in results) else 1


def cmd_null(args) -> int:
    from .nullbroker import serve
    serve(args.host, args.port)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.loadgen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list").set_defaults(fn=cmd_list)
    for name, fn in (("run", cmd_run), ("capacity", cmd_capacity)):
        p = sub.add_parser(name)
        p.add_argument("scenarios", nargs="*")
        if name == "run":
            p.add_argument("--url", default=DEFAULT_URL)
            p.add_argument("--pid", type=int, help="broker pid for RSS/CPU (default: who listens on the port)")
        p.add_argument("--quick", action="store_true", help="smaller counts")
        p.add_argument("--count", type=int)
        p.add_argument("--size", type=int)
        p.add_argument("--timeout", type=float, help="per-scenario deadline, seconds")
        p.add_argument("--publishers", type=int, help="publisher processes for (a)")
        p.add_argument("--json", help="write results to this file")
        p.set_defaults(fn=fn)
    p = sub.add_parser("null")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(fn=cmd_null)
    args = ap.parse_args(argv)
    # SIGTERM (e.g. from `timeout`) as an exception: finally blocks delete
    # the scenario's queues and stop the null broker.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    t0 = time.monotonic()
    rc = args.fn(args)
    if args.cmd in ("run", "capacity"):
        print(f"# {time.monotonic() - t0:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
